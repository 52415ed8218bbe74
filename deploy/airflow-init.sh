#!/bin/sh
# One-shot init: metadata and ledger migrations, the SFTP pool, the connections
# to the funds' and the bank's SFTP servers (host keys pinned), the bucket.
set -eu
airflow db migrate
payments ledger upgrade
payments storage check   # creates the bucket on first start, round-trips a probe
airflow pools set payments_sftp "${PAYMENTS_SFTP_SLOTS:-4}" "SFTP sessions to funds and bank"
airflow connections delete payments_funds >/dev/null 2>&1 || true
airflow connections add payments_funds --conn-type sftp --conn-host sftp-funds --conn-port 22 \
  --conn-login funds --conn-extra "{\"key_file\": \"/run/secrets/sftp_client_key\", \"host_key\": \"${SFTP_FUNDS_HOST_KEY}\", \"root\": \"/upload\"}"
airflow connections delete payments_bank >/dev/null 2>&1 || true
airflow connections add payments_bank --conn-type sftp --conn-host sftp-bank --conn-port 22 \
  --conn-login bank --conn-extra "{\"key_file\": \"/run/secrets/sftp_client_key\", \"host_key\": \"${SFTP_BANK_HOST_KEY}\", \"root\": \"/upload\"}"
