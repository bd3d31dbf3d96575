//! The shop front's tables and queries: customers as the Telegram bot knows them
//! (Telegram id and @username, referral code), referrals and their rewards, the points
//! ledger, free trials, the reminder scan and the numbers of the staff's `/stats`.
//!
//! What must happen once is made once by the database: one user per Telegram id
//! (`users_telegram_id_key`), one referral per referred customer
//! (`referrals_referred_id_key`), one reward per referral (a guarded update from
//! `pending`), one trial per customer (`trials` primary key).

use crate::{Conn, DbError, Sql, bind_all, on};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------
// Customers

/// A user as the shop front sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub username: Option<String>,
    pub telegram_id: Option<i64>,
    pub telegram_username: Option<String>,
    pub display_name: Option<String>,
    pub language: String,
    pub status: String,
    pub referral_code: Option<String>,
    pub created_at: i64,
}

const CUSTOMER_COLS: &str = "id, username, telegram_id, telegram_username, display_name, language, status, \
    referral_code, created_at";

/// The user with this Telegram id.
pub async fn customer_by_telegram(
    c: Conn<'_>,
    telegram_id: i64,
) -> Result<Option<CustomerRow>, DbError> {
    let sql = format!("SELECT {CUSTOMER_COLS} FROM users WHERE telegram_id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, CustomerRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(telegram_id).fetch_optional(&mut *c).await?),
    )
}

/// The user with this id.
pub async fn customer(c: Conn<'_>, id: i64) -> Result<Option<CustomerRow>, DbError> {
    let sql = format!("SELECT {CUSTOMER_COLS} FROM users WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, CustomerRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// A new customer from Telegram.
#[derive(Debug, Clone)]
pub struct NewTelegramUser<'a> {
    pub telegram_id: i64,
    pub telegram_username: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub language: &'a str,
    pub now: i64,
}

/// Inserts a customer unless a user with the Telegram id exists; the new id, or `None`
/// when somebody else (a concurrent update of the same person) created it first.
pub async fn insert_telegram_user(
    c: Conn<'_>,
    u: &NewTelegramUser<'_>,
) -> Result<Option<i64>, DbError> {
    let sql = "INSERT INTO users (telegram_id, telegram_username, display_name, language, status, failed_logins, \
               created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', 0, $5, $5) \
               ON CONFLICT (telegram_id) DO NOTHING RETURNING id";
    let id: Option<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(u.telegram_id).bind(u.telegram_username).bind(u.display_name).bind(u.language).bind(u.now)
        .fetch_optional(&mut *c).await?);
    Ok(id.map(|r| r.0))
}

