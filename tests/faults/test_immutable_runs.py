"""A concluded run never changes: a hold released after it is paid by a new run.

Issue 37's walkthrough: finance releases a hold, the operator runs the same
funds again, and the run (same inputs, same id) adopted the released payment
into the *approved* run and rewrote its signed file, summary and run record in
place; the delivery then failed, ``audit verify`` said "file altered" and the
household, counted "already paid", was never paid. Each command runs as a
process, as at a shell.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from tests.faults.runs import payments_cli
from tests.vouchers import voucher_file

APPROVERS = "finance,bob"


def _cli(data: Path, *args: str) -> dict[str, object] | str:
    done = payments_cli(data, *args, approvers=APPROVERS)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return json.loads(done.stdout) if "--json" in args else done.stdout


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one(data: Path, query: str, *args: object) -> tuple[object, ...]:
    with sqlite3.connect(data / "ledger.sqlite") as db:
        row = db.execute(query, args).fetchone()
    assert row is not None, query
    return tuple(row)


def test_a_release_is_paid_by_a_new_run_and_the_approved_run_never_changes(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    _cli(data, "sample", "--households", "600", "--funds", "13", "--seed", "4")
    operator = voucher_file(data, "operator")
    first = _cli(data, "run", "--funds", "13", "--json", "--voucher", str(operator))
    assert isinstance(first, dict)
    r1 = str(first["run_id"])
    _cli(data, "approve", r1, "--voucher", str(voucher_file(data, "bob")))
    _cli(data, "send", r1)
    before = _digests(data / "runs" / r1)
    fund, household = _one(
        data,
        "SELECT p.fund_code, p.household_id FROM payments p JOIN holds h ON h.payment_id = p.id "
        "WHERE p.run_id = ? AND p.state = 'held' ORDER BY p.household_id",
        r1,
    )
    _cli(
        data,
        "holds",
        "release",
        "--fund",
        str(fund),
        "--household",
        str(household),
        "--note",
        "checked with the fund",
        "--voucher",
        str(voucher_file(data, "finance")),
    )

    # The same funds' files again: the released hold makes it another run.
    operator = voucher_file(data, "operator")
    second = _cli(data, "run", "--funds", "13", "--json", "--voucher", str(operator))
    assert isinstance(second, dict)
    r2 = str(second["run_id"])
    assert r2 != r1
    assert _digests(data / "runs" / r1) == before  # the approved run, byte for byte
    assert "intact" in str(_cli(data, "audit", "verify"))
    assert _one(data, "SELECT run_id, state FROM payments WHERE household_id = ?", household) == (
        r2,
        "computed",
    )
    amount = _one(data, "SELECT amount_cents FROM payments WHERE household_id = ?", household)
    paid = second["payments"]
    assert isinstance(paid, dict)
    assert (paid["files"], paid["nb_of_txs"], paid["ctrl_sum_cents"]) == (1, 1, amount[0])

    # Finance approves the new run (not the user who released the hold), and it is paid.
    refused = payments_cli(
        data, "approve", r2, "--voucher", str(voucher_file(data, "finance")), approvers=APPROVERS
    )
    assert refused.returncode == 1 and "released a hold" in refused.stdout
    _cli(data, "approve", r2, "--voucher", str(voucher_file(data, "bob")))
    _cli(data, "send", r2)
    assert _one(data, "SELECT run_id, state FROM payments WHERE household_id = ?", household) == (
        r2,
        "sent",
    )
    assert _digests(data / "runs" / r1) == before
    assert "intact" in str(_cli(data, "audit", "verify"))


def test_another_bank_profile_is_another_run(tmp_path: Path) -> None:
    """The run id ignored --bank-profile: a second profile's files overwrote the first's."""
    data = tmp_path / "data"
    _cli(data, "sample", "--households", "200", "--funds", "13", "--seed", "4")
    runs = {
        profile: _cli(
            data, "run", "--funds", "13", "--no-ledger", "--json", "--bank-profile", profile
        )
        for profile in ("epc-2019", "sepa-2009")
    }
    ids = {str(r["run_id"]) for r in runs.values() if isinstance(r, dict)}
    assert len(ids) == 2
