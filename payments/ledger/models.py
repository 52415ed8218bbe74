"""Ledger tables (SQLAlchemy 2 declarative). The DDL is also in sql/ledger.sql.

Money is BIGINT cents. Beneficiaries are keyed hashes, never NIRs. The rule
"no household is paid twice for the same scheme" is a primary key in
``beneficiary_claims`` (key, scheme) that every payment claims for its
claimant's key and its spouse's: the database refuses a second claim, whatever
Python does.

Keys that hold a beneficiary key put it first: it is what sets rows apart (a
ledger holds a handful of schemes, and millions of keys per scheme), so the
national load builds these indexes on leading bytes that differ. With the
scheme first, PostgreSQL's abbreviated keys saw one value and gave up: every
comparison of the sort went to the full strings.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from payments.ledger.states import STATES
from payments.statuses import Upload

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Run(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scheme_id: Mapped[str] = mapped_column(String(64))
    scheme_version: Mapped[int] = mapped_column(Integer)
    scheme_sha256: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[str] = mapped_column(Text)  # canonical JSON
    code_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    triggered_by: Mapped[str | None] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    decision: Mapped[str | None] = mapped_column(String(16))  # approved | rejected


class InputFile(Base):
    __tablename__ = "input_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"))
    fund_code: Mapped[str] = mapped_column(String(3))
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # received | missing | rejected
    file_error: Mapped[str | None] = mapped_column(String(32))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("run_id", "fund_code"),)


#: Percent of each page of payments filled on insert: the rest takes the new
#: version of each row when its state changes (migration 0006).
PAYMENTS_FILLFACTOR = 50


class Payment(Base):
    """One household's payment decision under a scheme (payable or held)."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scheme_id: Mapped[str] = mapped_column(String(64))
    beneficiary_key: Mapped[str] = mapped_column(String(32))
    spouse_key: Mapped[str | None] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"))
    fund_code: Mapped[str] = mapped_column(String(3))
    household_id: Mapped[str] = mapped_column(String(10))
    rule_id: Mapped[str] = mapped_column(String(64))
    base_cents: Mapped[int] = mapped_column(BigInteger)
    child_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    payment_file_id: Mapped[int | None] = mapped_column(ForeignKey("payment_files.id"))
    reason: Mapped[str | None] = mapped_column(String(255))
    # 1 for the first payment; a rejected or returned payment re-issued by a
    # later run gets attempt + 1 (and the claim moves to it): never two live.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __table_args__ = (
        UniqueConstraint("beneficiary_key", "scheme_id", "attempt"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("amount_cents = base_cents + child_cents", name="amount_parts"),
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="state_known"
        ),
        # Sending a file and applying a file-level bank status find its payments
        # by file: without it, each file scanned the run's millions of rows.
        # The state is in no index, so that a change of state rewrites a row in
        # its own page and touches no index (PostgreSQL's HOT updates, with
        # the room the fill factor leaves; migration 0006).
        Index(
            "ix_payments_filed",
            "payment_file_id",
            postgresql_where=text("payment_file_id IS NOT NULL"),
            sqlite_where=text("payment_file_id IS NOT NULL"),
        ),
        {"postgresql_with": {"fillfactor": PAYMENTS_FILLFACTOR}},
    )


class BeneficiaryClaim(Base):
    """(key, scheme) can be claimed once: the database's guarantee of "paid once"."""

    __tablename__ = "beneficiary_claims"
    scheme_id: Mapped[str] = mapped_column(String(64))
    beneficiary_key: Mapped[str] = mapped_column(String(32))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    __table_args__ = (PrimaryKeyConstraint("beneficiary_key", "scheme_id"),)


class PaymentFileRow(Base):
    __tablename__ = "payment_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"))
    fund_code: Mapped[str] = mapped_column(String(3))
    msg_id: Mapped[str] = mapped_column(String(35), unique=True)
    path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    nb_of_txs: Mapped[int] = mapped_column(Integer)
    ctrl_sum_cents: Mapped[int] = mapped_column(BigInteger)
    execution_date: Mapped[date] = mapped_column(Date)
    # written → uploading → committing → uploaded (payments.transport.deliver)
    upload_state: Mapped[str] = mapped_column(String(16), default=Upload.WRITTEN.value)
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)


class BankEvent(Base):
    __tablename__ = "bank_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_file: Mapped[str] = mapped_column(String(255))
    source_sha256: Mapped[str] = mapped_column(String(64))
    msg_id: Mapped[str | None] = mapped_column(String(35))
    end_to_end_id: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(16))  # accepted | rejected | returned
    reason_code: Mapped[str | None] = mapped_column(String(8))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (
        UniqueConstraint("source_sha256", "end_to_end_id", "status"),
        # Who caused a re-issue: the report that moved the payment it re-issues.
        Index("ix_bank_events_end_to_end_id", "end_to_end_id"),
    )


class BankReport(Base):
    """A report the bank sent, seen once: applied, or quarantined with the reason."""

    __tablename__ = "bank_reports"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # applied | quarantined
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("outcome IN ('applied', 'quarantined')", name="outcome_known"),
    )


class Hold(Base):
    __tablename__ = "holds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    reasons: Mapped[str] = mapped_column(String(255))
    released_by: Mapped[str | None] = mapped_column(String(128))
    released_at: Mapped[datetime | None] = mapped_column(DateTime)
    release_note: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """Append-only, hash-chained: each row's hash covers the previous row's hash."""

    __tablename__ = "event_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AirflowRun(Base):
    """Which payments run an Airflow DAG run concluded, and what finance was shown of it.

    Written by the ``conclude`` task (the ledger's writer, on a worker); every
    later task of the DAG run looks its payments run up here by its own Airflow
    run id, never in an XCom, which anyone who may edit the DAG can rewrite.
    ``shown_manifest_sha256`` is the signed manifest the approval's text was
    rendered from: the answer is applied only to that manifest.
    """

    __tablename__ = "airflow_runs"
    dag_id: Mapped[str] = mapped_column(String(250))
    airflow_run_id: Mapped[str] = mapped_column(String(250))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"))
    concluded_at: Mapped[datetime] = mapped_column(DateTime)
    shown_manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    shown_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (PrimaryKeyConstraint("dag_id", "airflow_run_id"),)


class SpentVoucher(Base):
    """A voucher the payments pages signed, used once (:mod:`payments.identity`)."""

    __tablename__ = "spent_vouchers"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    user_name: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    spent_at: Mapped[datetime] = mapped_column(DateTime)
