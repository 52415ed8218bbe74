"""Who may decide: a finance approver who did not trigger the run nor cause what it pays.

Users are compared by a normalised form (Unicode NFKC, surrounding spaces
removed, case folded), the same in the UI, the API and the CLI: "op2 ",
"OP2" and "op2" are one person, so a trailing space cannot slip past the
four-eyes rule nor name an approver who does not exist.

Like is compared with like. An approver is listed by the auth manager's user
*id* (``PAYMENTS_FINANCE_APPROVERS``), with the user's *name* after ``=`` when
the two differ (FAB's ids are numbers: ``3=alice``). Membership is checked on
the id; "not the user who triggered the run" on the name, because Airflow
records a run's triggerer by name; "not the user who caused a re-issue or
released a hold this run pays" on the id, which the ledger records for those.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from payments.errors import FourEyesError
from payments.identity import Identity


def user_id(name: str | None) -> str:
    """The stable form of a user id or name; empty when there is none."""
    return unicodedata.normalize("NFKC", name or "").strip().casefold()


@dataclass(frozen=True)
class Approver:
    """A finance approver as configured: the auth manager's id, and the user's name."""

    id: str
    name: str

    @classmethod
    def parse(cls, entry: str) -> Approver:
        ident, _, name = entry.partition("=")
        return cls(ident.strip(), (name or ident).strip())


def approvers_of(entries: Iterable[str]) -> tuple[Approver, ...]:
    """``PAYMENTS_FINANCE_APPROVERS``'s entries (``id`` or ``id=name``) as approvers."""
    return tuple(Approver.parse(e) for e in entries if e.strip())


def is_approver(user: str, approvers: Iterable[str]) -> bool:
    """True when the auth manager's user id ``user`` is a listed finance approver's."""
    return bool(user_id(user)) and user_id(user) in {user_id(a.id) for a in approvers_of(approvers)}


def check_decider(
    by: str | Identity,
    *,
    triggered_by: str | None,
    approvers: Collection[str],
    caused: Mapping[str, str] | None = None,
) -> str:
    """Refuse unless ``by`` is a finance approver who neither triggered the run nor caused
    what it pays (``caused``: user id → what they did); returns the approver's id.

    ``approvers`` is the deployment's list: an empty list refuses everyone, it
    never means "anyone". A bare string is a simple-auth-manager user (its id
    is its name).
    """
    who = Identity.named(by)
    me = user_id(who.id)
    if not me:
        raise FourEyesError("the decision names no user: refused")
    listed = {user_id(a.id): a for a in approvers_of(approvers)} if approvers else {}
    listed.pop("", None)
    approver = listed.get(me)
    if approver is None:
        raise FourEyesError(
            f"{who.id.strip()!r} is not a finance approver "
            f"(PAYMENTS_FINANCE_APPROVERS: {', '.join(sorted(listed)) or 'none'})"
        )
    if user_id(approver.name) != user_id(who.name):
        raise FourEyesError(
            f"user id {who.id!r} is finance approver {approver.name!r}, but the user is "
            f"named {who.name!r}: ids and names do not match"
        )
    if user_id(triggered_by) and user_id(triggered_by) == user_id(who.name):
        raise FourEyesError("the user who triggered a run cannot decide on it (four eyes)")
    for causer, what in (caused or {}).items():
        if user_id(causer) == me:
            raise FourEyesError(
                f"{who.name} {what}, which this run pays: another finance user decides (four eyes)"
            )
    return me
