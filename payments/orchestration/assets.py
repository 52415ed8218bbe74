"""The Airflow Assets the payment batch produces, for DAGs scheduled by data.

The reconciliation DAG runs when payment files reach the bank, not on a clock.
Declared here (not in ``dags/``) so every DAG names them the same way.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: A run's signed payment files and manifest, written and approved (``runs/<run_id>/payments``).
PAYMENT_BATCH = Asset(name="solidarity_payment_batch", uri="file:///solidarity/payment-batch")
#: Payment files delivered to the bank (one event per fund delivered).
AT_THE_BANK = Asset(name="solidarity_payments_at_bank", uri="file:///solidarity/payments-at-bank")
#: The run's budget preview and validation reports (``runs/<run_id>/summary.json``).
RUN_SUMMARY = Asset(name="solidarity_run_summary", uri="file:///solidarity/run-summary")
#: New status reports or returns seen in the bank's ``bank/reports/`` folder.
BANK_REPORTS = Asset(name="solidarity_bank_reports", uri="file:///solidarity/bank-reports")
#: The reconciliation tables (``reconciliation/``), for finance.
RECONCILIATION = Asset(name="solidarity_reconciliation", uri="file:///solidarity/reconciliation")
