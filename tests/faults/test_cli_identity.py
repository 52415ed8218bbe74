"""The ``payments`` command acts as the user a voucher from the pages names, never a typed one.

M2 of the second review: ``payments approve <run> --by finance`` typed by the
operator was accepted ("approved by finance"), and ``--triggered-by`` was free
text; ``$LOGNAME`` is anyone's to set. Each command is run as a process, as
an insider at a shell would.
"""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.faults.runs import payments_cli
from tests.vouchers import voucher_file


def _payments(data: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return payments_cli(data, *args, approvers="finance,bob", **extra)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cli-identity") / "data"
    done = _payments(data, "sample", "--households", "300", "--funds", "13")
    assert done.returncode == 0, done.stderr[-2000:]
    return data


def _triggered_by(data: Path, run_id: str) -> str:
    with sqlite3.connect(data / "ledger.sqlite") as db:
        row = db.execute("SELECT triggered_by FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return str(row[0])


def _decision(data: Path, run_id: str) -> tuple[str | None, str | None]:
    with sqlite3.connect(data / "ledger.sqlite") as db:
        row = db.execute(
            "SELECT decision, approved_by FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
    return row[0], row[1]


def test_a_typed_name_approves_nothing(data: Path) -> None:
    """M2: the operator typing ``--by finance`` got "approved by finance"."""
    # $LOGNAME names finance: the run records the OS account behind the process instead
    ran = _payments(data, "run", "--funds", "13", "--json", LOGNAME="finance", USER="finance")
    assert ran.returncode == 0, ran.stderr[-2000:]
    run_id = json.loads(ran.stdout)["run_id"]
    assert _triggered_by(data, run_id) == "os:" + pwd.getpwuid(os.getuid()).pw_name

    typed = _payments(data, "approve", run_id, "--by", "finance")
    assert typed.returncode == 2 and "--by" in typed.stderr  # there is no such option
    bare = _payments(data, "approve", run_id, LOGNAME="finance")
    assert bare.returncode == 1 and "pass --voucher" in bare.stdout
    operator = _payments(data, "approve", run_id, "--voucher", str(voucher_file(data, "operator")))
    assert operator.returncode == 1 and "not a finance approver" in operator.stdout
    # A run no user the auth manager knows triggered cannot be approved at all: who
    # triggered it could be the approver, and four eyes could not tell.
    finance = _payments(data, "approve", run_id, "--voucher", str(voucher_file(data, "finance")))
    assert finance.returncode == 1 and "recorded from a shell" in finance.stdout
    assert _decision(data, run_id) == (None, None)


def test_a_forged_or_spent_voucher_is_refused(data: Path, tmp_path: Path) -> None:
    from payments.identity import generate_pair

    rogue = tmp_path / "rogue"
    generate_pair(
        rogue / "secrets" / "identity-key.pem", rogue / "secrets" / "identity-key.pub.pem"
    )
    forged = _payments(data, "holds", "list", "--voucher", str(voucher_file(rogue, "finance")))
    assert forged.returncode == 2  # listing moves nothing: it takes no voucher
    ran = _payments(
        data, "run", "--funds", "13", "--json", "--voucher", str(voucher_file(rogue, "operator"))
    )
    assert ran.returncode == 1 and "not one the payments pages signed" in ran.stdout


def test_vouchers_name_who_triggers_and_who_approves(data: Path) -> None:
    # the fund's next file (new inputs: a new run)
    resent = _payments(data, "sample", "--households", "320", "--funds", "13", "--seed", "9")
    assert resent.returncode == 0, resent.stderr[-2000:]
    ran = _payments(
        data, "run", "--funds", "13", "--json", "--voucher", str(voucher_file(data, "operator"))
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr[-2000:]
    run_id = json.loads(ran.stdout)["run_id"]
    assert _triggered_by(data, run_id) == "operator"
    bobs = voucher_file(data, "bob")
    approved = _payments(data, "approve", run_id, "--voucher", str(bobs))
    assert approved.returncode == 0, approved.stdout
    assert "approved by bob" in approved.stdout
    assert _decision(data, run_id) == ("approved", "bob")
    again = _payments(data, "approve", run_id, "--reject", "--voucher", str(bobs))
    assert again.returncode == 1 and "used already" in again.stdout
