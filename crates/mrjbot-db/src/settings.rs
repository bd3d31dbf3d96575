//! Shop settings: a key-value table of JSON values.

use crate::{Conn, DbError, on};

/// Stores `value` under `key` unless the key exists. Returns the stored value either way,
/// so racing replicas agree on the first writer's value.
pub async fn insert_or_get(
    c: Conn<'_>,
    key: &str,
    value: &str,
    now: i64,
) -> Result<String, DbError> {
    on!(c, c, D => {
        sqlx::query::<D>("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(key).bind(value).bind(now).execute(&mut *c).await?;
        let v: (String,) = sqlx::query_as::<D, (String,)>("SELECT value FROM settings WHERE key = $1")
            .bind(key).fetch_one(&mut *c).await?;
        Ok(v.0)
    })
}

/// The value of `key`.
pub async fn get(c: Conn<'_>, key: &str) -> Result<Option<String>, DbError> {
    let v: Option<(String,)> = on!(c, c, D => sqlx::query_as::<D, (String,)>("SELECT value FROM settings WHERE key = $1")
        .bind(key).fetch_optional(&mut *c).await?);
    Ok(v.map(|v| v.0))
}

/// Stores `value` under `key`, replacing any previous value.
pub async fn put(
    c: Conn<'_>,
    key: &str,
    value: &str,
    now: i64,
    by: Option<i64>,
) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by")
        .bind(key).bind(value).bind(now).bind(by).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}
