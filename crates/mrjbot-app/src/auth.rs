//! Sign-in, tokens and sessions.
//!
//! A login creates a session row and returns a short-lived access token (a JWT naming the
//! session) and a long-lived refresh token (random; only its hash is stored). Every
//! authenticated request checks that the session is still live, so logout, a password
//! change or disabling a user takes effect on the very next request, not at token expiry.
//! Refreshing rotates the refresh token; presenting an already-rotated token revokes the
//! whole session (a stolen token is useless once either party refreshes).

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::token::{self, Claims, TokenError};
use crate::{App, password};
use base64::Engine;
use mrjbot_db::{Db, roles as roles_repo, sessions, users as users_repo};
use mrjbot_domain::{BuiltinRole, ErrorCode, Permission, SecretToken, Timestamp, Username};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

const JWT_SETTING: &str = "auth.jwt_secret";

/// Tokens handed out at login and refresh.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Bearer token for `Authorization`.
    pub access_token: String,
    /// Exchange at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Where a login came from (kept on the session for the user's device list).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// Peer address.
    pub ip: Option<String>,
}

fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads the signing key: the configured secret, or the one stored in settings, or a new
/// random one stored there (first start). Racing replicas converge on the stored value.
pub(crate) async fn signing_key(
    db: &Db,
    configured: Option<&str>,
    now: Timestamp,
) -> AppResult<Vec<u8>> {
    if let Some(s) = configured {
        if s.len() < 32 {
            return Err(AppError::field(
                "auth.jwt_secret",
                "must be at least 32 characters",
            ));
        }
        return Ok(s.as_bytes().to_vec());
    }
    let fresh = SecretToken::generate();
    let mut tx = db.begin().await?;
    let stored = mrjbot_db::settings::insert_or_get(
        tx.conn(),
        JWT_SETTING,
        &serde_json::json!(fresh.as_str()).to_string(),
        now.millis(),
    )
    .await?;
    tx.commit().await?;
    let value: String = serde_json::from_str(&stored).map_err(AppError::internal)?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&value)
        .map_err(AppError::internal)
}

fn unauthenticated(msg: &str) -> AppError {
    AppError::new(ErrorCode::Unauthenticated, msg)
}

