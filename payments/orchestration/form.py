"""The trigger form of the payment batch DAG (Airflow Params), declared from the package's data.

What the operator sees: schemes by id and decree title, the fund codes as a
multi-select with the funds' names (empty: every fund; not a required
field), the payment date as ISO text (empty: the scheme's own), and the dry
run switch. The API validates the same JSON schema, so a code the registry
does not hold is refused before a run exists.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from payments.orchestration.request import DEFAULT_SCHEME
from payments.registry import load_registry
from payments.schemes import scheme_ids, scheme_titles

#: An ISO date (YYYY-MM-DD): the form shows it as typed, whatever the browser's locale.
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def batch_params() -> dict[str, Any]:
    """Scheme (choice of the scheme files), payment date, funds (all by default), dry run."""
    registry = load_registry()
    titles = scheme_titles()
    return {
        "scheme_id": Param(
            DEFAULT_SCHEME,
            type="string",
            enum=scheme_ids(),
            values_display={i: f"{i}: {title}" for i, title in titles.items()},
            title="Scheme",
            description="The decree to pay (payments/schemes/*.toml).",
        ),
        "payment_date": Param(
            None,
            type=["null", "string"],
            pattern=ISO_DATE,
            title="Payment date (YYYY-MM-DD)",
            description="Empty: the scheme's own date. Another date is recorded with the run.",
        ),
        "funds": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "enum": list(registry.codes)},
            examples=list(registry.codes),
            values_display={f.code: f"{f.code} {f.name}" for f in registry.funds},
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
