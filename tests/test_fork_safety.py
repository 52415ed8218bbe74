"""What the scheduler, the DAG processor and the API server import must be fork-safe.

Airflow's LocalExecutor and Celery's prefork workers fork task processes from
a process that has parsed the DAG files and loaded the plugins. A thread pool
started there (polars and pyarrow start theirs on first computation) does not
exist in the child, yet its locks are copied as they were: the child's first
computation can wait for ever. So importing a DAG file or the plugin must
start no thread and load neither polars nor pyarrow; the data stack is
imported inside task code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECLARATIONS = sorted([*(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").glob("*.py")])
HEAVY = ("polars", "pyarrow", "pandas", "pandera", "numpy", "lxml")

_IMPORT_ALL = f"""
import importlib.util, json, sys, threading
HEAVY = {HEAVY!r}
before = threading.active_count()
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"declared_{{i}}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps({{
    "loaded": sorted(m for m in HEAVY if m in sys.modules),
    "threads": sorted(t.name for t in threading.enumerate()),
    "new_threads": threading.active_count() - before,
}}))
"""


def _import_declarations() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, *map(str, DECLARATIONS)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_dag_files_and_plugins_import_no_data_stack_and_start_no_thread() -> None:
    assert any(p.parent.name == "plugins" for p in DECLARATIONS)
    found = _import_declarations()
    assert found["loaded"] == [], f"imported at parse time: {found['loaded']}"
    assert found["new_threads"] == 0, found["threads"]


_FORK_AFTER_IMPORT = """
import importlib.util, os, sys
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"declared_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
pid = os.fork()
if pid == 0:
    # what a task does first: a computation on the data stack
    import polars as pl
    n = 200_000
    frame = pl.DataFrame({"fund": [str(i % 101) for i in range(n)], "cents": list(range(n))})
    frame.group_by("fund").agg(pl.col("cents").sum()).sort("fund")
    pl.Series([chr(c) for c in range(0xC0, 0x250)]).str.normalize("NFKD")
    os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_task_forked_after_parsing_computes() -> None:
    """The LocalExecutor's case: parse and load plugins, fork, compute in the child."""
    process = subprocess.Popen(
        [sys.executable, "-c", _FORK_AFTER_IMPORT, *map(str, DECLARATIONS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # the parent and its forked child, killed together
    )
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired as exc:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(
            "the task process forked after parsing hung (fork after threads)"
        ) from exc
    assert process.returncode == 0, stderr[-3000:]
