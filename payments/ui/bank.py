"""The Bank page: the reports the ledger received, applied or quarantined, and an upload.

The bank's status reports (pain.002) and notifications (camt.054) normally
arrive on its SFTP server, where the reconciliation DAG picks them up. Some
banks send them by other means (a portal, an e-mail): finance uploads such a
file here. The page keeps it in the storage root
(``bank-reports/uploaded/``) and a run of ``solidarity_finance_action`` in
the user's name applies it (the web server reads the ledger only) through
the DAG's loop (:func:`payments.bank.inbox.ingest_reports`): applied once
(by SHA-256), or quarantined with the reason and nothing moved. The ledger's
event log keeps who uploaded which report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from payments.ui.access import PERMISSIONS
from payments.ui.dagruns import FINANCE_ACTION_DAG, trigger
from payments.ui.guard import Visitor, guard
from payments.ui.layout import esc, num, page, table


def register(app: FastAPI) -> None:
    """The list of reports and the upload."""

    @app.get("/bank", response_class=HTMLResponse)
    def bank(
        visitor: Annotated[Visitor, Depends(guard("read_bank"))], uploaded: str = ""
    ) -> HTMLResponse:
        return HTMLResponse(_page(visitor, uploaded))

    @app.post("/bank/reports")
    def upload(
        report: UploadFile, visitor: Annotated[Visitor, Depends(guard("upload_bank_report"))]
    ) -> RedirectResponse:
        sha = _ingest(visitor, report)
        return RedirectResponse(f"{visitor.base}/bank?uploaded={sha}", status_code=303)


def _engine() -> Any:
    from payments.config import load_settings
    from payments.ledger.migrate import engine_for

    return engine_for(load_settings().ledger_url)


def _ingest(visitor: Visitor, report: UploadFile) -> str:
    """Keep the uploaded report in the storage root and have a finance-action run apply it in
    the visitor's name (the web server reads the ledger only); its SHA-256."""
    import re

    from payments.bank.inbox import digest
    from payments.config import load_settings
    from payments.orchestration.finance_actions import UPLOADED
    from payments.registry import load_registry

    cap = load_registry().report_max_bytes
    data = report.file.read(cap + 1)
    if not data:
        raise HTTPException(400, "the file is empty: choose the bank's report file")
    sha = digest(data)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", report.filename or "report.xml")[-120:]
    key = f"{UPLOADED}/{sha[:16]}-{name}"
    load_settings().storage().write_bytes(key, data)
    conf = {"action": "apply_report", "report": key}
    trigger(FINANCE_ACTION_DAG, visitor, conf, action="apply_report", vouched={"report": key})
    return sha


def _page(visitor: Visitor, uploaded: str) -> str:
    from payments.bank.inbox import received
    from payments.logs import mask

    reports = received(_engine())
    notice = ""
    if uploaded:
        mine = next((r for r in reports if r["sha256"] == uploaded), None)
        if mine is None:
            notice = (
                '<p class="ok" id="notice">Uploaded: the <code>solidarity_finance_action</code> '
                "DAG applies it in your name in a few seconds (reload this page).</p>"
            )
        elif mine["outcome"] == "applied":
            notice = f'<p class="ok" id="notice">{esc(mine["name"])}: applied.</p>'
        else:
            notice = (
                f'<p class="bad" id="notice">{esc(mine["name"])}: quarantined, nothing moved: '
                f"{esc(mask(str(mine['reason'])))}</p>"
            )
    rows = [
        (
            esc(f"{r['received_at']:%Y-%m-%d %H:%M}"),
            esc(mask(str(r["name"]))),
            num(int(r["bytes"])),  # type: ignore[call-overload]
            esc(r["outcome"])
            if r["outcome"] == "applied"
            else '<span class="bad">quarantined</span>',
            esc(mask(str(r["reason"]))),
            f'<code title="{esc(r["sha256"])}">{esc(str(r["sha256"])[:12])}</code>',
        )
        for r in reports
    ]
    counts = {o: sum(1 for r in reports if r["outcome"] == o) for o in ("applied", "quarantined")}
    body = (
        notice + f'<p class="big" id="counts">{counts["applied"]:,} reports applied, '
        f"{counts['quarantined']:,} quarantined</p>"
        + (_upload_form(visitor) if visitor.roles & PERMISSIONS["upload_bank_report"] else "")
        + table(
            "reports",
            ("Received (UTC)", "Report", "Bytes", "Outcome", "Reason", "SHA-256"),
            rows,
            empty="no report received yet",
        )
    )
    return page("Bank reports", body, base=visitor.base, roles=visitor.roles, here="bank")


def _upload_form(visitor: Visitor) -> str:
    return (
        f'<form method="post" action="{visitor.base}/bank/reports" enctype="multipart/form-data"'
        ' id="upload">A report the bank sent by other means (pain.002, camt.054): '
        '<input type="file" name="report" id="report-file" required> '
        '<button type="submit">Apply this report</button></form>'
        '<p class="note">Each report is applied once; one that cannot be read is quarantined '
        "with the reason and nothing in it moves.</p>"
    )
