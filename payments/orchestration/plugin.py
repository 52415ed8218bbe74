"""The package's Airflow plugin (entry point ``airflow.plugins``): what the scheduler must know.

Custom deadline references are resolved through plugins; registering it from
the installed package (not from a plugins folder) means every Airflow process
that can run our DAGs also knows the bank cut-off.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from payments.orchestration.deadline import SchemeCutoff


class PaymentsCorePlugin(AirflowPlugin):
    name = "solidarity_payments_core"
    deadline_references = [SchemeCutoff]  # noqa: RUF012 - AirflowPlugin's declared shape
