//! Business figures for the metrics endpoint.

use crate::{Conn, DbError, on};

/// Subscriptions per status.
pub async fn subscriptions_by_status(c: Conn<'_>) -> Result<Vec<(String, i64)>, DbError> {
    let sql = "SELECT status, COUNT(*) FROM subscriptions GROUP BY status";
    Ok(on!(c, c, D => sqlx::query_as::<D, (String, i64)>(sql).fetch_all(&mut *c).await?))
}

/// Nodes per status.
pub async fn nodes_by_status(c: Conn<'_>) -> Result<Vec<(String, i64)>, DbError> {
    let sql = "SELECT status, COUNT(*) FROM nodes GROUP BY status";
    Ok(on!(c, c, D => sqlx::query_as::<D, (String, i64)>(sql).fetch_all(&mut *c).await?))
}
