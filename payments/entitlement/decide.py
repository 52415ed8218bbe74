"""National decisions: deduplicate across funds, apply prior payments and holds.

Every household of every fund gets exactly one status:

- ``paid_by_other_fund``: the same household (a shared claimant or spouse key)
  is in another fund's file, and that row wins: latest reference month first,
  then the fund registry's order, then the lowest household number;
- ``already_paid``: a previous run of this scheme paid it (complementary runs);
- ``not_eligible``: no rule fires, or a scheme it is not cumulable with paid it;
- ``held``: eligible, but a fraud/risk hold applies (``hold_reasons``); not paid
  until finance releases it;
- ``payable``: paid ``payable_cents`` = base + per-child part.

The tie-out is checked here (``TieOutError``): households = sum of statuses, and
the payable total = sum of base and child parts, per fund and nationally.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from payments.entitlement.holding import apply_holds, hashes_seen_more_than
from payments.entitlement.holds import (
    HoldPolicy,
)
from payments.errors import TieOutError
from payments.schemes import Scheme
from payments.statuses import DECISIONS, Decision

#: Payments already made, as the ledger gives them: one row per key and scheme.
PRIOR_SCHEMA = pa.schema(
    [("beneficiary_key", pa.string()), ("scheme_id", pa.string()), ("base_cents", pa.int64())]
)


def components(claimant: pl.Series, spouse: pl.Series) -> npt.NDArray[np.int64]:
    """Label each household with the smallest index of the households it shares a key with.

    Keys are graph edges (claimant key and spouse key of each household). Only
    keys seen more than once can link households, so the propagation runs on
    those few rows; labels are propagated until stable (a few rounds: real
    components have two or three households).
    """
    keys = [claimant, spouse]
    n = len(claimant)
    # Keys seen twice, found on 64-bit hashes of both columns (no copy of the
    # 8 million key strings; a collision, or a key hashing like a null, only
    # adds a row to ``linked``: the propagation below compares the keys themselves).
    present = np.concatenate([k.is_not_null().to_numpy() for k in keys])
    hashed = pl.concat([k.hash(seed=0) for k in keys])
    repeated = hashes_seen_more_than(hashed, 1)
    candidates = np.flatnonzero(hashed.is_in(repeated.implode()).to_numpy() & present)
    first = candidates[candidates < n]
    second = candidates[candidates >= n] - n
    linked = pl.DataFrame(
        {
            "key": pl.concat([keys[0].gather(first), keys[1].gather(second)]),
            "owner": np.concatenate([first, second]).astype(np.int64),
        }
    )
    label = np.arange(n, dtype=np.int64)
    if linked.height == 0:
        return label
    codes = linked.get_column("key").cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    owner = linked.get_column("owner").to_numpy()
    while True:
        per_key = np.full(int(codes.max()) + 1, n, np.int64)
        np.minimum.at(per_key, codes, label[owner])
        new = label.copy()
        np.minimum.at(new, owner, per_key[codes])
        if np.array_equal(new, label):
            return label
        label = new


def decide(
    facts: pa.Table,
    scheme: Scheme,
    *,
    holds: HoldPolicy,
    fund_order: list[str],
    run_date: date,
    prior: pa.Table | None = None,
    released: Sequence[str] = (),
) -> pa.Table:
    """Give every household (all funds' facts together) its status and payable amount.

    ``released``: claimant keys whose hold finance lifted after review; they are
    not held again for the same reasons.
    """
    return decide_frame(
        facts,
        scheme,
        holds=holds,
        fund_order=fund_order,
        run_date=run_date,
        prior=prior,
        released=released,
    ).to_arrow()


def decide_frame(
    facts: pa.Table | pl.DataFrame,
    scheme: Scheme,
    *,
    holds: HoldPolicy,
    fund_order: list[str],
    run_date: date,
    prior: pa.Table | None = None,
    released: Sequence[str] = (),
) -> pl.DataFrame:
    """``decide`` as a polars frame: the compute stage writes and hands it on as it is
    (converting millions of rows of text to Arrow and back would cost time for the
    same values)."""
    df = facts if isinstance(facts, pl.DataFrame) else pl.from_arrow(facts)
    assert isinstance(df, pl.DataFrame)
    n = df.height
    df = _winners(_with_components(df, fund_order))
    df = _statuses(df, scheme, prior)
    df = apply_holds(df, holds, run_date, released)
    df = df.with_columns(
        pl.when(pl.col("status") == Decision.PAYABLE)
        .then(pl.col("entitled_cents"))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("payable_cents"),
        pl.lit(scheme.id).alias("scheme_id"),
    )
    # Output in registry order, then household number (skip the sort, and its copy
    # of every column, when the funds' facts already came in that order).
    order = pl.col("_fund_rank") * 10**11 + pl.col("household_id").cast(pl.Int64, strict=False)
    if not df.select(order).to_series().is_sorted():
        df = df.sort("_fund_rank", "household_id")
    df = df.drop("component", "_shared", "_fund_rank", "_row", "_wf")
    check_tie_out(df, expected_households=n)
    return df


def _with_components(df: pl.DataFrame, fund_order: list[str]) -> pl.DataFrame:
    """Each household's component (households sharing a claimant or a spouse are one
    component), whether it is shared, its fund's registry rank and its row number."""
    n = df.height
    rank = {code: i for i, code in enumerate(fund_order)}
    label = components(df.get_column("claimant_key"), df.get_column("spouse_key"))
    shared = np.bincount(label, minlength=n)[label] > 1
    return df.with_columns(
        pl.Series("component", label),
        pl.Series("_shared", shared),
        pl.col("fund_code").replace_strict(rank, return_dtype=pl.Int64).alias("_fund_rank"),
        pl.int_range(n, dtype=pl.Int64).alias("_row"),
    )


