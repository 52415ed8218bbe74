"""``make demo``: run the payment batch DAG end to end on this machine and print where things are.

Airflow's ``dag.test()`` runs every task in this process on the embedded
defaults (SQLite metadata and ledger, local folders for the funds' drop zone
and the bank). Finance's approval is given by the demo setting: the demo
approver answers through Airflow's HITL endpoint, and the ledger records the
approval as "finance-demo". Airflow's own log goes to a file;
the summary goes to the terminal.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from payments.config import DEMO_APPROVER, load_settings
from payments.money import euros
from payments.orchestration.local_run import answer_as, run_dag

DAGS = Path(__file__).resolve().parents[2] / "dags"
#: Run after the batch, as the scheduler would when the files reach the bank.
RECONCILIATION_DAG = "solidarity_reconciliation"


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors: Airflow's too) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main(dags_folder: Path = DAGS) -> int:
    settings = load_settings()
    if not settings.demo or DEMO_APPROVER not in settings.finance_approvers:
        print("make demo sets PAYMENTS_DEMO=1 and PAYMENTS_FINANCE_APPROVERS=…,finance-demo")
        return 2
    log_file = settings.data_dir / "demo-airflow.log"
    print(f"Running the DAG solidarity_payment_batch with dag.test() (Airflow log: {log_file})")
    started = time.perf_counter()
    with _output_to(log_file):
        run = run_dag(dags_folder, {}, answer_as(DEMO_APPROVER, "Approve"))
    elapsed = time.perf_counter() - started
    print(f"DAG run {run.run_id}: {run.state} in {elapsed:.1f} s")
    run_id = (settings.data_dir / "runs" / "LATEST").read_text().strip()
    run_dir = settings.data_dir / "runs" / run_id
    summary = json.loads((run_dir / "summary.json").read_text())
    v = summary["validation"]
    files = summary["payment_files"] or {"files": 0, "payments": 0, "cents": 0}
    print(f"Run {run_id} (scheme {summary['scheme_id']})")
    print(
        f"  rows read {v['rows_read']:,} = accepted {v['accepted']:,} + quarantined "
        f"{v['quarantined']:,}; funds {v['funds']}"
    )
    for reason, h in summary["by_hold_reason"].items():
        print(f"  held ({reason}): {h['households']:,} households, {euros(h['cents'])}")
    print(
        f"  approved by {DEMO_APPROVER} (demo setting); sent: {files['payments']:,} payments, "
        f"{euros(files['cents'])} in {files['files']} signed files"
    )
    with _output_to(log_file):
        reconciled = run_dag(dags_folder, {}, None, dag_id=RECONCILIATION_DAG)
    print(
        f"Files at the bank: DAG {RECONCILIATION_DAG} {reconciled.state} "
        f"({settings.data_dir / 'reconciliation'}/by_fund.csv)"
    )
    print(f"Fund files:    {settings.data_dir / 'funds'}/<fund>/")
    print(f"Run outputs:   {run_dir}/ (summary.json, approval.md, validation/, payments/)")
    print(f"At the bank:   {settings.data_dir / 'bank'}/<fund>/")
    print(f"Ledger:        {settings.ledger_url} (payments audit verify)")
    ok = ("success", "DagRunState.SUCCESS")
    return 0 if str(run.state) in ok and str(reconciled.state) in ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
