"""Settings of the imperative shell, read once from the environment.

Embedded defaults (a ``data/`` folder beside the current directory, a SQLite
ledger inside it) let ``make demo`` run on a bare machine; production sets the
environment variables below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATA_DIR = "PAYMENTS_DATA_DIR"
ENV_LEDGER_URL = "PAYMENTS_LEDGER_URL"
#: Comma-separated user ids (as the Airflow auth manager knows them) who may approve a batch.
ENV_APPROVERS = "PAYMENTS_FINANCE_APPROVERS"
#: "1" on a demo machine only: missing secrets are generated instead of refused.
ENV_DEMO = "PAYMENTS_DEMO"
DEFAULT_APPROVERS = ("finance",)
#: The respondent ``make demo`` answers as; its approvals are recorded as "(demo setting)".
DEMO_APPROVER = "finance-demo"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    ledger_url: str
    finance_approvers: tuple[str, ...] = DEFAULT_APPROVERS
    demo: bool = False


def load_settings(data_dir: Path | None = None) -> Settings:
    """Settings from arguments, then environment, then embedded defaults."""
    root = (data_dir or Path(os.environ.get(ENV_DATA_DIR, "data"))).resolve()
    ledger = os.environ.get(ENV_LEDGER_URL, f"sqlite:///{root / 'ledger.sqlite'}")
    approvers = tuple(
        a.strip() for a in os.environ.get(ENV_APPROVERS, ",".join(DEFAULT_APPROVERS)).split(",")
    )
    return Settings(
        data_dir=root,
        ledger_url=ledger,
        finance_approvers=tuple(a for a in approvers if a),
        demo=os.environ.get(ENV_DEMO, "") == "1",
    )
