"""The Audit page: verify the ledger, replay a run, download a run's audit bundle.

A check is started here as a run of the ``solidarity_audit`` DAG, triggered
in the auditor's name (Airflow records who): it runs on a worker, not in the
API server, whatever the run's size. Its result (every problem named) is
kept in ``<storage root>/audits/`` and listed here, newest first. The audit
bundle of a run (its record, ledger extract, events and signatures; no
payment file, no NIR or IBAN) is built on request.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from payments.run_ids import RUN_ID
from payments.ui.dagruns import trigger
from payments.ui.guard import Visitor, guard
from payments.ui.layout import esc, page, table
from payments.ui.runs import run_ids

AUDIT_DAG = "solidarity_audit"
#: Results shown at most.
SHOWN = 50


def register(app: FastAPI) -> None:
    """The page, starting a check, and the bundle download."""

    @app.get("/audit", response_class=HTMLResponse)
    def audit(
        visitor: Annotated[Visitor, Depends(guard("read_audit"))], started: str = ""
    ) -> HTMLResponse:
        return HTMLResponse(_page(visitor, started))

    @app.post("/audit/checks")
    def start(
        visitor: Annotated[Visitor, Depends(guard("start_audit"))],
        check: Annotated[str, Form()],
        run_id: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        started = _trigger(visitor, check, run_id)
        return RedirectResponse(f"{visitor.base}/audit?started={started}", status_code=303)

    @app.get("/certificate.pem")
    def certificate(
        visitor: Annotated[Visitor, Depends(guard("download_bundle"))],
    ) -> Response:
        return Response(
            _certificate(),
            media_type="application/x-pem-file",
            headers={"Content-Disposition": 'attachment; filename="signing-cert.pem"'},
        )

    @app.get("/runs/{run_id}/bundle.zip")
    def bundle(
        run_id: str, visitor: Annotated[Visitor, Depends(guard("download_bundle"))]
    ) -> Response:
        return Response(
            _bundle(run_id),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{run_id}-audit.zip"'},
        )


def _trigger(visitor: Visitor, check: str, run_id: str) -> str:
    """A run of the audit DAG in the visitor's name; its Airflow run id."""
    if check not in ("verify", "replay"):
        raise HTTPException(400, f"unknown check {check!r}: verify or replay")
    if check == "replay" and not RUN_ID.fullmatch(run_id):
        raise HTTPException(400, "choose the run to replay")
    conf = {"check": check, "run_id": run_id if check == "replay" else None}
    return trigger(AUDIT_DAG, visitor, conf, action="audit", vouched=conf)


