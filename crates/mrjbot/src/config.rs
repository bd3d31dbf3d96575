//! Configuration: built-in defaults, then `mrjbot.toml`, then `MRJBOT_*` environment
//! variables (nested keys with `__`, e.g. `MRJBOT_AUTH__LOCKOUT_THRESHOLD`), then
//! `DATABASE_URL`, then command-line flags. A bad value stops the start with a message
//! that names the setting.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Access token lifetime in seconds.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime in days.
    pub refresh_ttl_days: u64,
    /// Failed logins that lock an account.
    pub lockout_threshold: i64,
    /// Minutes an account stays locked.
    pub lockout_minutes: u64,
    /// Token signing secret (32+ characters); generated and stored in the database if unset.
    pub jwt_secret: Option<String>,
    /// Login attempts per IP per minute.
    pub login_per_minute: u32,
    /// Login attempts per IP in a burst.
    pub login_burst: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_ttl_secs: 900,
            refresh_ttl_days: 30,
            lockout_threshold: 5,
            lockout_minutes: 15,
            jwt_secret: None,
            login_per_minute: 30,
            login_burst: 10,
        }
    }
}

/// Everything `mrjbot` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Directory for the SQLite database and other state.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL (or `sqlite://PATH`); default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Most database connections.
    pub database_max_connections: u32,
    /// `text` or `json`.
    pub log_format: String,
    /// Log filter, e.g. `info` or `mrjbot=debug,info`.
    pub log_level: String,
    /// Seconds between sweeps that expire overdue subscriptions.
    pub sweep_interval_secs: u64,
    /// Authentication.
    pub auth: AuthConfig,
    /// Public base URL of this server (`https://shop.example`), for gateway callbacks.
    pub public_url: Option<String>,
    /// Seconds between reconciliation runs (gateways asked about open payments).
    pub reconcile_interval_secs: u64,
    /// Seconds between passes of the panel reconciler (3x-UI, Marzban nodes).
    pub panel_sync_interval_secs: u64,
    /// Seconds allowed for one panel API call.
    pub panel_timeout_secs: u64,
    /// Run the panel reconciler in this process.
    pub panel_sync: bool,
    /// Zarinpal merchant id (36 characters); Zarinpal is off without it.
    pub zarinpal_merchant_id: Option<String>,
    /// Zarinpal host (`MRJBOT_ZARINPAL_BASE_URL`; the sandbox or a fake).
    pub zarinpal_base_url: String,
    /// YooKassa shop id; YooKassa is off without it and the secret key.
    pub yookassa_shop_id: Option<String>,
    /// YooKassa secret key.
    pub yookassa_secret_key: Option<String>,
    /// YooKassa API host (`MRJBOT_YOOKASSA_BASE_URL`).
    pub yookassa_base_url: String,
    /// Send 54-FZ receipt data with YooKassa payments.
    pub yookassa_receipts: bool,
    /// Addresses (CIDR) YooKassa notifications may come from; default: YooKassa's list.
    pub yookassa_webhook_allow: Option<Vec<String>>,
    /// Crypto Pay app token; Crypto Pay is off without it.
    pub cryptopay_token: Option<String>,
    /// Crypto Pay host (`MRJBOT_CRYPTOPAY_BASE_URL`; testnet or a fake).
    pub cryptopay_base_url: String,
    /// Telegram bot token; the bot, Stars and Telegram notices are off without it.
    pub telegram_token: Option<String>,
    /// Bot API base URL (`MRJBOT_TELEGRAM_API_URL`).
    pub telegram_api_url: String,
    /// Staff chat: receives receipts to review, paid orders and tickets.
    pub telegram_admin_chat: Option<i64>,
    /// Language of the staff chat: `fa`, `en` or `ru`.
    pub telegram_admin_lang: String,
    /// Poll the Bot API for payment updates (Stars) in this process; turn off when
    /// something else reads the bot's updates.
    pub telegram_payment_updates: bool,
    /// Run the Telegram shop bot when a token is set (off: the token only serves Stars
    /// and notices, and another program runs the bot).
    pub telegram_bot: bool,
    /// Receive bot updates by webhook at `{public_url}/telegram/webhook` instead of long
    /// polling (needs `public_url` with HTTPS).
    pub telegram_webhook: bool,
    /// Read receipt pictures with tesseract when it is installed.
    pub ocr: bool,
    /// The tesseract program.
    pub tesseract_bin: String,
    /// Broadcast messages this process sends per second (Telegram allows about 30 a
    /// second per bot; replicas that all send share that).
    pub broadcast_rate_per_sec: u32,
    /// Run the broadcast sender in this process.
    pub broadcast_sender: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_max_connections: 8,
            log_format: "text".into(),
            log_level: "info".into(),
            sweep_interval_secs: 10,
            auth: AuthConfig::default(),
            public_url: None,
            reconcile_interval_secs: 60,
            panel_sync_interval_secs: 10,
            panel_timeout_secs: 10,
            panel_sync: true,
            zarinpal_merchant_id: None,
            zarinpal_base_url: "https://payment.zarinpal.com".into(),
            yookassa_shop_id: None,
            yookassa_secret_key: None,
            yookassa_base_url: "https://api.yookassa.ru".into(),
            yookassa_receipts: false,
            yookassa_webhook_allow: None,
            cryptopay_token: None,
            cryptopay_base_url: "https://pay.crypt.bot".into(),
            telegram_token: None,
            telegram_api_url: "https://api.telegram.org".into(),
            telegram_admin_chat: None,
            telegram_admin_lang: "fa".into(),
            telegram_payment_updates: true,
            telegram_bot: true,
            telegram_webhook: false,
            ocr: true,
            tesseract_bin: "tesseract".into(),
            broadcast_rate_per_sec: mrjbot_app::support::broadcasts::DEFAULT_RATE_PER_SEC,
            broadcast_sender: true,
        }
    }
}

