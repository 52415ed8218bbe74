"""Each insider scenario of ``make faults`` is refused, with nothing approved without finance
and nothing paid without being shown (tests/faults/insiders.py; each in its own process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.insiders import SCENARIOS, run_one


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_insider_gets_nothing(name: str, tmp_path: Path) -> None:
    outcome = run_one(name, tmp_path / name)
    assert outcome.refused, outcome
    assert (outcome.approved_without_finance, outcome.paid_without_being_shown) == (0, 0), outcome
