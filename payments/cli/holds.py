"""``payments holds``: the review list of held payments, and releases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from payments.cli.identity import VoucherFile, vouched
from payments.cli.options import (
    DataDir,
    Scheme,
    refusals,
)
from payments.clock import utc_now
from payments.config import load_settings
from payments.console import stdout
from payments.money import euros
from payments.schemes import load_scheme


def holds_list(scheme: Scheme = "aes-2020-05", data_dir: DataDir = None) -> None:
    """Payments held for review (fraud/risk reasons), with their amounts."""
    from sqlalchemy.orm import Session

    from payments.ledger.holds import HoldFilter, held_payments
    from payments.ledger.migrate import engine_for

    settings = load_settings(data_dir)
    with Session(engine_for(settings.ledger_url)) as session:
        rows = held_payments(session, HoldFilter(scheme_id=scheme))
    articles = load_scheme(scheme).articles()
    table = Table(title=f"Held payments, {scheme}")
    for heading in ("fund", "household", "amount", "rule (article)", "reasons", "released by"):
        table.add_column(heading)
    for row in rows:
        why = f"{row.rule_id} ({articles.get(row.rule_id or '', '?')})"
        table.add_row(
            row.fund_code,
            row.household_id,
            euros(row.amount_cents),
            why,
            row.reasons,
            row.released_by or "",
        )
    stdout.print(table)


def holds_release(
    fund: Annotated[str, typer.Option(help="Fund code.")],
    household: Annotated[str, typer.Option(help="Fund-local household number.")],
    note: Annotated[str, typer.Option(help="Why the hold is lifted (kept in the ledger).")],
    voucher: VoucherFile = None,
    scheme: Scheme = "aes-2020-05",
    data_dir: DataDir = None,
) -> None:
    """Release a held payment after review: it is paid by the next (complementary) run."""
    from sqlalchemy.orm import Session

    from payments.ledger.holds import release_household
    from payments.ledger.migrate import engine_for

    settings = load_settings(data_dir)
    with refusals():
        by = vouched(voucher, settings, finance=True)
    with refusals(), Session(engine_for(settings.ledger_url)) as session, session.begin():
        release_household(
            session,
            scheme,
            fund,
            household,
            by=by,
            note=note,
            at=utc_now(),
            approvers=settings.finance_approvers,
        )
    stdout.print(f"Hold released on fund {fund} household {household} by {by.name}.")
