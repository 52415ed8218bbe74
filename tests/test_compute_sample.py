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
from payments.validation.folder import validate_folder
from payments.validation.outputs import FolderValidation
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
    # each held household says why it is entitled: its rule, the article, the facts read
    why = pl.from_arrow(review.select(["rule_id", "article", "months", "claimant_age"]))
    articles = load_scheme("aes-2020-05").articles()
    assert isinstance(why, pl.DataFrame)
    assert why.get_column("article").to_list() == [
        articles[r] for r in why.get_column("rule_id").to_list()
    ]
    assert why.get_column("months").min() >= 1  # type: ignore[operator]


def test_facts_built_ahead_give_the_same_files(
    computed: tuple[SampleResult, FolderValidation, ComputeResult], tmp_path: Path
) -> None:
    """Facts built while validation runs (``FactsAhead``) change no byte of the outputs,
    whichever funds got theirs ahead; the facts handed over are taken, not copied."""
    from payments.entitlement.folder import FactsAhead
    from payments.registry import load_registry

    _, _, result = computed
    scheme = load_scheme("aes-2020-05")
    validation_dir = result.out_dir.parent / "validation"
    funds = [f for f in load_registry().funds if (validation_dir / f.code).is_dir()]
    with FactsAhead(validation_dir, scheme, SECRET) as ahead:
        for fund in funds[::2]:  # every other fund ahead, the rest built by compute_folder
            ahead.landed(fund)
        facts = ahead.take()
    assert len(facts) == len(funds[::2]) > 10
    again = compute_folder(
        validation_dir,
        tmp_path / "compute",
        scheme,
        secret=SECRET,
        run_date=scheme.spec.payment_date,
        workers=2,
        facts=facts,
    )
    assert facts == {}
    for name in ("decisions.parquet", "review.parquet", "preview.json", "preview.csv"):
        assert (again.out_dir / name).read_bytes() == (result.out_dir / name).read_bytes(), name


def test_facts_ahead_leave_out_a_fund_rejected_after_validation(tmp_path: Path) -> None:
    """A fund whose accepted rows were removed since (same bytes as another's) gets no facts."""
    import shutil

    from payments.entitlement.folder import FactsAhead
    from payments.registry import load_registry

    scheme = load_scheme("aes-2020-05")
    root = tmp_path / "sample"
    write_sample(SampleSpec(households=2_000, seed=5, window=MAY_2020, funds=("13", "59")), root)
    window = Window(tuple(scheme.spec.reference_months), scheme.spec.age_date)
    validate_folder(root, root / "validation", scheme.id, window, funds=["13", "59"])
    registry = load_registry()
    with FactsAhead(root / "validation", scheme, SECRET) as ahead:
        ahead.landed(registry.get("13"))
        shutil.rmtree(root / "validation" / "59")  # as if rejected before its facts were read
        ahead.landed(registry.get("59"))
        assert set(ahead.take()) == {"13"}
        ahead.landed(registry.get("13"))  # too late (a pool's last callback): left to compute


def test_a_run_with_worker_processes_gives_the_same_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_batch`` with workers (validation in processes, facts built as funds land)
    and without: the same run id, the same decisions, byte for byte."""
    import shutil

    from payments import pipeline
    from payments.pipeline import run_batch
    from payments.run_spec import RunOptions

    ahead: list[int] = []

    def counting(*args: object, **kwargs: object) -> ComputeResult:
        ahead.append(len(kwargs.get("facts") or {}))  # type: ignore[arg-type]
        return compute_folder(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "compute_folder", counting)

    scheme = load_scheme("aes-2020-05")
    write_sample(
        SampleSpec(households=6_000, seed=11, window=MAY_2020, defect_rate=0.02), tmp_path / "a"
    )
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    one = run_batch(tmp_path / "a", scheme, secret=SECRET, options=RunOptions(workers=1))
    two = run_batch(tmp_path / "b", scheme, secret=SECRET, options=RunOptions(workers=2))
    assert ahead[0] == 0 and ahead[1] > 50  # the second run's facts were built ahead
    assert one.run_id == two.run_id
    for name in ("decisions.parquet", "review.parquet", "preview.json"):
        assert (one.out_dir / "compute" / name).read_bytes() == (
            two.out_dir / "compute" / name
        ).read_bytes(), name
