"""``make bench`` (foundation part): national sample generation and file receipt.

Prints wall time, CPU time, rows/s, MB/s and peak RSS per stage, and writes the
same as JSON beside the data. The sample lives outside the repository
(``$PAYMENTS_BENCH_DIR``, default ``~/.cache/solidarity-payments/bench``).
Figures only: nothing here asserts a time. The benchmark issue extends it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from payments.pipeline import run_batch
from payments.sample.households import Window
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import load_scheme

#: A fixed secret: the bench's keys need not be secret, only stable.
BENCH_SECRET = b"bench-secret-not-for-production!"

HOUSEHOLDS = 4_100_000


def _peak_rss_mb() -> float:
    """Peak resident memory of this process or of any worker process it waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def _stage(name: str, rows: int, fn: Callable[[], Any], size: Callable[[], int]) -> dict[str, Any]:
    def cpu_now() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    wall0, cpu0 = time.perf_counter(), cpu_now()
    fn()
    wall, cpu = time.perf_counter() - wall0, cpu_now() - cpu0
    mb = size() / 1e6
    return {
        "stage": name,
        "rows": rows,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rows_per_s": int(rows / wall),
        "mb_per_s": round(mb / wall, 1),
        "peak_rss_mb": round(_peak_rss_mb()),
        "output_mb": round(mb, 1),
    }


def main(households: int = HOUSEHOLDS) -> list[dict[str, Any]]:
    root = Path(
        os.environ.get(
            "PAYMENTS_BENCH_DIR", Path.home() / ".cache" / "solidarity-payments" / "bench"
        )
    )
    spec = SampleSpec(
        households, 2020, Window("aes-2020-05", ("2020-04", "2020-05"), date(2020, 5, 10))
    )

    def funds_bytes() -> int:
        return sum(p.stat().st_size for p in (root / "funds").rglob("*.csv"))

    def runs_bytes() -> int:
        return sum(p.stat().st_size for p in (root / "runs").rglob("*.parquet"))

    stages = [
        _stage(
            "sample (generate + write 101 files)",
            households,
            lambda: write_sample(spec, root),
            funds_bytes,
        ),
        _stage(
            "receive + validate + compute (2 processes)",
            households,
            lambda: run_batch(
                root,
                load_scheme("aes-2020-05"),
                secret=BENCH_SECRET,
                workers=os.cpu_count() or 1,
            ),
            runs_bytes,
        ),
    ]
    width = max(len(s["stage"]) for s in stages)
    cols = ["wall_s", "cpu_s", "rows_per_s", "mb_per_s", "peak_rss_mb", "output_mb"]
    print(f"{'stage':<{width}}  " + "  ".join(f"{c:>11}" for c in cols))
    for s in stages:
        print(f"{s['stage']:<{width}}  " + "  ".join(f"{s[c]:>11}" for c in cols))
    out = root / "bench.json"
    out.write_text(
        json.dumps({"households": households, "cpus": os.cpu_count(), "stages": stages}, indent=2)
        + "\n"
    )
    print(f"JSON: {out}")
    return stages


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else HOUSEHOLDS)
