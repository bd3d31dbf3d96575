//! The audit log: append-only, one row per mutating admin action, written in the same
//! transaction as the change it describes.

use crate::{Conn, DbError, Page, Sql, on};

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<i64>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
}

const COLS: &str = "id, actor_id, actor_label, action, entity_type, entity_id, before, after, request_id, created_at";

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Who.
    pub actor_id: Option<i64>,
    /// Exact action (`subscription.renew`).
    pub action: Option<String>,
    /// Entity type (`subscription`).
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<i64>,
    /// At or after.
    pub since: Option<i64>,
    /// Before.
    pub until: Option<i64>,
}

/// Appends an entry.
pub async fn insert(c: Conn<'_>, a: &AuditRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO audit_log (actor_id, actor_label, action, entity_type, entity_id, before, after, request_id, \
               created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(a.actor_id).bind(&a.actor_label).bind(&a.action).bind(&a.entity_type).bind(a.entity_id)
        .bind(&a.before).bind(&a.after).bind(&a.request_id).bind(a.created_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// A page of entries and the total.
pub async fn list(
    c: Conn<'_>,
    f: &AuditFilter,
    page: Page,
) -> Result<(Vec<AuditRow>, i64), DbError> {
    let mut w = Sql::new(" FROM audit_log WHERE 1 = 1");
    if let Some(v) = f.actor_id {
        w.and("actor_id = ?", v);
    }
    if let Some(v) = &f.action {
        w.and("action = ?", v.as_str());
    }
    if let Some(v) = &f.entity_type {
        w.and("entity_type = ?", v.as_str());
    }
    if let Some(v) = f.entity_id {
        w.and("entity_id = ?", v);
    }
    if let Some(v) = f.since {
        w.and("created_at >= ?", v);
    }
    if let Some(v) = f.until {
        w.and("created_at < ?", v);
    }
    crate::sql::fetch_page::<AuditRow>(c, COLS, &w, page, None).await
}
