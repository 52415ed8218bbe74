"""Who may read the finance pages: finance approvers and auditors, and Airflow must agree.

Logging in is not enough: the Reconciliation page lists held payments by
household with their fraud-hold reasons, and an audit bundle holds a run's
whole ledger. A user reads them when

- their Airflow user id is one of ``PAYMENTS_FINANCE_APPROVERS`` or
  ``PAYMENTS_AUDITORS`` (compared as :mod:`payments.four_eyes` compares ids),
  whatever the auth manager (simple, FAB, Keycloak: the id its ``get_id()``
  returns), and
- the auth manager lets them read the batch DAG (its own role model: a
  user without any right on the DAG is refused even if listed).

Everyone else, operators and viewers included, gets 403.
"""

from __future__ import annotations

from typing import Any

from payments.config import load_settings
from payments.four_eyes import user_id

BATCH_DAG = "solidarity_payment_batch"


def may_read_finance(user: Any) -> bool:
    settings = load_settings()
    allowed = {user_id(u) for u in (*settings.finance_approvers, *settings.auditors)} - {""}
    if user_id(str(user.get_id())) not in allowed:
        return False
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return bool(
        get_auth_manager().is_authorized_dag(
            method="GET", details=DagDetails(id=BATCH_DAG), user=user
        )
    )
