"""Batch payment of an emergency social aid.

All business logic lives in this package; Airflow DAG files under ``dags/`` only
declare tasks that call into it. The core (``payments.identifiers``,
``payments.sample.generate`` …) is pure and works on Apache Arrow arrays; I/O
lives in the modules named for it (``payments.storage``, ``payments.intake``).
"""

__version__ = "0.1.0"
