"""What the Airflow DAGs call: one function per task, JSON in, JSON out.

The DAG files in ``dags/`` only declare tasks; every decision (which funds,
where files come from and go to, what finance sees, who may approve) is made
here, on top of the same functions the CLI uses. Task return values are small
JSON documents (counts, sums, paths relative to the storage root), never data.
"""
