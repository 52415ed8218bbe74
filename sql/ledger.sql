-- Payment ledger tables (PostgreSQL), generated from payments/ledger/models.py.
-- Migrations: payments/ledger/migrations (Alembic). Views: sql/views.sql.

CREATE TABLE bank_events (
	id SERIAL NOT NULL,
	source_file VARCHAR(255) NOT NULL,
	source_sha256 VARCHAR(64) NOT NULL,
	msg_id VARCHAR(35),
	end_to_end_id VARCHAR(35),
	status VARCHAR(16) NOT NULL,
	reason_code VARCHAR(8),
	received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	CONSTRAINT pk_bank_events PRIMARY KEY (id),
	CONSTRAINT uq_bank_events_source_sha256 UNIQUE (source_sha256, end_to_end_id, status)
);

CREATE INDEX ix_bank_events_end_to_end_id ON bank_events (end_to_end_id);

CREATE TABLE bank_reports (
	sha256 VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	bytes BIGINT NOT NULL,
	received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	outcome VARCHAR(16) NOT NULL,
	reason TEXT,
	CONSTRAINT pk_bank_reports PRIMARY KEY (sha256),
	CONSTRAINT ck_bank_reports_outcome_known CHECK (outcome IN ('applied', 'quarantined'))
);

CREATE TABLE event_log (
	seq INTEGER NOT NULL,
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	kind VARCHAR(64) NOT NULL,
	run_id VARCHAR(64),
	payload TEXT NOT NULL,
	prev_hash VARCHAR(64) NOT NULL,
	hash VARCHAR(64) NOT NULL,
	CONSTRAINT pk_event_log PRIMARY KEY (seq),
	CONSTRAINT uq_event_log_hash UNIQUE (hash)
);

CREATE TABLE runs (
	run_id VARCHAR(64) NOT NULL,
	scheme_id VARCHAR(64) NOT NULL,
	scheme_version INTEGER NOT NULL,
	scheme_sha256 VARCHAR(64) NOT NULL,
	parameters TEXT NOT NULL,
	code_version VARCHAR(64) NOT NULL,
	started_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	triggered_by VARCHAR(128),
	approved_by VARCHAR(128),
	approved_at TIMESTAMP WITHOUT TIME ZONE,
	decision VARCHAR(16),
	CONSTRAINT pk_runs PRIMARY KEY (run_id)
);

CREATE TABLE spent_vouchers (
	nonce VARCHAR(64) NOT NULL,
	user_id VARCHAR(128) NOT NULL,
	user_name VARCHAR(128) NOT NULL,
	action VARCHAR(32) NOT NULL,
	spent_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	CONSTRAINT pk_spent_vouchers PRIMARY KEY (nonce)
);

CREATE TABLE airflow_runs (
	dag_id VARCHAR(250) NOT NULL,
	airflow_run_id VARCHAR(250) NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	concluded_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	shown_manifest_sha256 VARCHAR(64),
	shown_at TIMESTAMP WITHOUT TIME ZONE,
	CONSTRAINT pk_airflow_runs PRIMARY KEY (dag_id, airflow_run_id),
	CONSTRAINT fk_airflow_runs_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (run_id)
);

CREATE TABLE input_files (
	id SERIAL NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	fund_code VARCHAR(3) NOT NULL,
	file_name VARCHAR(255) NOT NULL,
	sha256 VARCHAR(64),
	status VARCHAR(16) NOT NULL,
	file_error VARCHAR(32),
	rows_read INTEGER NOT NULL,
	accepted INTEGER NOT NULL,
	quarantined INTEGER NOT NULL,
	CONSTRAINT pk_input_files PRIMARY KEY (id),
	CONSTRAINT uq_input_files_run_id UNIQUE (run_id, fund_code),
	CONSTRAINT fk_input_files_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (run_id)
);

CREATE TABLE payment_files (
	id SERIAL NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	fund_code VARCHAR(3) NOT NULL,
	msg_id VARCHAR(35) NOT NULL,
	path VARCHAR(255) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	bytes BIGINT NOT NULL,
	nb_of_txs INTEGER NOT NULL,
	ctrl_sum_cents BIGINT NOT NULL,
	execution_date DATE NOT NULL,
	upload_state VARCHAR(16) NOT NULL,
	uploaded_at TIMESTAMP WITHOUT TIME ZONE,
	lease_owner VARCHAR(200),
	lease_until TIMESTAMP WITHOUT TIME ZONE,
	CONSTRAINT pk_payment_files PRIMARY KEY (id),
	CONSTRAINT fk_payment_files_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (run_id),
	CONSTRAINT uq_payment_files_msg_id UNIQUE (msg_id)
);

CREATE TABLE payments (
	id SERIAL NOT NULL,
	scheme_id VARCHAR(64) NOT NULL,
	beneficiary_key VARCHAR(32) NOT NULL,
	spouse_key VARCHAR(32),
	run_id VARCHAR(64) NOT NULL,
	fund_code VARCHAR(3) NOT NULL,
	household_id VARCHAR(10) NOT NULL,
	rule_id VARCHAR(64) NOT NULL,
	base_cents BIGINT NOT NULL,
	child_cents BIGINT NOT NULL,
	amount_cents BIGINT NOT NULL,
	end_to_end_id VARCHAR(35) NOT NULL,
	state VARCHAR(16) NOT NULL,
	payment_file_id INTEGER,
	reason VARCHAR(255),
	attempt INTEGER DEFAULT '1' NOT NULL,
	CONSTRAINT pk_payments PRIMARY KEY (id),
	CONSTRAINT uq_payments_beneficiary_key UNIQUE (beneficiary_key, scheme_id, attempt),
	CONSTRAINT ck_payments_amount_positive CHECK (amount_cents > 0),
	CONSTRAINT ck_payments_amount_parts CHECK (amount_cents = base_cents + child_cents),
	CONSTRAINT ck_payments_state_known CHECK (state IN ('computed', 'held', 'approved', 'in_file', 'sent', 'accepted', 'rejected', 'returned', 'cancelled')),
	CONSTRAINT fk_payments_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (run_id),
	CONSTRAINT uq_payments_end_to_end_id UNIQUE (end_to_end_id),
	CONSTRAINT fk_payments_payment_file_id_payment_files FOREIGN KEY(payment_file_id) REFERENCES payment_files (id)
)
 WITH (fillfactor = 50);

CREATE INDEX ix_payments_filed ON payments (payment_file_id) WHERE payment_file_id IS NOT NULL;

CREATE TABLE beneficiary_claims (
	scheme_id VARCHAR(64) NOT NULL,
	beneficiary_key VARCHAR(32) NOT NULL,
	payment_id INTEGER NOT NULL,
	CONSTRAINT pk_beneficiary_claims PRIMARY KEY (beneficiary_key, scheme_id),
	CONSTRAINT fk_beneficiary_claims_payment_id_payments FOREIGN KEY(payment_id) REFERENCES payments (id)
);

CREATE TABLE holds (
	id SERIAL NOT NULL,
	payment_id INTEGER NOT NULL,
	reasons VARCHAR(255) NOT NULL,
	released_by VARCHAR(128),
	released_at TIMESTAMP WITHOUT TIME ZONE,
	release_note TEXT,
	CONSTRAINT pk_holds PRIMARY KEY (id),
	CONSTRAINT uq_holds_payment_id UNIQUE (payment_id),
	CONSTRAINT fk_holds_payment_id_payments FOREIGN KEY(payment_id) REFERENCES payments (id)
);
