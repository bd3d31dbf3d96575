//! The command line: `serve`, `migrate`, `admin create|reset-password`, `config check`,
//! `version`. Every command that touches the store takes `--data-dir` and `DATABASE_URL`
//! exactly as `serve` does.

use crate::config::{Config, Overrides};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

/// MRJBot control plane: sell VPN service through Telegram and run it from one place.
#[derive(Debug, Parser)]
#[command(name = "mrjbot", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: ./mrjbot.toml if present).
    #[arg(long, global = true, env = "MRJBOT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Store location flags shared by every command that opens the database.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// Data directory for the SQLite database (env MRJBOT_DATA_DIR). Ignored when
    /// DATABASE_URL points at PostgreSQL.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (REST API, docs, metrics).
    Serve {
        /// Address to listen on (env MRJBOT_LISTEN; default 0.0.0.0:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage staff accounts.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Measure the product under load on this machine (loopback only).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Take over a running panel: its node, inbounds and customers (run it again any
    /// time; what was imported before is skipped).
    Import {
        #[command(subcommand)]
        panel: ImportPanel,
    },
    /// Print the version.
    Version,
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Node agents' side of the control plane: desired states, 304 polls and usage
    /// ingestion for many subscriptions over many nodes, with an exactness check.
    /// SQLite in a temporary directory unless DATABASE_URL names an empty PostgreSQL
    /// database.
    Dataplane {
        /// Subscriptions, spread evenly over the nodes.
        #[arg(long, default_value_t = 100_000)]
        subs: usize,
        /// Agent nodes.
        #[arg(long, default_value_t = 10)]
        nodes: usize,
        /// Full reports (every user of the node) each node sends.
        #[arg(long, default_value_t = 3)]
        full_reports: usize,
        /// Seconds of the small-report run.
        #[arg(long, default_value_t = 10)]
        small_secs: u64,
        /// Entries per small report.
        #[arg(long, default_value_t = 100)]
        small_entries: usize,
        /// Seconds of the unchanged-poll run.
        #[arg(long, default_value_t = 5)]
        poll_secs: u64,
    },
}

