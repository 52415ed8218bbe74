"""The entitlement engine: who gets what under a scheme, once per household, nationally.

``conditions`` compiles a scheme rule's condition into an Arrow expression,
``facts`` turns one fund's accepted rows into household facts (pure, per fund),
``decide`` deduplicates nationally, applies holds and gives each household its
decision, ``preview`` sums it up for finance. No I/O, no clock, no randomness:
the secret of the keyed hash, the run date and prior payments come in as
arguments.
"""
