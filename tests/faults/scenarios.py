"""Kill the sender at every step, carry on, count what reached the bank: ``make faults``.

Each scenario starts from the same approved run (two funds, several files
each, a SQLite ledger), sends it in a child process that SIGKILLs itself at
one step (:data:`payments.faults.SEND_POINTS`) of its second file, then
carries on the way the deployment does:

- *task retry*: the same DAG task's next try (the same lease owner), at once;
- *operator*: ``payments send`` (which must stand down while the dead
  sender's lease holds, exit 1), then ``payments send --retry``.

Each runs twice: with a bank that leaves files where they were put, and with
one that collects every file the moment it appears (moved away, so a second
upload of the same file would show as a second copy). Two concurrent senders
on one ledger make the last scenarios. A payment file reaching the bank twice
is *paid twice*; a file never reaching it, or a payment not ``sent`` at the
end, is *lost*. Both must be 0.

Then the insider scenarios (:mod:`tests.faults.insiders`): the second
review's attacks by an operator, or by one finance user alone, each counted as
approved without finance and paid without being shown; both must be 0.

Run: ``python -m tests.faults.scenarios`` (prints two tables and JSON lines).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from payments.faults import ENV as FAULT_ENV
from payments.faults import SEND_POINTS
from tests.vouchers import voucher_file

APPROVER, OPERATOR = "finance", "operator"
#: The file, in msg id order, whose upload is killed (the first goes through).
NTH_FILE = 2
TASK_OWNER = "airflow:solidarity_payment_batch:manual:deliver:-1"
SEND_AS_TASK = (
    "import sys; from datetime import datetime; from pathlib import Path; "
    "from payments.config import load_settings; from payments.ledger.migrate import engine_for; "
    "from payments.send import send; from payments.sepa.signing import load_certificate, "
    "signer_paths; from payments.transport.local import LocalTransport; "
    "s = load_settings(); run_id = sys.argv[1]; "
    "r = send(engine_for(s.ledger_url), s.data_dir / 'runs' / run_id, run_id, "
    "LocalTransport(s.data_dir), trusted=load_certificate(signer_paths(s.data_dir)[1]), "
    "at=datetime.now(), owner=sys.argv[2]); sys.exit(0 if r.all_at_the_bank else 1)"
)


@dataclass
class Outcome:
    scenario: str
    killed: bool
    files: int
    lost: int
    paid_twice: int
    unsent_payments: int

    @property
    def survived(self) -> bool:
        return self.killed and not (self.lost or self.paid_twice or self.unsent_payments)


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env.update(
        PAYMENTS_DATA_DIR=str(data),
        PAYMENTS_DEMO="1",
        PAYMENTS_FINANCE_APPROVERS=APPROVER,
        PAYMENTS_LOG_LEVEL="WARNING",
        **extra,
    )
    env.pop("PAYMENTS_LEDGER_URL", None)
    env.pop("PAYMENTS_STORAGE_ROOT", None)
    return env


def _payments(data: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payments", *args],
        env=_env(data, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def prepare(base: Path, *, households: int = 900) -> str:
    """An approved, unsent run of funds 13 and 75 under ``base``; returns its id."""
    for args in (
        ("sample", "--households", str(households), "--funds", "13,75", "--seed", "5"),
        ("ledger", "upgrade"),
    ):
        done = _payments(base, *args)
        assert done.returncode == 0, done.stderr[-2000:]
    ran = _payments(
        base,
        "run",
        "--funds",
        "13,75",
        "--voucher",
        str(voucher_file(base, OPERATOR)),
        "--max-transactions",
        "120",
        "--workers",
        "1",
        "--json",
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    run_id = str(json.loads(ran.stdout)["run_id"])
    approved = _payments(base, "approve", run_id, "--voucher", str(voucher_file(base, APPROVER)))
    assert approved.returncode == 0, approved.stdout + approved.stderr
    return run_id


class Collector:
    """A bank that takes every payment file the moment it is complete (renamed into place)."""

    def __init__(self, data: Path, every: float = 0.002) -> None:
        self.bank = data / "bank"
        self.taken = data / "bank-collected"
        self.every = every
        self.taken.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            time.sleep(self.every)

    def sweep(self) -> None:
        for path in sorted(self.bank.rglob("*.xml")) if self.bank.exists() else []:
            copy = 0
            while (target := self.taken / f"{path.name}.{copy}").exists():
                copy += 1
            with suppress(FileNotFoundError):  # the sender may be looking at it
                path.rename(target)

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sweep()

    def copies(self) -> Counter[str]:
        """How many times each file name was taken."""
        return Counter(path.name.rsplit(".", 1)[0] for path in self.taken.glob("*.xml.*"))


def count(data: Path, run_id: str) -> tuple[int, int, int, int]:
    """(files, lost, paid twice, payments not sent) for the run, as the bank and ledger have it."""
    db = sqlite3.connect(data / "ledger.sqlite")
    try:
        names = [
            Path(p).name
            for (p,) in db.execute("SELECT path FROM payment_files WHERE run_id = ?", (run_id,))
        ]
        unsent = db.execute(
            "SELECT COUNT(*) FROM payments WHERE run_id = ? AND state = 'in_file'", (run_id,)
        ).fetchone()[0]
    finally:
        db.close()
    copies: Counter[str] = Counter()
    for path in (data / "bank").rglob("*.xml"):
        copies[path.name] += 1
    for path in (data / "bank-collected").glob("*.xml.*"):
        copies[path.name.rsplit(".", 1)[0]] += 1
    lost = sum(1 for n in names if copies[n] == 0)
    twice = sum(copies[n] - 1 for n in names if copies[n] > 1)
    return len(names), lost, twice, int(unsent)


@contextmanager
def _bank(data: Path, collects: bool) -> Iterator[None]:
    if collects:
        with Collector(data):
            yield
    else:
        (data / "bank-collected").mkdir(exist_ok=True)
        yield


def crash(base: Path, run_id: str, work: Path, point: str, how: str, collects: bool) -> Outcome:
    """Kill the send at ``point``, carry on as ``how`` says, count."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    fault = {FAULT_ENV: f"{point}@{NTH_FILE}"}
    with _bank(work, collects):
        if how == "task retry":
            first = _python(work, SEND_AS_TASK, run_id, TASK_OWNER, **fault)
            retried = _python(work, SEND_AS_TASK, run_id, TASK_OWNER)
            finished = retried.returncode == 0
        else:
            first = _payments(work, "send", run_id, **fault)
            stood_down = _payments(work, "send", run_id)
            retried = _payments(work, "send", run_id, "--retry")
            # the plain rerun must not claim success while the dead sender's lease holds
            finished = retried.returncode == 0 and (
                stood_down.returncode == 1 or point == "send.recorded"
            )
    files, lost, twice, unsent = count(work, run_id)
    bank = "collecting bank" if collects else "bank"
    return Outcome(
        f"{point} · {how} · {bank}",
        first.returncode == -signal.SIGKILL and finished,
        files,
        lost,
        twice,
        unsent,
    )