/// Connection flags of a panel to import.
#[derive(Debug, Args, Clone)]
pub struct PanelArgs {
    /// Panel URL including its base path (`https://host:2053/Xk3pQ9/`).
    #[arg(long)]
    pub url: String,
    /// Panel user.
    #[arg(long)]
    pub username: String,
    /// Panel password.
    #[arg(long, env = "MRJBOT_PANEL_PASSWORD", hide_env_values = true)]
    pub password: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportPanel {
    /// A 3x-UI (or original x-ui) panel.
    #[command(name = "3x-ui", alias = "xui")]
    Xui {
        #[command(flatten)]
        panel: PanelArgs,
        /// 3x-UI v3 API token (used instead of a session when given).
        #[arg(long, env = "MRJBOT_PANEL_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// A Marzban (or PasarGuard) panel.
    Marzban {
        #[command(flatten)]
        panel: PanelArgs,
    },
}

/// Draws the import's progress bar on standard error.
struct Bar(indicatif::ProgressBar);

impl mrjbot_app::panels::ImportProgress for Bar {
    fn total(&self, n: u64) {
        self.0.set_length(n);
    }
    fn step(&self, account: &str) {
        self.0.set_message(account.to_owned());
        self.0.inc(1);
    }
}

async fn import(cli_config: &Option<PathBuf>, panel: ImportPanel) -> anyhow::Result<()> {
    use mrjbot_app::panels::{ImportKind, ImportRequest};
    let (kind, args, token) = match panel {
        ImportPanel::Xui { panel, token } => (ImportKind::Xui, panel, token),
        ImportPanel::Marzban { panel } => (ImportKind::Marzban, panel, None),
    };
    let cfg = Config::load(&overrides(cli_config, None, &args.store))?;
    let db = crate::open_db(&cfg).await?;
    let app = crate::build_app(&cfg, db.clone(), crate::system_clock()).await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let req = ImportRequest {
        kind,
        url: args.url,
        username: args.username,
        password: args.password,
        token,
    };
    let result = app.import_panel(&req, &Bar(bar.clone())).await;
    bar.finish_and_clear();
    db.close().await;
    let s = result.map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    println!(
        "node {} ({}); inbounds created: {}",
        s.node_id,
        if s.node_created {
            "created"
        } else {
            "existing"
        },
        s.inbounds_created
    );
    println!(
        "imported: {}  skipped: {}  failed: {}",
        s.imported,
        s.skipped,
        s.failed.len()
    );
    for f in &s.failed {
        println!("  failed {}: {}", f.account, f.reason);
    }
    Ok(())
}

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an admin account.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (otherwise one is generated and printed).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password for an account; all its sessions end.
    ResetPassword {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (otherwise one is generated and printed).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Load and validate the configuration, check the database, print the result.
    Check {
        /// Address to check (as `serve --listen`).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn overrides(config: &Option<PathBuf>, listen: Option<String>, store: &StoreArgs) -> Overrides {
    Overrides {
        config_file: config.clone(),
        listen,
        data_dir: store.data_dir.clone(),
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((mrjbot_app::password::generate(), true));
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    let pw = s.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok((pw, false))
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if cfg.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bench {
            what:
                BenchWhat::Dataplane {
                    subs,
                    nodes,
                    full_reports,
                    small_secs,
                    small_entries,
                    poll_secs,
                },
        } => {
            let mut cfg = Config::load(&overrides(&cli.config, None, &StoreArgs::default()))?;
            // The server's own warnings (RUST_LOG for more); info lines would drown the figures.
            cfg.log_level = "warn".into();
            init_logging(&cfg);
            crate::bench::dataplane(
                cfg,
                crate::bench::DataplaneBench {
                    subs,
                    nodes,
                    full_reports,
                    small_secs,
                    small_entries,
                    poll_secs,
                },
            )
            .await
        }
        Command::Version => {
            println!("mrjbot {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Import { panel } => import(&cli.config, panel).await,
        Command::Serve { listen, store } => {
            serve(Config::load(&overrides(&cli.config, listen, &store))?).await
        }
        Command::Migrate { store } => {
            let cfg = Config::load(&overrides(&cli.config, None, &store))?;
            let db = crate::open_db(&cfg).await?;
            println!("migrations applied ({} database)", db.engine().name());
            db.close().await;
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check { listen, store },
        } => {
            let cfg = Config::load(&overrides(&cli.config, listen, &store))?;
            let db = crate::open_db(&cfg).await?;
            db.ping().await.context("the database does not answer")?;
            println!("{}", cfg.redacted());
            println!(
                "# configuration ok; {} database reachable and migrated",
                db.engine().name()
            );
            db.close().await;
            Ok(())
        }
        Command::Admin { action } => {
            let (username, stdin, store, create) = match action {
                AdminAction::Create {
                    username,
                    password_stdin,
                    store,
                } => (username, password_stdin, store, true),
                AdminAction::ResetPassword {
                    username,
                    password_stdin,
                    store,
                } => (username, password_stdin, store, false),
            };
            let cfg = Config::load(&overrides(&cli.config, None, &store))?;
            let (password, generated) = read_password(stdin)?;
            let db = crate::open_db(&cfg).await?;
            let app = crate::build_app(&cfg, db.clone(), crate::system_clock()).await?;
            let result = app.cli_set_admin(&username, &password, create).await;
            db.close().await;
            let user = result.map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            let name = user.username.unwrap_or(username);
            if create {
                println!("created admin `{name}` (id {})", user.id);
            } else {
                println!("password of `{name}` changed; all of its sessions were ended");
            }
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    init_logging(&cfg);
    let running = crate::start(&cfg, crate::system_clock()).await?;
    let engine = running.app.db().engine().name();
    tracing::info!(addr = %running.addr, engine, startup_ms = started.elapsed().as_millis() as u64, "mrjbot listening");
    let host = if running.addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        running.addr.ip().to_string()
    };
    let base = format!("http://{host}:{}", running.addr.port());
    println!("MRJBot is running on {base} ({engine} database)");
    println!("  API docs:  {base}/api/docs");
    if let Some((user, pw)) = &running.initial_admin {
        println!();
        println!("  First start: an admin account was created. This password is shown only once.");
        println!("    username: {user}");
        println!("    password: {pw}");
        println!(
            "  Sign in:   curl -s {base}/api/v1/auth/login -H 'content-type: application/json' \\"
        );
        println!("               -d '{{\"username\":\"{user}\",\"password\":\"{pw}\"}}'");
        println!("  Lost it?   mrjbot admin reset-password --username {user}");
    }
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            running.stop().await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
