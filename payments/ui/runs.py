"""The Runs page: each run's budget preview, what finance is asked to approve, what was paid.

A run's page reads its ``compute/preview.json`` and ``summary.json`` from the
storage root (a dry run has them too: that is what a dry run is for) and its
decision from the ledger: households and euros by outcome (payable, held,
not eligible, paid by another fund, already paid by an earlier run), by
rule, by hold reason and by fund, with charts; a run waiting for finance
links to Airflow's *Required actions*.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from payments.money import euros
from payments.run_ids import RUN_ID
from payments.ui.access import PERMISSIONS
from payments.ui.guard import Visitor, guard
from payments.ui.layout import bar_chart, esc, money, num, page, table

#: The preview's outcomes, in the order finance reads them, with their words.
OUTCOMES = (
    ("payable", "to be paid"),
    ("held", "held for review"),
    ("already_paid", "already paid by an earlier run"),
    ("paid_by_other_fund", "paid by another fund"),
    ("not_eligible", "not eligible"),
)


def _storage() -> Any:
    from payments.config import load_settings

    return load_settings().storage()


def run_ids() -> list[str]:
    """Every run folder in the storage root (dry runs included), newest first when known."""
    storage = _storage()
    folders = [f for f in storage.folders("runs") if RUN_ID.fullmatch(f)]
    latest = storage.read_text("runs/LATEST").strip() if storage.exists("runs/LATEST") else ""
    return sorted(folders, key=lambda f: (f != latest, f))


def chosen_run(run_id: str) -> str:
    """The run asked for (checked: a run id, never a path), or the latest run."""
    if not run_id:
        ids = run_ids()
        if not ids:
            raise HTTPException(404, "no run yet: trigger solidarity_payment_batch")
        return ids[0]
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, f"no run {run_id!r}")
    return run_id


def run_picker(visitor: Visitor, here: str, current: str) -> str:
    """A small form choosing the run a page shows."""
    options = "".join(
        f'<option value="{esc(r)}"{" selected" if r == current else ""}>{esc(r)}</option>'
        for r in run_ids()
    )
    return (
        f'<form method="get" action="{visitor.base}/{here}" id="run-picker">Run '
        f'<select name="run">{options}</select> <button type="submit">Show</button></form>'
    )


def register(app: FastAPI) -> None:
    """The list of runs and each run's page."""

    @app.get("/voucher", response_class=PlainTextResponse)
    def cli_voucher(visitor: Annotated[Visitor, Depends(guard("cli_voucher"))]) -> Response:
        return PlainTextResponse(
            _cli_voucher(visitor),
            headers={
                "Content-Disposition": 'attachment; filename="payments-voucher.txt"',
                "Cache-Control": "no-store",
            },
        )

    @app.get("/runs", response_class=HTMLResponse)
    def runs(visitor: Annotated[Visitor, Depends(guard("read_run"))]) -> HTMLResponse:
        return HTMLResponse(_index(visitor))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(
        run_id: str, visitor: Annotated[Visitor, Depends(guard("read_run"))], decided: str = ""
    ) -> HTMLResponse:
        return HTMLResponse(_run_page(visitor, chosen_run(run_id), decided))

    @app.get("/runs/{run_id}/decide", response_class=HTMLResponse)
    def confirm(
        run_id: str,
        visitor: Annotated[Visitor, Depends(guard("decide_run"))],
        option: str = "Approve",
    ) -> HTMLResponse:
        return HTMLResponse(_confirm_page(visitor, chosen_run(run_id), option))

    @app.post("/runs/{run_id}/decision")
    def decision(
        run_id: str,
        visitor: Annotated[Visitor, Depends(guard("decide_run"))],
        option: Annotated[str, Form()],
    ) -> RedirectResponse:
        _decide(visitor, chosen_run(run_id), option)
        return RedirectResponse(f"{visitor.base}/runs/{run_id}?decided={option}", status_code=303)


def _read_json(key: str) -> dict[str, Any] | None:
    storage = _storage()
    return dict(json.loads(storage.read_text(key))) if storage.exists(key) else None


