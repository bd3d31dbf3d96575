//! `mrjbot-node bench apply`: how long the expensive operations take against a real core.
//!
//! Starts a private V2Ray (or Xray) core on loopback ports chosen by the kernel and
//! measures (1) writing a configuration with N users, checking it with the core (as the
//! agent does before replacing a running config) and starting the core until its API
//! answers, (2) adding then removing M users through gRPC, (3) one QueryStats read after
//! every user moved a few bytes (counters exist only after a user's first connection, so
//! the bench opens one raw VLESS connection per user to a local echo server first), and
//! (4) the cost of usage sampling: repeated reads as the agent does every `sample_secs`
//! (wall time, CPU of the agent and of the core per read) and journaling a crashed core's
//! last sample.

use crate::config::{Config, RawConfig};
use crate::core::Supervisor;
use crate::grpc::{Account, Api};
use crate::render;
use crate::state::{StateDir, write_atomic};
use crate::usage::Ledger;
use mrjbot_node_proto::{DesiredState, InboundSpec, UserSpec};
use std::path::PathBuf;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of `bench apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Users written into the configuration at once.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Users added and then removed through gRPC.
    #[arg(long, default_value_t = 1_000)]
    pub runtime_users: usize,
    /// Core kind (v2ray or xray).
    #[arg(long = "bench-core", default_value = "v2ray")]
    pub core: String,
    /// Core executable (default: $V2RAY_BIN or /usr/bin/v2ray).
    #[arg(long = "bench-core-bin")]
    pub core_bin: Option<PathBuf>,
}

/// A random RFC 4122 version 4 UUID.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn uuid_bytes(u: &str) -> Vec<u8> {
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// A port the kernel says is free now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Opens one VLESS (plain TCP) connection as `uuid` to `target_port` on 127.0.0.1, sends
/// `payload`, and returns as many bytes of the answer (an echo origin sends them back).
pub async fn vless_roundtrip(
    server_port: u16,
    uuid: &str,
    target_port: u16,
    payload: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server_port)).await?;
    let mut req = vec![0u8];
    req.extend(uuid_bytes(uuid));
    req.extend([0u8, 1]);
    req.extend(target_port.to_be_bytes());
    req.extend([1u8, 127, 0, 0, 1]);
    req.extend(payload);
    s.write_all(&req).await?;
    // Response header (version, addons length 0), then the origin's echo.
    let mut out = vec![0u8; 2 + payload.len()];
    s.read_exact(&mut out).await?;
    Ok(out.split_off(2))
}

/// CPU time (user + system) of process `pid` so far, in milliseconds. `/proc` counts in
/// USER_HZ ticks, which Linux fixes at 100 per second for user space.
fn cpu_ms(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut f = s[s.rfind(')')? + 1..].split_whitespace();
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) * 10)
}

fn secs(t: Instant) -> String {
    format!("{:.3} s", t.elapsed().as_secs_f64())
}

/// Runs the bench and prints the figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let bin = args
        .core_bin
        .clone()
        .or_else(|| std::env::var_os("V2RAY_BIN").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/v2ray"));
    let dir = std::env::temp_dir().join(format!("mrjbot-node-bench-{}", std::process::id()));
    let cfg = Config::from_raw(RawConfig {
        control_plane_url: Some("http://127.0.0.1:9".into()),
        secret: Some("bench".into()),
        core: Some(args.core.clone()),
        core_bin: Some(bin),
        state_dir: Some(dir.clone()),
        listen: Some("127.0.0.1".into()),
        api_port: Some(free_port()?),
        ..RawConfig::default()
    })?;
    let sd = StateDir::open(&dir)?;
    let vless_port = free_port()?;
    // Echo-once origin for the counter warm-up.
    let origin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin_port = origin.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = origin.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 64];
                if let Ok(n) = s.read(&mut b).await {
                    let _ = s.write_all(&b[..n]).await;
                }
            });
        }
    });
    let users: Vec<UserSpec> = (0..args.users)
        .map(|i| UserSpec {
            email: format!("bench-{i:06}"),
            uuid: uuid_v4(),
            password: format!("pw{i}"),
            ss_keys: Default::default(),
        })
        .collect();
    let desired = DesiredState {
        etag: "bench".into(),
        node_id: 0,
        inbounds: vec![InboundSpec {
            tag: "vless-in".into(),
            protocol: "vless".into(),
            port: vless_port,
            network: "tcp".into(),
            security: "none".into(),
            settings: serde_json::json!({}),
        }],
        users: users.clone(),
    };
    let mut sup = Supervisor::new(&cfg, &sd);
    let api = Api::new(cfg.core, cfg.api_port)?;
    println!("core: {} {}", cfg.core.as_str(), cfg.core_bin.display());

    let t = Instant::now();
    let bytes = serde_json::to_vec(&render::xray_config(&cfg, &desired)?)?;
    write_atomic(sup.config_path(), &bytes)?;
    let write = secs(t);
    let t_check = Instant::now();
    crate::core::test_config(&cfg, sup.config_path())
        .await
        .map_err(anyhow::Error::msg)?;
    let check = secs(t_check);
    sup.start()?;
    while api.query("inbound>>>api").await.is_err() {
        if !sup.alive() {
            anyhow::bail!("core exited: {}", sup.log_tail());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    println!(
        "apply {} users at once: render+write {write} ({} KiB), core config check {check}, then start until the API answers: total {}",
        args.users,
        bytes.len() / 1024,
        secs(t)
    );

    let t = Instant::now();
    for i in 0..args.runtime_users {
        let acc = Account::Vless {
            id: uuid_v4(),
            flow: String::new(),
        };
        api.add_user("vless-in", &format!("rt-{i:06}"), &acc)
            .await?;
    }
    println!("add {} users via gRPC: {}", args.runtime_users, secs(t));
    let t = Instant::now();
    for i in 0..args.runtime_users {
        api.remove_user("vless-in", &format!("rt-{i:06}")).await?;
    }
    println!("remove {} users via gRPC: {}", args.runtime_users, secs(t));

    let t = Instant::now();
    let mut ok = 0usize;
    for chunk in users.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for u in chunk {
            let id = u.uuid.clone();
            set.spawn(async move { vless_roundtrip(vless_port, &id, origin_port, b"ping").await });
        }
        while let Some(r) = set.join_next().await {
            if matches!(r, Ok(Ok(ref b)) if b == b"ping") {
                ok += 1;
            }
        }
    }
    println!(
        "warm-up: {ok}/{} users moved bytes in {}",
        args.users,
        secs(t)
    );
    let t = Instant::now();
    let c = api.user_counters().await?;
    println!(
        "one QueryStats read: {} users ({} counters) in {}",
        c.len(),
        c.len() * 2,
        secs(t)
    );

    // Usage sampling as the agent runs it: one QueryStats (pattern user>>>, no reset)
    // per sample, kept in memory by the ledger.
    let mut ledger = Ledger::load(sd.path("bench-usage.json"))?;
    let instance = sup.instance().unwrap_or_default();
    let core_pid = sup.pid().unwrap_or(0);
    let me = std::process::id();
    let rounds = 20u32;
    let (agent0, core0) = (cpu_ms(me), cpu_ms(core_pid));
    let t = Instant::now();
    let mut worst = 0f64;
    for _ in 0..rounds {
        let t1 = Instant::now();
        let c = api.user_counters().await?;
        ledger.observe(&instance, c)?;
        worst = worst.max(t1.elapsed().as_secs_f64());
    }
    let avg = t.elapsed().as_secs_f64() / f64::from(rounds);
    let per_read = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / f64::from(rounds)),
        _ => None,
    };
    let agent_cpu = per_read(agent0, cpu_ms(me));
    let core_cpu = per_read(core0, cpu_ms(core_pid));
    let every_ms = crate::config::DEFAULT_SAMPLE_SECS as f64 * 1000.0;
    let show = |ms: Option<f64>| match ms {
        Some(ms) => format!("{ms:.1} ms ({:.2}% of one CPU)", ms / every_ms * 100.0),
        None => "n/a".into(),
    };
    println!(
        "usage sample ({} users, {rounds} rounds): wall avg {:.1} ms, max {:.1} ms (the agent loop is busy {:.2}% of a {} s period); CPU per sample: agent {}, core {}",
        c.len(),
        avg * 1000.0,
        worst * 1000.0,
        avg * 1000.0 / every_ms * 100.0,
        crate::config::DEFAULT_SAMPLE_SECS,
        show(agent_cpu),
        show(core_cpu),
    );
    let t = Instant::now();
    ledger.core_gone(None)?;
    println!(
        "core crash: journaling the last sample of {} users (carry, atomic write + fsync): {}",
        c.len(),
        secs(t)
    );
    sup.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(uuid_bytes(&u).len(), 16);
    }
}