def _winners(df: pl.DataFrame) -> pl.DataFrame:
    """``_wf``: for a household another fund's row of its component wins, that fund.

    Winner of each shared component: latest month, then registry order, then
    household number. Singletons (nearly everyone) win by themselves.
    """
    n = df.height
    contenders = (
        df.lazy()  # lazy: only the columns below are filtered, not all forty
        .filter(pl.col("_shared"))
        .select("component", "reference_month", "_fund_rank", "household_id", "fund_code", "_row")
        .sort(
            ["component", "reference_month", "_fund_rank", "household_id"],
            descending=[False, True, False, False],
        )
        .collect()
    )
    winners = contenders.group_by("component", maintain_order=True).first()
    losers = contenders.join(winners.select("_row"), on="_row", how="anti").join(
        winners.select("component", pl.col("fund_code").alias("_wf")), on="component"
    )
    # Few losers: their winner's fund scattered into a column of nulls by row
    # number, rather than a lookup or a join over every household.
    return df.with_columns(
        pl.Series("_wf", [None], pl.String)
        .extend_constant(None, n - 1)
        .scatter(losers.get_column("_row"), losers.get_column("_wf"))
        if n
        else pl.lit(None, pl.String).alias("_wf")
    )


def _paid_components(
    households: pl.DataFrame, prior: pl.DataFrame, schemes: list[str], *, base_only: bool
) -> pl.Expr:
    """True for components one of whose keys ``prior`` holds under ``schemes``
    (``base_only``: only payments with a base amount, for non-cumulable schemes)."""
    rows = prior.filter(pl.col("scheme_id").is_in(schemes))
    if base_only:
        rows = rows.filter(pl.col("base_cents") > 0)
    if rows.height == 0:
        return pl.lit(False)
    paid = rows.get_column("beneficiary_key").unique()
    hit = households.filter(
        pl.col("claimant_key").is_in(paid.implode())
        | pl.col("spouse_key").is_in(paid.implode()).fill_null(False)
    ).get_column("component")
    return pl.col("component").is_in(hit.unique().implode())


