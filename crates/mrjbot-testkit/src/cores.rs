//! Real-core helpers: run the actual sing-box binary on loopback and push traffic through it.
//!
//! Data-plane tests must prove that what the product generates (inbounds, share links,
//! client configs) works against a real core, not against our own idea of the protocol.
//! This module provides the pieces for that, all bound to `127.0.0.1` and nothing else:
//!
//! - [`sing_box_bin`] / [`require_sing_box`]: find the binary installed by
//!   `scripts/test-deps.sh` (env `SING_BOX_BIN`, else [`DEFAULT_SING_BOX`]); a local run
//!   skips when it is missing, `CI=true` fails instead.
//! - [`sing_box_check`]: `sing-box check` on a JSON config.
//! - [`self_signed_cert`]: a certificate for `localhost` / `127.0.0.1` via the openssl CLI.
//! - [`Origin`]: a tiny HTTP origin the traffic is fetched from.
//! - [`Core`]: a running sing-box process that is killed on drop.
//! - [`socks_client_config`] + [`fetch_via_socks`]: a sing-box client with a SOCKS inbound
//!   and a hand-written SOCKS5 + HTTP/1.0 client to fetch through it ([`fetch_direct`]
//!   without the proxy).
//! - [`free_port`] / [`free_udp_port`] / [`wait_port`]: port plumbing for parallel tests.
//!
//! Only tokio, std, serde_json and anyhow are used, so the wire code here is deliberately
//! small and strict: it is a test instrument, not a general client.

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

/// Where `scripts/test-deps.sh` puts sing-box when `SING_BOX_BIN` is not set.
pub const DEFAULT_SING_BOX: &str = "/var/tmp/mrjbot-tools/bin/sing-box";

/// Timeout of a single network step (connect, handshake, one read) in the helpers here.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Core::start`] waits for the core's ports.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request head the [`Origin`] accepts.
const MAX_HEAD: usize = 16 * 1024;

/// Numbers the files of cores and checks so several can share one directory.
static FILE_SEQ: AtomicU64 = AtomicU64::new(0);

fn next_file_id() -> u64 {
    FILE_SEQ.fetch_add(1, Ordering::Relaxed)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The sing-box binary: env `SING_BOX_BIN`, else [`DEFAULT_SING_BOX`]; `None` when that
/// file does not exist or is not executable.
pub fn sing_box_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("SING_BOX_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_SING_BOX),
    };
    is_executable(&path).then_some(path)
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// [`sing_box_bin`] for tests: when missing, a local run prints that it skipped and
/// returns `None`; under `CI=true` it panics, because CI must run the real-core tests.
pub fn require_sing_box() -> Option<PathBuf> {
    let found = sing_box_bin();
    if found.is_none() {
        assert!(
            !in_ci(),
            "sing-box is required in CI: set SING_BOX_BIN or run scripts/test-deps.sh \
             (expected {DEFAULT_SING_BOX})"
        );
        eprintln!("skipped: sing-box not installed (run scripts/test-deps.sh)");
    }
    found
}

/// Runs `sing-box check -D dir -c FILE` on `config` (written to a fresh file in `dir`).
/// `Err` carries what sing-box printed, e.g. `FATAL[0000] decode config ...`.
pub async fn sing_box_check(bin: &Path, config: &Value, dir: &Path) -> Result<(), String> {
    let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!("check-{}.json", next_file_id()));
    let text = serde_json::to_vec_pretty(config).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    let out = Command::new(bin)
        .arg("check")
        .arg("--disable-color")
        .arg("-D")
        .arg(&dir)
        .arg("-c")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if msg.is_empty() {
        msg = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    Err(format!("sing-box check ({}): {msg}", out.status))
}

/// A self-signed certificate and its key, as absolute paths.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// PEM certificate for `localhost` and `127.0.0.1`.
    pub cert_path: PathBuf,
    /// PEM private key (EC P-256, unencrypted).
    pub key_path: PathBuf,
}