def _decisions() -> dict[str, tuple[str | None, str | None]]:
    """Each recorded run's decision and who made it."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from payments.config import load_settings
    from payments.ledger.migrate import engine_for
    from payments.ledger.models import Run

    with Session(engine_for(load_settings().ledger_url)) as session:
        rows = session.execute(select(Run.run_id, Run.decision, Run.approved_by)).all()
    return {r[0]: (r[1], r[2]) for r in rows}


#: Where a run stands, as the pages show it.
WAITING = '<span class="warn">waiting for finance</span>'


def _state(run_id: str, summary: dict[str, Any] | None, decided: tuple[str | None, ...]) -> str:
    if run_id.startswith("dry-") or (summary and summary.get("dry_run")):
        return '<span class="badge dry">dry run</span>'
    if decided[0]:
        return esc(f"{decided[0]} by {decided[1]}")
    files = (summary or {}).get("payment_files") or {}
    if not files.get("payments"):
        return "nothing to pay"
    return WAITING


def _index(visitor: Visitor) -> str:
    decisions = _decisions()
    rows = []
    for run_id in run_ids():
        summary = _read_json(f"runs/{run_id}/summary.json")
        files = (summary or {}).get("payment_files") or {"payments": 0, "cents": 0}
        rows.append(
            (
                f'<a href="{visitor.base}/runs/{esc(run_id)}">{esc(run_id)}</a>',
                esc((summary or {}).get("scheme_id", "")),
                _state(run_id, summary, decisions.get(run_id, (None, None))),
                num(int(files["payments"])),
                money(int(files["cents"])),
            )
        )
    body = table(
        "runs",
        ("Run", "Scheme", "State", "Payments in files", "Amount"),
        rows,
        empty="no run yet",
    )
    if visitor.roles & PERMISSIONS["cli_voucher"]:
        body += (
            f'<p class="note" id="voucher">At a terminal: <a href="{visitor.base}/voucher">'
            "a voucher for the payments command</a> (who you are, signed by this server; "
            "good 15 minutes, for one command: <code>payments approve RUN --voucher FILE</code>"
            ")</p>"
        )
    return page("Runs", body, base=visitor.base, roles=visitor.roles, here="runs")


def _run_page(visitor: Visitor, run_id: str, answered: str = "") -> str:
    preview = _read_json(f"runs/{run_id}/compute/preview.json")
    summary = _read_json(f"runs/{run_id}/summary.json")
    if preview is None:
        raise HTTPException(404, f"run {run_id} has no budget preview in the storage root")
    decided = _decisions().get(run_id, (None, None))
    state = _state(run_id, summary, decided)
    national = preview["national"]
    payable = (
        f"{national['payable']['households']:,} households, {esc(euros(national['payable_cents']))}"
    )
    headline = (
        f"Not paid (rejected): {payable}, nothing sent; their households are paid by a later run"
        if decided[0] == "rejected"
        else f"To be paid: {payable}"
    )
    head = (
        f'<p class="big" id="state">{esc(preview["scheme_id"])}: {state}</p>'
        f'<p class="big" id="to-pay">{headline}</p>'
    )
    if answered:
        head += (
            f'<p class="ok" id="notice">Your answer ({esc(answered)}) was given to the run\'s '
            "approval; the DAG records it in the ledger and goes on.</p>"
        )
    elif state == WAITING:
        head += (
            '<p><a id="approval-link" target="_top" '
            'href="/required_actions?response_received=false">Approve or reject in Airflow '
            "(Required actions)</a>: finance other than the user who triggered the run.</p>"
        )
        if visitor.roles & PERMISSIONS["decide_run"]:
            head += (
                f'<p id="decide"><a class="approve" href="{visitor.base}/runs/{esc(run_id)}'
                '/decide?option=Approve">Approve…</a> · '
                f'<a class="reject" href="{visitor.base}/runs/{esc(run_id)}/decide?option=Reject">'
                "Reject…</a> (you are asked to confirm)</p>"
            )
    if national["already_paid"]["households"]:
        head += (
            f'<p class="warn" id="already-paid">{national["already_paid"]["households"]:,} '
            "households were already paid by an earlier run: they are not paid again.</p>"
        )
    by_outcome = [
        (esc(words), num(national[key]["households"]), money(national[key]["entitled_cents"]))
        for key, words in OUTCOMES
    ]
    body = (
        head
        + table("by-outcome", ("Outcome", "Households", "Amount"), by_outcome)
        + bar_chart(
            "Amounts by outcome",
            [(words, int(national[key]["entitled_cents"])) for key, words in OUTCOMES],
            chart_id="chart-outcome",
        )
        + _by_rule(preview)
        + _by_hold_reason(preview)
        + _by_fund(preview)
    )
    return page(f"Run {run_id}", body, base=visitor.base, roles=visitor.roles, here="runs")


def _by_rule(preview: dict[str, Any]) -> str:
    rows = [
        (
            esc(rule),
            num(r["households"]),
            num(r["children"]),
            money(r["base_cents"]),
            money(r["child_cents"]),
            money(r["payable_cents"]),
        )
        for rule, r in preview["by_rule"].items()
    ]
    return "<h2>By rule</h2>" + table(
        "by-rule", ("Rule", "Households", "Children", "Base", "Per child", "Amount"), rows
    )


def _by_hold_reason(preview: dict[str, Any]) -> str:
    rows = [
        (esc(reason), num(r["households"]), money(r["cents"]))
        for reason, r in preview["by_hold_reason"].items()
    ]
    return (
        "<h2>Held for review</h2>"
        + '<p class="note">A household may be held for several reasons; see the Holds page.</p>'
        + table("by-hold-reason", ("Reason", "Households", "Amount"), rows, empty="no hold")
    )


def _by_fund(preview: dict[str, Any]) -> str:
    funds = preview["by_fund"]
    rows = [
        (
            esc(code),
            num(f["households"]),
            num(f["payable"]["households"]),
            money(f["payable_cents"]),
            num(f["held"]["households"]),
            num(f["already_paid"]["households"]),
        )
        for code, f in funds.items()
    ]
    top = sorted(funds.items(), key=lambda item: -int(item[1]["payable_cents"]))[:15]
    return (
        bar_chart(
            "The 15 funds paying most",
            [(f"fund {code}", int(f["payable_cents"])) for code, f in top],
            chart_id="chart-funds",
        )
        + f'<details id="funds"><summary>By fund ({len(funds)} funds)</summary>'
        + table(
            "by-fund",
            ("Fund", "Households", "To pay", "Amount", "Held", "Already paid"),
            rows,
        )
        + "</details>"
    )


def _confirm_page(visitor: Visitor, run_id: str, option: str) -> str:
    """The confirmation step: what the answer does, in figures, before it is given."""
    from payments.orchestration.approval import APPROVE, REJECT

    if option not in (APPROVE, REJECT):
        raise HTTPException(400, f"answer {option!r}: {APPROVE} or {REJECT}")
    if _waiting(run_id) is None:
        body = (
            '<p id="nothing">This run is not waiting for finance: nothing to decide. '
            f'<a href="{visitor.base}/runs/{esc(run_id)}">Back to the run</a></p>'
        )
        return page("Nothing to decide", body, base=visitor.base, roles=visitor.roles, here="runs")
    files, asked = _ledger_files(run_id), _asked(run_id)
    what = (
        f"send <strong>{files['payments']:,} payments, {esc(euros(files['cents']))}</strong> "
        f"in {files['files']} signed files to the bank"
        if option == APPROVE
        else "send nothing and cancel the run's payments (its households are paid by a later run)"
    )
    body = (
        f'<p class="big" id="confirm-text">{esc(option)} run {esc(run_id)}: {what}.</p>'
        '<p class="note">A decision is final. Four eyes: the user who triggered the run '
        "cannot answer. Your user id and the time are recorded in the ledger.</p>"
        "<details open><summary>What you are asked (from the ledger and the signed "
        f'manifest)</summary><pre id="approval-text">{esc(asked)}</pre></details>'
        f'<form method="post" action="{visitor.base}/runs/{esc(run_id)}/decision" id="confirm">'
        f'<input type="hidden" name="option" value="{esc(option)}">'
        f'<button type="submit">Confirm: {esc(option.lower())}</button> '
        f'<a href="{visitor.base}/runs/{esc(run_id)}">Cancel</a></form>'
    )
    return page(
        f"Confirm: {option.lower()}", body, base=visitor.base, roles=visitor.roles, here="runs"
    )


def _cli_voucher(visitor: Visitor) -> str:
    """A voucher for one ``payments`` command, for the user Airflow just authenticated."""
    from payments.clock import utc_now
    from payments.identity import CLI, CLI_TTL, Identity, vouch
    from payments.ui.dagruns import page_key

    key = page_key()
    return vouch(key, Identity(visitor.id, visitor.name), CLI, {}, at=utc_now(), ttl=CLI_TTL) + "\n"


def _ledger_files(run_id: str) -> dict[str, int]:
    """The run's signed files as the ledger recorded them at conclusion (not summary.json,
    which whoever may write the storage root could change)."""
    from sqlalchemy.orm import Session

    from payments.config import load_settings
    from payments.ledger.approval import facts
    from payments.ledger.migrate import engine_for

    with Session(engine_for(load_settings().ledger_url)) as session:
        return dict(facts(session, run_id)["files"])


def _asked(run_id: str) -> str:
    """The approval's text as the worker rendered it for Airflow's Required actions."""
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from payments.orchestration.approval import subject_of

    with create_session() as session:
        body = session.execute(
            select(HITLDetail.body)
            .where(HITLDetail.subject == subject_of(run_id), HITLDetail.responded_at.is_(None))
            .limit(1)
        ).scalar_one_or_none()
    return str(body or "")


def _waiting(run_id: str) -> tuple[str, str] | None:
    from payments.orchestration.approval import waiting_approval_of
    from payments.ui.access import BATCH_DAG

    return waiting_approval_of(BATCH_DAG, run_id)


def _decide(visitor: Visitor, run_id: str, option: str) -> None:
    """Give the answer to the run's waiting approval, as the visitor (Airflow checks that they
    are a respondent, as for its own form; the DAG then records it in the ledger)."""
    from payments.orchestration.approval import APPROVE, REJECT, respond_as
    from payments.ui.access import BATCH_DAG

    if option not in (APPROVE, REJECT):
        raise HTTPException(400, f"answer {option!r}: {APPROVE} or {REJECT}")
    waiting = _waiting(run_id)
    if waiting is None:
        raise HTTPException(409, f"run {run_id} is not waiting for finance")
    respond_as(visitor.user, BATCH_DAG, *waiting, option)
