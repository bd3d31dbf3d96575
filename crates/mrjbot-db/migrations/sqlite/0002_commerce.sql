-- 0002_commerce: usage, node health, money (cards, orders, payments, receipts, ledgers,
-- discounts, referrals), support, broadcasts, durable work (outbox, jobs) and bot dialogues.
--
-- Kept column for column identical to migrations/postgres/0002_commerce.sql (a test compares
-- them). Conventions: ids are 64-bit integers; timestamps are UTC epoch milliseconds in
-- `*_at` columns set by the application; money is `*_minor` integer + `currency` code;
-- JSON lives in TEXT columns. Unique constraints are named `<table>_<cols>_key` so the
-- application can map a violation to a field error.
-- ON DELETE: CASCADE for owned children, RESTRICT for money rows (and for who-approved /
-- who-created on money rows, to keep the audit trail), SET NULL for optional links.

-- ---------------------------------------------------------------------------------------
-- Usage: bytes per subscription per node per period bucket (period_start = epoch ms of the
-- start of the bucket, e.g. the hour). Agent reports add deltas with an upsert on the key.
CREATE TABLE usage (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    period_start    INTEGER NOT NULL,
    up_bytes        INTEGER NOT NULL DEFAULT 0 CHECK (up_bytes >= 0),
    down_bytes      INTEGER NOT NULL DEFAULT 0 CHECK (down_bytes >= 0),
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX usage_subscription_id_node_id_period_start_key
    ON usage (subscription_id, node_id, period_start);
CREATE INDEX usage_node_id_period_start_idx ON usage (node_id, period_start);

-- One row per accepted agent usage report: inserting (node_id, seq) first, in the same
-- transaction as the usage upserts, makes a retried report a no-op.
CREATE TABLE node_usage_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id     INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    entries     INTEGER NOT NULL DEFAULT 0 CHECK (entries >= 0),
    up_bytes    INTEGER NOT NULL DEFAULT 0 CHECK (up_bytes >= 0),
    down_bytes  INTEGER NOT NULL DEFAULT 0 CHECK (down_bytes >= 0),
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX node_usage_reports_node_id_seq_key ON node_usage_reports (node_id, seq);

-- ---------------------------------------------------------------------------------------
-- Node health samples (heartbeats of own agents, probes of panel nodes). Metrics a source
-- cannot measure are NULL.
CREATE TABLE node_health (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id      INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    cpu_percent  REAL CHECK (cpu_percent >= 0),
    mem_percent  REAL CHECK (mem_percent >= 0),
    rx_bps       INTEGER CHECK (rx_bps >= 0),
    tx_bps       INTEGER CHECK (tx_bps >= 0),
    latency_ms   INTEGER CHECK (latency_ms >= 0),
    connections  INTEGER CHECK (connections >= 0),
    core_status  TEXT NOT NULL CHECK (core_status IN ('running','stopped','error','unknown'))
);
CREATE INDEX node_health_node_id_at_idx ON node_health (node_id, at);
CREATE INDEX node_health_at_idx ON node_health (at);

-- ---------------------------------------------------------------------------------------
-- Card-to-card destinations (the pool). Usage against the caps (today / this month count
-- and sum, open reservations) is computed from payments.card_id.
CREATE TABLE cards (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    number            TEXT NOT NULL
                      CHECK (length(number) BETWEEN 16 AND 19 AND number NOT GLOB '*[^0-9]*'),
    owner_name        TEXT NOT NULL,
    bank              TEXT,
    is_active         INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0,1)),
    weight            INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 0),
    daily_cap_minor   INTEGER CHECK (daily_cap_minor >= 0),
    monthly_cap_minor INTEGER CHECK (monthly_cap_minor >= 0),
    monthly_tx_cap    INTEGER CHECK (monthly_tx_cap >= 0),
    currency          TEXT NOT NULL
                      CHECK (length(currency) BETWEEN 3 AND 10 AND currency = upper(currency)),
    sort_order        INTEGER NOT NULL DEFAULT 0,
    disabled_reason   TEXT,
    note              TEXT,
    last_used_at      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX cards_number_key ON cards (number);
CREATE INDEX cards_is_active_sort_order_idx ON cards (is_active, sort_order);

