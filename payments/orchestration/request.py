"""The batch's parameters (the DAG's trigger form), checked before any work starts.

A wrong scheme id, an unknown fund code or a malformed date fails the first
task with one sentence naming the parameter, instead of surfacing later as a
stack trace in a mapped task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from payments.registry import load_registry
from payments.schemes import Scheme, SchemeError, load_scheme, parse_scheme, scheme_ids

DEFAULT_SCHEME = "aes-2020-05"


class RequestError(ValueError):
    """A trigger parameter that cannot be used; the message names it."""


@dataclass(frozen=True)
class BatchRequest:
    scheme_id: str
    funds: tuple[str, ...]  # registry order; every fund when none was named
    payment_date: date | None  # None: the scheme's own date
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme_id": self.scheme_id,
            "funds": list(self.funds),
            "payment_date": self.payment_date.isoformat() if self.payment_date else None,
            "dry_run": self.dry_run,
        }

    def scheme(self) -> Scheme:
        return scheme_for(self.scheme_id, self.payment_date)

    def hold_date(self) -> date:
        """The date recent bank changes are counted back from: the decree's payment date,
        or the requested one when earlier. Postponing the payment never shortens the
        window (moved five weeks later, every recent change would look old)."""
        decree = load_scheme(self.scheme_id).spec.payment_date
        return min(self.payment_date or decree, decree)


def _funds(value: Any) -> tuple[str, ...]:
    registry = load_registry()
    if value in (None, "", []):
        return tuple(registry.codes)
    codes = value if isinstance(value, list) else re.split(r"[\s,;]+", str(value).strip())
    codes = [str(c).strip() for c in codes if str(c).strip()]
    unknown = sorted(set(codes) - set(registry.codes))
    if unknown:
        raise RequestError(f"param funds: unknown fund codes {unknown} (see `payments funds`)")
    wanted = set(codes)
    return tuple(c for c in registry.codes if c in wanted)


def parse_request(params: Mapping[str, Any]) -> BatchRequest:
    """Check the trigger parameters; raise ``RequestError`` naming the first wrong one."""
    scheme_id = str(params.get("scheme_id") or DEFAULT_SCHEME)
    if scheme_id not in scheme_ids():
        raise RequestError(f"param scheme_id: {scheme_id!r} is not one of {scheme_ids()}")
    raw_date = params.get("payment_date")
    payment_date = None
    if raw_date not in (None, ""):
        try:
            payment_date = date.fromisoformat(str(raw_date))
        except ValueError:
            raise RequestError(
                f"param payment_date: {raw_date!r} is not a date (YYYY-MM-DD)"
            ) from None
    dry_run = params.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise RequestError(f"param dry_run: {dry_run!r} is not true or false")
    return BatchRequest(scheme_id, _funds(params.get("funds")), payment_date, dry_run)


def scheme_for(scheme_id: str, payment_date: date | None) -> Scheme:
    """The scheme, with its payment date moved when the run asks for another one.

    The move is made in the scheme's text, so the run id, the ledger's scheme
    hash and the archived scheme all show it: a postponed payment is never
    mistaken for the decree's own date.
    """
    scheme = load_scheme(scheme_id)
    if payment_date is None or payment_date == scheme.spec.payment_date:
        return scheme
    if payment_date < scheme.spec.age_date:
        raise RequestError(
            f"param payment_date: {payment_date} is before the scheme's age date "
            f"{scheme.spec.age_date}"
        )
    text, count = re.subn(
        r'(?m)^payment_date\s*=\s*"?[0-9-]+"?\s*$',
        f'payment_date = "{payment_date.isoformat()}"  # set by the run',
        scheme.text,
    )
    if count != 1:
        raise SchemeError(f"{scheme.source}: payment_date line not found; cannot move it")
    return parse_scheme(text, f"<{scheme.source}, payment date set by the run>")
