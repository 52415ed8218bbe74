"""Properties of the engine on random households (Hypothesis)."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.entitlement.facts import BENEFITS, merge_months
from payments.entitlement.holding import _crowded
from payments.entitlement.preview import budget_preview
from payments.schemes import load_scheme
from tests.households import household, iban, nir, run

SCHEMES = {s: load_scheme(s) for s in ("aes-2020-05", "youth-2020-06", "aes-2020-11")}
NIRS = [nir(sex, date(1960 + i, 1 + i % 12, 1)) for i, sex in enumerate([1, 2] * 10)]
FUNDS = ["13", "2A", "59", "974"]


@st.composite
def households(draw: st.DrawFn, scheme_id: str) -> list[dict[str, Any]]:
    spec = SCHEMES[scheme_id].spec
    rows: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 25))):
        claimant = draw(st.sampled_from(NIRS))
        spouse = draw(st.one_of(st.none(), st.sampled_from(NIRS)))
        if spouse == claimant:
            spouse = None
        amounts = {
            k: draw(st.sampled_from([0, 0, 1, 15000]))
            for k in ("rsa_cents", "ass_cents", "aer_cents", "apl_cents", "als_cents")
        }
        n_children = draw(st.integers(0, 4))
        rows.append(
            household(
                fund_code=draw(st.sampled_from(FUNDS)),
                household_id=f"{2000000 + i}",
                reference_month=draw(st.sampled_from(spec.reference_months)),
                claimant_nir=claimant,
                spouse_nir=spouse,
                spouse_birth_date=None if spouse is None else date(1997, 3, 3),
                claimant_birth_date=draw(st.dates(date(1940, 1, 1), date(2002, 1, 1))),
                claimant_student_status=draw(
                    st.sampled_from(["none", "student", "apprentice", "salaried_student"])
                ),
                children_birth_dates=[
                    draw(st.dates(date(1998, 1, 1), spec.age_date)) for _ in range(n_children)
                ]
                or None,
                iban=iban(draw(st.integers(0, 6))),
                bank_details_changed_on=draw(st.dates(date(2010, 1, 1), spec.age_date)),
                **amounts,
            )
        )
    return rows


def _keyed(decisions: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["fund_code"], d["household_id"]): d for d in decisions}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(SCHEMES)).flatmap(lambda s: st.tuples(st.just(s), households(s))),
    st.randoms(use_true_random=False),
)
def test_engine_properties(case: tuple[str, list[dict[str, Any]]], rnd: random.Random) -> None:
    scheme_id, rows = case
    scheme = SCHEMES[scheme_id]
    decisions = run(scheme, rows)
    payable = [d for d in decisions if d["status"] == "payable"]
    # amounts are never negative, and totals are the sum of their parts
    assert all(d["payable_cents"] >= 0 and d["entitled_cents"] >= 0 for d in decisions)
    assert all(d["payable_cents"] == d["base_cents"] + d["child_cents"] for d in payable)
    assert all(d["child_cents"] == d["per_child_cents"] * d["children"] for d in decisions)
    if decisions:
        preview = budget_preview(pa.Table.from_pylist(decisions))
        assert preview["national"]["payable_cents"] == sum(d["payable_cents"] for d in decisions)
        assert (
            sum(t["payable_cents"] for t in preview["by_fund"].values())
            == preview["national"]["payable_cents"]
        )
    # nobody is payable twice: no key (claimant or spouse) on two payable households
    keys = [d["claimant_key"] for d in payable] + [
        d["spouse_key"] for d in payable if d["spouse_key"]
    ]
    assert len(keys) == len(set(keys))
    # every household is decided once
    households = {(r["fund_code"], r["household_id"]) for r in rows}
    assert set(_keyed(decisions)) == households
    # the result does not depend on the order of rows or files
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert _keyed(run(scheme, shuffled, reverse_files=True)) == _keyed(decisions)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["FR01", "FR02", "FR03", "DE04", None]), max_size=40),
    st.integers(0, 4),
)
def test_crowded_ibans_are_those_a_plain_count_finds(ibans: list[str | None], most: int) -> None:
    """The hash-first count of shared IBANs gives exactly a group-by's answer."""
    series = pl.Series("iban", ibans, pl.String)
    plain = series.to_frame().group_by("iban").len().filter(pl.col("len") > most).get_column("iban")
    assert sorted(_crowded(series, most).to_list(), key=str) == sorted(plain.to_list(), key=str)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["13", "2A"]),
            st.integers(0, 6),
            st.sampled_from(["2020-03", "2020-04", "2020-05"]),
        ),
        max_size=20,
    ),
    st.booleans(),
)
def test_month_merge_with_and_without_repeated_households(
    rows: list[tuple[str, int, str]], ordered: bool
) -> None:
    """The fast paths (no household repeats; rows already in order) give the group-by's frame."""
    unique_rows = sorted(set(rows)) if ordered else list(dict.fromkeys(rows))
    df = pl.DataFrame(
        {
            "fund_code": [f for f, _, _ in unique_rows],
            "household_id": [f"{h:07d}" for _, h, _ in unique_rows],
            "reference_month": [m for _, _, m in unique_rows],
            **{b: [i * 100 for i in range(len(unique_rows))] for b in BENEFITS},
            "iban": [f"FR{i}" for i in range(len(unique_rows))],
        },
        schema_overrides={b: pl.Int64 for b in BENEFITS},
    )
    months = ["2020-04", "2020-05"]
    keys = ["fund_code", "household_id"]
    grouped = (
        df.filter(pl.col("reference_month").is_in(months))
        .sort(*keys, "reference_month")
        .group_by(keys, maintain_order=True)
        .agg(
            *[pl.col(c).max() for c in BENEFITS],
            *[pl.col(c).last() for c in ("reference_month", "iban")],
            pl.len().cast(pl.Int64).alias("months"),
        )
    )
    merged = merge_months(df, months)
    assert merged.select(grouped.columns).sort(keys).equals(grouped)
