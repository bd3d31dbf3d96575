//! What the panel reconciler remembers per 3x-UI / Marzban node: which remote accounts
//! MRJBot manages (and for which subscription), the traffic already counted for each
//! (the baseline), and the health of the last sync.
//!
//! A baseline only ever moves inside the transaction that adds the matching delta to the
//! subscription (`usage::apply`), so a crash between the two cannot count bytes twice or
//! lose them.

use crate::{Conn, DbError, on};

/// A remote account MRJBot manages on a panel node.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PanelAccountRow {
    pub node_id: i64,
    /// 3x-UI client email or Marzban username.
    pub remote_name: String,
    pub subscription_id: i64,
    /// Where the account lives on the panel (3x-UI: the inbound id; Marzban: empty).
    pub remote_ref: String,
    /// Upload bytes of the remote counter already counted.
    pub base_up: i64,
    /// Download bytes of the remote counter already counted.
    pub base_down: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The reconciler's bookkeeping of one panel node.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PanelStateRow {
    pub node_id: i64,
    /// The API generation detected (`3x-ui/2.8`, `marzban`...).
    pub api_version: Option<String>,
    /// 3x-UI v3 API token (sent as a Bearer token instead of a session).
    pub api_token: Option<String>,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
    /// Failed syncs in a row.
    pub failures: i64,
    /// No sync before this instant (backoff after failures).
    pub next_attempt_at: i64,
    pub updated_at: i64,
}

const ACOLS: &str =
    "node_id, remote_name, subscription_id, remote_ref, base_up, base_down, created_at, updated_at";

/// Every managed account of a node.
pub async fn accounts(c: Conn<'_>, node_id: i64) -> Result<Vec<PanelAccountRow>, DbError> {
    let sql = format!("SELECT {ACOLS} FROM panel_accounts WHERE node_id = $1 ORDER BY remote_name");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, PanelAccountRow>(sqlx::AssertSqlSafe(sql))
        .bind(node_id).fetch_all(&mut *c).await?),
    )
}

/// Records a managed account; an existing row (same node and name) keeps its baseline
/// and takes the new subscription and reference. Returns true when the row is new.
pub async fn upsert_account(mut c: Conn<'_>, a: &PanelAccountRow) -> Result<bool, DbError> {
    let sql = "INSERT INTO panel_accounts (node_id, remote_name, subscription_id, remote_ref, base_up, base_down, \
               created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
               ON CONFLICT (node_id, remote_name) DO NOTHING";
    let n = on!(c.reborrow(), c, D => sqlx::query::<D>(sql).bind(a.node_id).bind(&a.remote_name).bind(a.subscription_id)
        .bind(&a.remote_ref).bind(a.base_up).bind(a.base_down).bind(a.created_at).bind(a.updated_at)
        .execute(&mut *c).await?.rows_affected());
    if n == 1 {
        return Ok(true);
    }
    let sql = "UPDATE panel_accounts SET subscription_id = $1, remote_ref = $2, updated_at = $3 \
               WHERE node_id = $4 AND remote_name = $5";
    on!(c, c, D => sqlx::query::<D>(sql).bind(a.subscription_id).bind(&a.remote_ref).bind(a.updated_at)
        .bind(a.node_id).bind(&a.remote_name).execute(&mut *c).await.map(|_| ())?);
    Ok(false)
}

/// Moves the baseline of an account to the remote counters just counted.
pub async fn set_baseline(
    c: Conn<'_>,
    node_id: i64,
    remote_name: &str,
    up: i64,
    down: i64,
    now: i64,
) -> Result<(), DbError> {
    let sql = "UPDATE panel_accounts SET base_up = $1, base_down = $2, updated_at = $3 \
               WHERE node_id = $4 AND remote_name = $5";
    on!(c, c, D => sqlx::query::<D>(sql).bind(up.max(0)).bind(down.max(0)).bind(now).bind(node_id)
        .bind(remote_name).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Forgets a managed account (its remote account is gone).
pub async fn delete_account(c: Conn<'_>, node_id: i64, remote_name: &str) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM panel_accounts WHERE node_id = $1 AND remote_name = $2")
        .bind(node_id).bind(remote_name).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Which of `ids` are still subscriptions.
pub async fn existing_subscriptions(c: Conn<'_>, ids: &[i64]) -> Result<Vec<i64>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Only numbers formatted here go into the statement text (no bound parameters, so
    // no parameter-count limit either).
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT id FROM subscriptions WHERE id IN ({list})");
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The bookkeeping of a panel node, if it was ever synced.
pub async fn state(c: Conn<'_>, node_id: i64) -> Result<Option<PanelStateRow>, DbError> {
    Ok(on!(c, c, D => sqlx::query_as::<D, PanelStateRow>(
        "SELECT node_id, api_version, api_token, last_sync_at, last_error, failures, next_attempt_at, updated_at \
         FROM panel_state WHERE node_id = $1").bind(node_id).fetch_optional(&mut *c).await?))
}

/// Writes the bookkeeping of a panel node (the API token is kept; see [`set_api_token`]).
pub async fn put_state(c: Conn<'_>, s: &PanelStateRow) -> Result<(), DbError> {
    let sql = "INSERT INTO panel_state (node_id, api_version, api_token, last_sync_at, last_error, failures, \
               next_attempt_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (node_id) DO UPDATE SET \
               api_version = excluded.api_version, last_sync_at = excluded.last_sync_at, \
               last_error = excluded.last_error, failures = excluded.failures, \
               next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at";
    on!(c, c, D => sqlx::query::<D>(sql).bind(s.node_id).bind(&s.api_version).bind(&s.api_token).bind(s.last_sync_at)
        .bind(&s.last_error).bind(s.failures).bind(s.next_attempt_at).bind(s.updated_at)
        .execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Stores (or clears) the API token of a panel node.
pub async fn set_api_token(
    c: Conn<'_>,
    node_id: i64,
    token: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    let sql = "INSERT INTO panel_state (node_id, api_token, updated_at) VALUES ($1, $2, $3) \
               ON CONFLICT (node_id) DO UPDATE SET api_token = excluded.api_token, updated_at = excluded.updated_at";
    on!(c, c, D => sqlx::query::<D>(sql).bind(node_id).bind(token).bind(now).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Sets a panel node's status (`online`, `degraded`, `down`); returns the status before
/// when it changed.
pub async fn set_node_status(
    c: Conn<'_>,
    node_id: i64,
    status: &str,
    now: i64,
) -> Result<Option<String>, DbError> {
    on!(c, c, D => {
        let before: Option<(String,)> = sqlx::query_as::<D, (String,)>("SELECT status FROM nodes WHERE id = $1")
            .bind(node_id).fetch_optional(&mut *c).await?;
        match before {
            Some((b,)) if b != status => {
                sqlx::query::<D>("UPDATE nodes SET status = $1, last_heartbeat_at = $2 WHERE id = $3")
                    .bind(status).bind(now).bind(node_id).execute(&mut *c).await?;
                Ok(Some(b))
            }
            _ => {
                sqlx::query::<D>("UPDATE nodes SET last_heartbeat_at = $1 WHERE id = $2")
                    .bind(now).bind(node_id).execute(&mut *c).await?;
                Ok(None)
            }
        }
    })
}

/// Enabled panel nodes (`xui`, `marzban`), by id.
pub async fn panel_nodes(c: Conn<'_>) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(
        "SELECT id FROM nodes WHERE kind IN ('xui', 'marzban') AND is_enabled = TRUE ORDER BY id")
        .fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}
