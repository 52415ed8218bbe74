"""The Holds page: finance reviews the payments held for fraud or risk, and releases them.

The list is filtered by scheme, fund, hold reason and amount, and capped (the
totals cover the whole selection). Each hold opens on the facts behind it:
the rule and article that made the household entitled, what the rule read,
and what the hold checks saw (bank details changed on, account holder, the
IBAN masked as in the logs), from the run's ``compute/review.parquet``.

A release is a decision: only a finance approver who did not trigger the
payment's run may make it, with a note. The page checks and asks; a run of
``solidarity_finance_action`` in the user's name applies it (the web server
reads the ledger only), checking four eyes again; the ledger records who,
when and why (:func:`payments.ledger.holds.release_hold`), and the next run
of the scheme that includes the fund pays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse

from payments.money import euros
from payments.ui.access import PERMISSIONS
from payments.ui.dagruns import FINANCE_ACTION_DAG, trigger
from payments.ui.guard import Visitor, guard
from payments.ui.layout import esc, money, page, table

#: Lines shown at most; the totals count every hold the filters select.
SHOWN = 500


@dataclass(frozen=True)
class Filters:
    """The list's filters as the form sends them (amounts in euros, as people type them)."""

    scheme: str = ""
    fund: str = ""
    reason: str = ""
    min_euros: str = ""
    max_euros: str = ""
    state: str = "held"

    def chosen(self) -> Any:
        from payments.ledger.holds import HoldFilter

        return HoldFilter(
            scheme_id=self.scheme or None,
            fund_code=self.fund or None,
            reason=self.reason or None,
            min_cents=_cents(self.min_euros),
            max_cents=_cents(self.max_euros),
            released={"held": False, "released": True}.get(self.state),
        )


def _cents(text: str) -> int | None:
    """Euros typed in a filter (``150``, ``150.5``, ``150,50``) as cents; empty: no bound."""
    text = text.strip().replace(",", ".").replace(" ", "")
    if not text:
        return None
    whole, _, part = text.partition(".")
    if not whole.isdigit() or (part and (not part.isdigit() or len(part) > 2)):
        raise HTTPException(400, f"amount {text!r}: write euros as 150 or 150.50")
    return int(whole) * 100 + int(part.ljust(2, "0") or 0)


def register(app: FastAPI) -> None:
    """The review list, a hold's facts, and the release."""

    @app.get("/holds", response_class=HTMLResponse)
    def holds(
        visitor: Annotated[Visitor, Depends(guard("read_holds"))],
        scheme: str = "",
        fund: str = "",
        reason: str = "",
        min_euros: str = "",
        max_euros: str = "",
        state: str = "held",
    ) -> HTMLResponse:
        filters = Filters(
            scheme=scheme,
            fund=fund,
            reason=reason,
            min_euros=min_euros,
            max_euros=max_euros,
            state=state,
        )
        return HTMLResponse(_list_page(visitor, filters))

    @app.get("/holds/{payment_id}", response_class=HTMLResponse)
    def hold(
        payment_id: int, visitor: Annotated[Visitor, Depends(guard("read_holds"))], asked: str = ""
    ) -> HTMLResponse:
        return HTMLResponse(_facts_page(visitor, payment_id, bool(asked)))

    @app.post("/holds/{payment_id}/release")
    def release(
        payment_id: int,
        visitor: Annotated[Visitor, Depends(guard("release_hold"))],
        note: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        _release(visitor, payment_id, note)
        return RedirectResponse(f"{visitor.base}/holds/{payment_id}?asked=1", status_code=303)


def _engine() -> Any:
    from payments.config import load_settings
    from payments.ledger.migrate import engine_for

    return engine_for(load_settings().ledger_url)


def _list_page(visitor: Visitor, filters: Filters) -> str:
    from sqlalchemy.orm import Session

    from payments.ledger.holds import held_payments, hold_reasons, holds_total

    chosen = filters.chosen()
    with Session(_engine()) as session:
        lines = held_payments(session, chosen, limit=SHOWN)
        count, cents = holds_total(session, chosen)
        reasons = hold_reasons(session)
    rows = [
        (
            f'<a href="{visitor.base}/holds/{h.payment_id}">{esc(h.household_id)}</a>',
            esc(h.scheme_id),
            esc(h.fund_code),
            money(h.amount_cents),
            esc(h.rule_id),
            esc(h.reasons.replace(",", ", ")),
            esc(f"released by {h.released_by}") if h.released_by else "held",
        )
        for h in lines
    ]
    body = (
        _filter_form(visitor, filters, reasons)
        + f'<p class="big" id="selection">{count:,} holds selected, '
        f"{esc(euros(cents))}"
        + (f" (the first {SHOWN} shown)" if count > SHOWN else "")
        + "</p>"
        + table(
            "holds",
            ("Household", "Scheme", "Fund", "Amount", "Rule", "Reasons", "State"),
            rows,
            empty="no hold matches these filters",
        )
    )
    return page("Holds", body, base=visitor.base, roles=visitor.roles, here="holds")


def _filter_form(visitor: Visitor, filters: Filters, reasons: list[str]) -> str:
    def options(name: str, values: list[str], chosen: str, blank: str) -> str:
        items = [f'<option value="">{esc(blank)}</option>'] + [
            f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(v)}</option>'
            for v in values
        ]
        return f'<select name="{name}" id="filter-{name}">{"".join(items)}</select>'

    return (
        f'<form method="get" action="{visitor.base}/holds" id="filters">'
        f'Scheme <input name="scheme" size="12" value="{esc(filters.scheme)}"> '
        f'Fund <input name="fund" id="filter-fund" size="3" value="{esc(filters.fund)}"> '
        f"Reason {options('reason', reasons, filters.reason, 'any')} "
        f'Amount from <input name="min_euros" size="6" value="{esc(filters.min_euros)}"> '
        f'to <input name="max_euros" size="6" value="{esc(filters.max_euros)}"> € '
        f"{options('state', ['held', 'released'], filters.state, 'held or released')} "
        '<button type="submit">Filter</button></form>'
    )


