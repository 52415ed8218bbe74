"""The statuses the pipeline writes, named once.

String enums: each member *is* its text, so JSON, Parquet, the ledger's
columns and the Airflow UI see the same words as before, and a value read
back from any of them compares equal to the member. A payment's states and
their transitions are in :mod:`payments.ledger.states`.
"""

from __future__ import annotations

from enum import StrEnum


class FundFile(StrEnum):
    """What became of a fund's file in a run."""

    RECEIVED = "received"  # read and validated (rows accepted or quarantined)
    MISSING = "missing"  # no file (a complementary run takes the fund)
    REJECTED = "rejected"  # a file that cannot be trusted, as a whole


class Decision(StrEnum):
    """A household's decision under a scheme (``decisions.parquet``'s ``status``)."""

    PAYABLE = "payable"
    HELD = "held"  # entitled, held for review (fraud/risk)
    NOT_ELIGIBLE = "not_eligible"
    PAID_BY_OTHER_FUND = "paid_by_other_fund"  # the same household filed by two funds
    ALREADY_PAID = "already_paid"  # claimed by an earlier run, or a scheme not cumulable


class RunDecision(StrEnum):
    """Finance's decision on a run: final once taken."""

    APPROVED = "approved"
    REJECTED = "rejected"


class Upload(StrEnum):
    """A payment file's way to the bank (``payment_files.upload_state``)."""

    WRITTEN = "written"  # signed, not yet sent
    UPLOADING = "uploading"  # a sender holds the lease
    UPLOADED = "uploaded"  # renamed into place at the bank, read back


#: The order decisions are reported in (budget preview, tie-out).
DECISIONS = tuple(Decision)