-- ---------------------------------------------------------------------------------------
-- Discount codes. kind 'percent': value is 1..100 and currency is NULL; kind 'fixed':
-- value is minor units of `currency`. used_count is bumped by a guarded UPDATE
-- (... WHERE max_uses IS NULL OR used_count < max_uses) so concurrent orders cannot
-- exceed max_uses; discount_redemptions is the per-order record.
CREATE TABLE discount_codes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    code              TEXT NOT NULL CHECK (code <> ''),
    kind              TEXT NOT NULL CHECK (kind IN ('percent','fixed')),
    value             INTEGER NOT NULL CHECK (value > 0),
    currency          TEXT
                      CHECK (currency IS NULL
                             OR (length(currency) BETWEEN 3 AND 10 AND currency = upper(currency))),
    starts_at         INTEGER,
    expires_at        INTEGER,
    max_uses          INTEGER CHECK (max_uses >= 0),
    max_uses_per_user INTEGER CHECK (max_uses_per_user >= 0),
    used_count        INTEGER NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    is_active         INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0,1)),
    created_by        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((kind = 'percent' AND currency IS NULL AND value <= 100)
           OR (kind = 'fixed' AND currency IS NOT NULL)),
    CHECK (starts_at IS NULL OR expires_at IS NULL OR starts_at < expires_at)
);
CREATE UNIQUE INDEX discount_codes_code_key ON discount_codes (code);
CREATE INDEX discount_codes_created_by_idx ON discount_codes (created_by);

-- Restricts a code to some plans; a code with no rows here applies to every plan.
CREATE TABLE discount_code_plans (
    code_id INTEGER NOT NULL REFERENCES discount_codes(id) ON DELETE CASCADE,
    plan_id INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    PRIMARY KEY (code_id, plan_id)
);
CREATE INDEX discount_code_plans_plan_id_idx ON discount_code_plans (plan_id);

-- ---------------------------------------------------------------------------------------
-- Orders: what the user asked to buy. plan_id is NULL for a wallet top-up.
-- subscription_id: the subscription renewed / extended (renewal, addon) or, for a purchase,
-- the one created when the order was fulfilled. details: kind-specific JSON (addon bytes or
-- days, price snapshot). fulfilled_at is set by the guarded update of the provisioning
-- worker (exactly-once fulfilment).
CREATE TABLE orders (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    plan_id          INTEGER REFERENCES plans(id) ON DELETE RESTRICT,
    kind             TEXT NOT NULL CHECK (kind IN ('purchase','renewal','topup','addon')),
    subscription_id  INTEGER REFERENCES subscriptions(id) ON DELETE SET NULL,
    amount_minor     INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency         TEXT NOT NULL
                     CHECK (length(currency) BETWEEN 3 AND 10 AND currency = upper(currency)),
    discount_code_id INTEGER REFERENCES discount_codes(id) ON DELETE RESTRICT,
    discount_minor   INTEGER NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    status           TEXT NOT NULL DEFAULT 'created'
                     CHECK (status IN ('created','pending','paid','cancelled','expired','failed')),
    idempotency_key  TEXT,
    details          TEXT,
    expires_at       INTEGER,
    paid_at          INTEGER,
    fulfilled_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((kind = 'topup' AND plan_id IS NULL)
           OR (kind IN ('purchase','renewal') AND plan_id IS NOT NULL)
           OR kind = 'addon')
);
CREATE UNIQUE INDEX orders_idempotency_key_key ON orders (idempotency_key);
CREATE INDEX orders_user_id_created_at_idx ON orders (user_id, created_at);
CREATE INDEX orders_plan_id_idx ON orders (plan_id);
CREATE INDEX orders_subscription_id_idx ON orders (subscription_id);
CREATE INDEX orders_discount_code_id_idx ON orders (discount_code_id);
CREATE INDEX orders_status_expires_at_idx ON orders (status, expires_at);

-- One row per order that used a code.
CREATE TABLE discount_redemptions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code_id    INTEGER NOT NULL REFERENCES discount_codes(id) ON DELETE RESTRICT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    order_id   INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX discount_redemptions_order_id_key ON discount_redemptions (order_id);
CREATE INDEX discount_redemptions_code_id_user_id_idx ON discount_redemptions (code_id, user_id);
CREATE INDEX discount_redemptions_user_id_idx ON discount_redemptions (user_id);

