//! Users: customers and staff.
//!
//! Rules: listing and managing others needs `users.*`; anyone may read and edit their own
//! profile (name, language, e-mail). Nobody manages a user who holds a permission they do
//! not hold themselves, so a seller cannot disable or re-password an admin.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::util::{clean, max_len};
use crate::{App, ListParams, password};
use mrjbot_db::users::{self as repo, UserFilter, UserRow};
use mrjbot_db::{roles as roles_repo, sessions, subscriptions as subs_repo};
use mrjbot_domain::{Email, ErrorCode, Permission, TelegramId, Timestamp, Username};
use serde::{Deserialize, Serialize};

/// A user as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Login name (staff), if any.
    pub username: Option<String>,
    /// E-mail, if any.
    pub email: Option<String>,
    /// Telegram user id (customers).
    pub telegram_id: Option<i64>,
    /// Display name.
    pub display_name: Option<String>,
    /// `fa`, `en` or `ru`.
    pub language: String,
    /// `active` or `disabled`.
    pub status: String,
    /// Names of the unexpired roles.
    pub roles: Vec<String>,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    /// Locked by failed logins until this instant.
    pub locked_until: Option<Timestamp>,
    /// Staff note.
    pub note: Option<String>,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl UserView {
    fn from_row(u: UserRow, roles: Vec<String>) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            telegram_id: u.telegram_id,
            display_name: u.display_name,
            language: u.language,
            status: u.status,
            roles,
            has_password: u.password_hash.is_some(),
            locked_until: u.locked_until.map(Timestamp::from_millis),
            note: u.note,
            last_login_at: u.last_login_at.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(u.created_at),
            updated_at: Timestamp::from_millis(u.updated_at),
        }
    }
}

/// Input for creating a user. A user needs a username or a Telegram id; a password needs
/// a username.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name (3-32 of `a-z 0-9 _ . -`).
    #[schema(pattern = r"^[a-z0-9][a-z0-9_.-]{2,31}$")]
    pub username: Option<String>,
    /// Password (10-128 characters, mixed).
    #[schema(min_length = 10, max_length = 128)]
    pub password: Option<String>,
    /// E-mail.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Telegram user id.
    #[schema(minimum = 1, maximum = 4503599627370495_i64)]
    pub telegram_id: Option<i64>,
    /// Display name (at most 64 characters).
    #[schema(max_length = 64)]
    pub display_name: Option<String>,
    /// `fa` (default), `en` or `ru`.
    #[schema(pattern = "^(fa|en|ru)$")]
    pub language: Option<String>,
    /// Role names; default `["user"]`.
    pub roles: Option<Vec<String>>,
    /// Staff note (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

/// Changes to a user; absent fields stay as they are, empty strings clear.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New login name.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_.-]{2,31}$")]
    pub username: Option<String>,
    /// New e-mail (empty clears).
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// New Telegram id.
    #[schema(minimum = 1, maximum = 4503599627370495_i64)]
    pub telegram_id: Option<i64>,
    /// New display name (empty clears).
    #[schema(max_length = 64)]
    pub display_name: Option<String>,
    /// `fa`, `en` or `ru`.
    #[schema(pattern = "^(fa|en|ru)$")]
    pub language: Option<String>,
    /// `active` or `disabled` (staff only).
    #[schema(pattern = "^(active|disabled)$")]
    pub status: Option<String>,
    /// Staff note (staff only; empty clears).
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

/// Query for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Substring of username, e-mail or display name.
    pub q: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    /// Role name.
    pub role: Option<String>,
    /// Telegram id.
    pub telegram_id: Option<i64>,
}

fn parse_language(l: &str) -> AppResult<String> {
    match l {
        "fa" | "en" | "ru" => Ok(l.to_owned()),
        _ => Err(AppError::field("language", "must be fa, en or ru")),
    }
}

fn parse_status(s: &str) -> AppResult<String> {
    match s {
        "active" | "disabled" => Ok(s.to_owned()),
        _ => Err(AppError::field("status", "must be active or disabled")),
    }
}

