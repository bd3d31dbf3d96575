//! Database errors, with constraint violations told apart so services can turn them into
//! field errors instead of 500s.

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique index rejected the row; `constraint` is the index name (`users_username_key`)
    /// on both engines.
    #[error("unique constraint {constraint} violated")]
    Unique {
        /// Index name.
        constraint: String,
    },
    /// A foreign key rejected the change (the row is referenced, or refers to nothing).
    #[error("foreign key constraint violated")]
    ForeignKey,
    /// A CHECK constraint rejected the row.
    #[error("check constraint violated: {0}")]
    Check(String),
    /// The database could not be reached or the query failed otherwise.
    #[error(transparent)]
    Sqlx(sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row could not be decoded.
    #[error("cannot decode a row: {0}")]
    Decode(String),
    /// The connection URL is not understood.
    #[error("unsupported DATABASE_URL `{0}`: use sqlite://PATH or postgres://...")]
    BadUrl(String),
}

/// SQLite names the columns (`UNIQUE constraint failed: inbounds.node_id, inbounds.tag`);
/// PostgreSQL names the index. Both become `<table>_<cols>_key`, the naming the migrations use.
fn sqlite_unique_name(message: &str) -> Option<String> {
    let cols = message.split("UNIQUE constraint failed: ").nth(1)?;
    let mut table = None;
    let mut names = Vec::new();
    for part in cols.split(',') {
        let (t, c) = part.trim().split_once('.')?;
        table.get_or_insert(t.to_owned());
        names.push(c.to_owned());
    }
    Some(format!("{}_{}_key", table?, names.join("_")))
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            use sqlx::error::ErrorKind;
            match d.kind() {
                ErrorKind::UniqueViolation => {
                    let constraint = d
                        .constraint()
                        .map(str::to_owned)
                        .or_else(|| sqlite_unique_name(d.message()))
                        .unwrap_or_default();
                    return DbError::Unique { constraint };
                }
                ErrorKind::ForeignKeyViolation => return DbError::ForeignKey,
                ErrorKind::CheckViolation => return DbError::Check(d.message().to_owned()),
                // SQLite enforces ON DELETE RESTRICT through a trigger and reports it with
                // the extended code SQLITE_CONSTRAINT_TRIGGER (1811), which sqlx does not
                // classify; the message is the foreign-key one.
                _ if d.message().contains("FOREIGN KEY constraint failed") => {
                    return DbError::ForeignKey;
                }
                _ => {}
            }
        }
        DbError::Sqlx(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_messages_map_to_index_names() {
        assert_eq!(
            super::sqlite_unique_name("UNIQUE constraint failed: inbounds.node_id, inbounds.tag")
                .as_deref(),
            Some("inbounds_node_id_tag_key")
        );
        assert_eq!(super::sqlite_unique_name("other").as_deref(), None);
    }
}
