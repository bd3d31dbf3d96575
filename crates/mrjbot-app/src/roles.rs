//! Roles and permissions: the five built-in roles (fixed in code) and custom roles with
//! permission sets chosen by an admin. Assignments may expire (a VIP month, a temporary
//! support agent).

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::util::max_len;
use mrjbot_db::roles::{self as repo, RoleRow};
use mrjbot_db::{Conn, Db, users as users_repo};
use mrjbot_domain::{BuiltinRole, ErrorCode, Permission, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A role as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Built-in roles cannot be changed.
    pub is_builtin: bool,
    /// What it allows.
    pub permissions: Vec<Permission>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Input for a custom role.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// Unique name: 2-32 of `a-z 0-9 _ -`.
    #[schema(pattern = "^[a-z0-9_-]{2,32}$")]
    pub name: String,
    /// What it is for (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// What it allows.
    pub permissions: Vec<Permission>,
}

/// Changes to a custom role.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// New name.
    #[schema(pattern = "^[a-z0-9_-]{2,32}$")]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 200)]
    pub description: Option<String>,
    /// New permission set (replaces the old one).
    pub permissions: Option<Vec<Permission>>,
}

/// A role a user holds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    /// Role id.
    pub role_id: i64,
    /// Role name.
    pub name: String,
    /// Who granted it.
    pub granted_by: Option<i64>,
    /// When.
    pub granted_at: Timestamp,
    /// When it lapses (never if absent).
    pub expires_at: Option<Timestamp>,
    /// Whether it is in force now.
    pub active: bool,
}

/// Describes one permission.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PermissionView {
    /// Wire name.
    pub name: Permission,
    /// What it allows.
    pub description: &'static str,
}

fn not_found() -> AppError {
    AppError::not_found(ErrorCode::RoleNotFound, "role")
}

fn parse_name(name: &str) -> AppResult<String> {
    let n = name.trim().to_ascii_lowercase();
    let ok = (2..=32).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(AppError::field(
            "name",
            "must be 2-32 characters of a-z, 0-9, _ or -",
        ));
    }
    if BuiltinRole::parse(&n).is_some() {
        return Err(AppError::field("name", "is the name of a built-in role"));
    }
    Ok(n)
}

/// Makes sure the built-in roles exist.
pub(crate) async fn ensure_builtin(db: &Db, now: Timestamp) -> AppResult<()> {
    let names: Vec<(&str, &str)> = BuiltinRole::ALL
        .iter()
        .map(|r| {
            let d = match r {
                BuiltinRole::Admin => "Shop owner: everything.",
                BuiltinRole::Seller => "Sales staff: customers, subscriptions and payments.",
                BuiltinRole::Support => "Support agent: reads customers, answers tickets.",
                BuiltinRole::Vip => "Customer with perks.",
                BuiltinRole::User => "Customer.",
            };
            (r.name(), d)
        })
        .collect();
    let mut tx = db.begin().await?;
    repo::ensure_builtin(tx.conn(), &names, now.millis()).await?;
    tx.commit().await?;
    Ok(())
}

impl App {
    /// The permissions a role grants.
    pub(crate) async fn role_permissions(
        &self,
        c: Conn<'_>,
        role: &RoleRow,
    ) -> AppResult<BTreeSet<Permission>> {
        if role.is_builtin {
            return Ok(BuiltinRole::parse(&role.name)
                .map(|r| r.permissions().iter().copied().collect())
                .unwrap_or_default());
        }
        Ok(repo::permissions(c, role.id)
            .await?
            .iter()
            .filter_map(|p| Permission::parse(p))
            .collect())
    }

    async fn view_role(&self, c: Conn<'_>, role: RoleRow) -> AppResult<RoleView> {
        let permissions = self.role_permissions(c, &role).await?.into_iter().collect();
        Ok(RoleView {
            id: role.id,
            name: role.name,
            description: role.description,
            is_builtin: role.is_builtin,
            permissions,
            created_at: Timestamp::from_millis(role.created_at),
            updated_at: Timestamp::from_millis(role.updated_at),
        })
    }

    /// Every permission there is.
    pub fn list_permissions(&self) -> Vec<PermissionView> {
        Permission::ALL
            .iter()
            .map(|p| PermissionView {
                name: *p,
                description: p.describe(),
            })
            .collect()
    }

