"""Finance's figures read from the ledger: where every euro is, and whether it ties out.

One place for the queries the CLI (``payments reconciliation``), the
reconciliation DAG and the Reconciliation page all show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from payments.ledger import states
from payments.ledger.models import BeneficiaryClaim, Payment, PaymentFileRow, Run
from payments.statuses import Upload

#: The states finance follows, in the order they are shown.
STATES = ("held", "sent", "accepted", "rejected", "returned", "cancelled")
#: States of a payment whose file reached the bank.
AT_BANK = ("sent", "accepted", "rejected", "returned")


def finance_by_fund(engine: Engine) -> list[dict[str, Any]]:
    """The ``finance_by_fund`` view: per scheme and fund, counts and cents by state."""
    with engine.connect() as c:
        return [
            dict(r)
            for r in c.execute(
                text("SELECT * FROM finance_by_fund ORDER BY scheme_id, fund_code")
            ).mappings()
        ]


def tie_out(engine: Engine) -> list[dict[str, Any]]:
    """Per run and fund: the ledger's payments by state against the files uploaded.

    A line ties out when the payments the ledger has at the bank (sent,
    accepted, rejected, returned) are exactly, in number and cents, the
    transactions of the files uploaded for that run and fund, and no approved
    payment waits in a file that has not reached the bank (``in_file``).
    """
    with engine.connect() as c:
        payments = c.execute(
            text(
                "SELECT run_id, fund_code, state, COUNT(*) AS n, SUM(amount_cents) AS cents "
                "FROM payments GROUP BY run_id, fund_code, state"
            )
        ).all()
        files = c.execute(
            text(
                "SELECT run_id, fund_code, SUM(nb_of_txs) AS n, SUM(ctrl_sum_cents) AS cents "
                "FROM payment_files WHERE upload_state = 'uploaded' GROUP BY run_id, fund_code"
            )
        ).all()
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for run_id, fund, state, n, cents in payments:
        line = lines.setdefault(
            (run_id, fund),
            {
                "run_id": run_id,
                "fund_code": fund,
                "households": 0,
                "files_count": 0,
                "files_cents": 0,
                **{f"{s}_cents": 0 for s in STATES},
            },
        )
        line["households"] += int(n)
        if state in STATES:
            line[f"{state}_cents"] += int(cents)
        if state in AT_BANK:
            line["at_bank_count"] = line.get("at_bank_count", 0) + int(n)
        if state == states.IN_FILE:
            line["in_file_count"] = int(n)
    for run_id, fund, n, cents in files:
        found = lines.get((run_id, fund))
        if found is not None:
            found["files_count"], found["files_cents"] = int(n), int(cents)
    out = []
    for _, line in sorted(lines.items()):
        at_bank = sum(line[f"{s}_cents"] for s in AT_BANK)
        line["ties_out"] = (line.pop("at_bank_count", 0), at_bank) == (
            line["files_count"],
            line["files_cents"],
        ) and not line.pop("in_file_count", 0)
        out.append(line)
    return out


def reissue_list(session: Session, scheme_id: str | None = None) -> list[dict[str, Any]]:
    """Rejected and returned payments not re-issued yet (their claim still points to them)."""
    query = (
        select(
            Payment.scheme_id,
            Payment.fund_code,
            Payment.household_id,
            Payment.end_to_end_id,
            Payment.state,
            Payment.amount_cents,
            Payment.attempt,
        )
        .join(
            BeneficiaryClaim,
            (BeneficiaryClaim.payment_id == Payment.id)
            & (BeneficiaryClaim.beneficiary_key == Payment.beneficiary_key),
        )
        .where(Payment.state.in_([states.REJECTED, states.RETURNED]))
        .order_by(Payment.scheme_id, Payment.fund_code, Payment.household_id)
    )
    if scheme_id:
        query = query.where(Payment.scheme_id == scheme_id)
    return [dict(r._mapping) for r in session.execute(query)]


@dataclass(frozen=True)
class RunAtBank:
    """A run as the ledger has it after delivery: finance's decision, its files not
    uploaded yet, and its payments and cents by state."""

    decision: str | None
    not_uploaded: list[str]
    states: dict[str, dict[str, int]]

    def sent(self) -> dict[str, int]:
        """Payments and cents sent, or since answered by the bank."""
        at_bank = [self.states.get(s, {"payments": 0, "cents": 0}) for s in AT_BANK]
        return {
            "payments": sum(t["payments"] for t in at_bank),
            "cents": sum(t["cents"] for t in at_bank),
        }


def run_at_bank(session: Session, run_id: str) -> RunAtBank:
    """What the DAG's ``report`` task ties to the payment files."""
    decision = session.execute(
        select(Run.decision).where(Run.run_id == run_id)
    ).scalar_one_or_none()
    missing = (
        session.execute(
            select(PaymentFileRow.msg_id)
            .where(PaymentFileRow.run_id == run_id, PaymentFileRow.upload_state != Upload.UPLOADED)
            .order_by(PaymentFileRow.msg_id)
        )
        .scalars()
        .all()
    )
    rows = session.execute(
        select(Payment.state, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .where(Payment.run_id == run_id)
        .group_by(Payment.state)
        .order_by(Payment.state)
    ).all()
    by_state = {str(s): {"payments": int(n), "cents": int(c)} for s, n, c in rows}
    return RunAtBank(decision, list(missing), by_state)
