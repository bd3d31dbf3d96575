//! Usage ingestion: byte deltas per subscription and node land in hourly buckets and in the
//! subscription's running totals, in bulk (one statement per 1,000 entries, whatever the
//! engine), and node agents' report numbers make a re-sent report a no-op.

use crate::{Conn, DbError, on};

/// Bytes one subscription moved on one node since the previous report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubUsage {
    pub subscription_id: i64,
    pub up: i64,
    pub down: i64,
}

/// What a batch of usage changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Entries counted (usage of subscriptions that no longer exist is dropped).
    pub counted: usize,
    /// Subscriptions whose totals moved.
    pub touched: Vec<i64>,
    /// Bytes added per subscription of `touched` (same order).
    pub added: Vec<i64>,
    /// Subscriptions that reached their data cap with this batch (now `limited`).
    pub limited: Vec<i64>,
    /// On-hold subscriptions whose clock started with this batch (now `active`).
    pub started: Vec<i64>,
}

const CHUNK: usize = 1_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Records report `seq` of `node_id`; false when it was recorded before (a retry).
pub async fn record_report(
    c: Conn<'_>,
    node_id: i64,
    seq: i64,
    entries: &[SubUsage],
    now: i64,
) -> Result<bool, DbError> {
    let up: i64 = entries.iter().map(|e| e.up).fold(0, i64::saturating_add);
    let down: i64 = entries.iter().map(|e| e.down).fold(0, i64::saturating_add);
    let n = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    let sql = "INSERT INTO node_usage_reports (node_id, seq, entries, up_bytes, down_bytes, received_at) \
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (node_id, seq) DO NOTHING";
    let r = on!(c, c, D => sqlx::query::<D>(sql).bind(node_id).bind(seq).bind(n).bind(up).bind(down).bind(now)
        .execute(&mut *c).await?.rows_affected());
    Ok(r == 1)
}

/// The highest report number recorded for a node.
pub async fn last_seq(c: Conn<'_>, node_id: i64) -> Result<Option<i64>, DbError> {
    let r: (Option<i64>,) = on!(c, c, D => sqlx::query_as::<D, (Option<i64>,)>(
        "SELECT MAX(seq) FROM node_usage_reports WHERE node_id = $1").bind(node_id).fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// Adds `entries` (one per subscription; callers merge duplicates) to the hour bucket of
/// `now` and to the subscriptions' totals, then applies what the totals imply: a data cap
/// reached makes an active or temporary subscription `limited`; first traffic starts an
/// on-hold subscription's clock. Runs inside the caller's transaction.
pub async fn apply(
    c: Conn<'_>,
    node_id: i64,
    entries: &[SubUsage],
    now: i64,
) -> Result<Applied, DbError> {
    let mut out = Applied::default();
    let period = now - now.rem_euclid(HOUR_MS);
    on!(c, c, D => {
        for chunk in entries.chunks(CHUNK) {
            let values = chunk
                .iter()
                .filter(|e| e.up > 0 || e.down > 0)
                .map(|e| format!("({}, {}, {})", e.subscription_id, e.up.max(0), e.down.max(0)))
                .collect::<Vec<_>>()
                .join(", ");
            if values.is_empty() {
                continue;
            }
            // Only numbers formatted here go into the statement text.
            let touched_sql = format!(
                "WITH v(id, up, down) AS (VALUES {values}) \
                 UPDATE subscriptions SET used_bytes = used_bytes + v.up + v.down, \
                 lifetime_used_bytes = lifetime_used_bytes + v.up + v.down, online_at = {now}, \
                 updated_at = {now}, version = version + 1 \
                 FROM v WHERE subscriptions.id = v.id RETURNING subscriptions.id"
            );
            let touched: Vec<(i64,)> = sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(touched_sql))
                .fetch_all(&mut *c).await?;
            if touched.is_empty() {
                continue;
            }
            let bucket_sql = format!(
                "WITH v(id, up, down) AS (VALUES {values}) \
                 INSERT INTO usage (subscription_id, node_id, period_start, up_bytes, down_bytes, updated_at) \
                 SELECT v.id, {node_id}, {period}, v.up, v.down, {now} FROM v \
                 JOIN subscriptions s ON s.id = v.id WHERE true \
                 ON CONFLICT (subscription_id, node_id, period_start) DO UPDATE SET \
                 up_bytes = usage.up_bytes + excluded.up_bytes, down_bytes = usage.down_bytes + excluded.down_bytes, \
                 updated_at = excluded.updated_at"
            );
            sqlx::query::<D>(sqlx::AssertSqlSafe(bucket_sql)).execute(&mut *c).await?;
            let ids = touched.iter().map(|t| t.0.to_string()).collect::<Vec<_>>().join(", ");
            let limited_sql = format!(
                "UPDATE subscriptions SET status = 'limited', version = version + 1 \
                 WHERE id IN ({ids}) AND status IN ('active', 'temporary') \
                 AND data_limit_bytes IS NOT NULL AND used_bytes >= data_limit_bytes RETURNING id"
            );
            let limited: Vec<(i64,)> = sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(limited_sql))
                .fetch_all(&mut *c).await?;
            let started_sql = format!(
                "UPDATE subscriptions SET status = 'active', expires_at = {now} + hold_days * {DAY_MS}, \
                 version = version + 1 WHERE id IN ({ids}) AND status = 'on_hold' RETURNING id"
            );
            let started: Vec<(i64,)> = sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(started_sql))
                .fetch_all(&mut *c).await?;
            out.counted += touched.len();
            let by_id: std::collections::HashMap<i64, i64> = chunk
                .iter()
                .map(|e| (e.subscription_id, e.up.max(0).saturating_add(e.down.max(0))))
                .collect();
            for (id,) in touched {
                out.touched.push(id);
                out.added.push(by_id.get(&id).copied().unwrap_or(0));
            }
            out.limited.extend(limited.into_iter().map(|t| t.0));
            out.started.extend(started.into_iter().map(|t| t.0));
        }
    });
    Ok(out)
}

/// Usage of one subscription per node (all periods), for the API.
pub async fn by_node(c: Conn<'_>, subscription_id: i64) -> Result<Vec<(i64, i64, i64)>, DbError> {
    Ok(on!(c, c, D => sqlx::query_as::<D, (i64, i64, i64)>(
        "SELECT node_id, CAST(SUM(up_bytes) AS BIGINT), CAST(SUM(down_bytes) AS BIGINT) FROM usage \
         WHERE subscription_id = $1 GROUP BY node_id ORDER BY node_id")
        .bind(subscription_id).fetch_all(&mut *c).await?))
}
