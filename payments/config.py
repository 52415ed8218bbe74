"""Settings of the imperative shell, read once from the environment.

Embedded defaults (a ``data/`` folder beside the current directory, a SQLite
ledger inside it, the same folder as storage root) let ``make demo`` run on a
bare machine; production sets the environment variables below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from payments.storage import Storage, open_storage

ENV_DATA_DIR = "PAYMENTS_DATA_DIR"
ENV_LEDGER_URL = "PAYMENTS_LEDGER_URL"
#: Where tasks exchange data: a folder (default: the data dir) or an object-store URL.
ENV_STORAGE_ROOT = "PAYMENTS_STORAGE_ROOT"
#: Comma-separated user ids (as the Airflow auth manager knows them) who may approve a batch,
#: each followed by ``=name`` when the user's name is not its id (FAB: ``3=alice``).
ENV_APPROVERS = "PAYMENTS_FINANCE_APPROVERS"
#: Comma-separated user ids of the auditors: they read the Reconciliation page and the
#: audit bundles, as finance does, and decide nothing.
ENV_AUDITORS = "PAYMENTS_AUDITORS"
#: Comma-separated user ids of the data engineers who run the DAGs: on the payments pages
#: they read runs' totals, quarantines (masked) and bank reports, no per-household hold.
ENV_OPERATORS = "PAYMENTS_OPERATORS"
#: "1" on a demo machine only: missing secrets are generated instead of refused.
ENV_DEMO = "PAYMENTS_DEMO"
DEFAULT_APPROVERS = ("finance",)
#: The respondent ``make demo`` answers as: a name that says, in the ledger, who approved.
DEMO_APPROVER = "finance-demo"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    ledger_url: str
    finance_approvers: tuple[str, ...] = DEFAULT_APPROVERS
    demo: bool = False
    auditors: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    #: The storage root tasks exchange data through; ``data_dir`` when unset.
    storage_url: str = ""

    def storage(self) -> Storage:
        return open_storage(self.storage_url or self.data_dir)

    @property
    def shared_storage(self) -> bool:
        """True when the storage root is not this machine's data dir (several workers)."""
        return bool(self.storage_url) and "://" in self.storage_url

    @property
    def may_create_secrets(self) -> bool:
        """Demo secrets are made on the spot, and only on one machine: with a shared
        storage root every worker would make its own, and keys would differ."""
        return self.demo and not self.shared_storage


#: Files and folders this process creates are its own: 0600 and 0700.
PRIVATE_UMASK = 0o077


def load_settings(data_dir: Path | None = None) -> Settings:
    """Settings from arguments, then environment, then embedded defaults.

    Every entry point (CLI, DAG task, UI) reads its settings here first, so
    this is where the process's umask becomes 077: fund files, validation
    outputs, decisions, archives and the SQLite ledger hold NIRs, IBANs and
    names, and no other local account may read them.
    """
    os.umask(PRIVATE_UMASK)
    root = (data_dir or Path(os.environ.get(ENV_DATA_DIR, "data"))).resolve()
    ledger = os.environ.get(ENV_LEDGER_URL, f"sqlite:///{root / 'ledger.sqlite'}")
    approvers = tuple(
        a.strip() for a in os.environ.get(ENV_APPROVERS, ",".join(DEFAULT_APPROVERS)).split(",")
    )
    return Settings(
        data_dir=root,
        ledger_url=ledger,
        finance_approvers=tuple(a for a in approvers if a),
        auditors=_ids(ENV_AUDITORS),
        operators=_ids(ENV_OPERATORS),
        demo=os.environ.get(ENV_DEMO, "") == "1",
        storage_url=os.environ.get(ENV_STORAGE_ROOT, ""),
    )


def _ids(variable: str) -> tuple[str, ...]:
    """A comma-separated list of user ids from the environment (none when unset)."""
    return tuple(a.strip() for a in os.environ.get(variable, "").split(",") if a.strip())