/// Values given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`.
    pub config_file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads and validates the configuration.
    pub fn load(o: &Overrides) -> anyhow::Result<Config> {
        let file = o
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("mrjbot.toml"));
        if o.config_file.is_some() && !file.exists() {
            bail!("config file {} does not exist", file.display());
        }
        let mut fig = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("MRJBOT_").split("__").ignore(&["config"]));
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            fig = fig.merge(Serialized::default("database_url", url));
        }
        if let Some(l) = &o.listen {
            fig = fig.merge(Serialized::default("listen", l));
        }
        if let Some(d) = &o.data_dir {
            fig = fig.merge(Serialized::default("data_dir", d));
        }
        let cfg: Config = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        if let Some(u) = &self.database_url
            && !(u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:"))
        {
            bail!(
                "bad configuration: database_url (DATABASE_URL) must start with postgres:// or sqlite:"
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("bad configuration: log_format (MRJBOT_LOG_FORMAT) must be `text` or `json`");
        }
        if !(1..=200).contains(&self.database_max_connections) {
            bail!("bad configuration: database_max_connections must be between 1 and 200");
        }
        if !(30..=86_400).contains(&self.auth.access_ttl_secs) {
            bail!("bad configuration: auth.access_ttl_secs must be between 30 and 86400");
        }
        if !(1..=365).contains(&self.auth.refresh_ttl_days) {
            bail!("bad configuration: auth.refresh_ttl_days must be between 1 and 365");
        }
        if !(1..=100).contains(&self.auth.lockout_threshold) {
            bail!("bad configuration: auth.lockout_threshold must be between 1 and 100");
        }
        if self.auth.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            bail!("bad configuration: auth.jwt_secret must be at least 32 characters");
        }
        if self.auth.login_per_minute == 0 || self.auth.login_burst == 0 {
            bail!("bad configuration: auth.login_per_minute and auth.login_burst must be positive");
        }
        if !(1..=86_400).contains(&self.reconcile_interval_secs) {
            bail!("bad configuration: reconcile_interval_secs must be between 1 and 86400");
        }
        if !(1..=86_400).contains(&self.panel_sync_interval_secs)
            || !(1..=600).contains(&self.panel_timeout_secs)
        {
            bail!(
                "bad configuration: panel_sync_interval_secs must be 1-86400 and panel_timeout_secs 1-600"
            );
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            bail!("bad configuration: public_url (MRJBOT_PUBLIC_URL) must be an http(s) URL");
        }
        if self.yookassa_shop_id.is_some() != self.yookassa_secret_key.is_some() {
            bail!("bad configuration: yookassa_shop_id and yookassa_secret_key go together");
        }
        if self.telegram_webhook && self.public_url.is_none() {
            bail!("bad configuration: telegram_webhook needs public_url (MRJBOT_PUBLIC_URL)");
        }
        if self.admin_lang().is_none() {
            bail!(
                "bad configuration: telegram_admin_lang (MRJBOT_TELEGRAM_ADMIN_LANG) must be fa, en or ru"
            );
        }
        if self.sweep_interval_secs == 0 {
            bail!("bad configuration: sweep_interval_secs must be positive");
        }
        if !(1..=10_000).contains(&self.broadcast_rate_per_sec) {
            bail!("bad configuration: broadcast_rate_per_sec must be between 1 and 10000");
        }
        Ok(())
    }

    /// The listen address.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "bad configuration: listen (MRJBOT_LISTEN / --listen) `{}` is not host:port",
                self.listen
            )
        })
    }

    /// The staff chat's language (`None` when `telegram_admin_lang` is not fa, en or ru).
    pub fn admin_lang(&self) -> Option<mrjbot_i18n::Lang> {
        match self.telegram_admin_lang.trim() {
            "fa" => Some(mrjbot_i18n::Lang::Fa),
            "en" => Some(mrjbot_i18n::Lang::En),
            "ru" => Some(mrjbot_i18n::Lang::Ru),
            _ => None,
        }
    }

    /// The database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| mrjbot_db::DbOptions::sqlite_in(&self.data_dir).url)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The configuration as TOML with secrets masked (`config check`).
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        if c.auth.jwt_secret.is_some() {
            c.auth.jwt_secret = Some("***".into());
        }
        if let Some(u) = &c.database_url
            && let (Some(s), Some(at)) = (u.find("://"), u.rfind('@'))
            && at > s
        {
            let user = u[s + 3..at].split(':').next().unwrap_or("");
            c.database_url = Some(format!("{}://{}:***@{}", &u[..s], user, &u[at + 1..]));
        }
        toml_string(&c)
    }
}