/// Stores the name and @username Telegram reports now.
pub async fn set_telegram_profile(
    c: Conn<'_>,
    id: i64,
    display_name: Option<&str>,
    telegram_username: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    let sql =
        "UPDATE users SET display_name = $1, telegram_username = $2, updated_at = $3 WHERE id = $4";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(display_name).bind(telegram_username).bind(now).bind(id)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Sets a user's language.
pub async fn set_language(c: Conn<'_>, id: i64, language: &str, now: i64) -> Result<bool, DbError> {
    let sql = "UPDATE users SET language = $1, updated_at = $2 WHERE id = $3";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(language).bind(now).bind(id)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Sets a user's status (`active` / `disabled`); false when it already was.
pub async fn set_status(c: Conn<'_>, id: i64, status: &str, now: i64) -> Result<bool, DbError> {
    let sql = "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 AND status <> $1";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(status).bind(now).bind(id)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// How staff look a customer up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A bare number: a user id or a Telegram id.
    Number(i64),
    /// `tg:123`.
    TelegramId(i64),
    /// `@name` (lower-case, without the `@`).
    TelegramUsername(String),
    /// Part of the display name.
    Name(String),
}

/// Users matching a lookup, oldest first, at most `limit`.
pub async fn find_customers(
    c: Conn<'_>,
    by: &Lookup,
    limit: i64,
) -> Result<Vec<CustomerRow>, DbError> {
    let mut s = Sql::new(&format!("SELECT {CUSTOMER_COLS} FROM users WHERE 1 = 1"));
    match by {
        Lookup::Number(n) => {
            s.push(" AND (id = ")
                .bind(*n)
                .push(" OR telegram_id = ")
                .bind(*n)
                .push(")");
        }
        Lookup::TelegramId(t) => {
            s.and("telegram_id = ?", *t);
        }
        Lookup::TelegramUsername(u) => {
            s.and("telegram_username = ?", u.as_str());
        }
        Lookup::Name(q) => {
            s.and_search(&["display_name"], q);
        }
    }
    s.push(" ORDER BY id LIMIT ").bind(limit);
    Ok(
        on!(c, c, D => bind_all!(sqlx::query_as::<D, CustomerRow>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args)
        .fetch_all(&mut *c).await?),
    )
}

/// Orders of a user that were paid (delivered or not), and the last time a payment of
/// theirs was approved.
pub async fn payment_summary(c: Conn<'_>, user_id: i64) -> Result<(i64, Option<i64>), DbError> {
    on!(c, c, D => {
        let paid: (i64,) = sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM orders WHERE user_id = $1 AND status = 'paid'")
            .bind(user_id).fetch_one(&mut *c).await?;
        let last: (Option<i64>,) = sqlx::query_as::<D, (Option<i64>,)>("SELECT MAX(approved_at) FROM payments \
            WHERE user_id = $1 AND status IN ('approved','refunded')")
            .bind(user_id).fetch_one(&mut *c).await?;
        Ok((paid.0, last.0))
    })
}

// ---------------------------------------------------------------------------------------
// Referrals and points

/// The user whose referral code this is.
pub async fn user_by_referral_code(c: Conn<'_>, code: &str) -> Result<Option<i64>, DbError> {
    let r: Option<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT id FROM users WHERE referral_code = $1")
        .bind(code).fetch_optional(&mut *c).await?);
    Ok(r.map(|r| r.0))
}

/// Stores a user's referral code unless they have one. Fails with `Unique` when another
/// user holds the same code.
pub async fn set_referral_code(c: Conn<'_>, id: i64, code: &str) -> Result<bool, DbError> {
    let sql = "UPDATE users SET referral_code = $1 WHERE id = $2 AND referral_code IS NULL";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(code).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Records that `referrer` brought `referred`; false when `referred` was referred before.
pub async fn insert_referral(
    c: Conn<'_>,
    referrer: i64,
    referred: i64,
    now: i64,
) -> Result<bool, DbError> {
    let sql = "INSERT INTO referrals (referrer_id, referred_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(referrer).bind(referred).bind(now)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// (customers brought, of whom rewarded) by a referrer.
pub async fn referral_counts(c: Conn<'_>, referrer: i64) -> Result<(i64, i64), DbError> {
    let r: (i64, i64) = on!(c, c, D => sqlx::query_as::<D, (i64, i64)>("SELECT COUNT(*), \
        CAST(COALESCE(SUM(CASE WHEN reward_status = 'rewarded' THEN 1 ELSE 0 END), 0) AS BIGINT) \
        FROM referrals WHERE referrer_id = $1")
        .bind(referrer).fetch_one(&mut *c).await?);
    Ok(r)
}

/// Settles the pending referral of `referred` (rewarded with `points`, or void when
/// `points` is `None`), once: (referral id, referrer) when this call settled it.
pub async fn settle_referral(
    c: Conn<'_>,
    referred: i64,
    order_id: i64,
    points: Option<i64>,
    now: i64,
) -> Result<Option<(i64, i64)>, DbError> {
    let status = if points.is_some() { "rewarded" } else { "void" };
    let sql = "UPDATE referrals SET reward_status = $1, reward_points = $2, reward_order_id = $3, rewarded_at = $4 \
               WHERE referred_id = $5 AND reward_status = 'pending' RETURNING id, referrer_id";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (i64, i64)>(sql).bind(status).bind(points).bind(order_id).bind(now).bind(referred)
        .fetch_optional(&mut *c).await?),
    )
}

/// One points ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PointsRow {
    pub id: i64,
    pub user_id: i64,
    pub amount_minor: i64,
    pub reason: String,
    pub ref_type: Option<String>,
    pub ref_id: Option<i64>,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// Appends a points entry; its id, or `None` when an entry for the same (ref, reason)
/// exists already.
pub async fn points_append(c: Conn<'_>, e: &PointsRow) -> Result<Option<i64>, DbError> {
    let sql = "INSERT INTO points_ledger (user_id, amount_minor, reason, ref_type, ref_id, note, created_by, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id";
    let id: Option<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(e.user_id).bind(e.amount_minor).bind(&e.reason).bind(&e.ref_type).bind(e.ref_id)
        .bind(&e.note).bind(e.created_by).bind(e.created_at).fetch_optional(&mut *c).await?);
    Ok(id.map(|r| r.0))
}

/// A user's points: the sum of their ledger.
pub async fn points_balance(c: Conn<'_>, user_id: i64) -> Result<i64, DbError> {
    let r: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) \
        FROM points_ledger WHERE user_id = $1").bind(user_id).fetch_one(&mut *c).await?);
    Ok(r.0)
}

// ---------------------------------------------------------------------------------------
// Trials

