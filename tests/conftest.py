"""Shared fixtures: the contract, the registry and generated samples."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings

from payments.contract import Contract, load_contract
from payments.registry import Registry, load_registry
from payments.sample.households import Window
from payments.sample.writer import SampleResult, SampleSpec, write_sample

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MAY_2020 = Window("aes-2020-05", ("2020-04", "2020-05"), date(2020, 5, 10))


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="session")
def clean_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """A defect-free sample over every fund."""
    root = tmp_path_factory.mktemp("clean")
    return write_sample(SampleSpec(households=30_000, seed=11, window=MAY_2020), root)


@pytest.fixture(scope="session")
def defect_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """A sample where 5 % of rows carry a defect, plus damaged files."""
    root = tmp_path_factory.mktemp("defects")
    spec = SampleSpec(households=20_000, seed=12, window=MAY_2020, defect_rate=0.05)
    return write_sample(spec, root)


# Under CI, property-based tests draw the same examples every run: a red build
# is then reproducible, never a roll of the dice.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
