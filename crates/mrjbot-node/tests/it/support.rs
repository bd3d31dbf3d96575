//! Test harness: a fake control plane speaking `mrjbot_node_proto`, an HTTP origin, the
//! agent binary as a real process, and client-side cores.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mrjbot_node_proto::{
    self as proto, DesiredState, Heartbeat, HeartbeatAck, InboundSpec, Intervals, RegisterRequest,
    RegisterResponse, TokenRequest, TokenResponse, UsageAck, UsageReport, UserSpec,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SECRET: &str = "node-secret-1";

/// A binary the tests need, or `None` (the caller prints "skipped"; with CI=true it panics).
pub fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} not found (set {env}); CI=true forbids skipping",
            p.display()
        );
    }
    eprintln!("skipped: {} not found (set {env})", p.display());
    None
}

pub fn v2ray_bin() -> Option<PathBuf> {
    tool("V2RAY_BIN", "/usr/bin/v2ray")
}

pub fn sing_box_bin() -> Option<PathBuf> {
    tool("SING_BOX_BIN", "/var/tmp/mrjbot-tools/bin/sing-box")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------ fake control plane

/// How the fake answers usage reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Record and acknowledge.
    Normal,
    /// Record, then hold the answer this long (the agent may be killed meanwhile).
    Delay(Duration),
    /// Record, then answer 503: the acknowledgement is "lost".
    Lose,
}

pub struct CpState {
    pub desired: DesiredState,
    pub intervals: Intervals,
    pub token_ttl: u64,
    pub tokens: BTreeMap<String, Instant>,
    pub down: bool,
    pub ack: AckMode,
    pub reports: BTreeMap<u64, UsageReport>,
    pub duplicates: u64,
    pub totals: BTreeMap<String, (u64, u64)>,
    pub heartbeats: Vec<Heartbeat>,
    pub registers: u64,
    pub renewals: u64,
    /// TOKEN answers 401: the agent must fall back to REGISTER.
    pub refuse_renewal: bool,
    pub unauthorized: u64,
    next_token: u64,
}

#[derive(Clone)]
pub struct FakeCp {
    pub url: String,
    pub state: Arc<Mutex<CpState>>,
}

type S = Arc<Mutex<CpState>>;

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
}

fn issue(st: &mut CpState) -> (String, u64) {
    st.next_token += 1;
    let t = format!("tok-{}", st.next_token);
    st.tokens.insert(
        t.clone(),
        Instant::now() + Duration::from_secs(st.token_ttl),
    );
    (t, st.token_ttl)
}

fn authorized(st: &mut CpState, h: &HeaderMap) -> bool {
    let tok = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = st.tokens.get(tok).is_some_and(|exp| Instant::now() < *exp);
    if !ok {
        st.unauthorized += 1;
    }
    ok
}

fn unauthorized() -> Response {
    let body = proto::ErrorBody {
        error: proto::ErrorDetail {
            code: "unauthorized".into(),
            message: "token expired".into(),
        },
    };
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn register(State(s): State<S>, Json(r): Json<RegisterRequest>) -> Response {
    let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
    if st.down {
        return unavailable();
    }
    if r.secret != SECRET {
        return unauthorized();
    }
    st.registers += 1;
    let (token, ttl) = issue(&mut st);
    Json(RegisterResponse {
        node_id: 1,
        node_name: "n1".into(),
        token,
        expires_in_secs: ttl,
        intervals: st.intervals,
        last_usage_seq: st.reports.keys().next_back().copied(),
    })
    .into_response()
}

async fn token(State(s): State<S>, Json(r): Json<TokenRequest>) -> Response {
    let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
    if st.down {
        return unavailable();
    }
    if r.secret != SECRET || st.refuse_renewal {
        st.unauthorized += 1;
        return unauthorized();
    }
    st.renewals += 1;
    let (token, expires_in_secs) = issue(&mut st);
    Json(TokenResponse {
        token,
        expires_in_secs,
    })
    .into_response()
}

async fn heartbeat(State(s): State<S>, h: HeaderMap, Json(hb): Json<Heartbeat>) -> Response {
    let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
    if st.down {
        return unavailable();
    }
    if !authorized(&mut st, &h) {
        return unauthorized();
    }
    st.heartbeats.push(hb);
    Json(HeartbeatAck {
        desired_etag: st.desired.etag.clone(),
    })
    .into_response()
}

async fn desired_state(State(s): State<S>, h: HeaderMap) -> Response {
    let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
    if st.down {
        return unavailable();
    }
    if !authorized(&mut st, &h) {
        return unauthorized();
    }
    let etag = format!("\"{}\"", st.desired.etag);
    if h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::ETAG, etag)], Json(st.desired.clone())).into_response()
}