/// The trial a user took: (subscription id, when), if any.
pub async fn trial_of(c: Conn<'_>, user_id: i64) -> Result<Option<(Option<i64>, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (Option<i64>, i64)>("SELECT subscription_id, created_at FROM trials WHERE user_id = $1")
        .bind(user_id).fetch_optional(&mut *c).await?),
    )
}

/// Takes the user's one trial; false when it was taken before (by this call's twin too).
pub async fn insert_trial(c: Conn<'_>, user_id: i64, now: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("INSERT INTO trials (user_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(user_id).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Links the trial to the subscription it gave.
pub async fn set_trial_subscription(
    c: Conn<'_>,
    user_id: i64,
    subscription_id: i64,
) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE trials SET subscription_id = $1 WHERE user_id = $2")
        .bind(subscription_id).bind(user_id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// The serving node (enabled, not down) of `region` with the fewest live subscriptions
/// pinned to it: (id, ip type).
pub async fn least_loaded_node(
    c: Conn<'_>,
    region: &str,
) -> Result<Option<(i64, String)>, DbError> {
    let sql = "SELECT n.id, n.ip_type FROM nodes n WHERE n.is_enabled = TRUE AND n.status <> 'down' AND n.region = $1 \
               ORDER BY (SELECT COUNT(*) FROM subscriptions s WHERE s.node_id = n.id \
                         AND s.status IN ('active','on_hold','limited','temporary')), n.id LIMIT 1";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (i64, String)>(sql).bind(region).fetch_optional(&mut *c).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Reminders

/// A subscription the reminder scan looks at.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReminderRow {
    pub id: i64,
    pub user_id: i64,
    pub status: String,
    pub expires_at: Option<i64>,
    pub data_limit_bytes: Option<i64>,
    pub used_bytes: i64,
}

/// Subscriptions of customers with a Telegram chat that are near a reminder: active and
/// ending before `expires_before`, or active / limited with at least `min_percent` of
/// their data cap used. Ordered by id, after `after_id`, at most `limit`.
pub async fn reminder_candidates(
    c: Conn<'_>,
    now: i64,
    expires_before: i64,
    min_percent: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ReminderRow>, DbError> {
    let sql = "SELECT s.id, s.user_id, s.status, s.expires_at, s.data_limit_bytes, s.used_bytes \
               FROM subscriptions s JOIN users u ON u.id = s.user_id \
               WHERE u.telegram_id IS NOT NULL AND s.id > $1 AND ( \
                 (s.status = 'active' AND s.expires_at > $2 AND s.expires_at <= $3) \
                 OR (s.status IN ('active','limited') AND s.data_limit_bytes > 0 \
                     AND s.used_bytes >= s.data_limit_bytes / 100 * $4)) \
               ORDER BY s.id LIMIT $5";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, ReminderRow>(sql).bind(after_id).bind(now).bind(expires_before)
        .bind(min_percent).bind(limit).fetch_all(&mut *c).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Staff numbers

/// Figures for the staff's `/stats`, all at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub customers: i64,
    pub customers_since: i64,
    pub active_subscriptions: i64,
    pub expiring: i64,
    pub awaiting_review: i64,
    pub open_tickets: i64,
}

/// Counts customers (holders of the `user` or `vip` role), those created since `since`,
/// active subscriptions, those of them ending in `(now, expiring_before]`, card payments
/// with a receipt waiting for review, and open tickets.
pub async fn counts(
    c: Conn<'_>,
    since: i64,
    now: i64,
    expiring_before: i64,
) -> Result<Counts, DbError> {
    on!(c, c, D => {
        let customers: (i64, i64) = sqlx::query_as::<D, (i64, i64)>("SELECT COUNT(*), \
            CAST(COALESCE(SUM(CASE WHEN u.created_at >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) FROM users u \
            WHERE EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                          WHERE ur.user_id = u.id AND r.name IN ('user','vip'))")
            .bind(since).fetch_one(&mut *c).await?;
        let subs: (i64, i64) = sqlx::query_as::<D, (i64, i64)>("SELECT COUNT(*), \
            CAST(COALESCE(SUM(CASE WHEN expires_at > $1 AND expires_at <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
            FROM subscriptions WHERE status = 'active'")
            .bind(now).bind(expiring_before).fetch_one(&mut *c).await?;
        let review: (i64,) = sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM payments p WHERE p.status = 'pending' \
            AND p.method = 'card' AND EXISTS (SELECT 1 FROM receipts r WHERE r.payment_id = p.id)")
            .fetch_one(&mut *c).await?;
        let tickets: (i64,) = sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM tickets WHERE status = 'open'")
            .fetch_one(&mut *c).await?;
        Ok(Counts {
            customers: customers.0,
            customers_since: customers.1,
            active_subscriptions: subs.0,
            expiring: subs.1,
            awaiting_review: review.0,
            open_tickets: tickets.0,
        })
    })
}
