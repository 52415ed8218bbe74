"""The summary tables the batch commands print."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from payments.cli.options import (
    MAX_LISTED,
)
from payments.console import stdout
from payments.money import euros
from payments.sepa.batch import BatchResult
from payments.statuses import DECISIONS, FundFile
from payments.validation.outputs import FolderValidation


def validation_tables(result: FolderValidation) -> None:
    totals = result.totals()
    table = Table(title=f"Validation {result.scheme_id}")
    table.add_column("what")
    table.add_column("count", justify="right")
    funds = totals["funds"]
    for status in FundFile:
        table.add_row(f"funds {status}", f"{funds[status]:,}")
    table.add_row("rows read", f"{totals['rows_read']:,}")
    table.add_row("  accepted", f"{totals['accepted']:,}")
    table.add_row("  quarantined", f"{totals['quarantined']:,}")
    tied = totals["rows_read"] == totals["accepted"] + totals["quarantined"]
    table.add_row("tie-out (read = accepted + quarantined)", "ok" if tied else "MISMATCH")
    stdout.print(table)
    if totals["rules"]:
        rules = Table(title="Quarantine reasons (rows per rule)")
        rules.add_column("rule")
        rules.add_column("rows", justify="right")
        for code, count in totals["rules"].items():
            rules.add_row(code, f"{count:,}")
        stdout.print(rules)
    problems = [f for f in result.funds if f.status != FundFile.RECEIVED]
    if problems:
        issues = Table(title="Funds to follow up (complementary run)")
        issues.add_column("fund")
        issues.add_column("reason")
        issues.add_column("detail", overflow="fold")
        for f in problems[:MAX_LISTED]:
            issues.add_row(f.fund_code, str(f.file_error), f.message or "")
        if len(problems) > MAX_LISTED:
            issues.add_row("…", f"{len(problems) - MAX_LISTED} more", "see validation.json")
        stdout.print(issues)


def preview_tables(preview: dict[str, Any]) -> None:
    national = preview["national"]
    table = Table(title=f"Budget preview {preview['scheme_id']}")
    table.add_column("households")
    table.add_column("count", justify="right")
    table.add_column("children", justify="right")
    table.add_column("amount", justify="right")
    for status in DECISIONS:
        part = national[status]
        table.add_row(
            status,
            f"{part['households']:,}",
            f"{part['children']:,}",
            euros(part["entitled_cents"]),
        )
    table.add_row("total", f"{national['households']:,}", "", "")
    stdout.print(table)
    rules = Table(title="Payable by rule")
    for heading in ("rule", "households", "base", "children part", "total"):
        rules.add_column(heading, justify="right" if heading != "rule" else "left")
    for rule, t in preview["by_rule"].items():
        rules.add_row(
            rule,
            f"{t['households']:,}",
            euros(t["base_cents"]),
            euros(t["child_cents"]),
            euros(t["payable_cents"]),
        )
    stdout.print(rules)
    if preview["by_hold_reason"]:
        holds = Table(title="Held for review (a household may have several reasons)")
        holds.add_column("reason")
        holds.add_column("households", justify="right")
        holds.add_column("amount", justify="right")
        for reason, t in preview["by_hold_reason"].items():
            holds.add_row(reason, f"{t['households']:,}", euros(t["cents"]))
        stdout.print(holds)


def payment_tables(batch: BatchResult) -> None:
    totals = batch.manifest["totals"]
    table = Table(title="Payment files (signed, not sent)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("files", f"{totals['files']:,}")
    table.add_row("transactions", f"{totals['nb_of_txs']:,}")
    table.add_row("control sum", euros(totals["ctrl_sum_cents"]))
    table.add_row("excluded (name not writable)", f"{len(batch.excluded):,}")
    stdout.print(table)
    stdout.print(f"Payment files: {batch.out_dir}  (check: payments verify {batch.out_dir})")
