"""The Reconciliation page: per scheme and fund, where every euro is; held payments; rejections.

A FastAPI app that Airflow's API server mounts (``plugins/payments_ui.py``).
Every route needs an authenticated Airflow user (the API server's JWT, from
the UI's session cookie or a bearer token) who is a finance approver or an
auditor (:mod:`payments.ui.access`), and only reads the ledger. Routes are
plain functions: FastAPI runs them in its thread pool, so a page that scans
the ledger never blocks the API server's event loop. The
ledger holds no NIR or IBAN; free text is masked all the same. Amounts are
integer cents, formatted for display only.
"""

import html
import json
from importlib import resources
from string import Template
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from payments.config import load_settings
from payments.ledger.finance import AT_BANK, STATES, finance_by_fund, reissue_list, tie_out
from payments.ledger.migrate import engine_for
from payments.logs import mask
from payments.money import euros

PAGE = Template(resources.files("payments.ui").joinpath("reconciliation.html").read_text("utf-8"))


def load(engine: Engine) -> dict[str, Any]:
    """Everything the page shows, from the ledger's finance views."""
    by_fund = finance_by_fund(engine)
    with engine.connect() as c:
        rejections = [
            dict(r)
            for r in c.execute(
                text(
                    "SELECT scheme_id, status, reason_code, SUM(payments) AS payments, "
                    "SUM(amount_cents) AS amount_cents FROM rejections_by_reason "
                    "GROUP BY scheme_id, status, reason_code "
                    "ORDER BY scheme_id, status, reason_code"
                )
            ).mappings()
        ]
        held = [
            dict(r)
            for r in c.execute(
                text(
                    "SELECT scheme_id, fund_code, household_id, amount_cents, reason "
                    "FROM payments WHERE state = 'held' "
                    "ORDER BY scheme_id, fund_code, household_id LIMIT 500"
                )
            ).mappings()
        ]
    by_run_fund = tie_out(engine)
    with Session(engine) as session:
        reissue = reissue_list(session)
    from payments.bank.inbox import received  # in the request, not when the plugin loads

    quarantined = received(engine, quarantined_only=True)
    totals = {
        k: sum(int(r[k] or 0) for r in by_fund)
        for k in ["households", "amount_cents"] + [f"{s}_cents" for s in STATES]
    }
    return {
        "by_fund": by_fund,
        "by_run_fund": by_run_fund,
        "rejections": rejections,
        "held": held,
        "reissue": reissue,
        "totals": totals,
        "quarantined": quarantined,
    }


def _bar_chart(title: str, items: list[tuple[str, int]]) -> str:
    """An inline SVG bar chart (no script, no library): label and amount in cents."""
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    height = 18 * len(items) + 24
    bars = []
    for i, (label, value) in enumerate(items):
        width = round(300 * value / top)
        y = 20 + 18 * i
        bars.append(
            f'<text x="0" y="{y + 12}" font-size="11">{html.escape(label)}</text>'
            f'<rect x="90" y="{y}" width="{width}" height="14" fill="#4a7bb7"/>'
            f'<text x="{96 + width}" y="{y + 12}" font-size="11">{html.escape(euros(value))}</text>'
        )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg role="img" width="520" height="{height}">{"".join(bars)}</svg></figure>'
    )


