#!/bin/sh
# PostgreSQL first start: one database and owner for Airflow's metadata, another
# for the payment ledger (separate credentials: Airflow cannot write the ledger),
# in byte-order collation (payments/ledger/migrate.py: DATABASE_OPTIONS).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE USER airflow WITH PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE airflow OWNER airflow;
CREATE USER ledger WITH PASSWORD '${LEDGER_DB_PASSWORD}';
CREATE DATABASE ledger OWNER ledger TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
SQL
