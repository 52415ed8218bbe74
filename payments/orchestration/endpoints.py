"""Where fund files come from and payment files go: Airflow connections, else local folders.

Connection ids (optional on a demo machine only, ``PAYMENTS_DEMO=1``: without them
the storage root's folders are used, the embedded default of ``make demo``;
elsewhere a missing connection stops the task instead of "sending" payment files to
a local folder no bank reads):

- ``payments_fund_<code>``: one fund's own SFTP drop zone (e.g. ``payments_fund_75``);
- ``payments_funds``: the shared drop zone of every fund without its own;
- ``payments_bank``: the bank's SFTP server.

Paths on the servers are the registry's ``inbox`` and ``bank_outbox`` folders,
relative to the connection's ``root`` extra. Host keys are pinned (see
``payments.transport.connections``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from payments.config import load_settings
from payments.errors import PaymentsError
from payments.registry import Fund
from payments.transport.base import Transport
from payments.transport.connections import sftp_from_connection
from payments.transport.local import LocalTransport

FUNDS_CONN = "payments_funds"
BANK_CONN = "payments_bank"

#: Looks a connection up by id, None when it is not defined.
ConnectionLookup = Callable[[str], Any | None]


def airflow_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id`` (environment, secrets backend or database), or None."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def fund_conn_id(fund: Fund) -> str:
    return f"payments_fund_{fund.code.lower()}"


class MissingConnection(PaymentsError):
    """An endpoint without its Airflow connection, outside the demo."""


@contextmanager
def _open(conn: Any | None, conn_id: str) -> Iterator[Transport]:
    if conn is None:
        settings = load_settings()
        if not settings.demo:
            raise MissingConnection(
                f"no Airflow connection {conn_id!r}: define it (docs/deployment.md); "
                "local folders stand in for it only on a demo machine (PAYMENTS_DEMO=1)"
            )
        yield LocalTransport(settings.data_dir)
        return
    with sftp_from_connection(conn) as transport:
        yield transport


@contextmanager
def fund_source(fund: Fund, lookup: ConnectionLookup = airflow_connection) -> Iterator[Transport]:
    """The fund's drop zone: its own connection, the shared one, else the storage root."""
    conn = lookup(fund_conn_id(fund)) or lookup(FUNDS_CONN)
    with _open(conn, f"{fund_conn_id(fund)} or {FUNDS_CONN}") as transport:
        yield transport


@contextmanager
def bank_target(lookup: ConnectionLookup = airflow_connection) -> Iterator[Transport]:
    """The bank's server, else ``<storage root>/bank`` (the demo's local bank)."""
    with _open(lookup(BANK_CONN), BANK_CONN) as transport:
        yield transport


def describe(fund: Fund | None, lookup: ConnectionLookup = airflow_connection) -> str:
    """For logs: which endpoint a fund (or, with None, the bank) is served by."""
    ids = [BANK_CONN] if fund is None else [fund_conn_id(fund), FUNDS_CONN]
    for conn_id in ids:
        if lookup(conn_id) is not None:
            return f"connection {conn_id}"
    return f"local folder {load_settings().data_dir}"
