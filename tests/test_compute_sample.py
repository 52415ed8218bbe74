"""A generated sample, validated then computed: national defects end where they should."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from payments.entitlement.folder import ComputeResult, compute_folder
from payments.sample.writer import SampleResult, SampleSpec, write_sample
from payments.schemes import load_scheme
from payments.validation.folder import FolderValidation, validate_folder
from payments.validation.schema import Window
from tests.conftest import MAY_2020
from tests.households import SECRET


@pytest.fixture(scope="module")
def computed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SampleResult, FolderValidation, ComputeResult]:
    root = tmp_path_factory.mktemp("compute")
    scheme = load_scheme("aes-2020-05")
    sample = write_sample(
        SampleSpec(households=30_000, seed=31, window=MAY_2020, defect_rate=0.03), root
    )
    window = Window(tuple(scheme.spec.reference_months), scheme.spec.age_date)
    validation = validate_folder(root, root / "validation", scheme.id, window)
    result = compute_folder(
        root / "validation",
        root / "compute",
        scheme,
        secret=SECRET,
        run_date=scheme.spec.payment_date,
    )
    return sample, validation, result


def _decisions(result: ComputeResult) -> pl.DataFrame:
    return pl.read_parquet(result.out_dir / "decisions.parquet")


def test_households_tie_out(
    computed: tuple[SampleResult, FolderValidation, ComputeResult],
) -> None:
    _, validation, result = computed
    decisions = _decisions(result)
    assert decisions.height == validation.totals()["accepted"]  # one row per household here
    national = result.preview["national"]
    statuses = ("payable", "held", "not_eligible", "paid_by_other_fund", "already_paid")
    assert sum(national[s]["households"] for s in statuses) == national["households"]
    assert national["payable_cents"] == decisions.get_column("payable_cents").sum()
    assert "claimant_nir" not in decisions.columns and "spouse_nir" not in decisions.columns


def test_households_that_moved_are_paid_once(
    computed: tuple[SampleResult, FolderValidation, ComputeResult],
) -> None:
    sample, _, result = computed
    truth = pl.read_parquet(Path(sample.root) / sample.truth_path)
    moved = truth.filter(pl.col("kind") == "moved_between_funds").select(
        "fund_code", "household_id"
    )
    decided = moved.join(_decisions(result), on=["fund_code", "household_id"])
    assert decided.height > 10
    by_key = decided.group_by("claimant_key").agg(pl.col("status"))
    pairs = [s for s in by_key.get_column("status").to_list() if len(s) == 2]
    assert pairs
    for statuses in pairs:
        assert statuses.count("paid_by_other_fund") == 1, statuses


def test_no_account_pays_more_households_than_allowed(
    computed: tuple[SampleResult, FolderValidation, ComputeResult],
) -> None:
    sample, _, result = computed
    decisions = _decisions(result)
    payable = decisions.filter(pl.col("status") == "payable")
    assert Counter(payable.get_column("iban").to_list()).most_common(1)[0][1] <= 2
    truth = pl.read_parquet(Path(sample.root) / sample.truth_path)
    shared = set(truth.filter(pl.col("kind") == "shared_iban").get_column("detail").to_list())
    held = decisions.filter(pl.col("hold_reasons").list.contains("shared_iban"))
    assert held.height > 0 and set(held.get_column("iban").to_list()) <= shared
    review = pq.read_table(result.out_dir / "review.parquet")
    assert review.num_rows == decisions.filter(pl.col("status") == "held").height