impl TestCert {
    /// A sing-box inbound `tls` block serving this certificate as `localhost`.
    pub fn server_tls(&self) -> Value {
        json!({
            "enabled": true,
            "server_name": "localhost",
            "certificate_path": self.cert_path,
            "key_path": self.key_path,
        })
    }
}

/// Writes `cert.pem` and `key.pem` into `dir` with the openssl CLI: EC P-256, 30 days,
/// CN `localhost`, SAN `DNS:localhost, IP:127.0.0.1`. Clients must use `insecure: true`
/// (or pin this certificate).
pub fn self_signed_cert(dir: &Path) -> anyhow::Result<TestCert> {
    let dir = std::path::absolute(dir).with_context(|| dir.display().to_string())?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "30", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key_path)
        .arg("-out")
        .arg(&cert_path)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install it, or run scripts/test-deps.sh)")?;
    if !out.status.success() {
        bail!(
            "openssl req failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(TestCert {
        cert_path,
        key_path,
    })
}

/// Hands out each port at most once per process, so parallel tests never get the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static PICKS: AtomicU64 = AtomicU64::new(0);

/// Lowest port of the kernel's ephemeral range (where `bind(0)` and outgoing connections
/// take their ports), 32768 when unknown.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// A random number without a rand dependency: std's per-process random hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(PICKS.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// A port on 127.0.0.1 that is free for both TCP and UDP right now and was not returned
/// before in this process.
///
/// It is drawn at random from 10000 up to the kernel's ephemeral range rather than taken
/// from `bind(0)`: ports from the ephemeral range are also the source ports of outgoing
/// connections, and with many cores and probes running, one of those took a "free" port
/// before the core could bind it (seen with three test binaries in parallel). Another
/// process can still bind the port first; at random over ~22000 ports that is rare.
pub fn free_port() -> u16 {
    let low: u16 = 10000;
    let high = ephemeral_low();
    for _ in 0..500 {
        let port = if high > low + 1000 {
            low + (random_u64() % u64::from(high - low)) as u16
        } else {
            // An unusual ephemeral range: fall back to letting the kernel choose.
            match StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
                Ok(a) => a.port(),
                Err(_) => continue,
            }
        };
        // Shadowsocks and others listen on TCP and UDP with the same number.
        let free = StdTcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        if !free {
            continue;
        }
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("free_port: no free port on 127.0.0.1 after 500 tries");
}

/// A free port for a UDP listener (Hysteria2, TUIC). Same guarantee as [`free_port`], which
/// already checks TCP and UDP; this name only says what the port is for.
pub fn free_udp_port() -> u16 {
    free_port()
}

/// Waits until `addr` accepts a TCP connection, or fails after `timeout`.
pub async fn wait_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if tcp_accepts(addr).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{addr} did not accept a TCP connection within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tcp_accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Whether some socket is bound to UDP `port` (any address), from `/proc/net/udp{,6}`.
/// Probing by binding the port ourselves could steal it from the core, so we only look.
/// Without `/proc` (not Linux) this answers `true` and the caller relies on TCP ports.
fn udp_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    let mut readable = false;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        readable = true;
        let bound = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .any(|local| local.ends_with(&suffix));
        if bound {
            return true;
        }
    }
    !readable
}

/// A tiny HTTP/1.0 origin on `127.0.0.1:0`: `GET /blob` answers [`Origin::blob`] bytes,
/// any other `GET` answers [`Origin::BODY`], anything else 405. One request per
/// connection, then close. Dropping it stops the listener and open connections.
pub struct Origin {
    addr: SocketAddr,
    blob_len: usize,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    /// The body of every `GET` except `/blob`.
    pub const BODY: &'static [u8] = b"hello-dataplane";