async fn usage(State(s): State<S>, h: HeaderMap, Json(r): Json<UsageReport>) -> Response {
    let mode = {
        let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
        if st.down {
            return unavailable();
        }
        if !authorized(&mut st, &h) {
            return unauthorized();
        }
        if st.reports.contains_key(&r.seq) {
            st.duplicates += 1;
            return Json(UsageAck {
                seq: r.seq,
                duplicate: true,
                counted: 0,
            })
            .into_response();
        }
        for e in &r.entries {
            let t = st.totals.entry(e.email.clone()).or_default();
            t.0 += e.up;
            t.1 += e.down;
        }
        st.reports.insert(r.seq, r.clone());
        st.ack
    };
    match mode {
        AckMode::Normal => {}
        AckMode::Delay(d) => tokio::time::sleep(d).await,
        AckMode::Lose => return unavailable(),
    }
    Json(UsageAck {
        seq: r.seq,
        duplicate: false,
        counted: r.entries.len(),
    })
    .into_response()
}

impl FakeCp {
    pub async fn start(desired: DesiredState) -> FakeCp {
        let state = Arc::new(Mutex::new(CpState {
            desired,
            intervals: Intervals {
                heartbeat_secs: 1,
                desired_secs: 1,
                usage_secs: 1,
            },
            token_ttl: 900,
            tokens: BTreeMap::new(),
            down: false,
            ack: AckMode::Normal,
            reports: BTreeMap::new(),
            duplicates: 0,
            totals: BTreeMap::new(),
            heartbeats: Vec::new(),
            registers: 0,
            renewals: 0,
            refuse_renewal: false,
            unauthorized: 0,
            next_token: 0,
        }));
        let app = Router::new()
            .route(proto::REGISTER, post(register))
            .route(proto::TOKEN, post(token))
            .route(proto::HEARTBEAT, post(heartbeat))
            .route(proto::DESIRED, get(desired_state))
            .route(proto::USAGE, post(usage))
            .with_state(state.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            l.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        FakeCp { url, state }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut CpState) -> R) -> R {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut st)
    }

    pub fn set_users(&self, etag: &str, users: Vec<UserSpec>) {
        self.with(|s| {
            s.desired.etag = etag.into();
            s.desired.users = users;
        });
    }

    pub fn total(&self, email: &str) -> (u64, u64) {
        self.with(|s| s.totals.get(email).copied().unwrap_or_default())
    }

    pub fn last_heartbeat(&self) -> Option<Heartbeat> {
        self.with(|s| s.heartbeats.last().cloned())
    }

    pub async fn wait_applied(&self, etag: &str) {
        let cp = self.clone();
        let etag = etag.to_string();
        wait_for(
            &format!("applied etag {etag}"),
            Duration::from_secs(20),
            || {
                let hb = cp.last_heartbeat();
                let etag = etag.clone();
                async move { hb.is_some_and(|h| h.applied_etag.as_deref() == Some(etag.as_str())) }
            },
        )
        .await;
    }
}

pub fn user(name: &str, uuid: &str) -> UserSpec {
    UserSpec {
        email: format!("{name}@n1"),
        uuid: uuid.into(),
        password: format!("pw-{name}"),
        ss_keys: BTreeMap::new(),
    }
}

pub fn inbound(tag: &str, protocol: &str, port: u16, settings: serde_json::Value) -> InboundSpec {
    InboundSpec {
        tag: tag.into(),
        protocol: protocol.into(),
        port,
        network: "tcp".into(),
        security: "none".into(),
        settings,
    }
}

// ------------------------------------------------------------------ HTTP origin

/// Serves `GET /bytes/N` (N bytes at once) and `GET /slow/N` (N bytes, ~1.3 MB/s).
pub struct Origin {
    pub port: u16,
}

