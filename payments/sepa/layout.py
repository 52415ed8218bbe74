"""File names inside a batch folder (``runs/<run>/payments/``).

Kept apart from the writer so that what only reads a batch (verification,
delivery, bundles) does not import the writer's data stack.
"""

from __future__ import annotations

#: The signed list of the batch's files, their hashes and totals.
MANIFEST = "manifest.json"
#: Which transaction went into which file (for the ledger and reconciliation).
TRANSACTIONS = "transactions.parquet"


def block_id(msg_id: str) -> str:
    """The PmtInfId of a payment file's one payment-information block (one debtor, one date)."""
    return f"{msg_id}-1"
