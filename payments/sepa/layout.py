"""File names inside a batch folder (``runs/<run>/payments/``).

Kept apart from the writer so that what only reads a batch (verification,
delivery, bundles) does not import the writer's data stack.
"""

from __future__ import annotations

#: The signed list of the batch's files, their hashes and totals.
MANIFEST = "manifest.json"
#: Which transaction went into which file (for the ledger and reconciliation).
TRANSACTIONS = "transactions.parquet"
