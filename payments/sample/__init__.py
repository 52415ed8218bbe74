"""Deterministic generator of realistic fund files (``payments sample``).

``households`` builds one fund's rows as Arrow arrays from a seeded generator,
``defects`` overlays the errors real files carry, ``writer`` puts the files,
their companions and the ground truth of injected defects on disk.
"""
