"""The benchmark's baseline is an oracle too: the default approach and ours pay the same.

No timing is asserted (figures are `make bench`'s business); what is checked is
that the side-by-side compares like with like, on a small sample.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from payments.benchmarks.machine import describe, reference_ms
from payments.benchmarks.national import side_by_side
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
