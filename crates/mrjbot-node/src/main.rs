//! The `mrjbot-node` binary: `run` (default), `check`, `bench apply`.

use clap::{Args, Parser, Subcommand};
use mrjbot_node::agent::Agent;
use mrjbot_node::config::{Config, RawConfig};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "mrjbot-node", version, about = "MRJBot node agent")]
struct Cli {
    /// Configuration file (TOML). Keys: control_plane_url, secret, core, core_bin,
    /// state_dir, listen, api_port, tls_cert, tls_key, reality_private_key, sample_secs.
    #[arg(long, short = 'c', global = true, env = "MRJBOT_NODE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// Flags override the file and the environment.
#[derive(Args, Default)]
struct Flags {
    /// Control plane base URL.
    #[arg(long, global = true)]
    control_plane_url: Option<String>,
    /// Core kind: xray, v2ray or sing-box.
    #[arg(long, global = true)]
    core: Option<String>,
    /// Core executable.
    #[arg(long, global = true)]
    core_bin: Option<PathBuf>,
    /// State directory.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Inbound listen address.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Core API port on 127.0.0.1.
    #[arg(long, global = true)]
    api_port: Option<u16>,
    /// Seconds between usage samples (1-60).
    #[arg(long, global = true)]
    sample_secs: Option<u64>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent (default).
    Run,
    /// Validate the configuration and print the core's version.
    Check,
    /// Measurements against a real core.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Apply N users at once, add/remove users through gRPC, read all counters.
    Apply(mrjbot_node::bench::BenchArgs),
}

fn overrides(f: Flags) -> RawConfig {
    RawConfig {
        control_plane_url: f.control_plane_url,
        core: f.core,
        core_bin: f.core_bin,
        state_dir: f.state_dir,
        listen: f.listen,
        api_port: f.api_port,
        sample_secs: f.sample_secs,
        ..RawConfig::default()
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending::<()>().await,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MRJBOT_NODE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd.unwrap_or(Cmd::Run) {
        Cmd::Bench {
            what: BenchCmd::Apply(args),
        } => mrjbot_node::bench::run(args).await,
        cmd => match Config::load(cli.config.as_deref(), overrides(cli.flags)) {
            Err(e) => Err(e.into()),
            Ok(cfg) => match cmd {
                Cmd::Check => check(&cfg).await,
                _ => match Agent::new(cfg).await {
                    Ok(agent) => agent.run(shutdown_signal()).await,
                    Err(e) => Err(e),
                },
            },
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mrjbot-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn check(cfg: &Config) -> anyhow::Result<()> {
    let (first, _) = mrjbot_node::core::version(cfg)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("configuration OK");
    println!("core: {} ({})", cfg.core.as_str(), cfg.core_bin.display());
    println!("core version: {first}");
    println!("control plane: {}", cfg.control_plane_url);
    println!("state dir: {}", cfg.state_dir.display());
    Ok(())
}
