"""Identifiers that carry their own check digits: the NIR and the French IBAN.

Each module holds a scalar reference implementation (straightforward, easy to
review) and a vectorised one over NumPy/Arrow that the pipeline uses at national
scale; tests prove the two agree.
"""
