"""Nothing leaves without finance, in the DAG: the decision comes from Airflow's HITL record."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from payments.errors import Refused
from payments.ledger.migrate import engine_for
from payments.orchestration.approval import respondents
from payments.orchestration.decision import Answer, check_respondent
from payments.orchestration.local_run import answer_as, run_dag
from tests.faults.runs import sample

DAGS = Path(__file__).resolve().parents[2] / "dags"
BASE = "/api/v2/dags/solidarity_payment_batch/dagRuns/{run}/taskInstances"


def _operator_attack(airflow_run_id: str, task_id: str) -> None:
    """The review's A1: the operator forges the approval through Airflow's own REST API.

    A forged ``response`` XCom naming finance, ``record_rejection`` skipped,
    ``approval`` marked success: three calls any DAG editor may make.
    """
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app())
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="operator", role="op"))
    headers = {"Authorization": f"Bearer {token}"}
    base = BASE.format(run=airflow_run_id)
    forged = {
        "chosen_options": ["Approve"],
        "responded_by_user": {"id": "finance", "name": "finance"},
        "responded_at": "2020-05-10T10:00:00+00:00",
    }
    forged_xcom = {"key": "response", "value": forged}
    calls = [
        client.post(f"{base}/{task_id}/xcomEntries", headers=headers, json=forged_xcom),
        client.patch(f"{base}/record_rejection", headers=headers, json={"new_state": "skipped"}),
        client.patch(f"{base}/{task_id}", headers=headers, json={"new_state": "success"}),
    ]  # fmt: skip
    assert [c.status_code for c in calls] == [201, 200, 200], [c.text[:200] for c in calls]


@pytest.fixture
def dag_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: str) -> Path:
    data = tmp_path / "data"
    sample(data, ("13", "75"), households=400)
    for name, value in {
        "PAYMENTS_DATA_DIR": str(data),
        "PAYMENTS_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_FINANCE_APPROVERS": "finance",
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-for-the-test",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "operator:op,finance:user",
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_the_operator_alone_cannot_get_a_run_approved(dag_env: Path) -> None:
    """H1: record_approval trusted an XCom the operator could write; with "approval" marked
    success through the REST API, the ledger recorded finance's approval and the files left."""
    run = run_dag(DAGS, {"funds": ["13", "75"]}, _operator_attack)
    assert str(run.state) == "failed"
    ledger = engine_for(f"sqlite:///{dag_env / 'ledger.sqlite'}")
    with ledger.connect() as c:
        assert c.execute(text("SELECT decision, approved_by FROM runs")).one() == (None, None)
        states = dict(c.execute(text("SELECT state, COUNT(*) FROM payments GROUP BY state")).all())
    assert set(states) <= {"computed", "held"}
    assert not list((dag_env / "data" / "bank").rglob("*.xml"))


def test_finance_answering_in_airflow_approves(dag_env: Path) -> None:
    """The control: finance's real answer, read from the HITL record, approves and sends."""
    run = run_dag(DAGS, {"funds": ["13", "75"]}, answer_as("finance", "Approve"))
    assert str(run.state) == "success"
    with engine_for(f"sqlite:///{dag_env / 'ledger.sqlite'}").connect() as c:
        assert c.execute(text("SELECT decision, approved_by FROM runs")).one() == (
            "approved",
            "finance",
        )
    assert list((dag_env / "data" / "bank").rglob("*.xml"))


def test_four_eyes_compare_ids_with_ids_and_names_with_names() -> None:
    """M1: under FAB or Keycloak a user's id is not their name; the triggerer (a name) was
    compared with the respondent's id, so an approver who triggered the run could approve it."""
    at = datetime(2020, 5, 14, 9)
    approvers = ("3=alice", "4=bob")
    alice = Answer(user_id="3", user_name="alice", option="Approve", at=at)
    with pytest.raises(Refused, match="four eyes"):
        check_respondent(alice, "alice", approvers)
    bob = Answer(user_id="4", user_name="bob", option="Approve", at=at)
    assert check_respondent(bob, "alice", approvers) == "4"
    with pytest.raises(Refused, match="not a finance approver"):
        check_respondent(Answer("5", "carol", "Approve", at), "alice", approvers)
    with pytest.raises(Refused, match="ids and names do not match"):
        check_respondent(Answer("4", "mallory", "Approve", at), "alice", approvers)


def test_the_triggerer_is_not_assigned_the_approval_under_numeric_ids() -> None:
    """M1 (second half): HITL's assigned users compared approver *ids* with the triggerer's
    *name*: alice (id 3) triggered the run and was still asked to approve it."""
    assert respondents(("3=alice", "4=bob"), "alice") == [{"id": "4", "name": "bob"}]
    assert respondents(("finance", "finance2"), "finance") == [
        {"id": "finance2", "name": "finance2"}
    ]
    # who caused what the run pays (a report uploaded, a hold released) is not asked either
    assert respondents(("3=alice", "4=bob", "5=carol"), "alice", {"4": "released a hold"}) == [
        {"id": "5", "name": "carol"}
    ]
    with pytest.raises(Refused, match="nobody may approve"):
        respondents(("3=alice", "4=bob"), "alice", {"4": "released a hold"})


def _rewrite_conclude_xcom(airflow_run_id: str, value: dict[str, object]) -> None:
    """The operator rewrites the ``conclude`` task's XCom through Airflow's REST API."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app())
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="operator", role="op"))
    answer = client.patch(
        f"{BASE.format(run=airflow_run_id)}/conclude/xcomEntries/return_value",
        headers={"Authorization": f"Bearer {token}"},
        json={"value": value},
    )
    assert answer.status_code == 200, answer.text


def test_a_rewritten_xcom_does_not_repoint_finances_answer(dag_env: Path) -> None:
    """N1 (repoint): finance approved run B, the ledger recorded run C approved and C's files
    went to the bank, because the answer was applied to the run the ``conclude`` XCom named.

    Run C (fund 75) is concluded and waits, undecided. The operator triggers B (fund 13);
    while finance reads B, the operator points B's XCom at C; finance approves.
    """
    from payments.config import load_settings
    from payments.orchestration.approval import respond
    from payments.orchestration.local_run import DAG_ID
    from tests.faults.insiders import concluded_undecided

    settings = load_settings()
    c = concluded_undecided("75")

    def repoint_then_approve(airflow_run_id: str, task_id: str) -> None:
        forged = {
            "run_id": c.run_id,
            "run_dir": f"runs/{c.run_id}",
            "funds_with_files": ["75"],
            "dry_run": False,
            "payment_files": {"files": 1, "payments": 12, "cents": 180000},
            "approval_text": "## To be paid: 12 payments, 1 800.00 €",
        }
        _rewrite_conclude_xcom(airflow_run_id, forged)
        respond(DAG_ID, airflow_run_id, task_id, user="finance", option="Approve")

    run = run_dag(DAGS, {"funds": ["13"]}, repoint_then_approve)
    assert str(run.state) == "success"
    with engine_for(settings.ledger_url).connect() as conn:
        decisions = dict(conn.execute(text("SELECT run_id, decision FROM runs")).all())
        sent_funds = {
            f for (f,) in conn.execute(text("SELECT fund_code FROM payments WHERE state = 'sent'"))
        }
    assert decisions.pop(c.run_id) is None  # C: never shown, never decided
    assert list(decisions.values()) == ["approved"]  # B, the run finance was shown
    assert sent_funds == {"13"}
    at_bank = {p.parent.name for p in (dag_env / "data" / "bank").rglob("*.xml")}
    assert at_bank == {"13"}
