"""The payments pages: one FastAPI app that Airflow's API server mounts under ``/payments``.

Each page module registers its routes; each route is guarded by an action of
:data:`payments.ui.access.PERMISSIONS`. Routes are plain functions: FastAPI
runs them in its thread pool, so a page that scans the ledger never blocks the
API server's event loop. No API description is served (``openapi.json``
would list the routes to anyone, logged in or not).

Importing this module imports no data library: the plugin that mounts it is
loaded by the scheduler, whose forked task processes must not inherit their
thread pools. Pages import what they need when a request comes.
"""

from __future__ import annotations

from fastapi import FastAPI

from payments.ui import audit, bank, holds, quarantine, reconciliation, runs
from payments.ui.gate import Gate


def create_app() -> FastAPI:
    """The app the plugin mounts under ``/payments``."""
    app = FastAPI(title="Payments", docs_url=None, redoc_url=None, openapi_url=None)
    for module in (runs, holds, quarantine, bank, reconciliation, audit):
        module.register(app)
    app.add_middleware(Gate)
    return app
