"""Airflow plugin: the payments pages in the Airflow UI (Browse → Payments: …).

Mounts the package's FastAPI app under ``/payments`` in the API server and
links each page from the navigation. The pages and who may see them live in
``payments.ui`` (roles: ``payments.ui.access``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from payments.ui.app import create_app
from payments.ui.layout import PAGES


class PaymentsUiPlugin(AirflowPlugin):
    name = "solidarity_payments_ui"
    fastapi_apps = [  # noqa: RUF012 - AirflowPlugin's declared shape
        {"app": create_app(), "url_prefix": "/payments", "name": "Payments"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": f"Payments: {title}",
            "href": f"/payments/{path}",
            "destination": "nav",
            "category": "browse",
            "url_route": f"payments-{path}",
        }
        for path, title, _ in PAGES
    ]