    /// Every role (needs `roles.read`).
    pub async fn list_roles(&self, actor: &Actor) -> AppResult<Vec<RoleView>> {
        actor.require(Permission::RolesRead)?;
        let mut rc = self.db().read().await?;
        let rows = repo::list(rc.conn()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.view_role(rc.conn(), r).await?);
        }
        Ok(out)
    }

    /// One role (needs `roles.read`).
    pub async fn get_role(&self, actor: &Actor, id: i64) -> AppResult<RoleView> {
        actor.require(Permission::RolesRead)?;
        let mut rc = self.db().read().await?;
        let r = repo::get(rc.conn(), id).await?.ok_or_else(not_found)?;
        self.view_role(rc.conn(), r).await
    }

    /// Creates a custom role (needs `roles.write` and every permission it grants).
    pub async fn create_role(&self, actor: &Actor, input: RoleInput) -> AppResult<RoleView> {
        actor.require(Permission::RolesWrite)?;
        let name = parse_name(&input.name)?;
        max_len("description", &input.description, 200)?;
        let perms: BTreeSet<Permission> = input.permissions.into_iter().collect();
        actor.require_superset(&perms)?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let id = repo::insert(tx.conn(), &name, input.description.trim(), now).await?;
        let names: Vec<&str> = perms.iter().map(|p| p.as_str()).collect();
        repo::set_permissions(tx.conn(), id, &names).await?;
        let row = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        let view = self.view_role(tx.conn(), row).await?;
        self.audit(
            tx.conn(),
            actor,
            "role.create",
            "role",
            Some(id),
            None::<&()>,
            Some(&view),
        )
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Changes a custom role.
    pub async fn update_role(
        &self,
        actor: &Actor,
        id: i64,
        patch: RolePatch,
    ) -> AppResult<RoleView> {
        actor.require(Permission::RolesWrite)?;
        let mut tx = self.db().begin().await?;
        let row = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        if row.is_builtin {
            return Err(AppError::new(
                ErrorCode::RoleBuiltin,
                "built-in roles cannot be changed",
            ));
        }
        let before = self.view_role(tx.conn(), row.clone()).await?;
        actor.require_superset(&before.permissions.iter().copied().collect())?;
        let name = match patch.name {
            Some(n) => parse_name(&n)?,
            None => row.name.clone(),
        };
        let description = patch.description.unwrap_or(row.description.clone());
        max_len("description", &description, 200)?;
        let now = self.now().millis();
        repo::update(tx.conn(), id, &name, description.trim(), now).await?;
        if let Some(p) = patch.permissions {
            let perms: BTreeSet<Permission> = p.into_iter().collect();
            actor.require_superset(&perms)?;
            let names: Vec<&str> = perms.iter().map(|p| p.as_str()).collect();
            repo::set_permissions(tx.conn(), id, &names).await?;
        }
        let row = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        let after = self.view_role(tx.conn(), row).await?;
        self.audit(
            tx.conn(),
            actor,
            "role.update",
            "role",
            Some(id),
            Some(&before),
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_all_actors();
        self.announce_actors();
        self.inner.caches.users_changed();
        Ok(after)
    }

    /// Deletes a custom role; its holders lose it.
    pub async fn delete_role(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::RolesWrite)?;
        let mut tx = self.db().begin().await?;
        let row = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        if row.is_builtin {
            return Err(AppError::new(
                ErrorCode::RoleBuiltin,
                "built-in roles cannot be deleted",
            ));
        }
        let before = self.view_role(tx.conn(), row).await?;
        actor.require_superset(&before.permissions.iter().copied().collect())?;
        repo::delete(tx.conn(), id).await?;
        self.audit(
            tx.conn(),
            actor,
            "role.delete",
            "role",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_all_actors();
        self.announce_actors();
        self.inner.caches.users_changed();
        Ok(())
    }

    /// The roles of a user, expired ones included (oneself, or `users.read`).
    pub async fn user_roles(&self, actor: &Actor, user_id: i64) -> AppResult<Vec<AssignmentView>> {
        if !actor.is(user_id) && !actor.can(Permission::UsersRead) {
            return Err(AppError::not_found(ErrorCode::UserNotFound, "user"));
        }
        let now = self.now().millis();
        let mut rc = self.db().read().await?;
        users_repo::get(rc.conn(), user_id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::UserNotFound, "user"))?;
        Ok(repo::assignments(rc.conn(), user_id)
            .await?
            .into_iter()
            .map(|a| AssignmentView {
                role_id: a.role_id,
                name: a.name,
                granted_by: a.granted_by,
                granted_at: Timestamp::from_millis(a.granted_at),
                expires_at: a.expires_at.map(Timestamp::from_millis),
                active: a.expires_at.is_none_or(|e| e > now),
            })
            .collect())
    }

    /// Grants a role, optionally until `expires_at` (needs `roles.write`, every permission
    /// of the role, and power over the user).
    pub async fn assign_role(
        &self,
        actor: &Actor,
        user_id: i64,
        role_name: &str,
        expires_at: Option<Timestamp>,
    ) -> AppResult<Vec<AssignmentView>> {
        actor.require(Permission::RolesWrite)?;
        let now = self.now();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(AppError::field("expires_at", "must be in the future"));
        }
        let mut tx = self.db().begin().await?;
        users_repo::get(tx.conn(), user_id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::UserNotFound, "user"))?;
        let role = repo::get_by_name(tx.conn(), role_name)
            .await?
            .ok_or_else(not_found)?;
        let perms = self.role_permissions(tx.conn(), &role).await?;
        actor.require_superset(&perms)?;
        let (target, _) = self.permissions_of(tx.conn(), user_id, now).await?;
        actor.require_superset(&target)?;
        repo::assign(
            tx.conn(),
            user_id,
            role.id,
            actor.user_id,
            now.millis(),
            expires_at.map(Timestamp::millis),
        )
        .await?;
        let after = serde_json::json!({ "role": role.name, "expires_at": expires_at });
        self.audit(
            tx.conn(),
            actor,
            "user.assign_role",
            "user",
            Some(user_id),
            None::<&()>,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_user(user_id);
        self.announce_actors();
        self.user_roles(actor, user_id).await
    }

    /// Takes a role away.
    pub async fn unassign_role(&self, actor: &Actor, user_id: i64, role_id: i64) -> AppResult<()> {
        actor.require(Permission::RolesWrite)?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let role = repo::get(tx.conn(), role_id).await?.ok_or_else(not_found)?;
        let (target, _) = self.permissions_of(tx.conn(), user_id, now).await?;
        actor.require_superset(&target)?;
        if role.name == "admin" && actor.is(user_id) {
            return Err(AppError::new(
                ErrorCode::InUse,
                "you cannot take the admin role from yourself",
            ));
        }
        if !repo::unassign(tx.conn(), user_id, role_id).await? {
            return Err(AppError::not_found(ErrorCode::NotFound, "role assignment"));
        }
        let before = serde_json::json!({ "role": role.name });
        self.audit(
            tx.conn(),
            actor,
            "user.unassign_role",
            "user",
            Some(user_id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_user(user_id);
        self.announce_actors();
        Ok(())
    }
}
