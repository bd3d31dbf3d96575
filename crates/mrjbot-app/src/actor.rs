//! Who is acting: a signed-in user with the permissions of their unexpired roles, or the
//! system itself (CLI, scheduler) with every permission.

use crate::error::{AppError, AppResult};
use mrjbot_domain::Permission;
use std::collections::BTreeSet;

/// The caller of a use case.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user, `None` for the system.
    pub user_id: Option<i64>,
    /// Name for the audit log.
    pub label: String,
    /// Effective permissions.
    pub permissions: BTreeSet<Permission>,
    /// Names of the unexpired roles.
    pub roles: Vec<String>,
    /// The session the request came with.
    pub session_id: Option<i64>,
    /// Correlates the audit entry with the request log line.
    pub request_id: Option<String>,
}

impl Actor {
    /// The system itself (CLI, scheduler): every permission.
    pub fn system(label: &str) -> Self {
        Self {
            user_id: None,
            label: label.to_owned(),
            permissions: Permission::ALL.iter().copied().collect(),
            roles: vec!["system".into()],
            session_id: None,
            request_id: None,
        }
    }

    /// Whether the actor holds `p`.
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    /// Fails with `permission_denied` unless the actor holds `p`.
    pub fn require(&self, p: Permission) -> AppResult<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(AppError::denied())
        }
    }

    /// Whether the actor is the user `id`.
    pub fn is(&self, id: i64) -> bool {
        self.user_id == Some(id)
    }

    /// Fails unless the actor holds every permission in `perms` (no one hands out or
    /// manages more power than they have).
    pub fn require_superset(&self, perms: &BTreeSet<Permission>) -> AppResult<()> {
        if perms.is_subset(&self.permissions) {
            Ok(())
        } else {
            Err(AppError::denied())
        }
    }

    /// Attaches the request id.
    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }
}