def _facts_page(visitor: Visitor, payment_id: int, asked: bool = False) -> str:
    from payments.ledger.models import Hold, Payment, Run

    with _session() as session:
        found = session.get(Payment, payment_id)
        hold = session.query(Hold).filter(Hold.payment_id == payment_id).one_or_none()
        if found is None or hold is None:
            raise HTTPException(404, f"no held payment {payment_id}")
        run = session.get(Run, found.run_id)
        payment = {c: getattr(found, c) for c in ("scheme_id", "run_id", "fund_code")}
        payment |= {"household_id": found.household_id, "amount_cents": found.amount_cents}
        triggered_by = run.triggered_by if run else None
        release = (hold.released_by, hold.released_at, hold.release_note)
    review = _review(payment["run_id"])
    facts = _facts(review, payment)
    lines = [
        ("Scheme", esc(payment["scheme_id"])),
        ("Run", esc(payment["run_id"]) + f" (triggered by {esc(triggered_by or 'unknown')})"),
        ("Fund, household", f"{esc(payment['fund_code'])}, {esc(payment['household_id'])}"),
        ("Amount", money(payment["amount_cents"])),
        ("Held because", esc(hold.reasons.replace(",", ", "))),
        *((k, esc(v)) for k, v in facts),
    ]
    body = table("facts", ("", ""), lines)
    if review is not None and "shared_iban" in hold.reasons.split(","):
        body += _same_account(review, payment, visitor.base)
    if release[0]:
        body += (
            f'<p id="released">Released by {esc(release[0])} on {release[1]:%Y-%m-%d %H:%M} UTC: '
            f"{esc(release[2])}</p>"
        )
    elif asked:
        body += (
            '<p class="ok" id="asked">Release asked: the <code>solidarity_finance_action</code> '
            "DAG applies it in your name in a few seconds (reload this page).</p>"
        )
    elif visitor.roles & PERMISSIONS["release_hold"]:
        body += (
            f'<form method="post" action="{visitor.base}/holds/{payment_id}/release" '
            'id="release">Why the hold is lifted (kept in the ledger): '
            '<input name="note" id="note" size="50" required> '
            '<button type="submit">Release this hold</button></form>'
            '<p class="note">Four eyes: not the user who triggered the run. The payment is '
            "paid by the next run of its scheme that includes its fund.</p>"
        )
    back = f'<p><a href="{visitor.base}/holds?{urlencode({"fund": payment["fund_code"]})}">'
    body = back + "← holds of this fund</a></p>" + body
    return page(
        f"Hold on household {payment['household_id']}",
        body,
        base=visitor.base,
        roles=visitor.roles,
        here="holds",
    )


#: The most households on one account a hold's page lists (a shared IBAN may be a fraud's).
SAME_ACCOUNT_SHOWN = 50


def _review(run_id: str) -> Any:
    """The run's review list (``compute/review.parquet``, held households only), if archived."""
    import io

    import pyarrow.parquet as pq

    from payments.config import load_settings

    storage = load_settings().storage()
    key = f"runs/{run_id}/compute/review.parquet"
    return pq.read_table(io.BytesIO(storage.read_bytes(key))) if storage.exists(key) else None


