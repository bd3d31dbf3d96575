//! `/api/v1/audit-log`.

use crate::error::ApiResult;
use crate::extract::{Auth, Query};
use crate::routes::{Page, list_query};
use axum::extract::State;
use mrjbot_app::App;
use mrjbot_app::audit::AuditEntry;
use mrjbot_db::audit::AuditFilter;
use mrjbot_domain::Timestamp;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(AuditQuery {
    /// Acting user.
    actor_id: Option<i64>,
    /// Exact action, e.g. `subscription.renew`.
    action: Option<String>,
    /// Entity type, e.g. `subscription`.
    entity_type: Option<String>,
    /// Entity id.
    entity_id: Option<i64>,
    /// At or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// Before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<Timestamp>,
});

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Reads the audit log, newest last by default (needs `audit.read`).
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of entries", body = Page<AuditEntry>)))]
async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    let p = q.list_params();
    let filter = AuditFilter {
        actor_id: q.actor_id,
        action: q.action,
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        since: q.since.map(Timestamp::millis),
        until: q.until.map(Timestamp::millis),
    };
    Ok(axum::Json(Page::new(
        app.list_audit(&a, filter, &p).await?,
        &p,
    )))
}
