"""A payment's life: computed → approved → in_file → sent → accepted | rejected | returned.

``returned`` follows ``accepted``, or ``sent`` when the bank never said accepted.

``held`` sits beside ``computed`` (a fraud/risk hold, released back to
``computed`` by finance). Transitions not listed here are refused: a payment
cannot be sent before it is in a file, nor be "accepted" twice.
"""

from __future__ import annotations

from payments.errors import PaymentsError

COMPUTED = "computed"
HELD = "held"
APPROVED = "approved"
IN_FILE = "in_file"
SENT = "sent"
ACCEPTED = "accepted"
REJECTED = "rejected"
RETURNED = "returned"
CANCELLED = "cancelled"

STATES = (COMPUTED, HELD, APPROVED, IN_FILE, SENT, ACCEPTED, REJECTED, RETURNED, CANCELLED)

TRANSITIONS: dict[str, frozenset[str]] = {
    COMPUTED: frozenset({APPROVED, HELD, CANCELLED}),
    HELD: frozenset({COMPUTED, CANCELLED}),  # released, or confirmed fraud
    APPROVED: frozenset({IN_FILE, CANCELLED}),
    IN_FILE: frozenset({SENT}),
    # Returned from sent too: banks that report only rejections (EPC, German
    # profile) never accept a payment explicitly before the money comes back.
    SENT: frozenset({ACCEPTED, REJECTED, RETURNED}),
    ACCEPTED: frozenset({RETURNED}),
    REJECTED: frozenset(),
    RETURNED: frozenset(),
    CANCELLED: frozenset(),
}


class IllegalTransition(PaymentsError, ValueError):
    """A state change the payment state machine does not allow."""


def check(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"a payment cannot go from {current!r} to {new!r}")
