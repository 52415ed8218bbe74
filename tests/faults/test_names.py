"""A name the bank cannot take is held with its own reason, never silently left out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from payments.ledger.holds import release_hold
from payments.release import approve
from payments.sepa.signing import Signer
from tests.faults.runs import AT, edit_fund_file, run, sample
from tests.households import APPROVERS

NAMES = ["محمد علي", "王小明", '<b>O\'Brien & "Sons"</b>', "=HYPERLINK(1)"]


def test_an_unwritable_name_is_held_then_paid_once_the_fund_corrects_it(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """M7: such payments stayed `computed` in no file, kept their claims, and after the fund
    corrected the name the household was "already_paid": never paid, never re-issued."""
    sample(tmp_path, ("13",), households=600)
    households: list[str] = []

    def rename(rows: list[list[str]], col: dict[str, int]) -> None:
        eligible = [r for r in rows if int(r[col["rsa_cents"]] or 0) > 0][: len(NAMES)]
        for row, name in zip(eligible, NAMES, strict=True):
            row[col["account_holder"]] = name
            row[col["claimant_last_name"]] = name
            row[col["claimant_first_name"]] = name
            households.append(row[col["household_id"]])

    edit_fund_file(tmp_path, "13", rename)
    first = run(ledger, tmp_path, signer, ("13",))
    assert first.payments is not None and first.payments.excluded == []
    with ledger.connect() as c:
        found = c.execute(
            text(
                "SELECT p.household_id, p.state, h.reasons FROM payments p "
                "JOIN holds h ON h.payment_id = p.id WHERE h.reasons LIKE '%name_unwritable%'"
            )
        ).all()
        stranded = c.execute(
            text(
                "SELECT COUNT(*) FROM payments WHERE state = 'computed' AND payment_file_id IS NULL"
            )
        ).scalar_one()
    assert sorted(h for h, _, _ in found) == sorted(households)
    assert {s for _, s, _ in found} == {"held"}
    assert stranded == 0, "nothing payable is left out of the files"
    approve(ledger, first.out_dir, first.run_id, by="finance", at=AT, approvers=APPROVERS)

    # The fund corrects the names; finance, having checked, releases the holds.
    def correct(rows: list[list[str]], col: dict[str, int]) -> None:
        for row in rows:
            if row[col["household_id"]] in households:
                row[col["account_holder"]] = "Mohamed Ali"
                row[col["claimant_last_name"]] = "Ali"
                row[col["claimant_first_name"]] = "Mohamed"

    edit_fund_file(tmp_path, "13", correct)
    with Session(ledger) as session, session.begin():
        ids = session.execute(
            text("SELECT payment_id FROM holds WHERE reasons LIKE '%name_unwritable%'")
        ).scalars()
        for payment_id in list(ids):
            release_hold(
                session, payment_id, by="finance", note="name corrected", at=AT, approvers=APPROVERS
            )
    second = run(ledger, tmp_path, signer, ("13",))
    # finance released the holds: another finance user approves the run that pays them
    approve(ledger, second.out_dir, second.run_id, by="bob", at=AT, approvers=APPROVERS)
    with ledger.connect() as c:
        paid = (
            c.execute(
                text(
                    "SELECT household_id FROM payments WHERE state = 'in_file' AND run_id = :r "
                    "AND household_id IN (" + ",".join(f"'{h}'" for h in households) + ")"
                ),
                {"r": second.run_id},
            )
            .scalars()
            .all()
        )
    assert sorted(paid) == sorted(households)
