"""The payment batch under Airflow's real runtime, driven through the REST API as its users.

The scheduler (LocalExecutor) forks the task processes, the DAG processor
parses dags/, the API server mounts the plugin and answers the users, the
triggerer waits on finance's approval. ``operator`` triggers the run,
``finance`` approves it through the human-in-the-loop API; the files must
then be at the (local) bank, verified, and the ledger must tie out.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.airflow_runtime import Airflow, running_airflow, wait_for
from payments.sample.writer import SampleSpec, write_sample
from payments.sepa.signing import load_certificate, signer_paths
from payments.sepa.verify import verify_batch
from tests.conftest import MAY_2020

DAG = "solidarity_payment_batch"
#: Seconds between the approval pausing and finance answering (see where it is used).
APPROVAL_PAUSE_S = 10
FUNDS = ["13", "2A", "59"]
#: Generous: two cores, a cold start of every component, each task a process.
RUN_TIMEOUT = 900


def _task_states(airflow: Airflow, run_id: str) -> dict[str, list[str]]:
    with airflow.client("operator") as api:
        answer = api.get(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 500})
        answer.raise_for_status()
    states: dict[str, list[str]] = {}
    for ti in answer.json()["task_instances"]:
        states.setdefault(ti["task_id"], []).append(str(ti["state"]))
    return states


def _run_state(airflow: Airflow, run_id: str) -> str | None:
    with airflow.client("operator") as api:
        answer = api.get(f"/dags/{DAG}/dagRuns/{run_id}")
        answer.raise_for_status()
    state = str(answer.json()["state"])
    return state if state in ("success", "failed") else None


def _xcom(airflow: Airflow, run_id: str, task_id: str) -> Any:
    with airflow.client("operator") as api:
        answer = api.get(
            f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            params={"deserialize": True, "stringify": False},
        )
        answer.raise_for_status()
    return answer.json()["value"]


def test_operator_triggers_finance_approves_files_reach_the_bank(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_sample(SampleSpec(households=900, seed=31, window=MAY_2020, funds=tuple(FUNDS)), data)
    extra = {"PAYMENTS_DEMO": "1", "PAYMENTS_FINANCE_APPROVERS": "finance"}
    with running_airflow(tmp_path / "airflow", data, extra) as airflow:
        wait_for(
            lambda: airflow.client("operator").get(f"/dags/{DAG}").status_code == 200,
            timeout=300,
            what=f"the DAG processor to parse {DAG}",
            airflow=airflow,
        )
        with airflow.client("operator") as api:
            answer = api.post(
                f"/dags/{DAG}/dagRuns",
                json={"logical_date": None, "conf": {"scheme_id": "aes-2020-05", "funds": FUNDS}},
            )
            assert answer.status_code == 200, answer.text
            run_id = answer.json()["dag_run_id"]

        def approval_waiting() -> bool:
            states = _task_states(airflow, run_id)
            if any("failed" in s for s in states.values()) or _run_state(airflow, run_id):
                raise AssertionError(f"run ended before approval: {states}\n{airflow.logs()}")
            return states.get("approval") in (["deferred"], ["awaiting_input"])

        wait_for(approval_waiting, timeout=RUN_TIMEOUT, what="the approval", airflow=airflow)
        # Answered at once, the response can reach the scheduler before the pausing
        # task process's own exit is reported, and the scheduler then marks the
        # resumed task failed (executor state mismatch). A person takes longer.
        time.sleep(APPROVAL_PAUSE_S)
        path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails"
        with airflow.client("operator") as api:  # four eyes: the one who triggered may not
            refused = api.patch(path, json={"chosen_options": ["Approve"]})
        assert refused.status_code == 403, refused.text
        with airflow.client("finance") as api:
            answer = api.patch(path, json={"chosen_options": ["Approve"]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["responded_by"]["name"] == "finance"

        state = wait_for(
            lambda: _run_state(airflow, run_id),
            timeout=RUN_TIMEOUT,
            what="the run to end",
            airflow=airflow,
        )
        states = _task_states(airflow, run_id)
        assert state == "success", f"{states}\n{airflow.logs()}"
        assert states["receive"] == ["success"] * len(FUNDS)
        assert set(states["deliver"]) == {"success"}
        report = _xcom(airflow, run_id, "report")
        summary = _xcom(airflow, run_id, "conclude")

    assert report["sent_ties_out"] is True, report
    assert summary["triggered_by"] == "operator"
    # the files at the bank are those of the batch, byte for byte, and verify
    batch = data / summary["run_dir"] / "payments"
    manifest = json.loads((batch / "manifest.json").read_text())
    trusted = load_certificate(signer_paths(data)[1])
    assert verify_batch(batch, trusted) == []
    for f in manifest["files"]:
        at_bank = data / "bank" / f["fund_code"] / Path(f["path"]).name
        assert hashlib.sha256(at_bank.read_bytes()).hexdigest() == f["sha256"], at_bank
    # the ledger: every payment of the files sent, approved by finance
    ledger = create_engine(f"sqlite:///{data / 'ledger.sqlite'}")
    with ledger.connect() as c:
        sent = c.execute(
            text("SELECT COUNT(*), SUM(amount_cents) FROM payments WHERE state = 'sent'")
        ).one()
        approved_by = c.execute(
            text("SELECT approved_by FROM runs WHERE run_id = :r"), {"r": summary["run_id"]}
        ).scalar_one()
    ledger.dispose()
    assert tuple(sent) == (manifest["totals"]["nb_of_txs"], manifest["totals"]["ctrl_sum_cents"])
    assert approved_by == "finance"
