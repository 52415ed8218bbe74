"""The Reconciliation page: per scheme and fund, where every euro is; held payments; rejections.

For finance and auditors (:mod:`payments.ui.access`); it only reads the
ledger's finance views. The ledger holds no NIR or IBAN; free text is masked
all the same. Amounts are integer cents, formatted for display only.
"""

import html
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
from payments.ui.guard import Visitor, guard
from payments.ui.layout import bar_chart, page

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
    by_state_chart = bar_chart(
        "Where the euros are, by state",
        [(state, t[f"{state}_cents"]) for state in STATES],
        chart_id="chart-states",
    )
    by_fund_chart = bar_chart(
        "Sent by fund",
        [
            (f"{r['scheme_id'][-7:]} {r['fund_code']}", int(r["sent_cents"] or 0))
            for r in data["by_fund"]
        ][:40],
    )
    reasons_chart = bar_chart(
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
        by_fund_chart=by_state_chart + by_fund_chart,
        rejections=rejections,
        reasons_chart=reasons_chart,
        held=held,
    )


def to_csv(data: dict[str, Any]) -> bytes:
    """The by-fund table as CSV (``;``-separated, as the reconciliation DAG writes it)."""
    from payments.spreadsheet import csv_bytes  # in the request, not when the plugin loads

    return csv_bytes(data["by_fund"])


def register(app: FastAPI) -> None:
    """The Reconciliation page and its CSV."""

    def _data() -> dict[str, Any]:
        return load(engine_for(load_settings().ledger_url))

    @app.get("/reconciliation", response_class=HTMLResponse)
    def reconciliation(
        visitor: Annotated[Visitor, Depends(guard("read_reconciliation"))],
    ) -> HTMLResponse:
        body = render(_data())
        return HTMLResponse(
            page(
                "Reconciliation",
                body,
                base=visitor.base,
                roles=visitor.roles,
                here="reconciliation",
            )
        )

    @app.get("/reconciliation.csv")
    def reconciliation_csv(
        visitor: Annotated[Visitor, Depends(guard("read_reconciliation"))],
    ) -> Response:
        return Response(
            to_csv(_data()),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="reconciliation.csv"'},
        )
