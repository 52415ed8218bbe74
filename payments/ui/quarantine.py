"""The Quarantine page: per fund, the rows validation set aside and why, for the fund's staff.

Read from a run's ``validation/validation.json`` (each fund's status, rows
read, accepted, quarantined, rules broken) in the storage root. The download
is the fund's ``quarantine.parquet`` as CSV with every cell masked the way
the logs mask (NIRs and IBANs): the fund corrects its file from the line
numbers and reasons without the page handing out identities.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from payments.ui.guard import Visitor, guard
from payments.ui.layout import esc, num, page, table
from payments.ui.runs import chosen_run, run_picker


def register(app: FastAPI) -> None:
    """The page and each fund's masked CSV."""

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(
        visitor: Annotated[Visitor, Depends(guard("read_quarantine"))], run: str = ""
    ) -> HTMLResponse:
        return HTMLResponse(_page(visitor, chosen_run(run)))

    @app.get("/quarantine/{run_id}/{fund}.csv")
    def quarantine_csv(
        run_id: str, fund: str, visitor: Annotated[Visitor, Depends(guard("read_quarantine"))]
    ) -> Response:
        return Response(
            masked_csv(chosen_run(run_id), fund),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{run_id}-{fund}-quarantine.csv"'
            },
        )


def validation(run_id: str) -> dict[str, Any]:
    """The run's validation totals and per-fund reports."""
    from payments.config import load_settings

    storage = load_settings().storage()
    key = f"runs/{run_id}/validation/validation.json"
    if not storage.exists(key):
        raise HTTPException(404, f"run {run_id} has no validation results in the storage root")
    return dict(json.loads(storage.read_text(key)))


def _page(visitor: Visitor, run_id: str) -> str:
    data = validation(run_id)
    totals = data["totals"]
    rows = []
    for f in data["funds"]:
        status = (
            esc(f["status"])
            if f["status"] == "received"
            else (f'<span class="bad">{esc(f["status"])}</span>: {esc(f.get("message") or "")}')
        )
        rules = ", ".join(f"{esc(k)} {v:,}" for k, v in sorted(f["rules"].items()))
        link = (
            f'<a class="csv" href="{visitor.base}/quarantine/{esc(run_id)}/{esc(f["fund_code"])}'
            '.csv">CSV</a>'
            if f["quarantined"]
            else ""
        )
        rows.append(
            (
                esc(f["fund_code"]),
                status,
                num(f["rows_read"]),
                num(f["accepted"]),
                num(f["quarantined"]),
                rules,
                link,
            )
        )
    by_rule = [(esc(rule), num(n)) for rule, n in totals["rules"].items()]
    body = (
        run_picker(visitor, "quarantine", run_id)
        + f'<p class="big" id="totals">Rows read {totals["rows_read"]:,} = accepted '
        f"{totals['accepted']:,} + quarantined {totals['quarantined']:,}</p>"
        + table("by-rule", ("Rule broken", "Rows"), by_rule, empty="no row quarantined")
        + "<h2>By fund</h2>"
        + '<p class="note">A row may break several rules. The CSV has each quarantined row '
        "with its line number and reasons; NIRs and IBANs are masked.</p>"
        + table(
            "by-fund",
            ("Fund", "File", "Rows read", "Accepted", "Quarantined", "Rules broken", "Download"),
            rows,
        )
    )
    return page("Quarantine", body, base=visitor.base, roles=visitor.roles, here="quarantine")


def masked_csv(run_id: str, fund: str) -> bytes:
    """The fund's quarantined rows as CSV, every text cell masked as the logs mask it."""
    import io
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from payments.config import load_settings
    from payments.logs import mask
    from payments.validation.outputs import write_quarantine_csv

    storage = load_settings().storage()
    key = f"runs/{run_id}/validation/{fund}/quarantine.parquet"
    if not fund.isalnum() or not storage.exists(key):
        raise HTTPException(404, f"no quarantine for fund {fund} in run {run_id}")
    rows = pq.read_table(io.BytesIO(storage.read_bytes(key)))
    columns = []
    for column in rows.itercolumns():
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pa.array([None if v is None else mask(v) for v in column.to_pylist()])
        elif pa.types.is_list(column.type):
            column = pa.array(
                [None if v is None else [mask(str(x)) for x in v] for v in column.to_pylist()],
                pa.list_(pa.string()),
            )
        columns.append(column)
    masked = pa.table(columns, names=rows.column_names)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "quarantine.csv"
        write_quarantine_csv(masked, path)
        return path.read_bytes()
