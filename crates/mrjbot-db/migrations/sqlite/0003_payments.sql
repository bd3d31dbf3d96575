-- 0003_payments: what the money path needs beyond 0002.
-- Kept column for column identical to migrations/postgres/0003_payments.sql.

-- Where the customer goes to pay (gateway page, invoice link); shown again on retries.
ALTER TABLE payments ADD COLUMN pay_url TEXT;
-- Why an order failed (e.g. it could not be delivered and was refunded to the wallet).
ALTER TABLE orders ADD COLUMN failure_reason TEXT;
-- Whether the receipt's analysis finished (OCR, duplicate search, verdict).
ALTER TABLE receipts ADD COLUMN analyzed_at INTEGER;
-- The unit the amount on the receipt was printed in (rial, toman), as read.
ALTER TABLE receipts ADD COLUMN ocr_amount_unit TEXT;

-- The receipt picture itself, kept apart from the row so listing receipts stays cheap.
CREATE TABLE receipt_images (
    receipt_id   INTEGER PRIMARY KEY REFERENCES receipts(id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    bytes        BLOB NOT NULL
);

-- Money returned from a payment: to the payer through the gateway, or to the wallet.
-- A wallet refund is a wallet_ledger entry with ref ('refund', refunds.id).
CREATE TABLE refunds (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id   INTEGER NOT NULL REFERENCES payments(id) ON DELETE RESTRICT,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency     TEXT NOT NULL
                 CHECK (length(currency) BETWEEN 3 AND 10 AND currency = upper(currency)),
    destination  TEXT NOT NULL CHECK (destination IN ('gateway','wallet')),
    gateway_ref  TEXT,
    reason       TEXT NOT NULL CHECK (reason <> ''),
    created_by   INTEGER REFERENCES users(id) ON DELETE RESTRICT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);
CREATE INDEX refunds_created_at_idx ON refunds (created_at);
CREATE INDEX refunds_created_by_idx ON refunds (created_by);
CREATE INDEX payments_status_created_at_idx ON payments (status, created_at);
CREATE INDEX payments_approved_at_idx ON payments (approved_at);
