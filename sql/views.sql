-- Finance and audit views of the payment ledger (from payments/ledger/views.py).
CREATE VIEW finance_by_fund AS
SELECT
    scheme_id,
    fund_code,
    COUNT(*) AS households,
    SUM(amount_cents) AS amount_cents,
    SUM(CASE WHEN state IN ('computed', 'approved') THEN 1 ELSE 0 END) AS computed_count,
    SUM(CASE WHEN state IN ('computed', 'approved') THEN amount_cents ELSE 0 END) AS computed_cents,
    SUM(CASE WHEN state = 'held' THEN 1 ELSE 0 END) AS held_count,
    SUM(CASE WHEN state = 'held' THEN amount_cents ELSE 0 END) AS held_cents,
    SUM(CASE WHEN state = 'in_file' THEN 1 ELSE 0 END) AS in_file_count,
    SUM(CASE WHEN state = 'in_file' THEN amount_cents ELSE 0 END) AS in_file_cents,
    SUM(CASE WHEN state IN ('sent', 'accepted', 'rejected', 'returned') THEN 1 ELSE 0 END)
        AS sent_count,
    SUM(CASE WHEN state IN ('sent', 'accepted', 'rejected', 'returned') THEN amount_cents
        ELSE 0 END) AS sent_cents,
    SUM(CASE WHEN state = 'accepted' THEN 1 ELSE 0 END) AS accepted_count,
    SUM(CASE WHEN state = 'accepted' THEN amount_cents ELSE 0 END) AS accepted_cents,
    SUM(CASE WHEN state = 'rejected' THEN 1 ELSE 0 END) AS rejected_count,
    SUM(CASE WHEN state = 'rejected' THEN amount_cents ELSE 0 END) AS rejected_cents,
    SUM(CASE WHEN state = 'returned' THEN 1 ELSE 0 END) AS returned_count,
    SUM(CASE WHEN state = 'returned' THEN amount_cents ELSE 0 END) AS returned_cents,
    SUM(CASE WHEN state = 'cancelled' THEN 1 ELSE 0 END) AS cancelled_count,
    SUM(CASE WHEN state = 'cancelled' THEN amount_cents ELSE 0 END) AS cancelled_cents
FROM payments
GROUP BY scheme_id, fund_code;

CREATE VIEW finance_by_scheme AS
SELECT
    scheme_id,
    SUM(households) AS households,
    SUM(amount_cents) AS amount_cents,
    SUM(computed_count) AS computed_count, SUM(computed_cents) AS computed_cents,
    SUM(held_count) AS held_count, SUM(held_cents) AS held_cents,
    SUM(in_file_count) AS in_file_count, SUM(in_file_cents) AS in_file_cents,
    SUM(sent_count) AS sent_count, SUM(sent_cents) AS sent_cents,
    SUM(accepted_count) AS accepted_count, SUM(accepted_cents) AS accepted_cents,
    SUM(rejected_count) AS rejected_count, SUM(rejected_cents) AS rejected_cents,
    SUM(returned_count) AS returned_count, SUM(returned_cents) AS returned_cents,
    SUM(cancelled_count) AS cancelled_count, SUM(cancelled_cents) AS cancelled_cents
FROM finance_by_fund
GROUP BY scheme_id;

CREATE VIEW rejections_by_reason AS
SELECT p.scheme_id, p.fund_code, e.status, e.reason_code,
       COUNT(*) AS payments, SUM(p.amount_cents) AS amount_cents
FROM bank_events e
JOIN payments p ON p.end_to_end_id = e.end_to_end_id
WHERE e.status IN ('rejected', 'returned')
GROUP BY p.scheme_id, p.fund_code, e.status, e.reason_code;