fn toml_string(c: &Config) -> String {
    // figment has no serializer; render the few fields by hand in TOML syntax.
    let mut s = String::new();
    s.push_str(&format!("listen = {:?}\n", c.listen));
    s.push_str(&format!(
        "data_dir = {:?}\n",
        c.data_dir.display().to_string()
    ));
    if let Some(u) = &c.database_url {
        s.push_str(&format!("database_url = {u:?}\n"));
    }
    s.push_str(&format!(
        "database_max_connections = {}\n",
        c.database_max_connections
    ));
    s.push_str(&format!(
        "log_format = {:?}\nlog_level = {:?}\n",
        c.log_format, c.log_level
    ));
    s.push_str(&format!(
        "sweep_interval_secs = {}\nreconcile_interval_secs = {}\n",
        c.sweep_interval_secs, c.reconcile_interval_secs
    ));
    s.push_str(&format!(
        "panel_sync = {}\npanel_sync_interval_secs = {}\npanel_timeout_secs = {}\n",
        c.panel_sync, c.panel_sync_interval_secs, c.panel_timeout_secs
    ));
    let secret = |v: &Option<String>| v.as_ref().map(|_| "***".to_owned());
    for (k, v) in [
        ("public_url", c.public_url.clone()),
        ("zarinpal_merchant_id", secret(&c.zarinpal_merchant_id)),
        ("zarinpal_base_url", Some(c.zarinpal_base_url.clone())),
        ("yookassa_shop_id", c.yookassa_shop_id.clone()),
        ("yookassa_secret_key", secret(&c.yookassa_secret_key)),
        ("yookassa_base_url", Some(c.yookassa_base_url.clone())),
        ("cryptopay_token", secret(&c.cryptopay_token)),
        ("cryptopay_base_url", Some(c.cryptopay_base_url.clone())),
        ("telegram_token", secret(&c.telegram_token)),
        ("telegram_api_url", Some(c.telegram_api_url.clone())),
        ("tesseract_bin", Some(c.tesseract_bin.clone())),
    ] {
        if let Some(v) = v {
            s.push_str(&format!("{k} = {v:?}\n"));
        }
    }
    s.push_str(&format!(
        "yookassa_receipts = {}\nocr = {}\ntelegram_payment_updates = {}\ntelegram_admin_lang = {:?}\n",
        c.yookassa_receipts, c.ocr, c.telegram_payment_updates, c.telegram_admin_lang
    ));
    s.push_str(&format!(
        "telegram_bot = {}\ntelegram_webhook = {}\nbroadcast_rate_per_sec = {}\nbroadcast_sender = {}\n",
        c.telegram_bot,
        c.telegram_webhook,
        c.broadcast_rate_per_sec,
        c.broadcast_sender
    ));
    if let Some(chat) = c.telegram_admin_chat {
        s.push_str(&format!("telegram_admin_chat = {chat}\n"));
    }
    s.push_str("\n[auth]\n");
    s.push_str(&format!(
        "access_ttl_secs = {}\nrefresh_ttl_days = {}\nlockout_threshold = {}\nlockout_minutes = {}\nlogin_per_minute = {}\nlogin_burst = {}\n",
        c.auth.access_ttl_secs,
        c.auth.refresh_ttl_days,
        c.auth.lockout_threshold,
        c.auth.lockout_minutes,
        c.auth.login_per_minute,
        c.auth.login_burst
    ));
    if let Some(j) = &c.auth.jwt_secret {
        s.push_str(&format!("jwt_secret = {j:?}\n"));
    }
    s
}