-- ---------------------------------------------------------------------------------------
-- Payments: one row per attempt. gateway_ref: Zarinpal authority, YooKassa payment id,
-- Crypto Pay invoice id, Telegram Stars telegram_payment_charge_id (set on
-- successful_payment). bank_ref: the gateway's settlement reference when there is a second
-- one (Zarinpal verify ref_id, Stars provider_payment_charge_id). idempotency_key: the
-- outgoing key sent to the gateway (YooKassa Idempotence-Key). raw: last gateway answer.
-- For card payments card_id is the reserved destination and expires_at the reservation end.
CREATE TABLE payments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        INTEGER NOT NULL REFERENCES orders(id) ON DELETE RESTRICT,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    method          TEXT NOT NULL
                    CHECK (method IN ('card','zarinpal','yookassa','stars','cryptopay','wallet')),
    status          TEXT NOT NULL DEFAULT 'created'
                    CHECK (status IN ('created','pending','approved','rejected','expired','refunded')),
    amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL
                    CHECK (length(currency) BETWEEN 3 AND 10 AND currency = upper(currency)),
    gateway_ref     TEXT,
    bank_ref        TEXT,
    idempotency_key TEXT,
    card_id         INTEGER REFERENCES cards(id) ON DELETE RESTRICT,
    approved_by     INTEGER REFERENCES users(id) ON DELETE RESTRICT,
    approved_at     INTEGER,
    rejected_reason TEXT,
    refunded_minor  INTEGER NOT NULL DEFAULT 0
                    CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    raw             TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    expires_at      INTEGER
);
CREATE UNIQUE INDEX payments_method_gateway_ref_key ON payments (method, gateway_ref);
CREATE UNIQUE INDEX payments_method_bank_ref_key ON payments (method, bank_ref);
CREATE UNIQUE INDEX payments_idempotency_key_key ON payments (idempotency_key);
-- At most one approved payment per order, ever: a refunded payment was approved and keeps
-- its slot, so a refund can never open the way to a second provisioning of the same order.
CREATE UNIQUE INDEX payments_order_id_key ON payments (order_id)
    WHERE status IN ('approved','refunded');
CREATE INDEX payments_order_id_idx ON payments (order_id);
CREATE INDEX payments_user_id_created_at_idx ON payments (user_id, created_at);
CREATE INDEX payments_card_id_status_created_at_idx ON payments (card_id, status, created_at);
CREATE INDEX payments_approved_by_idx ON payments (approved_by);
CREATE INDEX payments_status_expires_at_idx ON payments (status, expires_at);

-- ---------------------------------------------------------------------------------------
-- Card-to-card receipts (a payment may get several; each image only once anywhere).
-- phash: 64-bit perceptual hash stored as a signed 64-bit integer (bit pattern of the u64).
-- ocr_* are NULL when OCR is off or could not read the field; ocr_date is the date/time as
-- printed (Jalali, digits normalised to ASCII). Tracking numbers are short (6 digits), so
-- they are unique together with amount and date; the 12-digit bank reference (RRN) is
-- unique on its own. risk_reasons: JSON list of findings (near-duplicate receipt ids, ...).
CREATE TABLE receipts (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id              INTEGER NOT NULL REFERENCES payments(id) ON DELETE CASCADE,
    telegram_file_id        TEXT NOT NULL,
    telegram_file_unique_id TEXT,
    image_sha256            TEXT NOT NULL CHECK (length(image_sha256) = 64),
    phash                   INTEGER,
    ocr_text                TEXT,
    ocr_amount_minor        INTEGER CHECK (ocr_amount_minor >= 0),
    ocr_tracking_no         TEXT,
    ocr_reference_no        TEXT,
    ocr_card_last4          TEXT CHECK (ocr_card_last4 IS NULL OR length(ocr_card_last4) = 4),
    ocr_dest_card_last4     TEXT CHECK (ocr_dest_card_last4 IS NULL OR length(ocr_dest_card_last4) = 4),
    ocr_date                TEXT,
    risk_score              INTEGER CHECK (risk_score BETWEEN 0 AND 100),
    risk_verdict            TEXT CHECK (risk_verdict IN ('low','medium','high')),
    risk_reasons            TEXT,
    created_at              INTEGER NOT NULL
);
CREATE UNIQUE INDEX receipts_image_sha256_key ON receipts (image_sha256);
CREATE UNIQUE INDEX receipts_telegram_file_unique_id_key ON receipts (telegram_file_unique_id)
    WHERE telegram_file_unique_id IS NOT NULL;
CREATE UNIQUE INDEX receipts_ocr_tracking_no_ocr_amount_minor_ocr_date_key
    ON receipts (ocr_tracking_no, ocr_amount_minor, ocr_date)
    WHERE ocr_tracking_no IS NOT NULL;
