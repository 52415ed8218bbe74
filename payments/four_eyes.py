"""Who may decide on a run: a finance approver who is not the user who triggered it.

Users are compared by a normalised id (Unicode NFKC, surrounding spaces
removed, case folded), the same in the UI, the API and the CLI: "op2 ",
"OP2" and "op2" are one person, so a trailing space cannot slip past the
four-eyes rule nor name an approver who does not exist.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

from payments.errors import FourEyesError


def user_id(name: str | None) -> str:
    """The stable form of a user id; empty when there is none."""
    return unicodedata.normalize("NFKC", name or "").strip().casefold()


def check_decider(by: str, *, triggered_by: str | None, approvers: Collection[str]) -> str:
    """Refuse unless ``by`` is a finance approver other than the triggerer; returns the id.

    ``approvers`` is the deployment's list (``PAYMENTS_FINANCE_APPROVERS``):
    an empty list refuses everyone, it never means "anyone".
    """
    who = user_id(by)
    if not who:
        raise FourEyesError("the decision names no user: refused")
    allowed = {user_id(a) for a in approvers} - {""}
    if who not in allowed:
        raise FourEyesError(
            f"{by.strip()!r} is not a finance approver "
            f"(PAYMENTS_FINANCE_APPROVERS: {', '.join(sorted(allowed)) or 'none'})"
        )
    if user_id(triggered_by) == who:
        raise FourEyesError("the user who triggered a run cannot decide on it (four eyes)")
    return who
