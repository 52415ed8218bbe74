"""The second review's insider attacks, each run from a clean folder and counted: ``make faults``.

Each scenario plays what an operator (or one finance user alone) could do with
the rights the deployment gives them, then counts two things that must be 0:

- **approved without finance**: a run approved, a hold released or a report
  applied that no finance user decided on (or that four eyes forbade);
- **paid without being shown**: payments that reached a file finance approved
  without finance's approval text counting them.

The Airflow ones run the DAG with ``dag.test()`` in a process of their own (an
Airflow metadata database per scenario); the others call what the DAG tasks
and the ``payments`` command call. ``python -m tests.faults.insiders`` prints
the table; ``tests/faults/scenarios.py`` prints it after the crash scenarios.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2020, 5, 14, 9)
FORGED_TEXT = "## To be paid: 12 payments, 1 800.00 €\n\n[Details](http://evil.example/login)"


@dataclass
class Insider:
    scenario: str
    #: The attack did not get what it was after (the run, the hold, the report, the folder).
    refused: bool
    approved_without_finance: int
    paid_without_being_shown: int
    note: str = ""


def _environment(work: Path) -> dict[str, str]:
    return {
        "PAYMENTS_DATA_DIR": str(work / "data"),
        "PAYMENTS_LEDGER_URL": f"sqlite:///{work / 'ledger.sqlite'}",
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_FINANCE_APPROVERS": "finance,bob",
        "PAYMENTS_AUDITORS": "auditor",
        "PAYMENTS_LOG_LEVEL": "WARNING",
    }


def _set_environment(work: Path) -> None:
    os.environ.update(_environment(work))
    os.environ.pop("PAYMENTS_STORAGE_ROOT", None)


def _sql(work: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(work / "ledger.sqlite") as db:
        return list(db.execute(query, args).fetchall())


def _shown_payments(body: str) -> int:
    found = re.search(r"## To be paid: ([\d,]+) payments", body)
    return int(found.group(1).replace(",", "")) if found else 0


# --- in an Airflow process of its own ---------------------------------------------------


def _airflow_home(work: Path) -> None:
    """This process's Airflow: a metadata database under ``work``, this checkout's DAGs."""
    home = work / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__API_AUTH__JWT_SECRET="jwt-secret-for-the-insider-scenarios-0123456789",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="operator:op,finance:user,bob:user",
    )
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _operator_rest() -> Any:
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app())
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="operator", role="op"))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _xcom(airflow_run_id: str) -> str:
    return (
        f"/api/v2/dags/solidarity_payment_batch/dagRuns/{airflow_run_id}"
        "/taskInstances/conclude/xcomEntries/return_value"
    )


def _hitl_body(airflow_run_id: str) -> str:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return str(
            session.execute(
                select(HITLDetail.body)
                .join(TaskInstance, HITLDetail.ti_id == TaskInstance.id)
                .where(TaskInstance.run_id == airflow_run_id)
            ).scalar_one()
        )


def _sample(work: Path, funds: tuple[str, ...], seed: int = 21) -> None:
    """Fund files for May 2020 (not through tests.conftest, which sets its own Airflow home)."""
    from datetime import date

    from payments.sample.households import Window
    from payments.sample.writer import SampleSpec, write_sample

    may = Window("aes-2020-05", ("2020-04", "2020-05"), date(2020, 5, 10))
    write_sample(SampleSpec(households=500, seed=seed, window=may, funds=funds), work / "data")


def concluded_undecided(fund: str) -> Any:
    """Run C: a run of ``fund`` concluded by the operator and waiting for finance (the
    review set its DAG run failed while the approval waited: the same ledger state)."""
    from payments.config import load_settings
    from payments.credentials import beneficiary_secret, payment_signer
    from payments.pipeline import run_batch
    from payments.schemes import load_scheme

    settings = load_settings()
    return run_batch(
        settings.data_dir,
        load_scheme("aes-2020-05"),
        secret=beneficiary_secret(settings),
        signer=payment_signer(settings),
        ledger_url=settings.ledger_url,
        triggered_by="operator",
        funds=[fund],
    )


def xcom_repoint(work: Path) -> Insider:
    """N1: the operator points B's ``conclude`` XCom at run C while finance reads B."""
    _airflow_home(work)
    _set_environment(work)
    from payments.orchestration.approval import respond
    from payments.orchestration.local_run import DAG_ID, run_dag

    _sample(work, ("13", "75"))
    c = concluded_undecided("75")
    rest = _operator_rest()

    def repoint_then_approve(airflow_run_id: str, task_id: str) -> None:
        value = rest.get(_xcom(airflow_run_id)).json()["value"]
        forged = {**value, "run_id": c.run_id, "run_dir": f"runs/{c.run_id}",
                  "funds_with_files": ["75"]}  # fmt: skip
        assert rest.patch(_xcom(airflow_run_id), json={"value": forged}).status_code == 200
        respond(DAG_ID, airflow_run_id, task_id, user="finance", option="Approve")

    try:
        run_dag(ROOT / "dags", {"funds": ["13"]}, repoint_then_approve)
    except Exception as exc:  # a refusal may fail the run: what was paid is what counts
        note = type(exc).__name__
    else:
        note = ""
    approved_c = _sql(work, "SELECT COUNT(*) FROM runs WHERE run_id = ? AND decision = 'approved'",
                      c.run_id)[0][0]  # fmt: skip
    paid_c = _sql(work, "SELECT COUNT(*) FROM payments WHERE run_id = ? AND state = 'sent'",
                  c.run_id)[0][0]  # fmt: skip
    return Insider("N1 XCom repoints finance's answer", not approved_c, approved_c, paid_c, note)


