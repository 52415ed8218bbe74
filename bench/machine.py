"""How fast the machine is today, in units that do not depend on our code.

The same code on the "same" 2-core virtual machine gave read → sign in 16.5 s
one day and 28–34 s the next: the host behind the VM changed, not the code.
Figures in ``bench.json`` can only be tracked across days if each carries a
measure of the machine it ran on. These are fixed single-core workloads, none
of them ours, so a change of code never moves them: the interpreter
(``sum(range(10**6))``), NumPy (sorting 2 M floats) and OpenSSL (SHA-256 of
64 MB). Each is the best of five, in milliseconds; lower is faster. The
bench measures them before and after the national run, since the machine can
drift within a run.
"""

from __future__ import annotations

import hashlib
import timeit
from collections.abc import Callable

import numpy as np

_RNG_SEED = 20200510


def _best_ms(work: Callable[[], object], repeat: int = 5) -> float:
    """Milliseconds of the fastest of ``repeat`` single runs (a timing, not money)."""
    return round(min(timeit.repeat(work, number=1, repeat=repeat)) * 1000, 1)


def reference_ms() -> dict[str, float]:
    """Milliseconds of each reference workload on this machine now (best of five)."""
    floats = np.random.default_rng(_RNG_SEED).random(2_000_000)
    data = bytes(64 << 20)
    return {
        "python_sum_1m": _best_ms(lambda: sum(range(10**6))),
        "numpy_sort_2m": _best_ms(lambda: np.sort(floats)),
        "sha256_64mb": _best_ms(lambda: hashlib.sha256(data).digest()),
    }


def describe(ms: dict[str, float]) -> str:
    """One line for the console."""
    return (
        f"python sum(range(1e6)) {ms['python_sum_1m']} ms, "
        f"NumPy sort of 2 M floats {ms['numpy_sort_2m']} ms, "
        f"SHA-256 of 64 MB {ms['sha256_64mb']} ms"
    )