CREATE UNIQUE INDEX receipts_ocr_reference_no_key ON receipts (ocr_reference_no)
    WHERE ocr_reference_no IS NOT NULL;
CREATE INDEX receipts_payment_id_idx ON receipts (payment_id);
CREATE INDEX receipts_phash_idx ON receipts (phash);

-- ---------------------------------------------------------------------------------------
-- Inbound gateway events (webhooks, callbacks, bank-SMS forwarder), recorded before acting
-- so a redelivery is recognised: (source, event_id) is Crypto Pay update_id, YooKassa
-- "<object.id>:<event>", Zarinpal "<authority>:<Status>", Stars charge id, SMS hash.
CREATE TABLE gateway_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL
                 CHECK (source IN ('zarinpal','yookassa','stars','cryptopay','bank_sms')),
    event_id     TEXT NOT NULL,
    payment_id   INTEGER REFERENCES payments(id) ON DELETE SET NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending','processed','ignored','failed')),
    error        TEXT,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER
);
CREATE UNIQUE INDEX gateway_events_source_event_id_key ON gateway_events (source, event_id);
CREATE INDEX gateway_events_payment_id_idx ON gateway_events (payment_id);
CREATE INDEX gateway_events_status_received_at_idx ON gateway_events (status, received_at);

-- ---------------------------------------------------------------------------------------
-- Append-only ledgers; a balance is SUM(amount_minor) per user (and currency). ref_type /
-- ref_id point at what caused the entry ('payment', 'order', 'referral', ...); the unique
-- index makes "credit this payment" idempotent. Manual entries without a ref (ref_id NULL)
-- are not deduplicated.
CREATE TABLE wallet_ledger (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    amount_minor INTEGER NOT NULL CHECK (amount_minor <> 0),
    currency     TEXT NOT NULL
                 CHECK (length(currency) BETWEEN 3 AND 10 AND currency = upper(currency)),
    reason       TEXT NOT NULL CHECK (reason <> ''),
    ref_type     TEXT,
    ref_id       INTEGER,
    note         TEXT,
    created_by   INTEGER REFERENCES users(id) ON DELETE RESTRICT,
    created_at   INTEGER NOT NULL,
    CHECK ((ref_type IS NULL) = (ref_id IS NULL))
);
CREATE UNIQUE INDEX wallet_ledger_ref_type_ref_id_reason_key
    ON wallet_ledger (ref_type, ref_id, reason) WHERE ref_id IS NOT NULL;
CREATE INDEX wallet_ledger_user_id_currency_idx ON wallet_ledger (user_id, currency);
CREATE INDEX wallet_ledger_created_by_idx ON wallet_ledger (created_by);

-- Points are whole points (amount_minor keeps the ledger shape of wallet_ledger).
CREATE TABLE points_ledger (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    amount_minor INTEGER NOT NULL CHECK (amount_minor <> 0),
    reason       TEXT NOT NULL CHECK (reason <> ''),
    ref_type     TEXT,
    ref_id       INTEGER,
    note         TEXT,
    created_by   INTEGER REFERENCES users(id) ON DELETE RESTRICT,
    created_at   INTEGER NOT NULL,
    CHECK ((ref_type IS NULL) = (ref_id IS NULL))
);
CREATE UNIQUE INDEX points_ledger_ref_type_ref_id_reason_key
    ON points_ledger (ref_type, ref_id, reason) WHERE ref_id IS NOT NULL;
CREATE INDEX points_ledger_user_id_idx ON points_ledger (user_id);
CREATE INDEX points_ledger_created_by_idx ON points_ledger (created_by);

-- ---------------------------------------------------------------------------------------
-- Referrals: who brought whom (a user is referred at most once). The reward itself is a
-- wallet/points ledger entry with ref_type 'referral', ref_id = referrals.id; the fields
-- here record what was granted and which order triggered it.
CREATE TABLE referrals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    referrer_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    referred_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reward_status   TEXT NOT NULL DEFAULT 'pending'
                    CHECK (reward_status IN ('pending','rewarded','void')),
    reward_minor    INTEGER CHECK (reward_minor >= 0),
    reward_currency TEXT
                    CHECK (reward_currency IS NULL
                           OR (length(reward_currency) BETWEEN 3 AND 10
                               AND reward_currency = upper(reward_currency))),
    reward_points   INTEGER CHECK (reward_points >= 0),
    reward_order_id INTEGER REFERENCES orders(id) ON DELETE SET NULL,
    rewarded_at     INTEGER,
    created_at      INTEGER NOT NULL,
    CHECK (referrer_id <> referred_id),
    CHECK ((reward_minor IS NULL) = (reward_currency IS NULL))
);
CREATE UNIQUE INDEX referrals_referred_id_key ON referrals (referred_id);
CREATE INDEX referrals_referrer_id_idx ON referrals (referrer_id);
CREATE INDEX referrals_reward_order_id_idx ON referrals (reward_order_id);

