//! The service layer: every business rule of MRJBot, written once. The REST API, the
//! dashboard, the bot, the CLI and the scheduler are thin front doors that build an
//! [`Actor`] and call a method of [`App`]; permissions are checked here, so every door
//! enforces the same rules.

pub mod actor;
pub mod audit;
pub mod auth;
pub mod botstate;
pub mod cache;
pub mod clock;
pub mod dataplane;
pub mod error;
pub mod feed;
pub mod money;
pub mod nodes;
pub mod notify;
pub mod panels;
pub mod password;
pub mod pay;
pub mod plans;
pub mod receipt;
pub mod roles;
pub mod shop;
pub mod subscriptions;
pub mod subsettings;
pub mod support;
pub mod token;
pub mod users;
mod util;

pub use actor::Actor;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, AppResult};
pub use util::ListParams;

use mrjbot_db::Db;
use std::sync::Arc;
use std::time::Duration;

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (sliding: refreshed on use).
    pub refresh_ttl: Duration,
    /// Failed logins in a row that lock an account.
    pub lockout_threshold: i64,
    /// How long a locked account stays locked.
    pub lockout_duration: Duration,
    /// HMAC key for access tokens; when `None`, one is generated once and kept in the
    /// settings table so every replica and every restart shares it.
    pub jwt_secret: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            jwt_secret: None,
        }
    }
}

/// The application: the store plus the settings the rules need. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    clock: Arc<dyn Clock>,
    auth: AuthSettings,
    jwt_key: Vec<u8>,
    hasher: password::Hasher,
    caches: cache::Caches,
    subs: feed::SubIndex,
    gateways: std::sync::OnceLock<money::gateways::Gateways>,
    /// One per outbox lane (see `run_outbox`).
    outbox_wake: [tokio::sync::Notify; 2],
    notifier: std::sync::OnceLock<notify::SharedNotifier>,
    staff_chat: std::sync::OnceLock<(i64, mrjbot_i18n::Lang)>,
    broadcaster: support::broadcasts::Sender,
    desired: dataplane::DesiredCache,
    usage_lock: tokio::sync::Mutex<()>,
    panels: panels::reconcile::Clients,
    panel_settings: std::sync::OnceLock<panels::PanelSettings>,
}

impl App {
    /// Builds the application over a migrated database: makes sure the built-in roles
    /// exist and loads (or creates) the token signing key.
    pub async fn new(db: Db, clock: Arc<dyn Clock>, auth: AuthSettings) -> AppResult<App> {
        let now = clock.now();
        roles::ensure_builtin(&db, now).await?;
        let jwt_key = auth::signing_key(&db, auth.jwt_secret.as_deref(), now).await?;
        Ok(App {
            inner: Arc::new(Inner {
                db,
                clock,
                auth,
                jwt_key,
                hasher: password::Hasher::default(),
                caches: cache::Caches::default(),
                subs: feed::SubIndex::default(),
                gateways: std::sync::OnceLock::new(),
                outbox_wake: Default::default(),
                notifier: std::sync::OnceLock::new(),
                staff_chat: std::sync::OnceLock::new(),
                broadcaster: support::broadcasts::Sender::default(),
                desired: dataplane::DesiredCache::default(),
                usage_lock: tokio::sync::Mutex::new(()),
                panels: panels::reconcile::Clients::default(),
                panel_settings: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The store.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The clock.
    pub fn now(&self) -> mrjbot_domain::Timestamp {
        self.inner.clock.now()
    }

    /// Authentication settings.
    pub fn auth_settings(&self) -> &AuthSettings {
        &self.inner.auth
    }

    /// Installs the notifier (the bot) once; later calls are ignored.
    pub fn set_notifier(&self, n: notify::SharedNotifier) {
        let _ = self.inner.notifier.set(n);
    }

    /// The notifier, when the bot runs.
    pub fn notifier(&self) -> Option<&notify::SharedNotifier> {
        self.inner.notifier.get()
    }

    /// Sets the staff chat (where receipts, paid orders and tickets go) and the language
    /// it reads, once; later calls are ignored.
    pub fn set_staff_chat(&self, chat_id: i64, lang: mrjbot_i18n::Lang) {
        let _ = self.inner.staff_chat.set((chat_id, lang));
    }

    /// The staff chat, when configured.
    pub fn staff_chat(&self) -> Option<(i64, mrjbot_i18n::Lang)> {
        self.inner.staff_chat.get().copied()
    }
}
