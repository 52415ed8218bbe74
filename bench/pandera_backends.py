"""Pandera on pandas (Arrow dtypes) versus Pandera on polars, 1 M fund rows.

Run: ``python -m bench.pandera_backends [ROWS]``. Generates a
sample in a temporary folder, reads it into Arrow, injects ~1 % of failures and
validates the same rules with both backends, lazily (every failure collected).
It prints wall time per backend and whether each failure case carries the row
index — quarantine needs exact rows. The figures are recorded in
docs/decisions.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pdp
import pandera.polars as ppl
import polars as pl
import pyarrow as pa

from payments.contract import load_contract
from payments.intake import read_rows
from payments.sample.households import Window
from payments.sample.writer import SampleSpec, write_sample

NIR = r"^[1-478][0-9]{4}(2A|2B|[0-9]{2})[0-9]{8}$"
IBAN = r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
CENTS = ["rsa_cents", "ass_cents", "apl_cents"]


def _pandas_schema() -> pdp.DataFrameSchema:
    return pdp.DataFrameSchema(
        {
            "claimant_nir": pdp.Column(str, pdp.Check.str_matches(NIR)),
            "iban": pdp.Column(str, pdp.Check.str_matches(IBAN)),
            "claimant_student_status": pdp.Column(
                str, pdp.Check.isin(["none", "student", "apprentice", "salaried_student"])
            ),
            **{c: pdp.Column("int64", pdp.Check.ge(0)) for c in CENTS},
        },
    )


def _polars_schema() -> ppl.DataFrameSchema:
    return ppl.DataFrameSchema(
        {
            "claimant_nir": ppl.Column(str, ppl.Check.str_matches(NIR)),
            "iban": ppl.Column(str, ppl.Check.str_matches(IBAN)),
            "claimant_student_status": ppl.Column(
                str, ppl.Check.isin(["none", "student", "apprentice", "salaried_student"])
            ),
            **{c: ppl.Column(pl.Int64, ppl.Check.ge(0)) for c in CENTS},
        },
    )


def _frame(rows: int) -> pa.Table:
    contract = load_contract()
    with tempfile.TemporaryDirectory() as tmp:
        result = write_sample(
            SampleSpec(rows, 1, Window("bench", ("2020-05",), date(2020, 5, 10)), 0.0),
            Path(tmp),
        )
        table = pa.concat_tables(
            read_rows((Path(tmp) / f.path).read_bytes(), contract).table for f in result.files
        )
    table = table.select(["claimant_nir", "iban", "claimant_student_status", *CENTS])
    cents = {c: table.column(c).cast(pa.int64()) for c in CENTS}
    for c, arr in cents.items():
        table = table.set_column(table.schema.get_field_index(c), c, arr)
    # ~1 % failures, spread: broken NIR, lower-case IBAN, negative amount.
    n = table.num_rows
    bad = pa.array([i % 100 == 0 for i in range(n)])
    import pyarrow.compute as pc

    nir = pc.if_else(bad, pa.scalar("3XXXX"), table.column("claimant_nir"))
    amount = pc.if_else(bad, pa.scalar(-1, pa.int64()), table.column("rsa_cents"))
    table = table.set_column(0, "claimant_nir", nir)
    return table.set_column(table.schema.get_field_index("rsa_cents"), "rsa_cents", amount)


def _time(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(rows: int = 1_000_000) -> dict[str, Any]:
    table = _frame(rows)
    expected = (rows + 99) // 100 * 2  # NIR + amount per bad row
    report: dict[str, Any] = {"rows": table.num_rows, "expected_failures": expected}

    pdf = table.to_pandas(types_mapper=pd.ArrowDtype)
    schema_pd = _pandas_schema()
    secs, err = _time(lambda: _failures(lambda: schema_pd.validate(pdf, lazy=True)))
    report["pandas_arrow"] = {"seconds": round(secs, 2), **_describe(err)}

    pldf = pl.DataFrame(table)
    schema_pl = _polars_schema()
    secs, err = _time(lambda: _failures(lambda: schema_pl.validate(pldf, lazy=True)))
    report["polars"] = {"seconds": round(secs, 2), **_describe(err)}
    return report


def _failures(run: Any) -> Any:
    try:
        run()
    except Exception as exc:  # SchemaErrors from either backend
        return exc
    return None


def _describe(exc: Any) -> dict[str, Any]:
    if exc is None:
        return {"failure_cases": 0}
    cases = exc.failure_cases
    if not isinstance(cases, pd.DataFrame):
        cases = cases.to_pandas()
    with_index = int(cases["index"].notna().sum()) if "index" in cases else 0
    return {"failure_cases": len(cases), "with_row_index": with_index}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