def xcom_text_rewrite(work: Path) -> Insider:
    """N1: the operator rewrites the approval text in the XCom before ``approval`` renders."""
    _airflow_home(work)
    _set_environment(work)
    from airflow.sdk._shared.listeners import hookimpl
    from airflow.sdk.listener import get_listener_manager

    from payments.orchestration.local_run import answer_as, run_dag

    _sample(work, ("13",))
    rest = _operator_rest()

    class Rewriter:
        """What the operator's script does once ``conclude`` is done, before ``approval``
        renders its text (the reviewer's script won that race against the scheduler)."""

        @hookimpl
        def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
            if task_instance.task_id != "needs_approval":
                return
            path = _xcom(task_instance.run_id)
            value = rest.get(path).json()["value"]
            forged = {**value, "approval_text": FORGED_TEXT}
            assert rest.patch(path, json={"value": forged}).status_code == 200

    get_listener_manager().add_listener(Rewriter())
    run = run_dag(ROOT / "dags", {"funds": ["13"]}, answer_as("finance", "Approve"))
    body = _hitl_body(str(run.run_id))
    sent = _sql(work, "SELECT COUNT(*) FROM payments WHERE state = 'sent'")[0][0]
    unshown = max(0, int(sent) - _shown_payments(body))
    return Insider(
        "N1 XCom rewrites the approval text", "evil.example" not in body, 0, unshown,
        "finance read: " + body.splitlines()[0],
    )  # fmt: skip


# --- in this process -------------------------------------------------------------------


def _paid_run(work: Path) -> tuple[Any, Any]:
    """A sent batch of fund 13 (triggered by operator, approved by finance), on a fresh ledger."""
    from payments.ledger.migrate import engine_for
    from payments.sepa.signing import generate_demo_pair, load_signer
    from tests.bank_simulator import sent_batch
    from tests.vouchers import signing_key

    _set_environment(work)
    keys = work / "keys"
    generate_demo_pair(keys / "k.pem", keys / "c.pem", common_name="insiders")
    signer = load_signer(keys / "k.pem", keys / "c.pem")
    signing_key(work / "data")
    engine = engine_for(os.environ["PAYMENTS_LEDGER_URL"])
    sent_batch(engine, work / "data", signer, ("13",), seed=8, at=AT)
    return engine, signer


def logname_release(work: Path) -> Insider:
    """N3: ``LOGNAME=finance airflow dags trigger solidarity_finance_action`` (the task sees
    the triggering name "finance" and the conf the operator wrote)."""
    from payments.errors import PaymentsError
    from payments.orchestration.finance_actions import act

    _paid_run(work)
    [(payment_id,)] = _sql(work, "SELECT payment_id FROM holds LIMIT 1")
    conf = {"action": "release_hold", "payment_id": payment_id, "note": "checked"}
    try:
        act(conf, triggered_as="finance")
    except PaymentsError as exc:
        note = str(exc)[:60]
    else:
        note = ""
    released = _sql(work, "SELECT COUNT(*) FROM holds WHERE released_at IS NOT NULL")[0][0]
    return Insider("N3 $LOGNAME=finance releases a hold", not released, released, 0, note)


