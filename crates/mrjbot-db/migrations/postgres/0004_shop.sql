-- 0004_shop: what the Telegram shop front needs beyond 0003: the customer's Telegram
-- @username (staff look customers up by it), their referral code, and free trials.
-- Kept column for column identical to migrations/sqlite/0004_shop.sql.

-- Telegram @username without the `@`, lower-cased (Telegram usernames are case-blind);
-- refreshed whenever the customer writes to the bot.
ALTER TABLE users ADD COLUMN telegram_username TEXT;
-- The code in the customer's referral link (`?start=ref_<code>`), made on first use.
ALTER TABLE users ADD COLUMN referral_code TEXT;
CREATE UNIQUE INDEX users_referral_code_key ON users (referral_code);
CREATE INDEX users_telegram_username_idx ON users (telegram_username);

-- One free trial per customer, ever: the primary key is what makes it once, even for two
-- claims racing each other. subscription_id is the trial subscription it gave.
CREATE TABLE trials (
    user_id         BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    subscription_id BIGINT REFERENCES subscriptions(id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX trials_subscription_id_idx ON trials (subscription_id);