fn parse_username(s: &str) -> AppResult<String> {
    Username::parse(s)
        .map(|u| u.as_str().to_owned())
        .map_err(|e| AppError::field("username", e.message))
}

fn parse_email(s: &str) -> AppResult<String> {
    Email::parse(s)
        .map(|e| e.as_str().to_owned())
        .map_err(|e| AppError::field("email", e.message))
}

fn parse_telegram(t: i64) -> AppResult<i64> {
    TelegramId::new(t)
        .map(TelegramId::get)
        .map_err(|e| AppError::field("telegram_id", e.message))
}

fn not_found() -> AppError {
    AppError::not_found(ErrorCode::UserNotFound, "user")
}

impl App {
    /// Fails unless the actor may manage user `target` (holds every permission the target
    /// holds). Returns the target's row.
    pub(crate) async fn manageable(&self, actor: &Actor, target: i64) -> AppResult<UserRow> {
        let mut rc = self.db().read().await?;
        let row = repo::get(rc.conn(), target).await?.ok_or_else(not_found)?;
        let (perms, _) = self.permissions_of(rc.conn(), target, self.now()).await?;
        actor.require_superset(&perms)?;
        Ok(row)
    }

    async fn view_user(&self, row: UserRow) -> AppResult<UserView> {
        let roles = roles_repo::names_for_users(
            self.db().read().await?.conn(),
            &[row.id],
            self.now().millis(),
        )
        .await?;
        Ok(UserView::from_row(
            row,
            roles.into_iter().map(|r| r.1).collect(),
        ))
    }

