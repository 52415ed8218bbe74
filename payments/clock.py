"""The one clock of the shell: the ledger's timestamps are naive UTC.

The functional core takes its time as an argument (``at=``) and never reads a
clock; the CLI commands and the DAG tasks read it here, once per action.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, in UTC, without a time zone: how the ledger stores every timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)