-- ---------------------------------------------------------------------------------------
-- Support tickets.
CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','answered','closed')),
    priority    TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low','normal','high','urgent')),
    assigned_to INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX tickets_user_id_idx ON tickets (user_id);
CREATE INDEX tickets_assigned_to_idx ON tickets (assigned_to);
CREATE INDEX tickets_status_updated_at_idx ON tickets (status, updated_at);

-- from_staff is kept on the row so the thread renders correctly even if the author's
-- roles change or the author is deleted.
CREATE TABLE ticket_messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id          INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    author_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
    from_staff         INTEGER NOT NULL DEFAULT 0 CHECK (from_staff IN (0,1)),
    body               TEXT NOT NULL,
    attachment_file_id TEXT,
    created_at         INTEGER NOT NULL,
    CHECK (body <> '' OR attachment_file_id IS NOT NULL)
);
CREATE INDEX ticket_messages_ticket_id_created_at_idx ON ticket_messages (ticket_id, created_at);
CREATE INDEX ticket_messages_author_id_idx ON ticket_messages (author_id);

-- ---------------------------------------------------------------------------------------
-- Broadcasts. audience: JSON filter (e.g. {"plan_ids":[..],"status":"active"}).
-- broadcast_deliveries is materialised when sending starts, so a restart resumes with the
-- rows still 'pending' and nobody gets the message twice.
CREATE TABLE broadcasts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_by    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    audience      TEXT NOT NULL,
    body          TEXT NOT NULL,
    media_file_id TEXT,
    status        TEXT NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft','sending','done','cancelled')),
    total         INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
    sent          INTEGER NOT NULL DEFAULT 0 CHECK (sent >= 0),
    failed        INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX broadcasts_created_by_idx ON broadcasts (created_by);
CREATE INDEX broadcasts_status_idx ON broadcasts (status);

CREATE TABLE broadcast_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending','sent','failed','blocked')),
    error        TEXT,
    sent_at      INTEGER
);
CREATE UNIQUE INDEX broadcast_deliveries_broadcast_id_user_id_key
    ON broadcast_deliveries (broadcast_id, user_id);
CREATE INDEX broadcast_deliveries_broadcast_id_status_idx
    ON broadcast_deliveries (broadcast_id, status);
CREATE INDEX broadcast_deliveries_user_id_idx ON broadcast_deliveries (user_id);

-- ---------------------------------------------------------------------------------------
-- Outbox: side effects decided inside a transaction (provision an order, notify a user),
-- performed after commit by a worker. dedupe_key makes enqueueing idempotent
-- (e.g. 'provision:order:42'). locked_by / locked_until: lease of the worker running it,
-- so two replicas never perform the same row at once and a crashed worker's row returns.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','done','failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    locked_by       TEXT,
    locked_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE UNIQUE INDEX outbox_dedupe_key_key ON outbox (dedupe_key);
CREATE INDEX outbox_status_next_attempt_at_idx ON outbox (status, next_attempt_at);

-- ---------------------------------------------------------------------------------------
-- Durable jobs (reminders, card auto-accept, usage sync, health checks, backups, broadcast
-- sending). Claim: status = 'queued' AND run_at <= now (or 'running' with an expired lease),
-- then set status = 'running', locked_by, locked_until.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    run_at       INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued','running','done','failed')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    locked_by    TEXT,
    locked_until INTEGER,
    last_error   TEXT,
    dedupe_key   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_dedupe_key_key ON jobs (dedupe_key);
CREATE INDEX jobs_status_run_at_idx ON jobs (status, run_at);
CREATE INDEX jobs_status_locked_until_idx ON jobs (status, locked_until);

-- ---------------------------------------------------------------------------------------
-- Telegram dialogue state per chat (what the bot is waiting for: receipt photo, ticket
-- text, ...). chat_id is the Telegram chat id (negative for groups).
CREATE TABLE bot_dialogues (
    chat_id    INTEGER PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