    /// Creates a user (needs `users.write`; granting roles beyond `user`/`vip` also needs
    /// `roles.write` and every permission those roles carry).
    pub async fn create_user(&self, actor: &Actor, input: NewUser) -> AppResult<UserView> {
        actor.require(Permission::UsersWrite)?;
        let username = clean(input.username)
            .map(|u| parse_username(&u))
            .transpose()?;
        let email = clean(input.email).map(|e| parse_email(&e)).transpose()?;
        let telegram_id = input.telegram_id.map(parse_telegram).transpose()?;
        let display_name = clean(input.display_name);
        if let Some(d) = &display_name {
            max_len("display_name", d, 64)?;
        }
        let note = clean(input.note);
        if let Some(n) = &note {
            max_len("note", n, 1000)?;
        }
        let language = parse_language(input.language.as_deref().unwrap_or("fa"))?;
        if username.is_none() && telegram_id.is_none() {
            return Err(AppError::field(
                "username",
                "a user needs a username or a telegram_id",
            ));
        }
        let password_hash = match input.password {
            Some(pw) => {
                if username.is_none() {
                    return Err(AppError::field("password", "a password needs a username"));
                }
                password::check_strength("password", &pw)?;
                Some(self.inner.hasher.hash(&pw).await?)
            }
            None => None,
        };
        let role_names = input.roles.unwrap_or_else(|| vec!["user".to_owned()]);
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let mut role_ids = Vec::new();
        for name in &role_names {
            let role = roles_repo::get_by_name(tx.conn(), name)
                .await?
                .ok_or_else(|| AppError::field("roles", format!("unknown role `{name}`")))?;
            let perms = self.role_permissions(tx.conn(), &role).await?;
            if !perms.is_empty() {
                actor.require(Permission::RolesWrite)?;
                actor.require_superset(&perms)?;
            }
            role_ids.push(role.id);
        }
        let mut row = UserRow {
            id: 0,
            username,
            email,
            telegram_id,
            display_name,
            language,
            password_hash,
            status: "active".into(),
            failed_logins: 0,
            locked_until: None,
            note,
            password_changed_at: None,
            last_login_at: None,
            created_at: now,
            updated_at: now,
        };
        row.password_changed_at = row.password_hash.as_ref().map(|_| now);
        row.id = repo::insert(tx.conn(), &row).await?;
        for rid in role_ids {
            roles_repo::assign(tx.conn(), row.id, rid, actor.user_id, now, None).await?;
        }
        self.audit(
            tx.conn(),
            actor,
            "user.create",
            "user",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.users_changed();
        let mut names = role_names;
        names.sort();
        names.dedup();
        Ok(UserView::from_row(row, names))
    }

    /// One user: oneself, or anyone with `users.read`. Others' ids look like missing ones.
    pub async fn get_user(&self, actor: &Actor, id: i64) -> AppResult<UserView> {
        if !actor.is(id) && !actor.can(Permission::UsersRead) {
            return Err(not_found());
        }
        let row = repo::get(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(not_found)?;
        self.view_user(row).await
    }

    /// A page of users (needs `users.read`).
    pub async fn list_users(
        &self,
        actor: &Actor,
        q: UserQuery,
        params: &ListParams,
    ) -> AppResult<(Vec<UserView>, i64)> {
        actor.require(Permission::UsersRead)?;
        let page = params.page(&["id", "created_at", "username", "last_login_at"], "id")?;
        if let Some(s) = &q.status {
            parse_status(s)?;
        }
        let filter = UserFilter {
            q: q.q,
            status: q.status,
            role: q.role,
            telegram_id: q.telegram_id,
            only_id: None,
        };
        let now = self.now().millis();
        let key = format!(
            "{:?}/{:?}/{:?}/{:?}",
            filter.q, filter.status, filter.role, filter.telegram_id
        );
        let known = self.inner.caches.total(&key);
        let generation = self.inner.caches.users_generation();
        let mut rc = self.db().read().await?;
        let (rows, total) = repo::list(rc.conn(), &filter, page, now, known).await?;
        if known.is_none() {
            self.inner.caches.put_total(key, generation, total);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let names = roles_repo::names_for_users(rc.conn(), &ids, now).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                let roles = names
                    .iter()
                    .filter(|(u, _)| *u == r.id)
                    .map(|(_, n)| n.clone())
                    .collect();
                UserView::from_row(r, roles)
            })
            .collect();
        Ok((items, total))
    }

    /// Edits a user. Oneself: name, language, e-mail. Staff (`users.write`, and holding
    /// every permission of the target): everything; disabling ends the user's sessions.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: i64,
        patch: UserPatch,
    ) -> AppResult<UserView> {
        let staff = actor.can(Permission::UsersWrite);
        let before = if staff {
            self.manageable(actor, id).await?
        } else if actor.is(id) {
            if patch.username.is_some()
                || patch.telegram_id.is_some()
                || patch.status.is_some()
                || patch.note.is_some()
            {
                return Err(AppError::denied());
            }
            repo::get(self.db().read().await?.conn(), id)
                .await?
                .ok_or_else(not_found)?
        } else {
            return Err(not_found());
        };
        let mut row = before.clone();
        if let Some(u) = patch.username {
            row.username = Some(parse_username(&u)?);
        }
        if let Some(e) = patch.email {
            row.email = clean(Some(e)).map(|e| parse_email(&e)).transpose()?;
        }
        if let Some(t) = patch.telegram_id {
            row.telegram_id = Some(parse_telegram(t)?);
        }
        if let Some(d) = patch.display_name {
            max_len("display_name", &d, 64)?;
            row.display_name = clean(Some(d));
        }
        if let Some(l) = patch.language {
            row.language = parse_language(&l)?;
        }
        if let Some(s) = patch.status {
            row.status = parse_status(&s)?;
            if actor.is(id) && row.status == "disabled" {
                return Err(AppError::field("status", "you cannot disable yourself"));
            }
        }
        if let Some(n) = patch.note {
            max_len("note", &n, 1000)?;
            row.note = clean(Some(n));
        }
        let now = self.now().millis();
        row.updated_at = now;
        let mut tx = self.db().begin().await?;
        if !repo::update(tx.conn(), &row).await? {
            return Err(not_found());
        }
        if before.status == "active" && row.status == "disabled" {
            sessions::revoke_all(tx.conn(), id, None, now).await?;
        }
        self.audit(
            tx.conn(),
            actor,
            "user.update",
            "user",
            Some(id),
            Some(&before),
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::User(id)).await?;
        self.inner.caches.forget_user(id);
        self.announce_actors();
        self.view_user(row).await
    }

