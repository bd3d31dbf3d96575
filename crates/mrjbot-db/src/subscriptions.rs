//! Subscriptions: what a customer bought. Every change bumps `version` and is guarded by
//! the version the service read, so two concurrent changes cannot silently overwrite
//! each other (the loser retries on fresh data).

use crate::{Conn, DbError, Page, Sql, on};
use serde::Serialize;

/// A stored subscription. The token and credentials are never serialised into audit logs.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: i64,
    pub user_id: i64,
    pub plan_id: Option<i64>,
    #[serde(skip_serializing)]
    pub token: Option<String>,
    pub status: String,
    pub expires_at: Option<i64>,
    pub hold_days: i64,
    pub data_limit_bytes: Option<i64>,
    pub used_bytes: i64,
    pub lifetime_used_bytes: i64,
    pub device_limit: Option<i64>,
    pub ip_type: String,
    pub node_id: Option<i64>,
    #[serde(skip_serializing)]
    pub credential_uuid: String,
    #[serde(skip_serializing)]
    pub credential_secret: String,
    pub note: Option<String>,
    pub version: i64,
    pub online_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, user_id, plan_id, token, status, expires_at, hold_days, data_limit_bytes, used_bytes, \
                    lifetime_used_bytes, device_limit, ip_type, node_id, credential_uuid, credential_secret, note, version, \
                    online_at, created_at, updated_at";

/// Filters for listing subscriptions.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    /// Owner.
    pub user_id: Option<i64>,
    /// Exact status.
    pub status: Option<String>,
    /// Bought from this plan.
    pub plan_id: Option<i64>,
    /// Expiring before this instant.
    pub expires_before: Option<i64>,
}

/// Inserts a subscription and returns its id.
pub async fn insert(c: Conn<'_>, s: &SubscriptionRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO subscriptions (user_id, plan_id, token, status, expires_at, hold_days, data_limit_bytes, used_bytes, \
               lifetime_used_bytes, device_limit, ip_type, node_id, credential_uuid, credential_secret, note, version, \
               online_at, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(s.user_id).bind(s.plan_id).bind(&s.token).bind(&s.status).bind(s.expires_at).bind(s.hold_days)
        .bind(s.data_limit_bytes).bind(s.used_bytes).bind(s.lifetime_used_bytes).bind(s.device_limit).bind(&s.ip_type)
        .bind(s.node_id).bind(&s.credential_uuid).bind(&s.credential_secret).bind(&s.note).bind(s.version)
        .bind(s.online_at).bind(s.created_at).bind(s.updated_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes the mutable columns if the stored version is still `s.version`, and bumps it.
/// Returns false when somebody else changed the row first.
pub async fn update_guarded(c: Conn<'_>, s: &SubscriptionRow) -> Result<bool, DbError> {
    let sql = "UPDATE subscriptions SET plan_id = $1, token = $2, status = $3, expires_at = $4, hold_days = $5, \
               data_limit_bytes = $6, used_bytes = $7, lifetime_used_bytes = $8, device_limit = $9, ip_type = $10, \
               node_id = $11, note = $12, updated_at = $13, version = version + 1 WHERE id = $14 AND version = $15";
    let n = on!(c, c, D => sqlx::query::<D>(sql)
        .bind(s.plan_id).bind(&s.token).bind(&s.status).bind(s.expires_at).bind(s.hold_days).bind(s.data_limit_bytes)
        .bind(s.used_bytes).bind(s.lifetime_used_bytes).bind(s.device_limit).bind(&s.ip_type).bind(s.node_id)
        .bind(&s.note).bind(s.updated_at).bind(s.id).bind(s.version).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// One subscription.
pub async fn get(c: Conn<'_>, id: i64) -> Result<Option<SubscriptionRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM subscriptions WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, SubscriptionRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// One subscription, locked for the rest of the transaction (`FOR UPDATE` on PostgreSQL;
/// on SQLite the single writer already serialises write transactions).
pub async fn get_for_update(c: Conn<'_>, id: i64) -> Result<Option<SubscriptionRow>, DbError> {
    match c {
        Conn::Sqlite(c) => {
            let sql = format!("SELECT {COLS} FROM subscriptions WHERE id = $1");
            Ok(
                sqlx::query_as::<sqlx::Sqlite, SubscriptionRow>(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?,
            )
        }
        Conn::Pg(c) => {
            let sql = format!("SELECT {COLS} FROM subscriptions WHERE id = $1 FOR UPDATE");
            Ok(
                sqlx::query_as::<sqlx::Postgres, SubscriptionRow>(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?,
            )
        }
    }
}

/// The subscription with this link token.
pub async fn get_by_token(c: Conn<'_>, token: &str) -> Result<Option<SubscriptionRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM subscriptions WHERE token = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, SubscriptionRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(token).fetch_optional(&mut *c).await?),
    )
}

/// A page of subscriptions and the total.
pub async fn list(
    c: Conn<'_>,
    f: &SubscriptionFilter,
    page: Page,
) -> Result<(Vec<SubscriptionRow>, i64), DbError> {
    let mut w = Sql::new(" FROM subscriptions WHERE 1 = 1");
    if let Some(u) = f.user_id {
        w.and("user_id = ?", u);
    }
    if let Some(s) = &f.status {
        w.and("status = ?", s.as_str());
    }
    if let Some(p) = f.plan_id {
        w.and("plan_id = ?", p);
    }
    if let Some(t) = f.expires_before {
        w.and("expires_at < ?", t);
    }
    crate::sql::fetch_page::<SubscriptionRow>(c, COLS, &w, page, None).await
}

/// Ids of subscriptions whose stored status claims usability but whose expiry has passed.
pub async fn due_for_expiry(c: Conn<'_>, now: i64, limit: i64) -> Result<Vec<i64>, DbError> {
    let sql = "SELECT id FROM subscriptions WHERE status IN ('active', 'limited', 'temporary') AND expires_at <= $1 \
               ORDER BY expires_at LIMIT $2";
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql).bind(now).bind(limit).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Deletes a subscription.
pub async fn delete(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM subscriptions WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Number of subscriptions of a user.
pub async fn count_for_user(c: Conn<'_>, user_id: i64) -> Result<i64, DbError> {
    let sql = "SELECT COUNT(*) FROM subscriptions WHERE user_id = $1";
    let n: (i64,) =
        on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql).bind(user_id).fetch_one(&mut *c).await?);
    Ok(n.0)
}

/// Subscriptions pinned to a node (its load, for choosing the least busy one).
pub async fn count_on_node(c: Conn<'_>, node_id: i64) -> Result<i64, DbError> {
    let r: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(
        "SELECT COUNT(*) FROM subscriptions WHERE node_id = $1")
        .bind(node_id).fetch_one(&mut *c).await?);
    Ok(r.0)
}
