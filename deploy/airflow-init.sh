#!/bin/sh
# One-shot init: metadata and ledger migrations, the SFTP pool, the connections
# to the funds' and the bank's SFTP servers (host keys pinned), the bucket.
# The servers' addresses default to this compose file's services; the
# distributed test runs this script with its own (SFTP_FUNDS_HOST, ...).
set -eu
airflow db migrate
payments ledger upgrade
payments storage check   # creates the bucket on first start, round-trips a probe
airflow pools set payments_sftp "${PAYMENTS_SFTP_SLOTS:-4}" "SFTP sessions to funds and bank"
airflow connections delete payments_funds >/dev/null 2>&1 || true
airflow connections add payments_funds --conn-type sftp --conn-host "${SFTP_FUNDS_HOST:-sftp-funds}" \
  --conn-port "${SFTP_FUNDS_PORT:-22}" --conn-login "${SFTP_FUNDS_LOGIN:-funds}" \
  --conn-extra "{\"key_file\": \"/run/secrets/sftp_client_key\", \"host_key\": \"${SFTP_FUNDS_HOST_KEY}\", \"root\": \"${SFTP_FUNDS_ROOT:-/upload}\"}"
airflow connections delete payments_bank >/dev/null 2>&1 || true
airflow connections add payments_bank --conn-type sftp --conn-host "${SFTP_BANK_HOST:-sftp-bank}" \
  --conn-port "${SFTP_BANK_PORT:-22}" --conn-login "${SFTP_BANK_LOGIN:-bank}" \
  --conn-extra "{\"key_file\": \"/run/secrets/sftp_client_key\", \"host_key\": \"${SFTP_BANK_HOST_KEY}\", \"root\": \"${SFTP_BANK_ROOT:-/upload}\"}"
