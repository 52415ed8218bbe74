"""The second review's insider attacks, over HTTP and the Airflow CLI, against a real Airflow.

The scheduler (LocalExecutor), the API server with the payments plugin, the
DAG processor and the triggerer run as processes (``bench.airflow_runtime``);
the operator and finance are users of the simple auth manager talking to the
REST API, as the reviewers did against ``make airflow``:

- N1 (repoint): with run C concluded and waiting, the operator rewrites run B's
  ``conclude`` XCom to name C while finance reads B; finance approves B.
- N1 (rewrite): the operator rewrites the approval text in that XCom as soon as
  ``conclude`` ends, before ``approval`` renders it.
- N3: ``LOGNAME=finance airflow dags trigger solidarity_finance_action`` with a
  release in its conf.

And issue 37's sequence: finance releases a hold of the approved, sent run on
the Holds page; the operator triggers the same funds again.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.airflow_runtime import BIN, Airflow, running_airflow, unpause, wait_for, wait_parsed
from payments.sample.writer import SampleSpec, write_sample
from tests.conftest import MAY_2020

DAG = "solidarity_payment_batch"
ACTION_DAG = "solidarity_finance_action"
TIMEOUT = 900
#: Seconds between the approval pausing and finance answering (as in test_airflow_runtime).
APPROVAL_PAUSE_S = 10
FORGED_TEXT = "## To be paid: 12 payments, 1 800.00 €\n\n[Details](http://evil.example/login)"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Airflow, Path]]:
    tmp = tmp_path_factory.mktemp("insiders")
    data = tmp / "data"
    write_sample(SampleSpec(households=600, seed=21, window=MAY_2020, funds=("13", "75")), data)
    extra = {
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_FINANCE_APPROVERS": "finance,bob",
        "PAYMENTS_AUDITORS": "auditor",
        "PAYMENTS_OPERATORS": "operator",
    }
    with running_airflow(tmp / "airflow", data, extra) as running:
        wait_parsed(running, DAG)
        unpause(running, DAG)
        yield running, data


def _trigger(airflow: Airflow, funds: list[str]) -> str:
    with airflow.client("operator") as api:
        answer = api.post(
            f"/dags/{DAG}/dagRuns",
            json={"logical_date": None, "conf": {"scheme_id": "aes-2020-05", "funds": funds}},
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["dag_run_id"])


def _states(airflow: Airflow, dag_id: str, run_id: str) -> dict[str, str]:
    with airflow.client("operator") as api:
        answer = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})
    answer.raise_for_status()
    return {ti["task_id"]: str(ti["state"]) for ti in answer.json()["task_instances"]}


def _run_state(airflow: Airflow, dag_id: str, run_id: str) -> str | None:
    with airflow.client("operator") as api:
        state = str(api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"])
    return state if state in ("success", "failed") else None


def _waiting(airflow: Airflow, run_id: str) -> bool:
    states = _states(airflow, DAG, run_id)
    if "failed" in states.values() or _run_state(airflow, DAG, run_id):
        raise AssertionError(f"run {run_id} ended before its approval: {states}\n{airflow.logs()}")
    return states.get("approval") in ("deferred", "awaiting_input")


def _hitl(airflow: Airflow, run_id: str) -> str:
    return f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails"


def _ledger(data: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data / "ledger.sqlite") as db:
        return list(db.execute(query, args).fetchall())


def test_a_rewritten_xcom_neither_repoints_the_answer_nor_rewrites_the_question(
    airflow: tuple[Airflow, Path],
) -> None:
    running, data = airflow
    # Run C (fund 75): concluded, waiting for finance; the operator sets it failed.
    c = _trigger(running, ["75"])
    wait_for(lambda: _waiting(running, c), timeout=TIMEOUT, what="run C's approval",
             airflow=running)  # fmt: skip
    with running.client("operator") as api:
        assert api.patch(f"/dags/{DAG}/dagRuns/{c}", json={"state": "failed"}).status_code == 200
    [(c_run,)] = _ledger(data, "SELECT run_id FROM airflow_runs WHERE airflow_run_id = ?", c)

    # Run B (fund 13): the operator rewrites its conclude XCom the moment conclude ends.
    b = _trigger(running, ["13"])
    wait_for(
        lambda: _states(running, DAG, b).get("conclude") == "success",
        timeout=TIMEOUT,
        what="run B's conclude",
        airflow=running,
        every=0.1,
    )
    xcom = f"/dags/{DAG}/dagRuns/{b}/taskInstances/conclude/xcomEntries/return_value"
    with running.client("operator") as api:
        value = api.get(xcom, params={"deserialize": True, "stringify": False}).json()["value"]
        forged = {
            **value,
            "run_id": c_run,
            "run_dir": f"runs/{c_run}",
            "funds_with_files": ["75"],
            "approval_text": FORGED_TEXT,
        }
        rewritten = api.patch(xcom, json={"value": forged})
    assert rewritten.status_code == 200, rewritten.text
    wait_for(lambda: _waiting(running, b), timeout=TIMEOUT, what="run B's approval",
             airflow=running)  # fmt: skip
    [(b_run,)] = _ledger(data, "SELECT run_id FROM airflow_runs WHERE airflow_run_id = ?", b)
    assert b_run != c_run
    time.sleep(APPROVAL_PAUSE_S)
    with running.client("finance") as api:
        shown = api.get(_hitl(running, b)).json()
        assert shown["subject"] == f"Approve payment run {b_run}"
        assert "12 payments" not in shown["body"] and "evil.example" not in shown["body"]
        [(sha,)] = _ledger(
            data, "SELECT shown_manifest_sha256 FROM airflow_runs WHERE airflow_run_id = ?", b
        )
        assert f"Signed manifest SHA-256: `{sha}`" in shown["body"]
        answered = api.patch(_hitl(running, b), json={"chosen_options": ["Approve"]})
    assert answered.status_code == 200, answered.text
    state = wait_for(lambda: _run_state(running, DAG, b), timeout=TIMEOUT, what="run B's end",
                     airflow=running)  # fmt: skip
    assert state == "success", f"{_states(running, DAG, b)}\n{running.logs()}"

    decisions = dict(_ledger(data, "SELECT run_id, decision FROM runs"))
    assert decisions == {c_run: None, b_run: "approved"}
    sent = _ledger(data, "SELECT DISTINCT run_id FROM payments WHERE state = 'sent'")
    assert sent == [(b_run,)]
    assert {p.parent.name for p in (data / "bank").rglob("*.xml")} == {"13"}


def test_logname_finance_on_the_airflow_cli_releases_no_hold(
    airflow: tuple[Airflow, Path],
) -> None:
    running, data = airflow
    held = _ledger(data, "SELECT payment_id FROM holds WHERE released_at IS NULL LIMIT 1")
    if not held:
        _trigger_and_conclude(running)
        held = _ledger(data, "SELECT payment_id FROM holds WHERE released_at IS NULL LIMIT 1")
    [(payment_id,)] = held
    conf = {"action": "release_hold", "payment_id": payment_id, "note": "checked"}
    env = {**running.env, "LOGNAME": "finance", "USER": "finance"}
    done = subprocess.run(
        [str(BIN / "airflow"), "dags", "trigger", ACTION_DAG, "-c", json.dumps(conf), "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("[{"))
    [triggered] = json.loads(listed)
    run_id = str(triggered["dag_run_id"])
    assert triggered["triggering_user_name"] == "finance"  # what the task sees: $LOGNAME
    state = wait_for(lambda: _run_state(running, ACTION_DAG, run_id), timeout=TIMEOUT,
                     what="the finance action run", airflow=running)  # fmt: skip
    assert state == "failed"
    released = _ledger(data, "SELECT released_by FROM holds WHERE payment_id = ?", payment_id)
    assert released == [(None,)]


def _trigger_and_conclude(running: Airflow) -> None:
    run = _trigger(running, ["13", "75"])
    wait_for(lambda: _waiting(running, run), timeout=TIMEOUT, what="a run's approval",
             airflow=running)  # fmt: skip


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_hold_released_after_approval_is_paid_by_a_new_run(
    airflow: tuple[Airflow, Path],
) -> None:
    """Issue 37: the same funds run again after a release adopted the released payment into
    the approved run and rewrote its signed file in place; delivery failed as retryable."""
    import httpx

    running, data = airflow
    [(airflow_run, paid_run)] = _ledger(
        data,
        "SELECT a.airflow_run_id, a.run_id FROM airflow_runs a JOIN runs r ON r.run_id = a.run_id "
        "WHERE r.decision = 'approved'",
    )
    [(payment_id, household)] = _ledger(
        data,
        "SELECT p.id, p.household_id FROM payments p JOIN holds h ON h.payment_id = p.id "
        "WHERE p.run_id = ? AND h.released_at IS NULL ORDER BY p.id LIMIT 1",
        paid_run,
    )
    before = _digests(data / "runs" / paid_run)
    pages = httpx.Client(
        base_url=f"{running.url}/payments",
        headers={"Authorization": f"Bearer {running.token('finance')}"},
        timeout=60,
    )
    released = pages.post(f"/holds/{payment_id}/release", data={"note": "checked with the fund"})
    assert released.status_code in (200, 303), released.text
    wait_for(
        lambda: (
            _ledger(data, "SELECT released_by FROM holds WHERE payment_id = ?", payment_id)
            == [("finance",)]
        ),
        timeout=TIMEOUT,
        what="the release, applied by the finance-action DAG",
        airflow=running,
    )

    again = _trigger(running, ["13"])  # the same files as the approved run
    wait_for(lambda: _waiting(running, again), timeout=TIMEOUT, what="the new run's approval",
             airflow=running)  # fmt: skip
    [(new_run,)] = _ledger(data, "SELECT run_id FROM airflow_runs WHERE airflow_run_id = ?", again)
    assert new_run != paid_run and airflow_run != again
    assert _digests(data / "runs" / paid_run) == before
    time.sleep(APPROVAL_PAUSE_S)
    with running.client("finance") as api:  # finance released the hold: not asked
        assert (
            api.patch(_hitl(running, again), json={"chosen_options": ["Approve"]}).status_code
            == 403
        )
    with running.client("bob") as api:
        shown = api.get(_hitl(running, again)).json()["body"]
        assert "released by finance" in shown
        assert (
            api.patch(_hitl(running, again), json={"chosen_options": ["Approve"]}).status_code
            == 200
        )
    state = wait_for(lambda: _run_state(running, DAG, again), timeout=TIMEOUT,
                     what="the new run's end", airflow=running)  # fmt: skip
    assert state == "success", f"{_states(running, DAG, again)}\n{running.logs()}"
    assert _ledger(
        data, "SELECT run_id, state FROM payments WHERE household_id = ? AND fund_code = '13'",
        household,
    ) == [(new_run, "sent")]  # fmt: skip
    assert _digests(data / "runs" / paid_run) == before
