"""The benchmark's baseline is an oracle too: the default approach and ours pay the same.

No timing is asserted (figures are `make bench`'s business); what is checked is
that the side-by-side compares like with like, on a small sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.machine import describe, reference_ms
from bench.national import side_by_side
from bench.targets import against_targets
from bench.targets import describe as describe_targets
from payments.schemes import load_scheme
from payments.sepa.signing import Signer


def test_baseline_and_pipeline_pay_the_same_households_the_same_cents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    monkeypatch.setenv("PAYMENTS_BENCH_DIR", str(tmp_path))
    result = side_by_side(3000, signer, 1, load_scheme("aes-2020-05"), funds=("01", "13", "75"))
    assert result["totals_equal"], result
    assert result["ours"]["payable"] > 1000
    names = [s["stage"] for s in result["stages"]]
    assert names == ["read", "validate", "compute + deduplicate", "write pain.001", "sign", "total"]
    assert all(s["ours_s"] > 0 and s["baseline_s"] > 0 for s in result["stages"])
    assert (tmp_path / "sample-3000-01-13-75" / "bench-sample.json").exists()


def test_machine_reference_is_three_positive_timings_in_ms() -> None:
    """What bench.json carries to compare figures across days (never asserted on speed)."""
    ms = reference_ms()
    assert set(ms) == {"python_sum_1m", "numpy_sort_2m", "sha256_64mb"}
    assert all(isinstance(v, float) and 0 < v < 60_000 for v in ms.values())
    line = describe(ms)
    assert all(str(v) in line for v in ms.values())


def _report(
    *, households: int = 4_100_000, wall: float = 18.9, rss: int = 3_358, pg: float | None = 19.1
) -> dict[str, Any]:
    stages: list[dict[str, Any]] = [
        {"name": "read (SHA-256, file checks, CSV parse)", "wall_s": 3.0}
    ]
    if pg is not None:
        stages.append(
            {"name": "ledger load: 2,846,759 decisions into PostgreSQL (COPY)", "wall_s": pg}
        )
    stages.append({"name": "ledger load: 2,846,759 decisions into SQLite", "wall_s": 36.6})
    return {
        "national": {
            "households": households,
            "read_to_sign_wall_s": wall,
            "peak_rss_mb": rss,
            "stages": stages,
        },
        "baseline": {
            "households": 200_000,
            "stages": [{"stage": "read", "x": 2.5}, {"stage": "total", "x": 36.3}],
            "totals_equal": True,
        },
    }


def test_targets_read_off_a_report_met_and_missed() -> None:
    met = against_targets(_report())
    assert [v.met for v in met] == [True, True, True, True]
    assert [v.figure for v in met] == ["18.9 s", "3,358 MB", "19.1 s", "36.3×"]

    missed = against_targets(_report(wall=20.01, rss=3_815, pg=36.1))
    assert [v.met for v in missed] == [False, False, False, True]
    assert "NOT met" in describe_targets(missed)


def test_targets_not_comparable_when_the_report_cannot_answer() -> None:
    """A smaller national run, a skipped ledger or side-by-side is neither met nor missed."""
    small = against_targets(_report(households=500_000))
    assert [v.met for v in small[:3]] == [None, None, None]
    assert "500,000" in small[0].why

    report = _report(pg=None)
    del report["baseline"]
    verdicts = against_targets(report)
    assert [v.met for v in verdicts] == [True, True, None, None]
    assert "not comparable" in describe_targets(verdicts)


def test_targets_baseline_with_different_totals_is_not_met() -> None:
    report = _report()
    report["baseline"]["totals_equal"] = False
    assert against_targets(report)[3].met is False
    report["baseline"]["totals_equal"] = True
    report["baseline"]["households"] = 3_000
    assert against_targets(report)[3].met is None


def test_dag_bench_reads_its_figures_against_the_targets() -> None:
    """bench --dag: the parse time is measured on the real dags/, the verdicts say met or not."""
    from bench.dag_runtime import parse_time, verdicts

    parse = parse_time()
    assert parse["seconds"] > 0 and not parse["polars"] and not parse["pyarrow"]
    task = {"task": "conclude", "map_index": -1, "wall_s": 1.0}
    figures = {
        "trigger_to_bank_s": 599.0,
        "parse": parse,
        "tasks": [{**task, "peak_rss_mb": 4097, "xcom_bytes": 65_536}],
    }
    met = verdicts(figures)
    assert [line.rsplit(": ", 1)[1] for line in met] == ["met", "NOT met", "met", "met"]
    # finance's deliberate pause is the bench's, not the system's: it is taken off
    figures["trigger_to_bank_s"], figures["approval_pause_s"] = 609.0, 10
    assert verdicts(figures)[0].endswith(": met") and "609.0 s measured" in verdicts(figures)[0]
    figures["trigger_to_bank_s"] = 611.0
    assert verdicts(figures)[0].endswith("NOT met")
    figures["trigger_to_bank_s"] = None  # the run never reached the bank
    assert verdicts(figures)[0].endswith("NOT met")
