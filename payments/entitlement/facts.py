"""One fund's accepted rows → one row of facts per household (pure, per fund).

- Rows of the same household for several reference months are merged: each
  benefit counts if due in *any* month of the window (its largest amount is
  kept); every other fact comes from the latest month.
- NIRs are replaced by keyed hashes (``keys``): nothing downstream holds a NIR.
- Ages are whole years on the scheme's age date (a birthday on that date
  counts); children are dependent when born on or before that date and under
  the scheme's age limit on it.
- The scheme's rules are evaluated in order; the first that holds decides the
  base and per-child amounts (non-cumulation is rule order).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from payments.entitlement.conditions import FACTS, with_derived_facts
from payments.entitlement.keys import beneficiary_keys
from payments.schemes import Scheme

BENEFITS = (
    "rsa_cents",
    "rso_cents",
    "ass_cents",
    "aer_cents",
    "prime_forfaitaire_cents",
    "apl_cents",
    "alf_cents",
    "als_cents",
)
#: Columns of the facts table, in order (no NIR among them).
COLUMNS = (
    "fund_code",
    "household_id",
    "reference_month",
    "months",
    "claimant_key",
    "spouse_key",
    *BENEFITS,
    "housing_cents",
    "claimant_age",
    "spouse_age",
    "youngest_adult_age",
    "children",
    "couple",
    "overseas",
    "claimant_student_status",
    "spouse_student_status",
    "payee_name",
    "claimant_last_name",
    "claimant_first_name",
    "iban",
    "bic",
    "account_holder",
    "bank_details_changed_on",
    "rule_id",
    "base_cents",
    "per_child_cents",
    "child_cents",
    "entitled_cents",
)


#: The contract's student statuses, as the stored facts keep the partner's.
STUDENT_STATUS = pl.Enum(["none", "student", "apprentice", "salaried_student"])


def _age(birth: pl.Expr, on: date) -> pl.Expr:
    """Whole years on ``on``: the year difference, minus one before the birthday."""
    # month() and day() are Int8: widen before multiplying, or 5 * 100 overflows.
    month_day = birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day().cast(pl.Int32)
    before_birthday = month_day > (on.month * 100 + on.day)
    return (on.year - birth.dt.year().cast(pl.Int64)) - before_birthday.cast(pl.Int64)


def _sorted_within_funds(rows: pl.DataFrame, keys: list[str]) -> bool:
    """Rows already come fund by fund (each fund one block), households ascending in each."""
    if keys == ["household_id"]:
        return rows.get_column("household_id").is_sorted()
    fund, household = pl.col("fund_code"), pl.col("household_id")
    same_fund = (fund == fund.shift(1)).fill_null(False)
    ascending, blocks = rows.select(
        (~same_fund | (household >= household.shift(1)).fill_null(True)).all().alias("ascending"),
        (~same_fund).sum().alias("blocks"),
    ).row(0)
    return bool(ascending) and int(blocks) == rows.get_column("fund_code").n_unique()


def merge_months(accepted: pl.DataFrame, months: list[str]) -> pl.DataFrame:
    """One row per household (of each fund): benefits due in any month of the window,
    the rest latest."""
    keys: list[str] = [c for c in ("fund_code", "household_id") if c in accepted.columns]
    in_window = pl.col("reference_month").is_in(months)
    rows = accepted if accepted.select(in_window.all()).item() else accepted.filter(in_window)
    ordered = _sorted_within_funds(rows, keys)
    if ordered:  # repeats, if any, sit side by side: no hashing of every key
        same = pl.all_horizontal(pl.col(k) == pl.col(k).shift(1) for k in keys).fill_null(False)
        repeated = rows.select(same.any()).item()
    else:
        repeated = rows.select(pl.struct(keys).is_duplicated().any()).item()
    if not repeated:
        # One row per household (most files): nothing to merge. The group-by
        # below would copy every column of every row to give the same values.
        if not ordered:
            rows = rows.sort(keys)
        return rows.with_columns(pl.lit(1, pl.Int64).alias("months"))
    others = [c for c in rows.columns if c not in BENEFITS and c not in keys]
    return (
        rows.sort(*keys, "reference_month")
        .group_by(keys, maintain_order=True)
        .agg(
            *[pl.col(c).max() for c in BENEFITS],
            *[pl.col(c).last() for c in others],
            pl.len().cast(pl.Int64).alias("months"),
        )
    )


def evaluate_rules(facts: pa.Table, scheme: Scheme) -> pa.Table:
    """Add the rule that fires (first in order) and the amounts it gives, in cents.

    A rule pays ``base_cents + per_child_cents × children``, or its ``amount``
    expression (all in ``base_cents``, for the household's composition).
    """
    derived = with_derived_facts(facts)
    dataset = ds.dataset(derived)
    fired = dataset.to_table(
        columns={f"r{i}": rule.condition for i, rule in enumerate(scheme.rules)}
    )
    n = facts.num_rows
    index = pa.nulls(n, pa.int64())
    for i in reversed(range(len(scheme.rules))):  # first rule in order wins
        index = pc.if_else(fired.column(f"r{i}"), i, index)
    specs = [r.spec for r in scheme.rules]

    def pick(values: list[int] | list[str]) -> pa.Array:
        return pa.array(values).take(index)

    base = pick([s.base_cents or 0 for s in specs])
    for i, rule in enumerate(scheme.rules):
        if rule.amount is not None:
            amount = dataset.to_table(columns={"a": rule.amount}).column("a")
            if pc.any(pc.less(amount, 0)).as_py():
                raise ValueError(f"{scheme.source}: rule {rule.spec.id} gives a negative amount")
            base = pc.if_else(pc.equal(index, i), amount, base)
    per_child = pick([s.per_child_cents or 0 for s in specs])
    child = pc.multiply_checked(per_child, facts.column("children"))
    entitled = pc.add_checked(base, child)
    zero = pa.scalar(0, pa.int64())
    return (
        facts.append_column("rule_id", pick([s.id for s in specs]))
        .append_column("base_cents", pc.coalesce(base, zero))
        .append_column("per_child_cents", pc.coalesce(per_child, zero))
        .append_column("child_cents", pc.coalesce(child, zero))
        .append_column("entitled_cents", pc.coalesce(entitled, zero))
    )


def household_facts(
    accepted: pa.Table, scheme: Scheme, *, secret: bytes, overseas: bool
) -> pa.Table:
    """Facts and rule outcome of every household of one fund's accepted rows."""
    df = pl.from_arrow(accepted)
    assert isinstance(df, pl.DataFrame)
    return household_facts_frame(df, scheme, secret=secret, overseas=overseas).to_arrow()


#: Polars types of the facts columns (a pure function of the Arrow ones).
_POLARS_FACTS = {
    name: pl.DataFrame(pa.table({name: pa.array([], t)})).schema[name] for name, t in FACTS.items()
}


def household_facts_frame(
    accepted: pl.DataFrame, scheme: Scheme, *, secret: bytes, overseas: bool
) -> pl.DataFrame:
    """``household_facts`` as a polars frame, the form the compute stage keeps.

    The facts of 4 million households went to Arrow and back to polars on
    their way to ``decide``: two copies of every text column for nothing.
    Only the rule conditions (Arrow expressions) see an Arrow table, of the
    few columns they read.
    """
    spec = scheme.spec
    merged = merge_months(accepted, spec.reference_months)
    on = spec.age_date
    child_age = _age(pl.element(), on)
    facts = merged.with_columns(
        pl.sum_horizontal("apl_cents", "alf_cents", "als_cents").alias("housing_cents"),
        _age(pl.col("claimant_birth_date"), on).alias("claimant_age"),
        _age(pl.col("spouse_birth_date"), on).alias("spouse_age"),
        pl.col("children_birth_dates")
        .list.eval(((pl.element() <= on) & (child_age < spec.children.max_age)).cast(pl.Int64))
        .list.sum()
        .fill_null(0)
        .alias("children"),
        pl.col("spouse_nir").is_not_null().alias("couple"),
        pl.lit(overseas).alias("overseas"),
    ).with_columns(
        pl.min_horizontal("claimant_age", "spouse_age").alias("youngest_adult_age"),
    )

    def keys(column: str) -> pl.Series:
        nirs = facts.get_column(column).to_arrow(compat_level=pl.CompatLevel.newest())
        return pl.Series(beneficiary_keys(nirs, secret))

    # The two key columns in two threads (AES and NumPy release the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        claimant_key, spouse_key = pool.map(keys, ["claimant_nir", "spouse_nir"])
    facts = facts.with_columns(claimant_key.alias("claimant_key"), spouse_key.alias("spouse_key"))
    before_rules = [c for c in COLUMNS[: COLUMNS.index("rule_id")] if c in facts.columns]
    facts = facts.select(before_rules).cast(
        {name: dtype for name, dtype in _POLARS_FACTS.items() if name in before_rules}
    )
    conditions = facts.select([c for c in FACTS if c in facts.columns]).to_arrow()
    # Kept as an enum (4 bytes a row, not a 16-byte string view): four values do not
    # deserve a text column in the national frame.
    facts = facts.with_columns(pl.col("spouse_student_status").cast(STUDENT_STATUS))
    outcome = pl.from_arrow(evaluate_rules(conditions, scheme).select(list(COLUMNS[-5:])))
    assert isinstance(outcome, pl.DataFrame)
    # One chunk per column: polars re-aligned a many-chunk frame (a copy of
    # every column) part-way through ``decide``.
    return pl.concat([facts, outcome], how="horizontal").select(list(COLUMNS)).rechunk()
