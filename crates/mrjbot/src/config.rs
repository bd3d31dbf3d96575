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
            sweep_interval_secs: 30,
            auth: AuthConfig::default(),
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
        if self.sweep_interval_secs == 0 {
            bail!("bad configuration: sweep_interval_secs must be positive");
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
        "sweep_interval_secs = {}\n\n[auth]\n",
        c.sweep_interval_secs
    ));
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
