"""What every DAG of the project shares: the SFTP pool, the owner, the retry policy.

Imported by the DAG files at parse time, so it holds constants only (no data
stack). The pool is created by the deployment (``airflow pools set
payments_sftp``): it caps the SFTP sessions all tasks open to funds and bank.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

#: The Airflow pool of every task that opens an SFTP session.
SFTP_POOL = "payments_sftp"
OWNER = "payments"
#: Transient failures (a server restarting, a lease still held) are retried, spaced out.
RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
}
#: A watch that runs every few minutes retries less: its next run comes soon anyway.
WATCH_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=30)}
#: An audit check is not retried: it either finds the ledger intact or names what is not,
#: and running it again on the same data says the same.
NO_RETRIES: dict[str, Any] = {"retries": 0}
