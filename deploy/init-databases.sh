#!/bin/sh
# PostgreSQL first start: one database and owner for Airflow's metadata, another
# for the payment ledger (separate credentials: Airflow cannot write the ledger).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE USER airflow WITH PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE airflow OWNER airflow;
CREATE USER ledger WITH PASSWORD '${LEDGER_DB_PASSWORD}';
CREATE DATABASE ledger OWNER ledger;
SQL
