//! Login sessions and their rotating refresh tokens (stored only as SHA-256 hashes).

use crate::{Conn, DbError, on};

/// A stored session.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub refresh_hash: String,
    pub prev_refresh_hash: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const COLS: &str = "id, user_id, refresh_hash, prev_refresh_hash, user_agent, ip, created_at, last_used_at, expires_at, revoked_at";

/// Inserts a session and returns its id.
pub async fn insert(c: Conn<'_>, s: &SessionRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO sessions (user_id, refresh_hash, prev_refresh_hash, user_agent, ip, created_at, last_used_at, \
               expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(s.user_id).bind(&s.refresh_hash).bind(&s.prev_refresh_hash).bind(&s.user_agent).bind(&s.ip)
        .bind(s.created_at).bind(s.last_used_at).bind(s.expires_at).bind(s.revoked_at)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// One session by id.
pub async fn get(c: Conn<'_>, id: i64) -> Result<Option<SessionRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM sessions WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, SessionRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// The session whose current or previous refresh hash is `hash`.
pub async fn find_by_refresh(c: Conn<'_>, hash: &str) -> Result<Option<SessionRow>, DbError> {
    let sql =
        format!("SELECT {COLS} FROM sessions WHERE refresh_hash = $1 OR prev_refresh_hash = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, SessionRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(hash).fetch_optional(&mut *c).await?),
    )
}

/// Replaces the refresh hash if it is still `old` and the session is live: one winner
/// when the same token is presented twice at once.
pub async fn rotate(
    c: Conn<'_>,
    id: i64,
    old: &str,
    new: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, DbError> {
    let sql = "UPDATE sessions SET refresh_hash = $1, prev_refresh_hash = $2, last_used_at = $3, expires_at = $4 \
               WHERE id = $5 AND refresh_hash = $2 AND revoked_at IS NULL AND expires_at > $3";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(new).bind(old).bind(now).bind(expires_at).bind(id)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Revokes one session.
pub async fn revoke(c: Conn<'_>, id: i64, now: i64) -> Result<bool, DbError> {
    let sql = "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Revokes every live session of a user except `keep`; returns how many.
pub async fn revoke_all(
    c: Conn<'_>,
    user_id: i64,
    keep: Option<i64>,
    now: i64,
) -> Result<u64, DbError> {
    let sql = "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(now).bind(user_id).bind(keep.unwrap_or(-1))
        .execute(&mut *c).await?.rows_affected());
    Ok(n)
}