def _statuses(df: pl.DataFrame, scheme: Scheme, prior: pa.Table | None) -> pl.DataFrame:
    """Each household's status and reason before holds: paid by another fund, already
    paid, not eligible (no rule, not cumulable, a zero amount), or payable."""
    prior_df = pl.DataFrame(prior if prior is not None else PRIOR_SCHEMA.empty_table())
    duplicate = pl.col("_wf").is_not_null()
    already = _paid_components(df, prior_df, [scheme.id], base_only=False)
    not_cumulable = _paid_components(
        df, prior_df, list(scheme.spec.not_cumulable_with), base_only=True
    )
    # A rule that fires with a zero amount (no base, no dependent child) pays nothing.
    eligible = pl.col("rule_id").is_not_null() & ~not_cumulable & (pl.col("entitled_cents") > 0)
    return df.with_columns(
        pl.when(duplicate)
        .then(pl.lit(Decision.PAID_BY_OTHER_FUND))
        .when(already)
        .then(pl.lit(Decision.ALREADY_PAID))
        .when(~eligible)
        .then(pl.lit("not_eligible"))
        .otherwise(pl.lit(Decision.PAYABLE))
        .alias("status"),
        pl.when(duplicate)
        .then(pl.concat_str(pl.lit("paid_by_other_fund:"), pl.col("_wf")))
        .when(already)
        .then(pl.lit(Decision.ALREADY_PAID))
        .when(not_cumulable & pl.col("rule_id").is_not_null())
        .then(pl.lit("not_cumulable:" + ",".join(scheme.spec.not_cumulable_with)))
        .when(pl.col("rule_id").is_null())
        .then(pl.lit("no_rule"))
        .when(~eligible)
        .then(pl.lit("zero_amount"))
        .otherwise(None)
        .alias("reason"),
    )


def check_tie_out(decisions: pa.Table | pl.DataFrame, *, expected_households: int) -> None:
    """Households = sum of statuses; payable cents = base + child parts of payable rows."""
    df = decisions if isinstance(decisions, pl.DataFrame) else pl.from_arrow(decisions)
    assert isinstance(df, pl.DataFrame)
    if df.height != expected_households:
        raise TieOutError(f"{expected_households} households in, {df.height} decisions out")
    unknown = set(df.get_column("status").unique().to_list()) - set(DECISIONS)
    if unknown:
        raise TieOutError(f"unknown statuses {sorted(unknown)}")
    per_fund = df.group_by("fund_code").agg(
        pl.len().alias("households"),
        *[(pl.col("status") == s).sum().alias(s) for s in DECISIONS],
        pl.col("payable_cents").sum().alias("_payable_cents"),
        pl.when(pl.col("status") == Decision.PAYABLE)
        .then(pl.col("base_cents") + pl.col("child_cents"))
        .otherwise(0)
        .sum()
        .alias("parts"),
        (pl.col("payable_cents") < 0).any().alias("negative"),
    )
    bad = per_fund.filter(
        (pl.sum_horizontal(*DECISIONS) != pl.col("households"))
        | (pl.col("_payable_cents") != pl.col("parts"))
        | pl.col("negative")
    )
    if bad.height:
        raise TieOutError(f"tie-out fails for funds {bad.get_column('fund_code').to_list()}")
    paid_keys = df.select("status", "claimant_key", "spouse_key").filter(
        pl.col("status") == Decision.PAYABLE
    )
    keys = pl.concat(
        [paid_keys.get_column("claimant_key"), paid_keys.get_column("spouse_key").drop_nulls()]
    )
    # 64-bit hashes first (fast); only if two collide are the keys themselves compared.
    if keys.hash(seed=0).n_unique() != keys.len() and keys.n_unique() != keys.len():
        raise TieOutError("a beneficiary key is payable twice")
