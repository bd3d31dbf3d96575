//! What the Telegram bot keeps between updates: the dialogue of each chat, the last update
//! it handled, and the lease that lets one replica poll.

use crate::{Conn, DbError, on};

/// The stored dialogue of a chat.
pub async fn dialogue(c: Conn<'_>, chat_id: i64) -> Result<Option<String>, DbError> {
    let v: Option<(String,)> = on!(c, c, D => sqlx::query_as::<D, (String,)>(
        "SELECT state FROM bot_dialogues WHERE chat_id = $1")
        .bind(chat_id).fetch_optional(&mut *c).await?);
    Ok(v.map(|v| v.0))
}

/// Replaces the dialogue of a chat.
pub async fn put_dialogue(c: Conn<'_>, chat_id: i64, state: &str, now: i64) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("INSERT INTO bot_dialogues (chat_id, state, updated_at) VALUES ($1, $2, $3) \
        ON CONFLICT (chat_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at")
        .bind(chat_id).bind(state).bind(now).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Forgets the dialogue of a chat.
pub async fn clear_dialogue(c: Conn<'_>, chat_id: i64) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("DELETE FROM bot_dialogues WHERE chat_id = $1")
        .bind(chat_id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Takes or renews the lease `key` for `holder` until `now + ttl_ms`: succeeds when the
/// lease is free, expired, or already held by `holder`. Kept in `settings` (value
/// `holder`, `updated_at` = expiry) so both engines share one mechanism.
pub async fn try_lease(
    c: Conn<'_>,
    key: &str,
    holder: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<bool, DbError> {
    let done = on!(c, c, D => sqlx::query::<D>("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at \
        WHERE settings.value = excluded.value OR settings.updated_at < $4")
        .bind(key).bind(holder).bind(now + ttl_ms).bind(now)
        .execute(&mut *c).await?.rows_affected());
    Ok(done == 1)
}

/// Gives the lease up if `holder` has it.
pub async fn release_lease(c: Conn<'_>, key: &str, holder: &str) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("DELETE FROM settings WHERE key = $1 AND value = $2")
        .bind(key).bind(holder).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}
