"""The trigger form of the payment batch DAG (Airflow Params), declared from the package's data."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from payments.orchestration.request import DEFAULT_SCHEME
from payments.registry import load_registry
from payments.schemes import scheme_ids


def batch_params() -> dict[str, Any]:
    """Scheme (choice of the scheme files), payment date, funds (all by default), dry run."""
    codes = load_registry().codes
    return {
        "scheme_id": Param(
            DEFAULT_SCHEME,
            type="string",
            enum=scheme_ids(),
            title="Scheme",
            description="The decree to pay (payments/schemes/*.toml).",
        ),
        "payment_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Payment date",
            description="Empty: the scheme's own date. Another date is recorded with the run.",
        ),
        "funds": Param(
            [],
            type="array",
            items={"type": "string", "enum": codes},
            title="Funds",
            description="Empty: every fund. A complementary run names the late ones.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Validate and compute only: nothing recorded, nothing to approve or send.",
        ),
    }