def operator_applies_report(work: Path) -> Insider:
    """N10: the operator triggers the finance action that applies a report."""
    from payments.errors import PaymentsError
    from payments.orchestration.finance_actions import UPLOADED, act
    from tests.bank_simulator import status_report

    _paid_run(work)
    data = work / "data"
    sent = next(p for p in (data / "bank").rglob("*.xml"))
    report, _ = status_report(sent.read_bytes(), reject_share=0.3, seed=1)
    (data / UPLOADED).mkdir(parents=True)
    (data / UPLOADED / "1-op.xml").write_bytes(report)
    try:
        act({"action": "apply_report", "report": f"{UPLOADED}/1-op.xml"}, triggered_as="operator")
    except PaymentsError as exc:
        note = str(exc)[:60]
    else:
        note = ""
    moved = _sql(work, "SELECT COUNT(*) FROM payments WHERE state = 'rejected'")[0][0]
    return Insider("N10 the operator applies a report", not moved, int(bool(moved)), 0, note)


def cli_typed_name(work: Path) -> Insider:
    """M2: the operator types ``payments approve <run> --by finance``."""
    env = {**os.environ, **_environment(work)}
    env.pop("PAYMENTS_LEDGER_URL", None)

    def payments(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "payments", *args], env=env, capture_output=True, text=True
        )

    data = work / "data"
    assert payments("sample", "--households", "300", "--funds", "13").returncode == 0
    ran = payments("run", "--funds", "13", "--json")
    run_id = json.loads(ran.stdout)["run_id"]
    typed = payments("approve", run_id, "--by", "finance")
    with_env = subprocess.run(
        [sys.executable, "-m", "payments", "approve", run_id],
        env={**env, "LOGNAME": "finance", "USER": "finance"},
        capture_output=True,
        text=True,
    )
    import sqlite3

    with sqlite3.connect(data / "ledger.sqlite") as db:
        approved = db.execute("SELECT COUNT(*) FROM runs WHERE decision = 'approved'").fetchone()
    n = int(approved[0])
    note = f"exit codes {typed.returncode}, {with_env.returncode}"
    return Insider("M2 a typed name approves (CLI)", not n, n, 0, note)


def reissue_by_one_finance_user(work: Path) -> Insider:
    """N7: one finance user uploads a report "rejecting" paid payments, then approves the run
    that pays them again; the approval text did not count re-issues."""
    from sqlalchemy.orm import Session

    from payments.errors import PaymentsError
    from payments.ledger.approval import causes, facts, released_waiting
    from payments.orchestration.finance_actions import UPLOADED, act
    from payments.orchestration.summary import approval_text_of
    from payments.release import approve
    from tests.bank_simulator import status_report
    from tests.faults.runs import run, sample
    from tests.vouchers import voucher

    engine, signer = _paid_run(work)
    data = work / "data"
    sent = next(p for p in (data / "bank").rglob("*.xml"))
    report, _ = status_report(sent.read_bytes(), reject_share=0.2, seed=3)
    key = f"{UPLOADED}/1-sts.xml"
    (data / UPLOADED).mkdir(parents=True)
    (data / key).write_bytes(report)
    conf = {"action": "apply_report", "report": key}
    conf["voucher"] = voucher(data, "finance", "apply_report", {"report": key})
    act(conf, triggered_as="finance")
    sample(data, ("75",), seed=4)
    second = run(engine, data, signer, ("13", "75"))
    with Session(engine) as session:
        figures = facts(session, second.run_id)
        why = causes(session, second.run_id)
        text = approval_text_of(figures, why, released_waiting(session, "aes-2020-05"), "-")
    shown = re.search(r"\*\*Paid again\*\* \(re-issues, included above\): ([\d,]+) payments", text)
    reissued = _sql(
        work, "SELECT COUNT(*) FROM payments WHERE run_id = ? AND attempt > 1", second.run_id
    )[0][0]
    try:
        approve(engine, second.out_dir, second.run_id, by="finance", at=AT,
                approvers=("finance", "bob"))  # fmt: skip
    except PaymentsError as exc:
        note = str(exc)[:60]
    else:
        note = ""
    approved = _sql(work, "SELECT approved_by FROM runs WHERE run_id = ?", second.run_id)[0][0]
    unshown = int(reissued) - (int(shown.group(1).replace(",", "")) if shown else 0)
    by_same = int(approved == "finance")
    return Insider("N7 one finance user causes and approves re-issues", not by_same, by_same,
                   unshown if approved else 0, note)  # fmt: skip


