//! Roles, the permissions of custom roles, and role assignments with optional expiry.

use crate::{Conn, DbError, on};
use serde::Serialize;

/// A stored role.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RoleRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub is_builtin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A role held by a user.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AssignmentRow {
    pub role_id: i64,
    pub name: String,
    pub is_builtin: bool,
    pub granted_by: Option<i64>,
    pub granted_at: i64,
    pub expires_at: Option<i64>,
}

const COLS: &str = "id, name, description, is_builtin, created_at, updated_at";

/// Creates the built-in roles that are missing (idempotent, safe on every start).
pub async fn ensure_builtin(c: Conn<'_>, names: &[(&str, &str)], now: i64) -> Result<(), DbError> {
    let sql = "INSERT INTO roles (name, description, is_builtin, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
               ON CONFLICT (name) DO NOTHING";
    on!(c, c, D => {
        for (name, description) in names {
            sqlx::query::<D>(sql).bind(*name).bind(*description).bind(true).bind(now).execute(&mut *c).await?;
        }
    });
    Ok(())
}

/// Every role, built-in first.
pub async fn list(c: Conn<'_>) -> Result<Vec<RoleRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM roles ORDER BY is_builtin DESC, id");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, RoleRow>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(&mut *c).await?),
    )
}

/// One role by id.
pub async fn get(c: Conn<'_>, id: i64) -> Result<Option<RoleRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM roles WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, RoleRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// One role by name.
pub async fn get_by_name(c: Conn<'_>, name: &str) -> Result<Option<RoleRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM roles WHERE name = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, RoleRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(name).fetch_optional(&mut *c).await?),
    )
}

/// Inserts a custom role.
pub async fn insert(c: Conn<'_>, name: &str, description: &str, now: i64) -> Result<i64, DbError> {
    let sql = "INSERT INTO roles (name, description, is_builtin, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql).bind(name).bind(description).bind(false).bind(now)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Renames / re-describes a custom role.
pub async fn update(
    c: Conn<'_>,
    id: i64,
    name: &str,
    description: &str,
    now: i64,
) -> Result<bool, DbError> {
    let sql = "UPDATE roles SET name = $1, description = $2, updated_at = $3 WHERE id = $4 AND is_builtin = $5";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(name).bind(description).bind(now).bind(id).bind(false)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Deletes a custom role (its assignments go with it).
pub async fn delete(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let sql = "DELETE FROM roles WHERE id = $1 AND is_builtin = $2";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(id).bind(false).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// The stored permissions of a custom role.
pub async fn permissions(c: Conn<'_>, role_id: i64) -> Result<Vec<String>, DbError> {
    let sql = "SELECT permission FROM role_permissions WHERE role_id = $1 ORDER BY permission";
    let rows: Vec<(String,)> =
        on!(c, c, D => sqlx::query_as::<D, (String,)>(sql).bind(role_id).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Replaces the permissions of a custom role.
pub async fn set_permissions(c: Conn<'_>, role_id: i64, perms: &[&str]) -> Result<(), DbError> {
    on!(c, c, D => {
        sqlx::query::<D>("DELETE FROM role_permissions WHERE role_id = $1").bind(role_id).execute(&mut *c).await?;
        for p in perms {
            sqlx::query::<D>("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
                .bind(role_id).bind(*p).execute(&mut *c).await?;
        }
    });
    Ok(())
}

/// Roles a user holds that have not expired at `now`, with the stored permissions of
/// the custom ones (`permission` NULL for built-ins and for custom roles with none).
pub async fn effective(
    c: Conn<'_>,
    user_id: i64,
    now: i64,
) -> Result<Vec<(String, bool, Option<String>)>, DbError> {
    let sql = "SELECT r.name, r.is_builtin, rp.permission FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
               LEFT JOIN role_permissions rp ON rp.role_id = r.id \
               WHERE ur.user_id = $1 AND (ur.expires_at IS NULL OR ur.expires_at > $2)";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, bool, Option<String>)>(sql).bind(user_id).bind(now).fetch_all(&mut *c).await?),
    )
}

/// Every assignment of a user, expired ones included.
pub async fn assignments(c: Conn<'_>, user_id: i64) -> Result<Vec<AssignmentRow>, DbError> {
    let sql = "SELECT ur.role_id, r.name, r.is_builtin, ur.granted_by, ur.granted_at, ur.expires_at \
               FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = $1 ORDER BY r.id";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, AssignmentRow>(sql).bind(user_id).fetch_all(&mut *c).await?),
    )
}

/// Grants (or re-grants with a new expiry) a role.
pub async fn assign(
    c: Conn<'_>,
    user_id: i64,
    role_id: i64,
    granted_by: Option<i64>,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), DbError> {
    let sql = "INSERT INTO user_roles (user_id, role_id, granted_by, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (user_id, role_id) DO UPDATE SET granted_by = excluded.granted_by, \
               granted_at = excluded.granted_at, expires_at = excluded.expires_at";
    on!(c, c, D => sqlx::query::<D>(sql).bind(user_id).bind(role_id).bind(granted_by).bind(now).bind(expires_at)
        .execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Removes a role from a user.
pub async fn unassign(c: Conn<'_>, user_id: i64, role_id: i64) -> Result<bool, DbError> {
    let sql = "DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(user_id).bind(role_id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// How many users hold a role (unexpired at `now`).
pub async fn holders(c: Conn<'_>, role_id: i64, now: i64) -> Result<i64, DbError> {
    let sql = "SELECT COUNT(*) FROM user_roles WHERE role_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
    let n: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql).bind(role_id).bind(now).fetch_one(&mut *c).await?);
    Ok(n.0)
}

/// Unexpired role names of many users at once (for list pages); on SQLite as one JSON
/// array rather than row by row (see `sql::fetch_page`).
pub async fn names_for_users(
    c: Conn<'_>,
    user_ids: &[i64],
    now: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut s = crate::Sql::new(
        "FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id IN (",
    );
    for (i, id) in user_ids.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.bind(*id);
    }
    s.push(") AND (ur.expires_at IS NULL OR ur.expires_at > ")
        .bind(now)
        .push(")");
    match c {
        Conn::Sqlite(c) => {
            let sql = format!(
                "SELECT coalesce(json_group_array(json_array(ur.user_id, r.name) ORDER BY ur.user_id, r.name), '[]') {}",
                s.text
            );
            let (json,): (String,) = crate::bind_all!(
                sqlx::query_as::<sqlx::Sqlite, (String,)>(sqlx::AssertSqlSafe(sql)),
                &s.args
            )
            .fetch_one(&mut *c)
            .await?;
            serde_json::from_str(&json).map_err(|e| DbError::Decode(e.to_string()))
        }
        Conn::Pg(c) => {
            let sql = format!(
                "SELECT ur.user_id, r.name {} ORDER BY ur.user_id, r.name",
                s.text
            );
            Ok(crate::bind_all!(
                sqlx::query_as::<sqlx::Postgres, (i64, String)>(sqlx::AssertSqlSafe(sql)),
                &s.args
            )
            .fetch_all(&mut *c)
            .await?)
        }
    }
}