def _python(data: Path, code: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(data, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def concurrent(base: Path, run_id: str, work: Path, trial: int) -> Outcome:
    """Two senders at once on one SQLite ledger, the bank collecting; then one carries on.

    Each may stand down on files the other holds (exit 1, "not at the bank
    yet"); neither may fail otherwise, and the rerun finds everything sent.
    """
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    with Collector(work):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "payments", "send", run_id],
                env=_env(work),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        codes = [p.wait(timeout=600) for p in procs]
        after = _payments(work, "send", run_id)  # whatever one left in progress: none
    files, lost, twice, unsent = count(work, run_id)
    return Outcome(
        f"two concurrent senders · trial {trial}",
        set(codes) <= {0, 1} and after.returncode == 0,
        files,
        lost,
        twice,
        unsent,
    )


def scenarios(
    root: Path, *, points: tuple[str, ...] = SEND_POINTS, trials: int = 3
) -> list[Outcome]:
    base = root / "approved"
    run_id = prepare(base)
    out = [
        crash(base, run_id, root / "work", point, how, collects)
        for point in points
        for how in ("task retry", "operator")
        for collects in (False, True)
    ]
    out += [concurrent(base, run_id, root / "work", t) for t in range(1, trials + 1)]
    return out


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    return {
        "scenarios": len(outcomes),
        "survived": sum(o.survived for o in outcomes),
        "files_lost": sum(o.lost for o in outcomes),
        "files_paid_twice": sum(o.paid_twice for o in outcomes),
        "payments_unsent": sum(o.unsent_payments for o in outcomes),
    }


def main() -> int:
    from tests.faults.insiders import insiders
    from tests.faults.insiders import table as insider_table
    from tests.faults.insiders import totals as insider_totals

    with tempfile.TemporaryDirectory(prefix="payments-faults-") as tmp:
        outcomes = scenarios(Path(tmp))
        attacks = insiders(Path(tmp) / "insiders")
    width = max(len(o.scenario) for o in outcomes)
    print(f"{'scenario':{width}}  survived  files  lost  twice  unsent")
    for o in outcomes:
        print(
            f"{o.scenario:{width}}  {'yes' if o.survived else 'NO':8}  {o.files:5}  "
            f"{o.lost:4}  {o.paid_twice:5}  {o.unsent_payments:6}"
        )
    totals = summary(outcomes)
    print(json.dumps({"faults": totals, "outcomes": [asdict(o) for o in outcomes]}))
    print(
        f"{totals['scenarios']} scenarios, {totals['survived']} survived; "
        f"files lost: {totals['files_lost']}, paid twice: {totals['files_paid_twice']}, "
        f"payments left unsent: {totals['payments_unsent']}"
    )
    print()
    print(insider_table(attacks))
    counted = insider_totals(attacks)
    print(json.dumps({"insiders": counted, "outcomes": [asdict(a) for a in attacks]}))
    print(
        f"{counted['scenarios']} insider scenarios, {counted['refused']} refused; "
        f"approved without finance: {counted['approved_without_finance']}, "
        f"paid without being shown: {counted['paid_without_being_shown']}"
    )
    ok = totals["survived"] == totals["scenarios"] and counted["refused"] == counted["scenarios"]
    lost = totals["files_lost"] or totals["files_paid_twice"]
    insider = counted["approved_without_finance"] or counted["paid_without_being_shown"]
    return 0 if ok and not lost and not insider else 1


if __name__ == "__main__":
    sys.exit(main())
