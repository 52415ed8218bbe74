#!/bin/sh
# PostgreSQL first start: one database and owner for Airflow's metadata, another
# for the payment ledger (separate credentials: Airflow cannot write the ledger),
# in byte-order collation (payments/ledger/migrate.py: DATABASE_OPTIONS), and a
# read-only user for the API server's finance pages.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE USER airflow WITH PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE airflow OWNER airflow;
CREATE USER ledger WITH PASSWORD '${LEDGER_DB_PASSWORD}';
CREATE DATABASE ledger OWNER ledger TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
CREATE USER ledger_reader WITH PASSWORD '${LEDGER_READER_PASSWORD}';
GRANT CONNECT ON DATABASE ledger TO ledger_reader;
\connect ledger
GRANT USAGE ON SCHEMA public TO ledger_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE ledger IN SCHEMA public GRANT SELECT ON TABLES TO ledger_reader;
SQL
