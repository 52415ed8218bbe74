"""What each stage reports: the run summary (task return value) and finance's approval text.

Pure functions over the run's results; counts and integer cents only. The
approval text is what finance reads in the Airflow UI before deciding, so it
shows exactly what would leave (the signed files' totals) next to what was
computed, held and not received.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from payments.ledger.approval import Causes
from payments.money import euros
from payments.run_spec import RunResult
from payments.statuses import FundFile

__all__ = ["approval_text", "approval_text_of", "euros", "run_summary"]


def run_summary(
    result: RunResult, request: dict[str, Any], root: Path, triggered_by: str | None
) -> dict[str, Any]:
    """The national task's return value: every figure later tasks and people need."""
    totals = result.validation.totals()
    preview = result.compute.preview if result.compute else {}
    files = result.payments.files if result.payments else []
    per_fund_files: dict[str, dict[str, int]] = {}
    for f in files:
        acc = per_fund_files.setdefault(f.fund_code, {"files": 0, "nb_of_txs": 0, "cents": 0})
        acc["files"] += 1
        acc["nb_of_txs"] += f.nb_of_txs
        acc["cents"] += f.ctrl_sum_cents
    by_fund = []
    for report in result.validation.funds:
        fund_preview = preview.get("by_fund", {}).get(report.fund_code, {})
        sent = per_fund_files.get(report.fund_code, {"files": 0, "nb_of_txs": 0, "cents": 0})
        by_fund.append(
            {
                "fund": report.fund_code,
                "status": report.status,
                "rows_read": report.rows_read,
                "accepted": report.accepted,
                "quarantined": report.quarantined,
                "held": fund_preview.get("held", {}).get("households", 0),
                "held_cents": fund_preview.get("held", {}).get("entitled_cents", 0),
                "files": sent["files"],
                "payments": sent["nb_of_txs"],
                "payments_cents": sent["cents"],
            }
        )
    manifest_totals = result.payments.manifest["totals"] if result.payments else None
    return {
        "run_id": result.run_id,
        "scheme_id": result.scheme_id,
        "request": request,
        "triggered_by": triggered_by,
        "dry_run": request.get("dry_run", False),
        "run_dir": str(result.out_dir.relative_to(root)),
        "validation": {k: totals[k] for k in ("funds", "rows_read", "accepted", "quarantined")},
        "not_received": [
            {"fund": r.fund_code, "status": r.status, "reason": r.file_error, "message": r.message}
            for r in result.validation.funds
            if r.status != FundFile.RECEIVED
        ],
        "national": preview.get("national"),
        "by_rule": preview.get("by_rule", {}),
        "by_hold_reason": preview.get("by_hold_reason", {}),
        "by_fund": by_fund,
        "payment_files": (
            {
                "files": manifest_totals["files"],
                "payments": manifest_totals["nb_of_txs"],
                "cents": manifest_totals["ctrl_sum_cents"],
            }
            if manifest_totals
            else None
        ),
        "funds_with_files": sorted(per_fund_files),
    }


def approval_text(summary: dict[str, Any]) -> str:
    """Markdown for the approval form: the totals first (what is new in this run and leaves),
    then why: by rule, what is held, what is missing. Per-fund figures are on the run's page
    (the form puts its buttons under the text: a 101-row table pushed them out of sight)."""
    files = summary.get("payment_files") or {"files": 0, "payments": 0, "cents": 0}
    v = summary["validation"]
    national = summary.get("national") or {}
    already = (national.get("already_paid") or {}).get("households", 0)
    held = sum(r["households"] for r in summary["by_hold_reason"].values())
    held_cents = sum(r["cents"] for r in summary["by_hold_reason"].values())
    lines = [
        f"## To be paid: {files['payments']:,} payments, {euros(files['cents'])}",
        "",
        f"New in this run `{summary['run_id']}` (scheme **{summary['scheme_id']}**), "
        f"in {files['files']} signed files; triggered by "
        f"**{summary.get('triggered_by') or 'unknown'}**, who cannot approve it.",
        "",
    ]
    if already:
        lines += [
            f"- Already paid by an earlier run, **not paid again**: {already:,} households.",
        ]
    if held:
        lines += [f"- Held for review, not in the files: {held:,} households, {euros(held_cents)}."]
    if summary["not_received"]:
        lines += [f"- Funds not in this run: {len(summary['not_received'])} (listed below)."]
    lines += [
        f"- Rows read {v['rows_read']:,} = accepted {v['accepted']:,} + "
        f"quarantined {v['quarantined']:,}. Funds: {v['funds']['received']} received, "
        f"{v['funds']['missing']} missing, {v['funds']['rejected']} rejected.",
        f"- Per fund ({len(summary['by_fund'])} funds), with charts: "
        f"[the run's page](/payments/runs/{summary['run_id']}).",
        "",
    ]
    if summary["by_rule"]:
        lines += ["| Rule | Households | Children | Amount |", "|---|---:|---:|---:|"]
        for rule, r in summary["by_rule"].items():
            amount = euros(r["payable_cents"])
            lines.append(f"| {rule} | {r['households']:,} | {r['children']:,} | {amount} |")
        lines.append("")
    if summary["by_hold_reason"]:
        lines += ["**Held for review** (not in the files):", ""]
        lines += ["| Reason | Households | Amount |", "|---|---:|---:|"]
        for reason, r in summary["by_hold_reason"].items():
            lines.append(f"| {reason} | {r['households']:,} | {euros(r['cents'])} |")
        lines.append("")
    if summary["not_received"]:
        lines += ["**Not in this run** (take them in a complementary run):", ""]
        lines += [f"- {n['fund']}: {as_text(n['message'])}" for n in summary["not_received"]]
    return "\n".join(lines) + "\n"