def _household(review: Any, payment: dict[str, Any]) -> dict[str, Any] | None:
    """The payment's household's row of the review list."""
    import pyarrow.compute as pc

    rows = review.filter(
        pc.and_(
            pc.equal(review["fund_code"], payment["fund_code"]),
            pc.equal(review["household_id"], payment["household_id"]),
        )
    ).to_pylist()
    return dict(rows[0]) if rows else None


def _same_account(review: Any, payment: dict[str, Any], base: str) -> str:
    """The other households of the run held on the same account, in every fund: what finance
    must see to tell a family's joint account from one account collecting many aids."""
    import pyarrow.compute as pc

    from payments.ledger.models import Payment
    from payments.logs import mask

    mine = _household(review, payment)
    if mine is None:
        return ""
    iban = mine["iban"]
    others = [
        r
        for r in review.filter(pc.equal(review["iban"], iban)).to_pylist()
        if (r["fund_code"], r["household_id"]) != (payment["fund_code"], payment["household_id"])
    ]
    others.sort(key=lambda r: (r["fund_code"], r["household_id"]))
    shown = others[:SAME_ACCOUNT_SHOWN]
    with _session() as session:
        ids = {
            (str(f), str(h)): int(i)
            for i, f, h in session.query(Payment.id, Payment.fund_code, Payment.household_id)
            .filter(
                Payment.run_id == payment["run_id"],
                Payment.household_id.in_([str(r["household_id"]) for r in shown]),
            )
            .all()
        }
    rows = []
    for r in shown:
        pid = ids.get((str(r["fund_code"]), str(r["household_id"])))
        household = esc(r["household_id"])
        rows.append(
            (
                esc(r["fund_code"]),
                f'<a href="{base}/holds/{pid}">{household}</a>' if pid else household,
                esc(mask(str(r["account_holder"] or ""))),
                money(int(r["entitled_cents"] or 0)),
            )
        )
    more = (
        f'<p class="note">{len(others) - len(shown):,} more households on this account are '
        "not listed.</p>"
        if len(others) > len(shown)
        else ""
    )
    return (
        f"<h2>Other households held on this account ({len(others):,})</h2>"
        + table(
            "same-account",
            ("Fund", "Household", "Account holder", "Amount"),
            rows,
            empty="none in this run",
        )
        + more
    )


def _session() -> Any:
    from sqlalchemy.orm import Session

    return Session(_engine())


#: The facts of ``review.parquet`` shown, with their labels; the IBAN is masked.
FACTS = (
    ("rule_id", "Rule"),
    ("article", "Article"),
    ("months", "Months of entitlement"),
    ("claimant_age", "Claimant's age"),
    ("spouse_age", "Spouse's age"),
    ("children", "Children counted"),
    ("iban", "IBAN (masked)"),
    ("account_holder", "Account holder"),
    ("bank_details_changed_on", "Bank details changed on"),
)


def _facts(review: Any, payment: dict[str, Any]) -> list[tuple[str, str]]:
    """What the rule and the hold checks read, from the run's review list (when archived)."""
    from payments.logs import mask

    if review is None:
        return [("Facts", "not found: the run's review list is not in the storage root")]
    facts = _household(review, payment)
    if facts is None:
        return [("Facts", "this household is not in the run's review list")]
    shown = [
        (label, mask("" if facts[k] is None else str(facts[k]))) for k, label in FACTS if k in facts
    ]
    benefits = [
        k.removesuffix("_cents")
        for k, v in facts.items()
        if k.endswith("_cents") and k != "entitled_cents" and v
    ]
    return [*shown, ("Benefits received", ", ".join(sorted(benefits)) or "none")]


def _release(visitor: Visitor, payment_id: int, note: str) -> str:
    """Ask for the release: checked here for a clear answer, applied by a run of the finance
    action DAG in the visitor's name (which checks four eyes again); its Airflow run id."""
    from payments.four_eyes import user_id
    from payments.ledger.models import Hold, Payment, Run

    if not note.strip():
        raise HTTPException(400, "say why the hold is lifted: the note is kept in the ledger")
    with _session() as session:
        hold = session.query(Hold).filter(Hold.payment_id == payment_id).one_or_none()
        if hold is None:
            raise HTTPException(404, f"no held payment {payment_id}")
        if hold.released_at is not None:
            raise HTTPException(409, f"the hold on payment {payment_id} is already released")
        payment = session.get(Payment, payment_id)
        run = session.get(Run, payment.run_id) if payment else None
    if run and run.triggered_by and user_id(run.triggered_by) == user_id(visitor.name):
        raise HTTPException(403, "the user who triggered the run cannot release its holds")
    from payments.orchestration.finance_actions import subject

    conf = {"action": "release_hold", "payment_id": payment_id, "note": note.strip()}
    return trigger(
        FINANCE_ACTION_DAG,
        visitor,
        conf,
        action="release_hold",
        vouched=subject("release_hold", conf),
    )
