//! Users: customers (usually known by their Telegram id) and staff (who log in with a
//! username and password).

use crate::{Conn, DbError, Page, Sql, on};
use serde::Serialize;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: Option<String>,
    pub email: Option<String>,
    pub telegram_id: Option<i64>,
    pub display_name: Option<String>,
    pub language: String,
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub status: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub note: Option<String>,
    pub password_changed_at: Option<i64>,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, username, email, telegram_id, display_name, language, password_hash, status, failed_logins, \
                    locked_until, note, password_changed_at, last_login_at, created_at, updated_at";

/// Filters for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Substring of username, e-mail or display name.
    pub q: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Users holding this role (by name), unexpired at `now`.
    pub role: Option<String>,
    /// Exact Telegram id.
    pub telegram_id: Option<i64>,
    /// Only this user (customers listing themselves).
    pub only_id: Option<i64>,
}

/// Inserts a user and returns its id.
pub async fn insert(c: Conn<'_>, u: &UserRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO users (username, email, telegram_id, display_name, language, password_hash, status, \
               failed_logins, locked_until, note, password_changed_at, last_login_at, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(&u.username).bind(&u.email).bind(u.telegram_id).bind(&u.display_name).bind(&u.language)
        .bind(&u.password_hash).bind(&u.status).bind(u.failed_logins).bind(u.locked_until).bind(&u.note)
        .bind(u.password_changed_at).bind(u.last_login_at).bind(u.created_at).bind(u.updated_at)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes every editable column of `u` (by id). Returns whether a row was updated.
pub async fn update(c: Conn<'_>, u: &UserRow) -> Result<bool, DbError> {
    let sql = "UPDATE users SET username = $1, email = $2, telegram_id = $3, display_name = $4, language = $5, \
               status = $6, note = $7, updated_at = $8 WHERE id = $9";
    let n = on!(c, c, D => sqlx::query::<D>(sql)
        .bind(&u.username).bind(&u.email).bind(u.telegram_id).bind(&u.display_name).bind(&u.language)
        .bind(&u.status).bind(&u.note).bind(u.updated_at).bind(u.id)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// One user by id.
pub async fn get(c: Conn<'_>, id: i64) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM users WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, UserRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// One user by (normalised) username.
pub async fn get_by_username(c: Conn<'_>, username: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM users WHERE username = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, UserRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(username).fetch_optional(&mut *c).await?),
    )
}

/// A page of users and the total matching `f` (counted unless `known_total` is given).
pub async fn list(
    c: Conn<'_>,
    f: &UserFilter,
    page: Page,
    now: i64,
    known_total: Option<i64>,
) -> Result<(Vec<UserRow>, i64), DbError> {
    let mut w = Sql::new(" FROM users WHERE 1 = 1");
    if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
        w.and_search(&["username", "email", "display_name"], q);
    }
    if let Some(s) = &f.status {
        w.and("status = ?", s.as_str());
    }
    if let Some(t) = f.telegram_id {
        w.and("telegram_id = ?", t);
    }
    if let Some(id) = f.only_id {
        w.and("id = ?", id);
    }
    if let Some(r) = &f.role {
        w.and("id IN (SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.name = ?", r.as_str());
        w.and("(ur.expires_at IS NULL OR ur.expires_at > ?))", now);
    }
    crate::sql::fetch_page::<UserRow>(c, COLS, &w, page, known_total).await
}

/// Deletes a user; fails with `ForeignKey` while money rows or subscriptions refer to it.
pub async fn delete(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Counts a failed login atomically and locks the account for `lock_ms` once the count
/// reaches `threshold`. Returns the new count.
pub async fn record_failed_login(
    c: Conn<'_>,
    id: i64,
    threshold: i64,
    lock_until: i64,
    now: i64,
) -> Result<i64, DbError> {
    let sql = "UPDATE users SET failed_logins = failed_logins + 1, \
               locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END, updated_at = $3 \
               WHERE id = $4 RETURNING failed_logins";
    let n: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql).bind(threshold).bind(lock_until).bind(now).bind(id).fetch_one(&mut *c).await?);
    Ok(n.0)
}

/// Clears the failure counter after a successful login.
pub async fn record_login(c: Conn<'_>, id: i64, now: i64) -> Result<(), DbError> {
    let sql =
        "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2";
    on!(c, c, D => sqlx::query::<D>(sql).bind(now).bind(id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Stores a new password hash.
pub async fn set_password(c: Conn<'_>, id: i64, hash: &str, now: i64) -> Result<bool, DbError> {
    let sql = "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2, failed_logins = 0, \
               locked_until = NULL WHERE id = $3";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(hash).bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Number of users.
pub async fn count(c: Conn<'_>) -> Result<i64, DbError> {
    let n: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM users").fetch_one(&mut *c).await?);
    Ok(n.0)
}