def audit_replay_traversal(work: Path) -> Insider:
    """N4: the audit DAG's replay of ``../runs/<run>`` deleted the run's folder."""
    from payments.errors import PaymentsError
    from payments.orchestration.audit import run_check

    _paid_run(work)
    run_id = (work / "data" / "runs" / "LATEST").read_text().strip()
    before = sorted(p.name for p in (work / "data" / "runs" / run_id).iterdir())
    notes = []
    for _ in range(2):
        try:
            run_check("replay", f"../runs/{run_id}", requested_by="operator")
        except (PaymentsError, OSError) as exc:
            notes.append(type(exc).__name__)
    folder = work / "data" / "runs" / run_id
    after = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    return Insider("N4 a replay deletes a run's folder", after == before, 0, 0, ", ".join(notes))


def payment_date_moved(work: Path) -> Insider:
    """N5: the payment date moved five weeks later lifted every recent-bank-change hold."""
    from datetime import date

    from payments.pipeline import run_batch
    from payments.run_spec import RunOptions
    from payments.schemes import load_scheme
    from tests.faults.runs import sample
    from tests.households import SECRET

    _set_environment(work)
    data = work / "data"
    sample(data, ("13", "75"), households=2_000, seed=3)

    def held(options: RunOptions) -> int:
        result = run_batch(data, load_scheme("aes-2020-05"), secret=SECRET, options=options)
        assert result.compute is not None
        reasons = result.compute.preview["by_hold_reason"]
        return int(reasons.get("recent_bank_change", {}).get("households", 0))

    lifted = held(RunOptions()) - held(RunOptions(run_date=date(2020, 6, 20)))
    return Insider("N5 a later payment date lifts holds", lifted <= 0, max(0, lifted), 0)


SCENARIOS: dict[str, Callable[[Path], Insider]] = {
    "xcom_repoint": xcom_repoint,
    "xcom_text_rewrite": xcom_text_rewrite,
    "logname_release": logname_release,
    "operator_applies_report": operator_applies_report,
    "cli_typed_name": cli_typed_name,
    "reissue_by_one_finance_user": reissue_by_one_finance_user,
    "audit_replay_traversal": audit_replay_traversal,
    "payment_date_moved": payment_date_moved,
}


def run_one(name: str, work: Path) -> Insider:
    """One scenario in a process of its own (its own Airflow home, environment, imports)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.insiders", name, str(work)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return Insider(name, False, 0, 0, f"crashed: {done.stderr.strip().splitlines()[-1:]}")
    return Insider(**json.loads(lines[-1]))


def insiders(root: Path) -> list[Insider]:
    return [run_one(name, root / name) for name in SCENARIOS]


def table(outcomes: list[Insider]) -> str:
    width = max(len(o.scenario) for o in outcomes)
    lines = [f"{'insider scenario':{width}}  refused  approved w/o finance  paid w/o being shown"]
    for o in outcomes:
        lines.append(
            f"{o.scenario:{width}}  {'yes' if o.refused else 'NO':7}  "
            f"{o.approved_without_finance:20}  {o.paid_without_being_shown:20}"
        )
    return "\n".join(lines)


def totals(outcomes: list[Insider]) -> dict[str, int]:
    return {
        "scenarios": len(outcomes),
        "refused": sum(o.refused for o in outcomes),
        "approved_without_finance": sum(o.approved_without_finance for o in outcomes),
        "paid_without_being_shown": sum(o.paid_without_being_shown for o in outcomes),
    }


def main() -> int:
    if len(sys.argv) == 3:  # one scenario, in this process
        work = Path(sys.argv[2])
        work.mkdir(parents=True, exist_ok=True)
        print(json.dumps(asdict(SCENARIOS[sys.argv[1]](work))))
        return 0
    with tempfile.TemporaryDirectory(prefix="payments-insiders-") as tmp:
        outcomes = insiders(Path(tmp))
    print(table(outcomes))
    counted = totals(outcomes)
    print(json.dumps({"insiders": counted, "outcomes": [asdict(o) for o in outcomes]}))
    ok = counted["refused"] == counted["scenarios"]
    return 0 if ok and not counted["approved_without_finance"] + counted[
        "paid_without_being_shown"] else 1  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
