//! The `mrjbot` control plane as a library: configuration, wiring and the server start.
//! `main` and the test harness both call [`start`], so tests run exactly what ships.

pub mod bench;
pub mod cli;
pub mod config;

use anyhow::Context;
use config::Config;
use mrjbot_app::money::gateways::Gateways;
use mrjbot_app::{App, AuthSettings, Clock, SystemClock};
use mrjbot_bot::{BotConfig, BotMode, ShopBot};
use mrjbot_db::{Db, DbOptions};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connects to the configured database and applies migrations.
pub async fn open_db(cfg: &Config) -> anyhow::Result<Db> {
    let mut opts = DbOptions::new(cfg.database_url());
    opts.max_connections = cfg.database_max_connections;
    let db = Db::connect(&opts).await.with_context(|| {
        format!(
            "cannot open the database (database_url / DATABASE_URL = {})",
            redact(&opts.url)
        )
    })?;
    db.migrate()
        .await
        .context("applying database migrations failed")?;
    Ok(db)
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Builds the application services over an open database.
pub async fn build_app(cfg: &Config, db: Db, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
    let auth = AuthSettings {
        access_ttl: Duration::from_secs(cfg.auth.access_ttl_secs),
        refresh_ttl: Duration::from_secs(cfg.auth.refresh_ttl_days * 86_400),
        lockout_threshold: cfg.auth.lockout_threshold,
        lockout_duration: Duration::from_secs(cfg.auth.lockout_minutes * 60),
        jwt_secret: cfg.auth.jwt_secret.clone(),
    };
    let app = App::new(db, clock, auth)
        .await
        .map_err(|e| anyhow::anyhow!("starting the services failed: {e}"))?;
    app.set_gateways(gateways(cfg)?);
    app.set_broadcast_rate(cfg.broadcast_rate_per_sec);
    app.set_panel_settings(mrjbot_app::panels::PanelSettings {
        interval: Duration::from_secs(cfg.panel_sync_interval_secs),
        timeout: Duration::from_secs(cfg.panel_timeout_secs),
        ..mrjbot_app::panels::PanelSettings::default()
    });
    if let Some(chat) = cfg.telegram_admin_chat {
        app.set_staff_chat(chat, cfg.admin_lang().unwrap_or(mrjbot_i18n::Lang::Fa));
    }
    Ok(app)
}

/// The payment gateways and helpers the configuration enables.
fn gateways(cfg: &Config) -> anyhow::Result<Gateways> {
    use mrjbot_app::pay::{cryptopay, telegram, yookassa, zarinpal};
    let mut g = Gateways {
        public_url: cfg.public_url.clone(),
        ..Gateways::default()
    };
    if let Some(m) = &cfg.zarinpal_merchant_id {
        let mut c = zarinpal::ZarinpalConfig::new(m.clone());
        c.base_url = cfg.zarinpal_base_url.clone();
        g.zarinpal = Some(Arc::new(zarinpal::Zarinpal::new(c).map_err(|e| {
            anyhow::anyhow!("bad configuration: zarinpal: {}", e.message)
        })?));
    }
    if let (Some(shop), Some(key)) = (&cfg.yookassa_shop_id, &cfg.yookassa_secret_key) {
        let mut c = yookassa::YookassaConfig::new(shop.clone(), key.clone());
        c.base_url = cfg.yookassa_base_url.clone();
        c.receipts = cfg.yookassa_receipts;
        if let Some(allow) = &cfg.yookassa_webhook_allow {
            c.webhook_allow = allow.clone();
        }
        g.yookassa = Some(Arc::new(yookassa::Yookassa::new(c).map_err(|e| {
            anyhow::anyhow!("bad configuration: yookassa: {}", e.message)
        })?));
    }
    if let Some(t) = &cfg.cryptopay_token {
        let mut c = cryptopay::CryptoPayConfig::new(t.clone());
        c.base_url = cfg.cryptopay_base_url.clone();
        g.cryptopay = Some(Arc::new(
            cryptopay::CryptoPayClient::new(c)
                .map_err(|e| anyhow::anyhow!("bad configuration: cryptopay: {e}"))?,
        ));
        g.cryptopay_token = Some(t.clone());
    }
    if let Some(t) = &cfg.telegram_token {
        let mut c = telegram::TelegramConfig::new(t.clone());
        c.api_url = cfg.telegram_api_url.clone();
        g.telegram =
            Some(Arc::new(telegram::TelegramClient::new(c).map_err(|e| {
                anyhow::anyhow!("bad configuration: telegram: {e}")
            })?));
    }
    if cfg.ocr {
        g.ocr = Some(Arc::new(mrjbot_app::receipt::Ocr::new(
            cfg.tesseract_bin.clone(),
            mrjbot_app::receipt::DEFAULT_LANGS,
            mrjbot_app::receipt::DEFAULT_TIMEOUT,
        )));
    }
    Ok(g)
}

/// A running server.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The services (tests drive the clock and the store through it).
    pub app: App,
    /// The first admin's credentials, when this start created them.
    pub initial_admin: Option<(String, String)>,
    shutdown: watch::Sender<bool>,
    /// Finishes when the server has stopped.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Asks the server to stop gracefully and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("server task panicked")?
    }
}