impl App {
    fn issue(
        &self,
        user_id: i64,
        session_id: i64,
        now: Timestamp,
        refresh: &SecretToken,
    ) -> TokenPair {
        let ttl = i64::try_from(self.inner.auth.access_ttl.as_secs()).unwrap_or(900);
        let iat = now.millis() / 1000;
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            iat,
            exp: iat + ttl,
        };
        TokenPair {
            access_token: token::sign(&self.inner.jwt_key, &claims),
            refresh_token: refresh.as_str().to_owned(),
            token_type: "Bearer",
            expires_in: ttl,
        }
    }

    fn refresh_ttl_ms(&self) -> i64 {
        i64::try_from(self.inner.auth.refresh_ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// Signs in with username and password. Failed attempts count towards a lockout;
    /// unknown users take as long as known ones.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: ClientInfo,
    ) -> AppResult<TokenPair> {
        let now = self.now();
        let invalid = || AppError::new(ErrorCode::InvalidCredentials, "wrong username or password");
        let user = match Username::parse(username) {
            Ok(u) => {
                users_repo::get_by_username(self.db().read().await?.conn(), u.as_str()).await?
            }
            Err(_) => None,
        };
        if let Some(u) = &user
            && u.locked_until.is_some_and(|t| t > now.millis())
        {
            return Err(AppError::new(
                ErrorCode::AccountLocked,
                "too many failed logins; the account is locked for a while",
            ));
        }
        let ok = self
            .inner
            .hasher
            .verify(
                password,
                user.as_ref().and_then(|u| u.password_hash.as_deref()),
            )
            .await?;
        let Some(user) = user else {
            return Err(invalid());
        };
        if !ok {
            let lock_ms =
                i64::try_from(self.inner.auth.lockout_duration.as_millis()).unwrap_or(900_000);
            let mut tx = self.db().begin().await?;
            users_repo::record_failed_login(
                tx.conn(),
                user.id,
                self.inner.auth.lockout_threshold,
                now.millis() + lock_ms,
                now.millis(),
            )
            .await?;
            tx.commit().await?;
            return Err(invalid());
        }
        if user.status != "active" {
            return Err(AppError::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        let refresh = SecretToken::generate();
        let mut tx = self.db().begin().await?;
        users_repo::record_login(tx.conn(), user.id, now.millis()).await?;
        let sid = sessions::insert(
            tx.conn(),
            &sessions::SessionRow {
                id: 0,
                user_id: user.id,
                refresh_hash: sha256_hex(refresh.as_str()),
                prev_refresh_hash: None,
                user_agent: client.user_agent.map(|s| s.chars().take(256).collect()),
                ip: client.ip,
                created_at: now.millis(),
                last_used_at: now.millis(),
                expires_at: now.millis() + self.refresh_ttl_ms(),
                revoked_at: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(self.issue(user.id, sid, now, &refresh))
    }

    /// Exchanges a refresh token for a new pair, rotating it.
    pub async fn refresh(&self, refresh_token: &str) -> AppResult<TokenPair> {
        let now = self.now();
        let bad = || unauthenticated("invalid or expired refresh token");
        let presented = SecretToken::parse(refresh_token).map_err(|_| bad())?;
        let hash = sha256_hex(presented.as_str());
        let mut tx = self.db().begin().await?;
        let Some(s) = sessions::find_by_refresh(tx.conn(), &hash).await? else {
            return Err(bad());
        };
        if s.revoked_at.is_some() || s.expires_at <= now.millis() {
            return Err(bad());
        }
        if s.refresh_hash != hash {
            // An already-rotated token came back: somebody kept a copy. End the session.
            sessions::revoke(tx.conn(), s.id, now.millis()).await?;
            tx.commit().await?;
            self.inner.caches.forget_session(s.id);
            self.announce_actors();
            return Err(AppError::new(
                ErrorCode::RefreshTokenReused,
                "refresh token reused; the session was ended",
            ));
        }
        let user = users_repo::get(tx.conn(), s.user_id)
            .await?
            .ok_or_else(bad)?;
        if user.status != "active" {
            return Err(AppError::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        let next = SecretToken::generate();
        let rotated = sessions::rotate(
            tx.conn(),
            s.id,
            &hash,
            &sha256_hex(next.as_str()),
            now.millis(),
            now.millis() + self.refresh_ttl_ms(),
        )
        .await?;
        if !rotated {
            return Err(bad());
        }
        tx.commit().await?;
        Ok(self.issue(user.id, s.id, now, &next))
    }

    /// Ends the actor's session: its access and refresh tokens stop working at once.
    pub async fn logout(&self, actor: &Actor) -> AppResult<()> {
        let sid = actor
            .session_id
            .ok_or_else(|| unauthenticated("no session"))?;
        let mut tx = self.db().begin().await?;
        sessions::revoke(tx.conn(), sid, self.now().millis()).await?;
        tx.commit().await?;
        self.inner.caches.forget_session(sid);
        self.announce_actors();
        Ok(())
    }

    /// Resolves an access token into an actor, checking the session and the user are
    /// still live and loading the permissions of the unexpired roles.
    pub async fn authenticate(&self, access_token: &str) -> AppResult<Actor> {
        let now = self.now();
        let claims = token::verify(&self.inner.jwt_key, access_token, now.millis() / 1000)
            .map_err(|e| match e {
                TokenError::Expired => unauthenticated("access token expired"),
                TokenError::Invalid => unauthenticated("invalid access token"),
            })?;
        if let Some(actor) = self.inner.caches.actor(claims.sid)
            && actor.user_id == Some(claims.sub)
        {
            return Ok(actor);
        }
        let generation = self.inner.caches.actors_generation();
        let mut rc = self.db().read().await?;
        let session = sessions::get(rc.conn(), claims.sid).await?;
        match session {
            Some(s)
                if s.user_id == claims.sub
                    && s.revoked_at.is_none()
                    && s.expires_at > now.millis() => {}
            _ => return Err(unauthenticated("the session has ended")),
        }
        let user = users_repo::get(rc.conn(), claims.sub)
            .await?
            .ok_or_else(|| unauthenticated("unknown user"))?;
        if user.status != "active" {
            return Err(AppError::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        let (permissions, roles) = self.permissions_of(rc.conn(), user.id, now).await?;
        let actor = Actor {
            user_id: Some(user.id),
            label: user
                .username
                .clone()
                .unwrap_or_else(|| format!("user#{}", user.id)),
            permissions,
            roles,
            session_id: Some(claims.sid),
            request_id: None,
        };
        self.inner.caches.put_actor(claims.sid, &actor, generation);
        Ok(actor)
    }

    /// Effective permissions and role names of a user at `now`.
    pub(crate) async fn permissions_of(
        &self,
        c: mrjbot_db::Conn<'_>,
        user_id: i64,
        now: Timestamp,
    ) -> AppResult<(BTreeSet<Permission>, Vec<String>)> {
        let rows = roles_repo::effective(c, user_id, now.millis()).await?;
        let mut perms = BTreeSet::new();
        let mut names: Vec<String> = Vec::new();
        for (name, builtin, perm) in rows {
            if builtin && let Some(r) = BuiltinRole::parse(&name) {
                perms.extend(r.permissions().iter().copied());
            }
            if let Some(p) = perm.as_deref().and_then(Permission::parse) {
                perms.insert(p);
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.sort();
        Ok((perms, names))
    }

    /// Changes the actor's own password; every other session of the user ends.
    pub async fn change_password(&self, actor: &Actor, current: &str, new: &str) -> AppResult<()> {
        let uid = actor.user_id.ok_or_else(AppError::denied)?;
        password::check_strength("new_password", new)?;
        let user = users_repo::get(self.db().read().await?.conn(), uid)
            .await?
            .ok_or_else(AppError::denied)?;
        if !self
            .inner
            .hasher
            .verify(current, user.password_hash.as_deref())
            .await?
        {
            return Err(AppError::new(
                ErrorCode::WrongPassword,
                "the current password is wrong",
            ));
        }
        let hash = self.inner.hasher.hash(new).await?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        users_repo::set_password(tx.conn(), uid, &hash, now.millis()).await?;
        sessions::revoke_all(tx.conn(), uid, actor.session_id, now.millis()).await?;
        self.audit(
            tx.conn(),
            actor,
            "user.change_password",
            "user",
            Some(uid),
            None::<&()>,
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_user(uid);
        self.announce_actors();
        Ok(())
    }
}
