"""Run the payment batch DAG on this machine with Airflow's ``dag.test()``, answering its approval.

``make demo`` and the end-to-end tests use this: the DAG runs task by task in
this process (SQLite metadata database, no scheduler), and a second thread
plays finance, answering the approval through Airflow's own HITL endpoint
function as a named user, exactly as the UI's request would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
DAG_ID = "solidarity_payment_batch"


def load_dag(dags_folder: Path, dag_id: str = DAG_ID) -> Any:
    """The DAG as Airflow parses it (import errors raise, naming the file)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def _import_before_threads() -> None:
    """Import what both threads use up front: concurrent first imports can deadlock."""
    import airflow.api.common.trigger_dag
    import airflow.api_fastapi.core_api.routes.public.hitl
    import airflow.models
    import airflow.models.dagbag
    import airflow.models.hitl

    airflow.models.import_all_models()  # type: ignore[no-untyped-call]


#: Called once the approval waits: (Airflow run id, approval task id).
OnApproval = Callable[[str, str], None]


def _watch(
    on_approval: OnApproval,
    stop: threading.Event,
    dag_id: str,
    errors: list[str],
    earlier: set[tuple[str, str]],
) -> None:
    from payments.orchestration.approval import waiting_approvals

    while not stop.is_set():
        try:
            waiting = [w for w in waiting_approvals(dag_id) if w not in earlier]
        except Exception as exc:  # SQLite busy while the run writes: look again
            log.debug("waiting approvals not readable yet: %s", exc)
            waiting = []
        if waiting:
            try:
                on_approval(*waiting[0])
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                log.exception("answering the approval failed")
            return
        time.sleep(0.3)


def answer_as(user: str, option: str) -> OnApproval:
    """An ``OnApproval`` that answers ``option`` as ``user`` (role ``user``)."""
    from payments.orchestration.approval import respond

    def _answer(airflow_run_id: str, task_id: str) -> None:
        respond(DAG_ID, airflow_run_id, task_id, user=user, option=option)
        log.info("%s answered %s for %s", user, option, airflow_run_id)

    return _answer


def run_dag(
    dags_folder: Path,
    conf: dict[str, Any] | None = None,
    on_approval: OnApproval | None = None,
    *,
    dag_id: str = DAG_ID,
) -> Any:
    """``dag.test()`` with ``conf``; ``on_approval`` runs in a thread when the approval waits.

    Returns the finished DagRun. ``on_approval`` must end with an answer Airflow
    accepts, or the run waits for ever (as it would in production).
    """
    dag = load_dag(dags_folder, dag_id)
    # Airflow 3.3.2's dag.test() cannot end a run of a DAG with deadline alerts
    # (its test DAG holds serialized alerts where DagRun.update_state expects
    # alert ids: AttributeError 'dict' object has no attribute 'hex'). Nothing
    # here would watch a deadline anyway (no scheduler): run without it.
    dag.deadline = None
    _import_before_threads()
    from payments.orchestration.approval import waiting_approvals

    earlier = set(waiting_approvals(dag_id))  # abandoned runs' approvals are not ours to answer
    stop = threading.Event()
    errors: list[str] = []
    thread = None
    if on_approval is not None:
        thread = threading.Thread(
            target=_watch, args=(on_approval, stop, dag_id, errors, earlier), daemon=True
        )
        thread.start()
    try:
        run = dag.test(run_conf=conf or {})
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
    if errors:
        raise RuntimeError("answering the approval failed: " + "; ".join(errors))
    return run
