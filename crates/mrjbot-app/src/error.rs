//! The one error type of the service layer: a stable code, an English message, optional
//! structured details (the failing fields), and for internal errors the cause for logs.

use mrjbot_db::DbError;
use mrjbot_domain::{DomainError, ErrorCode};
use serde_json::{Value, json};

/// A failed use case.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppError {
    /// Stable code.
    pub code: ErrorCode,
    /// English explanation.
    pub message: String,
    /// Structured details (`{"fields": {"username": "..."}}`).
    pub details: Option<Value>,
    /// The underlying cause of an internal error (logged, never shown).
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            source: None,
        }
    }

    /// A validation error naming one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: ErrorCode::ValidationFailed,
            details: Some(json!({ "fields": { field: message.clone() } })),
            message: format!("{field}: {message}"),
            source: None,
        }
    }

    /// Permission denied.
    pub fn denied() -> Self {
        Self::new(
            ErrorCode::PermissionDenied,
            "you are not allowed to do this",
        )
    }

    /// A not-found error with a specific code.
    pub fn not_found(code: ErrorCode, what: &str) -> Self {
        Self::new(code, format!("{what} not found"))
    }

    /// An internal error wrapping its cause.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            details: None,
            source: Some(Box::new(e)),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        Self::new(e.code, e.message)
    }
}

/// The field a unique index guards, from its name (`users_username_key` -> `username`).
fn unique_field(constraint: &str) -> String {
    let body = constraint.strip_suffix("_key").unwrap_or(constraint);
    for table in [
        "users",
        "roles",
        "plans",
        "nodes",
        "inbounds",
        "subscriptions",
        "sessions",
    ] {
        if let Some(rest) = body.strip_prefix(table).and_then(|r| r.strip_prefix('_')) {
            return rest.strip_prefix("node_id_").unwrap_or(rest).to_owned();
        }
    }
    body.to_owned()
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique { constraint } => {
                let field = unique_field(&constraint);
                Self {
                    code: ErrorCode::AlreadyExists,
                    message: format!("{field} is already taken"),
                    details: Some(json!({ "fields": { field: "already taken" } })),
                    source: None,
                }
            }
            DbError::ForeignKey => Self::new(
                ErrorCode::InUse,
                "the resource is referenced by other records",
            ),
            DbError::Check(m) => Self::new(
                ErrorCode::ValidationFailed,
                format!("rejected by the store: {m}"),
            ),
            other => Self::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_field_names() {
        assert_eq!(super::unique_field("users_username_key"), "username");
        assert_eq!(super::unique_field("inbounds_node_id_tag_key"), "tag");
        assert_eq!(super::unique_field("users_telegram_id_key"), "telegram_id");
    }
}