def _in_progress() -> list[tuple[str, str, str]]:
    """Audit runs not finished yet: (Airflow run id, state, conf as text)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    with create_session() as session:
        runs = session.execute(
            select(DagRun.run_id, DagRun.state, DagRun.conf).where(
                DagRun.dag_id == AUDIT_DAG,
                DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]),
            )
        ).all()
    return [(str(r[0]), str(r[1]), json.dumps(r[2] or {})) for r in runs]


def results() -> list[dict[str, Any]]:
    """The kept results, newest first."""
    from payments.config import load_settings

    storage = load_settings().storage()
    names = sorted((n for n in storage.files("audits") if n.endswith(".json")), reverse=True)
    return [dict(json.loads(storage.read_text(f"audits/{n}"))) for n in names[:SHOWN]]


def _page(visitor: Visitor, started: str) -> str:
    notice = (
        f'<p class="ok" id="notice">Started: audit run {esc(started)}. Its result appears '
        "below when it ends (reload).</p>"
        if started
        else ""
    )
    running = [(esc(r), esc(s), esc(c)) for r, s, c in _in_progress()]
    rows = [
        (
            esc(r["finished_at"][:19].replace("T", " ")),
            esc(r["check"]),
            esc(r.get("run_id") or "the whole ledger"),
            esc(r.get("requested_by")),
            '<span class="ok">✓ intact</span>'
            if r["ok"]
            else f'<span class="bad">✗ {len(r["problems"])} problems</span>',
            "<br>".join(esc(p) for p in r["problems"][:20]) or esc(_detail(r)),
        )
        for r in results()
    ]
    options = "".join(f'<option value="{esc(r)}">{esc(r)}</option>' for r in run_ids())
    forms = (
        f'<form method="post" action="{visitor.base}/audit/checks" class="inline" id="verify">'
        '<input type="hidden" name="check" value="verify">'
        '<button type="submit">Verify the ledger</button></form> '
        f'<form method="post" action="{visitor.base}/audit/checks" class="inline" id="replay">'
        '<input type="hidden" name="check" value="replay">'
        f'<select name="run_id" id="replay-run">{options}</select> '
        '<button type="submit">Replay this run</button></form>'
        '<p class="note">Verify: the hash-chained event log, the ledger against it, every '
        "payment file against its recorded SHA-256. Replay: the run recomputed from its "
        "archive, every output compared byte for byte. Each runs as a run of the "
        f"<code>{AUDIT_DAG}</code> DAG in your name.</p>"
    )
    bundles = [
        (esc(r), f'<a class="bundle" href="{visitor.base}/runs/{esc(r)}/bundle.zip">bundle</a>')
        for r in run_ids()
        if not r.startswith("dry-")
    ]
    body = (
        notice
        + forms
        + (
            "<h2>Running</h2>" + table("running", ("Audit run", "State", "Asked"), running)
            if running
            else ""
        )
        + "<h2>Results</h2>"
        + table(
            "results",
            ("Finished (UTC)", "Check", "Of", "Asked by", "Result", "Problems or figures"),
            rows,
            empty="no check yet",
        )
        + "<h2>Audit bundles</h2>"
        + '<p class="note">A zip to check offline (<code>payments audit check-bundle '
        "BUNDLE --cert signing-cert.pem</code>): the run record, its ledger extract and "
        "events, signatures; no payment file. The check trusts only the certificate you "
        f'give it: <a id="certificate" href="{visitor.base}/certificate.pem">this '
        f"deployment's signing certificate</a> (SHA-256 <code>{esc(_fingerprint())}</code>: "
        "compare it with the one the bank holds).</p>"
        + table("bundles", ("Run", "Download"), bundles, empty="no run yet")
    )
    return page("Audit", body, base=visitor.base, roles=visitor.roles, here="audit")


def _detail(result: dict[str, Any]) -> str:
    if result["check"] == "verify":
        return f"{result.get('payment_files_checked', 0):,} payment files match the ledger"
    return f"{result.get('identical_files', 0):,} output files byte-identical"


def _certificate() -> bytes:
    """The certificate payment files and chain heads are signed with (public)."""
    from payments.config import load_settings
    from payments.sepa.signing import signer_paths

    path = signer_paths(load_settings().data_dir)[1]
    if not path.exists():
        raise HTTPException(404, "no signing certificate in this deployment yet")
    return path.read_bytes()


def _fingerprint() -> str:
    """The certificate's SHA-256 fingerprint (DER), as ``openssl x509 -fingerprint`` says it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(_certificate())
    except HTTPException:
        return "none yet"
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _bundle(run_id: str) -> bytes:
    """The run's audit bundle, built from the storage root and the ledger."""
    import tempfile
    from pathlib import Path

    from payments.archive import archive_key
    from payments.bundle import export_bundle
    from payments.config import load_settings
    from payments.sepa.signing import signer_paths
    from payments.storage import staged

    settings = load_settings()
    storage = settings.storage()
    record = f"runs/{run_id}/run.json"
    if not RUN_ID.fullmatch(run_id) or not storage.exists(record):
        raise HTTPException(404, f"no archived run {run_id}")
    with staged(storage, pull=[record, f"runs/{run_id}/payments"]) as area:
        scheme_digest = json.loads((area.root / record).read_text())["scheme_sha256"]
        area.pull(archive_key(scheme_digest))
        with tempfile.TemporaryDirectory() as tmp:
            return export_bundle(
                area.root,
                settings.ledger_url,
                run_id,
                Path(tmp) / "bundle.zip",
                signer_paths(settings.data_dir)[1],
            ).read_bytes()
