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


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    ledger_url: str


def load_settings(data_dir: Path | None = None) -> Settings:
    """Settings from arguments, then environment, then embedded defaults."""
    root = (data_dir or Path(os.environ.get(ENV_DATA_DIR, "data"))).resolve()
    ledger = os.environ.get(ENV_LEDGER_URL, f"sqlite:///{root / 'ledger.sqlite'}")
    return Settings(data_dir=root, ledger_url=ledger)