#: Characters that make Markdown links, images, emphasis, code, tables or HTML.
MARKDOWN = re.compile(r"([\\`*_\[\]()<>!|~])")


def as_text(value: object) -> str:
    """A string a fund controls (a rejection message quotes its companion's fields and its
    header) shown as plain text in finance's Markdown: every Markdown character escaped, on
    one line. A link or an image in a fund's file is never rendered on the approval page."""
    return MARKDOWN.sub(r"\\\1", " ".join(str(value).split()))


def approval_text_of(
    facts: dict[str, Any], causes: Causes, waiting: tuple[int, int], manifest_sha256: str
) -> str:
    """Finance's approval text, from the ledger (:func:`payments.ledger.approval.facts`) and
    the signed manifest's SHA-256 only: what the files pay, what pays again and who caused
    it, the dates and the hold window, what is held. Never from an XCom."""
    files = facts["files"]
    lines = [
        f"## To be paid: {files['payments']:,} payments, {euros(files['cents'])}",
        "",
        f"Run `{facts['run_id']}` (scheme **{facts['scheme_id']}**), in {files['files']} signed "
        f"files for {facts['funds_with_files']} funds; triggered by "
        f"**{as_text(facts.get('triggered_by') or 'unknown')}**, who cannot approve it.",
        "",
        f"- Payment date (execution date in the files): **{facts['execution_date']}**"
        + (
            f"; recent bank changes are held when made within "
            f"{recent_days()} days of **{facts['hold_date']}** or after it."
            if facts.get("hold_date")
            else "."
        ),
    ]
    reissued = causes.reissued
    if reissued:
        total = sum(c.payments for c in reissued.values())
        cents = sum(c.cents for c in reissued.values())
        lines.append(
            f"- **Paid again** (re-issues, included above): {total:,} payments, {euros(cents)}:"
        )
        for state, c in sorted(reissued.items()):
            who = ", ".join(sorted(as_text(w) for w in c.by)) or "unknown"
            lines.append(
                f"  - earlier payment {REISSUE_CAUSE.get(state, state)}: {c.payments:,} "
                f"payments, {euros(c.cents)}; caused by {who}"
            )
    else:
        lines.append("- Paid again (re-issues): none.")
    if causes.released.payments:
        who = ", ".join(sorted(as_text(w) for w in causes.released.by)) or "unknown"
        lines.append(
            f"- **Released holds** paid by this run (included above): "
            f"{causes.released.payments:,} payments, {euros(causes.released.cents)}; "
            f"released by {who}"
        )
    if waiting[0]:
        lines.append(
            f"- Holds released and waiting for their fund's next run: {waiting[0]:,}, "
            f"{euros(waiting[1])} (not in these files)."
        )
    if causes.people():
        lines.append(
            "- Who caused a re-issue or released a hold cannot approve this run (four eyes): "
            + ", ".join(sorted(as_text(w) for w in causes.people()))
            + "."
        )
    held = facts["held"]
    if held:
        total = facts["held_total"]
        lines.append(
            f"- Held for review, not in the files: {total['payments']:,} payments, "
            f"{euros(total['cents'])} (by reason below)."
        )
    rows, funds = facts["rows"], facts["funds"]
    lines += [
        f"- Rows read {rows['read']:,} = accepted {rows['accepted']:,} + "
        f"quarantined {rows['quarantined']:,}. Funds: "
        + ", ".join(f"{n} {status}" for status, n in sorted(funds.items()))
        + ".",
        f"- Per fund, with charts: [the run's page](/payments/runs/{facts['run_id']}).",
        f"- Signed manifest SHA-256: `{manifest_sha256}` (the answer applies to it only).",
        "",
    ]
    if facts["by_rule"]:
        lines += ["| Rule | Payments | Amount |", "|---|---:|---:|"]
        for rule, r in facts["by_rule"].items():
            lines.append(f"| {as_text(rule)} | {r['payments']:,} | {euros(r['cents'])} |")
        lines.append("")
    if held:
        lines += ["**Held for review** (not in the files):", ""]
        lines += ["| Reason | Payments | Amount |", "|---|---:|---:|"]
        for reason, r in held.items():
            lines.append(f"| {as_text(reason)} | {r['payments']:,} | {euros(r['cents'])} |")
        lines.append("")
    return "\n".join(lines) + "\n"


#: What happened to the earlier payment a re-issue replaces.
REISSUE_CAUSE = {
    "rejected": "rejected by the bank",
    "returned": "returned by the payee's bank",
    "cancelled": "cancelled (its run was rejected)",
}


def recent_days() -> int:
    """The recent-bank-change window of the hold policy, in days."""
    from payments.entitlement.holds import load_hold_policy

    return int(load_hold_policy().recent_bank_change_days)