def render(data: dict[str, Any]) -> str:
    """The page as HTML (tables with a totals row, two charts)."""
    t = data["totals"]
    head = "".join(f"<th>{s}</th>" for s in STATES)
    rows = []
    for r in data["by_fund"]:
        cells = "".join(f'<td class="num">{euros(int(r[f"{s}_cents"] or 0))}</td>' for s in STATES)
        rows.append(
            f"<tr><td>{html.escape(r['scheme_id'])}</td><td>{html.escape(r['fund_code'])}</td>"
            f'<td class="num">{int(r["households"]):,}</td>{cells}</tr>'
        )
    total_cells = "".join(
        f'<td class="num" id="total-{s}">{euros(t[f"{s}_cents"])}</td>' for s in STATES
    )
    rejections = "".join(
        f"<tr><td>{html.escape(r['scheme_id'])}</td><td>{html.escape(r['status'])}</td>"
        f'<td>{html.escape(str(r["reason_code"]))}</td><td class="num">{int(r["payments"]):,}</td>'
        f'<td class="num">{euros(int(r["amount_cents"]))}</td></tr>'
        for r in data["rejections"]
    )
    held = "".join(
        f"<tr><td>{html.escape(r['scheme_id'])}</td><td>{html.escape(r['fund_code'])}</td>"
        f"<td>{html.escape(r['household_id'])}</td>"
        f'<td class="num">{euros(int(r["amount_cents"]))}</td>'
        f"<td>{html.escape(mask(str(r['reason'] or '')))}</td></tr>"
        for r in data["held"]
    )
    by_fund_chart = _bar_chart(
        "Sent by fund",
        [
            (f"{r['scheme_id'][-7:]} {r['fund_code']}", int(r["sent_cents"] or 0))
            for r in data["by_fund"]
        ][:40],
    )
    reasons_chart = _bar_chart(
        "Rejected and returned by reason",
        [
            (f"{r['status'][:3]} {r['reason_code']}", int(r["amount_cents"]))
            for r in data["rejections"]
        ],
    )
    by_run = "".join(
        f"<tr><td>{html.escape(r['run_id'])}</td><td>{html.escape(r['fund_code'])}</td>"
        f'<td class="num">{euros(r["files_cents"])}</td>'
        + "".join(f'<td class="num">{euros(r[f"{s}_cents"])}</td>' for s in AT_BANK)
        + f'<td class="tie">{"✓" if r["ties_out"] else "✗ does not tie out"}</td>'
        + f'<td><a class="bundle" href="runs/{html.escape(r["run_id"])}/bundle.zip">'
        "audit bundle</a></td></tr>"
        for r in data["by_run_fund"]
    )
    reissue = "".join(
        f"<tr><td>{html.escape(r['scheme_id'])}</td><td>{html.escape(r['fund_code'])}</td>"
        f"<td>{html.escape(r['household_id'])}</td><td>{html.escape(r['state'])}</td>"
        f'<td class="num">{euros(int(r["amount_cents"]))}</td><td class="num">{r["attempt"]}</td>'
        "</tr>"
        for r in data["reissue"]
    )
    quarantined = "".join(
        f"<tr><td>{r['received_at']:%Y-%m-%d %H:%M}</td><td>{html.escape(str(r['name']))}</td>"
        f'<td class="num">{int(r["bytes"]):,}</td>'
        f"<td>{html.escape(mask(str(r['reason'])))}</td></tr>"
        for r in data["quarantined"]
    )
    return PAGE.substitute(
        quarantined=quarantined
        or '<tr><td colspan="4">none: every report received was applied</td></tr>',
        reissue=reissue,
        by_run=by_run,
        head=head,
        rows="".join(rows),
        total_households=f"{t['households']:,}",
        total_cells=total_cells,
        by_fund_chart=by_fund_chart,
        rejections=rejections,
        reasons_chart=reasons_chart,
        held=held,
    )


def to_csv(data: dict[str, Any]) -> bytes:
    """The by-fund table as CSV (``;``-separated, as the reconciliation DAG writes it)."""
    from payments.spreadsheet import csv_bytes  # in the request, not when the plugin loads

    return csv_bytes(data["by_fund"])


def create_app() -> FastAPI:
    """The app the plugin mounts under ``/payments``."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import HTTPException

    app = FastAPI(title="Payments: reconciliation", docs_url=None, redoc_url=None, openapi_url=None)

    def reader(user: Annotated[Any, Depends(get_user)]) -> Any:
        from payments.ui.access import may_read_finance

        if not may_read_finance(user):
            raise HTTPException(403, "finance or auditor role needed")
        return user

    def _data() -> dict[str, Any]:
        return load(engine_for(load_settings().ledger_url))

    @app.get("/reconciliation", response_class=HTMLResponse)
    def page(user: Annotated[Any, Depends(reader)]) -> HTMLResponse:
        return HTMLResponse(render(_data()))

    @app.get("/runs/{run_id}/bundle.zip")
    def bundle(run_id: str, user: Annotated[Any, Depends(reader)]) -> Response:
        import re
        import tempfile
        from pathlib import Path

        from payments.archive import archive_key
        from payments.bundle import export_bundle
        from payments.sepa.signing import signer_paths
        from payments.storage import staged

        settings = load_settings()
        storage = settings.storage()
        record = f"runs/{run_id}/run.json"
        if not re.fullmatch(r"[a-z0-9-]+", run_id) or not storage.exists(record):
            raise HTTPException(404, f"no archived run {run_id}")
        with staged(storage, pull=[record, f"runs/{run_id}/payments"]) as area:
            scheme_digest = json.loads((area.root / record).read_text())["scheme_sha256"]
            area.pull(archive_key(scheme_digest))
            with tempfile.TemporaryDirectory() as tmp:
                data = export_bundle(
                    area.root,
                    settings.ledger_url,
                    run_id,
                    Path(tmp) / "bundle.zip",
                    signer_paths(settings.data_dir)[1],
                ).read_bytes()
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{run_id}-audit.zip"'},
        )

    @app.get("/reconciliation.csv")
    def csv(user: Annotated[Any, Depends(reader)]) -> Response:
        return Response(
            to_csv(_data()),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="reconciliation.csv"'},
        )

    return app
