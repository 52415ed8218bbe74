"""DAG integrity: every DAG in dags/ loads without import errors and has the shape we promise.

Mapping per fund, the approval before any upload, retries, the SFTP pool,
the bank cut-off deadline, the trigger form; and the DAG files stay thin.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from payments.schemes import scheme_ids

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def batch(bag: Any) -> Any:
    return bag.dags["solidarity_payment_batch"]


def test_every_dag_loads_without_import_errors(bag: Any) -> None:
    assert bag.import_errors == {}
    assert "solidarity_payment_batch" in bag.dags
    assert len(bag.dags) == len(list(DAGS.glob("*.py")))


def _upstream_closure(task: Any) -> set[str]:
    seen: set[str] = set()
    todo = list(task.upstream_list)
    while todo:
        t = todo.pop()
        if t.task_id not in seen:
            seen.add(t.task_id)
            todo.extend(t.upstream_list)
    return seen


def test_receive_and_deliver_are_mapped_per_fund_in_the_sftp_pool(batch: Any) -> None:
    for task_id in ("receive", "deliver"):
        task = batch.get_task(task_id)
        assert task.is_mapped, task_id
        assert task.partial_kwargs.get("pool") == "payments_sftp", task_id
        assert "fund_code" in task._get_specified_expand_input().value, task_id


def test_approval_is_a_human_in_the_loop_step_before_any_upload(batch: Any) -> None:
    from airflow.providers.standard.operators.hitl import HITLOperator

    approval = batch.get_task("approval")
    assert isinstance(approval, HITLOperator)
    assert approval.options == ["Approve", "Reject"]
    assert approval.options_mapping == {
        "Approve": "record_approval",
        "Reject": "record_rejection",
    }
    assert approval.retries == 0  # a human answer is never asked twice by a retry
    assert "approval" in _upstream_closure(batch.get_task("deliver"))
    assert "record_approval" in _upstream_closure(batch.get_task("deliver"))
    assert "conclude" in _upstream_closure(approval)
    # Nothing before the approval talks to the bank.
    assert "deliver" not in _upstream_closure(approval)


def test_tasks_retry_and_a_lost_fund_does_not_block_the_batch(batch: Any) -> None:
    for task in batch.tasks:
        if task.task_id != "approval":
            retries = task.partial_kwargs.get("retries") if task.is_mapped else task.retries
            assert retries and retries >= 2, task.task_id
    assert batch.get_task("conclude").trigger_rule == "all_done"


def test_trigger_form_and_deadline(batch: Any) -> None:
    from payments.orchestration.deadline import SchemeCutoff

    params = batch.params
    assert set(params.keys()) == {"scheme_id", "payment_date", "funds", "dry_run"}
    assert params.get_param("scheme_id").schema["enum"] == scheme_ids()
    assert params.get_param("dry_run").value is False
    deadlines = batch.deadline if isinstance(batch.deadline, list) else [batch.deadline]
    assert any(isinstance(d.reference, SchemeCutoff) for d in deadlines)
    assert batch.schedule is None and batch.max_active_runs == 1


def test_outputs_are_assets_for_data_driven_scheduling(batch: Any) -> None:
    from payments.orchestration.assets import AT_THE_BANK, PAYMENT_BATCH

    assert PAYMENT_BATCH in batch.get_task("record_approval").outlets
    deliver = batch.get_task("deliver")
    outlets = deliver.partial_kwargs.get("outlets") or deliver.outlets
    assert AT_THE_BANK in outlets


def test_a_batch_outranks_the_reconciliation_it_triggers(bag: Any, batch: Any) -> None:
    """Each delivery triggers a reconciliation run; with two slots, those took turns with
    the deliveries. The scheduler runs the higher weight first: the batch's tasks."""
    reconciliation = bag.dags["solidarity_reconciliation"]
    assert {str(t.weight_rule).rsplit(".", 1)[-1].lower() for t in batch.tasks} == {"absolute"}
    lowest = min(t.priority_weight for t in batch.tasks)
    # Whatever its weight rule, no reconciliation task weighs more than all of them together.
    highest = sum(t.priority_weight for t in reconciliation.tasks)
    assert lowest > highest, (lowest, highest)


def test_custom_deadline_reference_is_registered_as_a_plugin() -> None:
    from airflow import plugins_manager

    refs = plugins_manager.get_deadline_references_plugins()
    assert "payments.orchestration.deadline.SchemeCutoff" in refs


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_only_declare(path: Path) -> None:
    """No SQL, no file format, no business rule, no work at import in dags/."""
    text = path.read_text()
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", text)
    assert not re.search(r"pain\.001|\.csv|\.parquet|<\?xml|cents", text)
    tree = ast.parse(text)
    for node in tree.body:  # module level: imports, constants, the DAG definition and its call
        assert isinstance(
            node, ast.Import | ast.ImportFrom | ast.Assign | ast.FunctionDef | ast.Expr
        ), ast.dump(node)[:80]
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not imported & {"sqlalchemy", "pyarrow", "polars", "pandas", "lxml", "paramiko"}


def test_parsing_the_dags_touches_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    data = tmp_path / "nowhere"
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(data))
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", f"sqlite:///{data}/ledger.sqlite")
    assert DagBag(dag_folder=str(DAGS)).import_errors == {}
    assert not data.exists()


def test_reconciliation_is_scheduled_by_data(bag: Any) -> None:
    from payments.orchestration.assets import AT_THE_BANK, BANK_REPORTS, RECONCILIATION

    recon = bag.dags["solidarity_reconciliation"]
    condition = recon.timetable.asset_condition
    assert {a.name for a in condition.objects} == {
        AT_THE_BANK.name,
        BANK_REPORTS.name,
    }
    assert RECONCILIATION in recon.get_task("reconcile").outlets
    watch = bag.dags["solidarity_bank_inbox"].get_task("new_reports_waiting")
    assert BANK_REPORTS in watch.outlets and watch.pool == "payments_sftp"


def test_the_per_fund_tasks_import_only_what_they_need() -> None:
    """``deliver`` and ``receive`` run once per fund: each process pays for its imports.

    A national run starts about two hundred of them; importing the whole
    computation stack cost each ~2.7 s of CPU. Delivery needs neither polars
    nor pandera; receiving needs no ledger recording nor payment-file writing.
    """
    import subprocess
    import sys

    probe = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        "print(json.dumps(sorted(m for m in sys.argv[2:] if m in sys.modules)))"
    )

    def loaded(module: str, *heavy: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", probe, module, *heavy],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
        return list(json.loads(out.stdout.strip().splitlines()[-1]))

    assert loaded("payments.orchestration.delivery", "polars", "pandera", "pandas") == []
    assert (
        loaded(
            "payments.orchestration.receiving",
            "payments.ledger.decisions",
            "payments.ledger.bulk",
            "payments.sepa.batch",
            "payments.entitlement.decide",
            "payments.pipeline",
        )
        == []
    )


def test_every_dag_takes_its_owner_pool_and_retries_from_one_module() -> None:
    """The three DAG files each spelled their own retries and pool name."""
    from payments.orchestration import defaults

    for path in sorted((Path(__file__).parents[1] / "dags").glob("*.py")):
        text = path.read_text()
        assert "payments.orchestration.defaults" in text, path.name
        assert '"payments_sftp"' not in text and '"retries"' not in text, path.name
    assert defaults.SFTP_POOL == "payments_sftp"
