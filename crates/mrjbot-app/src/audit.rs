//! The audit trail: every mutating admin action records who did what, with the entity's
//! state before and after, in the same transaction as the change.

use crate::actor::Actor;
use crate::error::AppResult;
use crate::{App, ListParams};
use mrjbot_db::Conn;
use mrjbot_db::audit::{self as repo, AuditFilter, AuditRow};
use mrjbot_domain::{Permission, Timestamp};
use serde::Serialize;

/// One audit entry as shown to admins.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Entry id.
    pub id: i64,
    /// The acting user, if a user acted.
    pub actor_id: Option<i64>,
    /// Who acted (username, `cli`, `system`).
    pub actor_label: String,
    /// What was done (`subscription.renew`).
    pub action: String,
    /// Kind of entity.
    pub entity_type: String,
    /// Which entity.
    pub entity_id: Option<i64>,
    /// State before the change.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// State after the change.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// Request id of the API call.
    pub request_id: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Self {
            id: r.id,
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            before: parse(r.before),
            after: parse(r.after),
            request_id: r.request_id,
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

impl App {
    /// Appends an audit entry inside the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audit<B: Serialize, A: Serialize>(
        &self,
        c: Conn<'_>,
        actor: &Actor,
        action: &str,
        entity_type: &str,
        entity_id: Option<i64>,
        before: Option<&B>,
        after: Option<&A>,
    ) -> AppResult<()> {
        repo::insert(
            c,
            &AuditRow {
                id: 0,
                actor_id: actor.user_id,
                actor_label: actor.label.clone(),
                action: action.to_owned(),
                entity_type: entity_type.to_owned(),
                entity_id,
                before: before.and_then(|b| serde_json::to_string(b).ok()),
                after: after.and_then(|a| serde_json::to_string(a).ok()),
                request_id: actor.request_id.clone(),
                created_at: self.now().millis(),
            },
        )
        .await?;
        Ok(())
    }

    /// Reads the audit log (needs `audit.read`).
    pub async fn list_audit(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        params: &ListParams,
    ) -> AppResult<(Vec<AuditEntry>, i64)> {
        actor.require(Permission::AuditRead)?;
        let page = params.page(&["id", "created_at", "action"], "id")?;
        let (rows, total) = repo::list(self.db().read().await?.conn(), &filter, page).await?;
        Ok((rows.into_iter().map(AuditEntry::from).collect(), total))
    }
}