    /// Starts the origin; `/blob` will be `blob_len` bytes long.
    pub async fn start(blob_len: usize) -> anyhow::Result<Origin> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("origin: bind 127.0.0.1:0")?;
        let addr = listener.local_addr().context("origin: local_addr")?;
        let requests = Arc::new(AtomicUsize::new(0));
        let blob: Arc<[u8]> = Origin::blob(blob_len).into();
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            // Owning the connection tasks here means aborting this task ends them too.
            let mut conns = JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                match listener.accept().await {
                    Ok((stream, _)) => {
                        conns.spawn(serve_origin(
                            stream,
                            Arc::clone(&blob),
                            Arc::clone(&counter),
                        ));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        Ok(Origin {
            addr,
            blob_len,
            requests,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the form [`fetch_via_socks`] takes.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The exact bytes `GET /blob` returns for a given length (a repeating pattern, so a
    /// corrupted or reordered transfer does not compare equal).
    pub fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Length of this origin's `/blob`.
    pub fn blob_len(&self) -> usize {
        self.blob_len
    }

    /// How many requests reached the origin so far (useful to prove a rejected client
    /// never got through).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_origin(mut stream: TcpStream, blob: Arc<[u8]>, counter: Arc<AtomicUsize>) {
    // Errors only end this connection; the client sees a short or missing response.
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        let head = read_head(&mut stream).await?;
        let line = head.lines().next().unwrap_or_default();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        // Accept absolute-form targets too (`GET http://host/path`, as HTTP proxies send).
        let path = match target.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => target,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        counter.fetch_add(1, Ordering::SeqCst);
        let (status, body): (&str, &[u8]) = match (method, path) {
            ("GET", "/blob") => ("200 OK", &blob[..]),
            ("GET", _) => ("200 OK", Origin::BODY),
            _ => ("405 Method Not Allowed", b"method not allowed\n"),
        };
        let head = format!(
            "HTTP/1.0 {status}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.shutdown().await?;
        anyhow::Ok(())
    })
    .await;
}

/// Reads up to and including the blank line that ends an HTTP request head.
async fn read_head(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            bail!("request head larger than {MAX_HEAD} bytes");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed inside the request head");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A running sing-box (`sing-box run -D dir -c dir/sing-box-N.json`) with stdout and stderr
/// in `dir/sing-box-N.log`. The process is killed when this value is dropped (also when a
/// test panics); only a hard kill of the test process can leave it running.
pub struct Core {
    child: Child,
    config_path: PathBuf,
    log_path: PathBuf,
}

impl Core {
    /// Writes `config` into `dir`, starts sing-box and waits (up to 15 s) until every
    /// port the config listens on is up: TCP ports of inbounds, `services` and the clash
    /// API accept connections; UDP-only inbounds (hysteria, hysteria2, tuic, or
    /// `network: "udp"`) are bound. Fails with the core's log if it exits or times out.
    /// Relative paths in the config (certificates) resolve against `dir`. The readiness
    /// probes are bare connects, so each TLS inbound logs one `TLS handshake: EOF` error.
    pub async fn start(bin: &Path, config: &Value, dir: &Path) -> anyhow::Result<Core> {
        let dir = std::path::absolute(dir).with_context(|| dir.display().to_string())?;
        let n = next_file_id();
        let config_path = dir.join(format!("sing-box-{n}.json"));
        let log_path = dir.join(format!("sing-box-{n}.log"));
        std::fs::write(&config_path, serde_json::to_vec_pretty(config)?)
            .with_context(|| config_path.display().to_string())?;
        let log =
            std::fs::File::create(&log_path).with_context(|| log_path.display().to_string())?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let child = Command::new(bin)
            .arg("run")
            .arg("--disable-color")
            .arg("-D")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut core = Core {
            child,
            config_path,
            log_path,
        };
        let (tcp, udp) = listen_ports(config);
        if let Err(e) = core.wait_ready(&tcp, &udp).await {
            return Err(e.context(format!(
                "sing-box ({}) did not come up; log:\n{}",
                core.config_path.display(),
                core.log()
            )));
        }
        Ok(core)
    }

    async fn wait_ready(&mut self, tcp: &[u16], udp: &[u16]) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut tcp_left: Vec<u16> = tcp.to_vec();
        let mut udp_left: Vec<u16> = udp.to_vec();
        loop {
            if let Some(status) = self.child.try_wait().context("polling sing-box")? {
                bail!("sing-box exited: {status}");
            }
            let mut still = Vec::new();
            for port in tcp_left {
                if !tcp_accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
                    still.push(port);
                }
            }
            tcp_left = still;
            udp_left.retain(|p| !udp_bound(*p));
            if tcp_left.is_empty() && udp_left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("ports not up after {START_TIMEOUT:?}: tcp {tcp_left:?}, udp {udp_left:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the core printed so far (for assertion messages).
    pub fn log(&self) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(cannot read {}: {e})", self.log_path.display()),
        }
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The config file the core runs with (rewrite it and signal [`Core::pid`] with HUP to
    /// reload in place).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the core and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing sing-box")
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // kill_on_drop would do the same; being explicit also reaps it when it is quick.
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
    }
}

/// The TCP and the UDP-only ports a sing-box config listens on.
fn listen_ports(config: &Value) -> (Vec<u16>, Vec<u16>) {
    let port_of = |v: &Value| {
        v.get("listen_port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
    };
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for inbound in config["inbounds"].as_array().into_iter().flatten() {
        let Some(port) = port_of(inbound) else {
            continue;
        };
        let kind = inbound["type"].as_str().unwrap_or_default();
        let udp_only = matches!(kind, "hysteria" | "hysteria2" | "tuic")
            || inbound["network"].as_str() == Some("udp");
        if udp_only {
            udp.push(port);
        } else {
            tcp.push(port);
        }
    }
    for service in config["services"].as_array().into_iter().flatten() {
        tcp.extend(port_of(service));
    }
    let clash = config["experimental"]["clash_api"]["external_controller"].as_str();
    if let Some(addr) = clash.and_then(|a| a.parse::<SocketAddr>().ok()) {
        tcp.push(addr.port());
    }
    (tcp, udp)
}

/// A sing-box 1.12+ client config: a `socks` inbound on `127.0.0.1:socks_port` (no auth),
/// `outbound` (its `tag` is set to `proxy`) as the route's `final`, plus `direct`.
/// Log level `warn`; no DNS section (not needed to pass `sing-box check` or to proxy).
pub fn socks_client_config(outbound: Value, socks_port: u16) -> Value {
    let mut outbound = outbound;
    if let Some(obj) = outbound.as_object_mut() {
        obj.insert("tag".into(), json!("proxy"));
    }
    json!({
        "log": {"level": "warn"},
        "inbounds": [
            {"type": "socks", "tag": "socks-in", "listen": "127.0.0.1", "listen_port": socks_port}
        ],
        "outbounds": [outbound, {"type": "direct", "tag": "direct"}],
        "route": {"final": "proxy"},
    })
}

/// Fetches `http://{url_host_port}{path}` through the SOCKS5 proxy on
/// `127.0.0.1:socks_port` (no auth, CONNECT by IP or by hostname, which the proxy then
/// resolves) with HTTP/1.0, and returns the body of a `200` answer. Every step (connect,
/// handshake, each read) times out after 5 s. A rejection by the server behind the proxy
/// shows up as "closed before any HTTP response" where sing-box answers the CONNECT before
/// dialing (VLESS, Trojan, VMess, Shadowsocks), as a SOCKS "general failure" where it dials
/// first (Hysteria2), or as a timeout where a server drains unauthenticated connections.
pub async fn fetch_via_socks(
    socks_port: u16,
    url_host_port: &str,
    path: &str,
) -> anyhow::Result<Vec<u8>> {
    let proxy = SocketAddr::from((Ipv4Addr::LOCALHOST, socks_port));
    let what = format!("GET http://{url_host_port}{path} via socks5 {proxy}");
    async {
        let mut stream = step("connect to the proxy", TcpStream::connect(proxy)).await?;
        socks5_connect(&mut stream, url_host_port).await?;
        http_get(stream, url_host_port, path).await
    }
    .await
    .context(what)
}

/// Fetches `http://{addr}{path}` directly (no proxy); same rules as [`fetch_via_socks`].
pub async fn fetch_direct(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let what = format!("GET http://{addr}{path}");
    async {
        let stream = step("connect", TcpStream::connect(addr)).await?;
        http_get(stream, &addr.to_string(), path).await
    }
    .await
    .context(what)
}

/// One I/O step with the module's step timeout.
async fn step<T>(what: &str, fut: impl Future<Output = std::io::Result<T>>) -> anyhow::Result<T> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!(e).context(what.to_owned())),
        Err(_) => bail!("{what}: timed out after {STEP_TIMEOUT:?}"),
    }
}

/// SOCKS5 greeting (no auth) and CONNECT to `host:port`.
async fn socks5_connect(stream: &mut TcpStream, host_port: &str) -> anyhow::Result<()> {
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("`{host_port}` is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("bad port in `{host_port}`"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);

    step("socks greeting", stream.write_all(&[5, 1, 0])).await?;
    let mut choice = [0u8; 2];
    step("socks method choice", stream.read_exact(&mut choice)).await?;
    if choice != [5, 0] {
        bail!("proxy refused the no-auth method (answered {choice:?})");
    }

    let mut req = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let len =
                u8::try_from(host.len()).map_err(|_| anyhow!("hostname longer than 255 bytes"))?;
            req.push(3);
            req.push(len);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    step("socks CONNECT", stream.write_all(&req)).await?;

    let mut head = [0u8; 4];
    step("socks CONNECT reply", stream.read_exact(&mut head)).await?;
    if head[0] != 5 {
        bail!("not a SOCKS5 reply (version byte {})", head[0]);
    }
    if head[1] != 0 {
        bail!(
            "proxy refused CONNECT {host_port}: {}",
            socks_reply(head[1])
        );
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            step("socks CONNECT reply", stream.read_exact(&mut len)).await?;
            usize::from(len[0]) + 2
        }
        t => bail!("bad address type {t} in the SOCKS5 reply"),
    };
    let mut bound = vec![0u8; rest];
    step("socks CONNECT reply", stream.read_exact(&mut bound)).await?;
    Ok(())
}

fn socks_reply(code: u8) -> String {
    let name = match code {
        1 => "general failure",
        2 => "not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    };
    format!("{name} ({code})")
}

/// Sends an HTTP/1.0 GET on an open stream, reads until close and returns the body of a
/// `200` answer (checked against `Content-Length` when present).
async fn http_get(mut stream: TcpStream, host: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    step("send the request", stream.write_all(req.as_bytes())).await?;
    let mut resp = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match tokio::time::timeout(STEP_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if resp.is_empty() => {
                return Err(anyhow!(e).context("connection failed before any HTTP response"));
            }
            Ok(Err(e)) => {
                return Err(anyhow!(e).context(format!("read failed after {} bytes", resp.len())));
            }
            Err(_) if resp.is_empty() => {
                bail!("no HTTP response within {STEP_TIMEOUT:?} (rejected or stalled upstream?)")
            }
            Err(_) => bail!(
                "response stalled for {STEP_TIMEOUT:?} after {} bytes",
                resp.len()
            ),
        };
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&chunk[..n]);
    }
    if resp.is_empty() {
        bail!("connection closed before any HTTP response (the proxy or its upstream rejected it)");
    }
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of HTTP head in {} bytes", resp.len()))?;
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let body = resp.split_off(split + 4);
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        bail!("HTTP status `{status_line}`");
    }
    let length = head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if let Some(len) = length
        && len != body.len()
    {
        bail!("Content-Length {len} but {} body bytes", body.len());
    }
    Ok(body)
}