    /// Deletes a user without subscriptions or payments (needs `users.write`).
    pub async fn delete_user(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::UsersWrite)?;
        if actor.is(id) {
            return Err(AppError::new(
                ErrorCode::InUse,
                "you cannot delete yourself",
            ));
        }
        let before = self.manageable(actor, id).await?;
        let mut tx = self.db().begin().await?;
        if subs_repo::count_for_user(tx.conn(), id).await? > 0 {
            return Err(AppError::new(
                ErrorCode::InUse,
                "the user has subscriptions; disable the user instead",
            ));
        }
        if !repo::delete(tx.conn(), id).await? {
            return Err(not_found());
        }
        self.audit(
            tx.conn(),
            actor,
            "user.delete",
            "user",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        self.commit_changed(tx, Changed::User(id)).await?;
        self.inner.caches.forget_user(id);
        self.announce_actors();
        Ok(())
    }

    /// Sets a user's password (needs `users.write` over the target); ends all their sessions.
    pub async fn reset_password(
        &self,
        actor: &Actor,
        id: i64,
        new_password: &str,
    ) -> AppResult<()> {
        actor.require(Permission::UsersWrite)?;
        let target = self.manageable(actor, id).await?;
        if target.username.is_none() {
            return Err(AppError::field(
                "password",
                "the user has no username to sign in with",
            ));
        }
        password::check_strength("password", new_password)?;
        let hash = self.inner.hasher.hash(new_password).await?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        repo::set_password(tx.conn(), id, &hash, now).await?;
        sessions::revoke_all(tx.conn(), id, None, now).await?;
        self.audit(
            tx.conn(),
            actor,
            "user.reset_password",
            "user",
            Some(id),
            None::<&()>,
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_user(id);
        self.announce_actors();
        Ok(())
    }

    /// Creates the first admin if no user holds the admin role. Returns the username and
    /// the generated password, to be shown once.
    pub async fn bootstrap_admin(&self) -> AppResult<Option<(String, String)>> {
        let now = self.now().millis();
        let filter = UserFilter {
            role: Some("admin".into()),
            ..UserFilter::default()
        };
        let page = mrjbot_db::Page {
            limit: 1,
            offset: 0,
            sort: "id",
            order: mrjbot_db::Order::Asc,
        };
        let (_, admins) =
            repo::list(self.db().read().await?.conn(), &filter, page, now, None).await?;
        if admins > 0 {
            return Ok(None);
        }
        let pw = password::generate();
        let created = self
            .create_user(
                &Actor::system("bootstrap"),
                NewUser {
                    username: Some("admin".into()),
                    password: Some(pw.clone()),
                    roles: Some(vec!["admin".into()]),
                    language: Some("en".into()),
                    ..NewUser::default()
                },
            )
            .await;
        match created {
            Ok(u) => Ok(Some((u.username.unwrap_or_default(), pw))),
            // Another replica won the race, or an `admin` user exists without the role.
            Err(e) if e.code == ErrorCode::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or re-passwords a staff account from the command line (system actor).
    pub async fn cli_set_admin(
        &self,
        username: &str,
        password: &str,
        create: bool,
    ) -> AppResult<UserView> {
        let system = Actor::system("cli");
        if create {
            return self
                .create_user(
                    &system,
                    NewUser {
                        username: Some(username.to_owned()),
                        password: Some(password.to_owned()),
                        roles: Some(vec!["admin".into()]),
                        language: Some("en".into()),
                        ..NewUser::default()
                    },
                )
                .await;
        }
        let name = parse_username(username)?;
        let row = repo::get_by_username(self.db().read().await?.conn(), &name)
            .await?
            .ok_or_else(not_found)?;
        self.reset_password(&system, row.id, password).await?;
        self.get_user(&system, row.id).await
    }
}