impl Origin {
    pub async fn start() -> Origin {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut b = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&b[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("/");
                    let (slow, n) = match path.rsplit_once('/') {
                        Some((p, n)) => (p == "/slow", n.parse::<usize>().unwrap_or(0)),
                        None => (false, 0),
                    };
                    let hdr = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                    );
                    if s.write_all(hdr.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = n;
                    while left > 0 {
                        let k = left.min(chunk.len());
                        if s.write_all(&chunk[..k]).await.is_err() {
                            return;
                        }
                        left -= k;
                        if slow {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        Origin { port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Downloads `url` through the socks proxy on `socks_port`; the byte count or an error.
pub async fn fetch(socks_port: u16, url: &str, max_secs: u64) -> Result<u64, String> {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            &max_secs.to_string(),
            "--socks5-hostname",
            &format!("127.0.0.1:{socks_port}"),
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            url,
        ])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let n = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<u64>()
        .unwrap_or(0);
    if out.status.success() {
        Ok(n)
    } else {
        Err(format!(
            "curl: {} ({n} bytes)",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

// ------------------------------------------------------------------ processes

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{e}"));
        let f2 = f.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Proc { child }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits for the process to exit (after a signal).
    pub fn wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM first: the agent stops its core on the way out.
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills `pid` (not our child) and waits until it is gone.
pub async fn kill_pid(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0)),
        sig,
    );
    wait_for("process gone", Duration::from_secs(10), || async move {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z")
    })
    .await;
}

/// The agent's state directory, configuration and process.
pub struct AgentHome {
    pub dir: tempfile::TempDir,
    pub core: &'static str,
    pub core_bin: PathBuf,
    pub api_port: u16,
    pub cp_url: String,
}

impl AgentHome {
    pub fn new(core: &'static str, core_bin: PathBuf, cp: &FakeCp) -> AgentHome {
        AgentHome {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            core,
            core_bin,
            api_port: free_port(),
            cp_url: cp.url.clone(),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn spawn(&self) -> Proc {
        self.spawn_with(&[])
    }

    /// The agent with extra `MRJBOT_NODE_*` settings.
    pub fn spawn_with(&self, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mrjbot-node"));
        cmd.envs(env.iter().copied());
        cmd.arg("run")
            .env("MRJBOT_NODE_CONTROL_PLANE_URL", &self.cp_url)
            .env("MRJBOT_NODE_SECRET", SECRET)
            .env("MRJBOT_NODE_CORE", self.core)
            .env("MRJBOT_NODE_CORE_BIN", &self.core_bin)
            .env("MRJBOT_NODE_STATE_DIR", self.state())
            .env("MRJBOT_NODE_LISTEN", "127.0.0.1")
            .env("MRJBOT_NODE_API_PORT", self.api_port.to_string())
            .env("MRJBOT_NODE_LOG", "info");
        Proc::spawn("agent", cmd, &self.dir.path().join("agent.log"))
    }

    /// The pid of the core the agent runs, from its `core.json`.
    pub fn core_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.state().join("core.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("pid")?.as_u64().and_then(|p| u32::try_from(p).ok())
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for AgentHome {
    fn drop(&mut self) {
        // A core orphaned by a SIGKILLed agent outlives it by design; the test owns it.
        if let Some(pid) = self.core_pid() {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = self.state().display().to_string();
            if String::from_utf8_lossy(&cmd).contains(&state) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0)),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}", self.agent_log());
            let core = std::fs::read_to_string(self.state().join("core.log")).unwrap_or_default();
            let tail: Vec<&str> = core.lines().rev().take(20).collect();
            eprintln!("---- core log (tail) ----\n{}", tail.join("\n"));
        }
    }
}

/// A V2Ray client: one socks inbound per (port, outbound JSON).
pub fn v2ray_client(bin: &Path, dir: &Path, routes: &[(u16, serde_json::Value)]) -> Proc {
    let mut inbounds = Vec::new();
    let mut outbounds = Vec::new();
    let mut rules = Vec::new();
    for (i, (port, out)) in routes.iter().enumerate() {
        inbounds.push(
            serde_json::json!({"tag": format!("s{i}"), "listen": "127.0.0.1",
            "port": port, "protocol": "socks", "settings": {"udp": false}}),
        );
        let mut o = out.clone();
        o["tag"] = serde_json::json!(format!("o{i}"));
        outbounds.push(o);
        rules.push(
            serde_json::json!({"type": "field", "inboundTag": [format!("s{i}")],
            "outboundTag": format!("o{i}")}),
        );
    }
    let cfg = serde_json::json!({"log": {"loglevel": "warning"}, "inbounds": inbounds,
        "outbounds": outbounds, "routing": {"rules": rules}});
    let path = dir.join("client.json");
    std::fs::write(&path, cfg.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(bin);
    cmd.arg("-config").arg(&path);
    Proc::spawn("v2ray-client", cmd, &dir.join("client.log"))
}

pub fn vless_out(port: u16, uuid: &str) -> serde_json::Value {
    serde_json::json!({"protocol": "vless", "settings": {"vnext": [{"address": "127.0.0.1",
        "port": port, "users": [{"id": uuid, "encryption": "none", "level": 0}]}]}})
}

pub fn vmess_out(port: u16, uuid: &str) -> serde_json::Value {
    serde_json::json!({"protocol": "vmess", "settings": {"vnext": [{"address": "127.0.0.1",
        "port": port, "users": [{"id": uuid, "alterId": 0, "security": "auto", "level": 0}]}]}})
}

/// Waits until a socks port accepts connections.
pub async fn wait_port(port: u16) {
    wait_for(
        &format!("port {port}"),
        Duration::from_secs(10),
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
}
