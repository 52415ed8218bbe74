"""Airflow plugin: the payments pages in the Airflow UI (Browse → Reconciliation).

Mounts the package's read-only FastAPI app under ``/payments`` in the API
server and links it from the navigation. The pages live in ``payments.ui``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from payments.ui.reconciliation import create_app


class PaymentsUiPlugin(AirflowPlugin):
    name = "solidarity_payments_ui"
    fastapi_apps = [  # noqa: RUF012 - AirflowPlugin's declared shape
        {"app": create_app(), "url_prefix": "/payments", "name": "Payments reconciliation"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Reconciliation",
            "href": "/payments/reconciliation",
            "destination": "nav",
            "category": "browse",
            "url_route": "reconciliation",
        }
    ]
