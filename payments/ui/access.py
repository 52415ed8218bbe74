"""Who may see and do what on the payments pages: four roles, checked on every route.

A user's roles come from the payments settings, by their auth manager user id
(the id ``get_id()`` returns: the user name under the simple auth manager, the
numeric id under FAB, the subject under Keycloak; compared as
:mod:`payments.four_eyes` compares ids):

- **finance**: ``PAYMENTS_FINANCE_APPROVERS``: approves runs (on the run's page,
  with a confirmation step, or in Airflow's Required actions), reviews and
  releases holds, applies bank reports;
- **auditor**: ``PAYMENTS_AUDITORS``: reads everything, verifies the ledger,
  replays runs, downloads audit bundles; decides nothing;
- **operator**: ``PAYMENTS_OPERATORS``: the data engineers who run the DAGs:
  a run's totals and its quarantine (masked), the bank reports received; no
  per-household hold, no audit bundle;
- **viewer**: anyone else Airflow lets in: nothing on these pages.

On top of that, the auth manager must let the user read the batch DAG (its own
role model, FAB's or Keycloak's: someone listed here but without any right on
the DAG is refused). :data:`PERMISSIONS` is the whole policy: each route of the
app names the entry it is guarded by, and a test asks every route as every role.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from payments.config import load_settings
from payments.four_eyes import approvers_of, user_id

BATCH_DAG = "solidarity_payment_batch"


class Role(StrEnum):
    OPERATOR = "operator"
    FINANCE = "finance"
    AUDITOR = "auditor"
    VIEWER = "viewer"


_F, _A, _O = Role.FINANCE, Role.AUDITOR, Role.OPERATOR

#: What each role may do, by action. Routes name their action (``guard(action)``).
PERMISSIONS: dict[str, frozenset[Role]] = {
    "read_reconciliation": frozenset({_F, _A}),
    "read_run": frozenset({_F, _A, _O}),
    "decide_run": frozenset({_F}),
    "read_holds": frozenset({_F, _A}),
    "release_hold": frozenset({_F}),
    "read_quarantine": frozenset({_F, _A, _O}),
    "read_bank": frozenset({_F, _A, _O}),
    "upload_bank_report": frozenset({_F}),
    "read_audit": frozenset({_A}),
    "start_audit": frozenset({_A}),
    "download_bundle": frozenset({_F, _A}),
    # Who you are, for the ``payments`` command (payments.cli.identity): finance decides
    # there, an operator records runs there.
    "cli_voucher": frozenset({_F, _O}),
}


def roles_of(user: Any) -> frozenset[Role]:
    """The payments roles of an Airflow user (viewer when listed nowhere)."""
    settings = load_settings()
    me = user_id(str(user.get_id()))
    listed = {
        Role.FINANCE: tuple(a.id for a in approvers_of(settings.finance_approvers)),
        Role.AUDITOR: settings.auditors,
        Role.OPERATOR: settings.operators,
    }
    roles = frozenset(r for r, ids in listed.items() if me and me in {user_id(i) for i in ids})
    return roles or frozenset({Role.VIEWER})


def may(user: Any, action: str) -> bool:
    """True when one of the user's roles allows ``action`` and Airflow lets them read the DAG."""
    if not roles_of(user) & PERMISSIONS[action]:
        return False
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return bool(
        get_auth_manager().is_authorized_dag(
            method="GET", details=DagDetails(id=BATCH_DAG), user=user
        )
    )


def who_may(action: str) -> str:
    """The roles allowed an action, as words for a refusal."""
    return " or ".join(sorted(PERMISSIONS[action]))
