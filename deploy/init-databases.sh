#!/bin/sh
# PostgreSQL first start: one database and owner for Airflow's metadata, another
# for the payment ledger (separate credentials: Airflow cannot write the ledger),
# in byte-order collation (payments/ledger/migrate.py: DATABASE_OPTIONS), and a
# read-only user for the API server's finance pages. The databases' names may be
# set (AIRFLOW_DB, LEDGER_DB): the distributed test runs this script against a
# shared server with names of its own. A user that exists is kept.
set -eu
AIRFLOW_DB="${AIRFLOW_DB:-airflow}"
LEDGER_DB="${LEDGER_DB:-ledger}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v airflow_password="${AIRFLOW_DB_PASSWORD}" \
  -v ledger_password="${LEDGER_DB_PASSWORD}" \
  -v reader_password="${LEDGER_READER_PASSWORD}" \
  -v airflow_db="${AIRFLOW_DB}" -v ledger_db="${LEDGER_DB}" <<'SQL'
SELECT format('CREATE USER %I', u) FROM unnest(ARRAY['airflow', 'ledger', 'ledger_reader']) AS u
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = u) \gexec
ALTER USER airflow WITH PASSWORD :'airflow_password';
ALTER USER ledger WITH PASSWORD :'ledger_password';
ALTER USER ledger_reader WITH PASSWORD :'reader_password';
CREATE DATABASE :"airflow_db" OWNER airflow;
CREATE DATABASE :"ledger_db" OWNER ledger TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
GRANT CONNECT ON DATABASE :"ledger_db" TO ledger_reader;
\connect :ledger_db
GRANT USAGE ON SCHEMA public TO ledger_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE ledger IN SCHEMA public GRANT SELECT ON TABLES TO ledger_reader;
SQL