/// Opens the store, builds the services, creates the first admin when there is none, and
/// starts serving on the configured address (port 0 picks a free one).
pub async fn start(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    mrjbot_app::pay::install_crypto();
    let db = open_db(cfg).await?;
    let app = build_app(cfg, db, clock).await?;
    let initial_admin = app
        .bootstrap_admin()
        .await
        .map_err(|e| anyhow::anyhow!("creating the first admin failed: {e}"))?;
    let listener = TcpListener::bind(cfg.listen_addr()?)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (listen / MRJBOT_LISTEN / --listen)",
                cfg.listen
            )
        })?;
    let addr = listener.local_addr()?;
    mrjbot_api::install_metrics_recorder();
    let settings = mrjbot_api::ApiSettings {
        login_per_minute: cfg.auth.login_per_minute,
        login_burst: cfg.auth.login_burst,
        ..mrjbot_api::ApiSettings::default()
    };
    let bot_on = cfg.telegram_bot && cfg.telegram_token.is_some();
    let bot_slot: Arc<OnceLock<ShopBot>> = Arc::new(OnceLock::new());
    let mut router = mrjbot_api::router(app.clone(), &settings);
    if bot_on && cfg.telegram_webhook {
        router = router.merge(webhook_route(bot_slot.clone()));
    }
    let (tx, mut rx) = watch::channel(false);
    let sweeper = spawn_sweeper(
        app.clone(),
        Duration::from_secs(cfg.sweep_interval_secs),
        tx.subscribe(),
    );
    let feed = tokio::spawn(app.clone().run_feed());
    let outbox = tokio::spawn(app.clone().run_outbox());
    let reminders = tokio::spawn(app.clone().run_reminders());
    let reconcile = spawn_reconciler(
        app.clone(),
        Duration::from_secs(cfg.reconcile_interval_secs),
    );
    let panels = cfg
        .panel_sync
        .then(|| tokio::spawn(app.clone().run_panels()));
    let broadcasts = cfg
        .broadcast_sender
        .then(|| tokio::spawn(app.clone().run_broadcasts()));
    // The bot reads every update (payments included) when it runs; otherwise a small
    // loop reads the payment updates alone.
    let updates = (cfg.telegram_payment_updates && !bot_on)
        .then(|| tokio::spawn(app.clone().run_payment_updates()));
    let bot = bot_config(cfg)
        .filter(|_| bot_on)
        .map(|bc| tokio::spawn(run_bot(app.clone(), bc, bot_slot.clone())));
    let db = app.db().clone();
    let stopping_app = app.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await;
        sweeper.abort();
        feed.abort();
        outbox.abort();
        reminders.abort();
        reconcile.abort();
        if let Some(p) = panels {
            p.abort();
        }
        if let Some(u) = updates {
            u.abort();
        }
        if let Some(mut b) = broadcasts {
            // The sender finishes the message in hand, so nobody's message is lost.
            stopping_app.stop_broadcasts();
            if tokio::time::timeout(Duration::from_secs(10), &mut b)
                .await
                .is_err()
            {
                b.abort();
            }
        }
        if let Some(b) = bot {
            b.abort();
            if let Some(shop) = bot_slot.get() {
                shop.release().await;
            }
        }
        db.close().await;
        served.context("the HTTP server failed")
    });
    Ok(Running {
        addr,
        app,
        initial_admin,
        shutdown: tx,
        task,
    })
}

/// The bot's settings from the configuration (`None` without a token).
fn bot_config(cfg: &Config) -> Option<BotConfig> {
    let token = cfg.telegram_token.clone()?;
    let mut bc = BotConfig::new(token.clone(), cfg.telegram_api_url.clone());
    bc.admin_chat = cfg.telegram_admin_chat;
    bc.admin_lang = cfg.admin_lang().unwrap_or(mrjbot_i18n::Lang::Fa);
    bc.public_url = cfg.public_url.clone();
    if cfg.telegram_webhook
        && let Some(url) = &cfg.public_url
    {
        bc.mode = BotMode::Webhook {
            public_url: url.clone(),
            secret: webhook_secret(&token),
        };
    }
    Some(bc)
}

/// The webhook secret: derived from the token, so every replica agrees without storing
/// it and it is as secret as the token (Telegram allows `A-Za-z0-9_-`, up to 256).
fn webhook_secret(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("mrjbot-webhook:{token}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the bot, retrying while Telegram cannot be reached (the rest of the server runs
/// meanwhile), then long-polls unless updates come by webhook.
async fn run_bot(app: App, bc: BotConfig, slot: Arc<OnceLock<ShopBot>>) {
    let mut wait = Duration::from_secs(1);
    let bot = loop {
        match ShopBot::start(app.clone(), bc.clone()).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "the Telegram bot could not start");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    };
    tracing::info!(username = bot.username(), "the Telegram bot is running");
    let _ = slot.set(bot.clone());
    if bc.mode == BotMode::Polling {
        bot.run_polling().await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// `POST /telegram/webhook`, answered 503 until the bot has started.
fn webhook_route(slot: Arc<OnceLock<ShopBot>>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    axum::Router::new().route(
        "/telegram/webhook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let slot = slot.clone();
            async move {
                let Some(bot) = slot.get().cloned() else {
                    return StatusCode::SERVICE_UNAVAILABLE;
                };
                let secret = headers
                    .get("x-telegram-bot-api-secret-token")
                    .map(|v| v.as_bytes());
                let code = bot.webhook(secret, &body).await;
                StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
            }
        }),
    )
}

/// Periodically asks the gateways about open payments, expires what ran out and applies
/// the card auto-accept rule.
fn spawn_reconciler(app: App, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.reconcile_payments().await {
                tracing::warn!(error = %e, "payment reconciliation failed");
            }
        }
    })
}

/// Periodically marks nodes whose agents went silent `down` and moves overdue
/// subscriptions to `expired`.
fn spawn_sweeper(
    app: App,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match app.expire_due().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(expired = n, "subscriptions expired"),
                        Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                    }
                    if let Err(e) = app.sweep_silent_nodes().await {
                        tracing::warn!(error = %e, "node health sweep failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}

/// The default clock.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
