//! The agent loop: desired state in, core configuration and usage reports out.
//!
//! One task owns the core, the applied state and the usage ledger and does everything that
//! touches them in sequence (poll desired, apply, supervise, report usage), so no two
//! operations race on the core. Heartbeats run in a second task from a shared status
//! snapshot. Guarantees:
//! - the core keeps serving the last desired state while the control plane is down, also
//!   across an agent restart (`desired.json`, `applied.json`, adoption of a running core);
//! - users change without a restart on Xray / V2Ray when only users changed (gRPC), by a
//!   checked config plus SIGHUP on sing-box; a config the core refuses is reported as
//!   `last_error` and the running one stays;
//! - usage is read before every restart or reload the agent causes, so counters that
//!   start again from zero lose nothing; see [`crate::usage`] for the report journal;
//! - usage is also sampled every `sample_secs` (default 2 s; one QueryStats call, or one
//!   SSM stats call per Shadowsocks inbound on sing-box without `v2ray_api`), whether or
//!   not the control plane is reachable. Whenever the agent finds the core gone (it
//!   exited, was killed, or was stopped without a final read), the last sample of that
//!   process goes into the journal's carry at once, so a core crash loses at most one
//!   sampling period of traffic instead of everything since the last report.

use crate::client::{Backoff, Client, Desired, Identity};
use crate::config::Config;
use crate::core::{self, Supervisor};
use crate::grpc::{Account, Api};
use crate::metrics::{Sampler, established_on};
use crate::render::{self, SingBoxTags};
use crate::ssm::Ssm;
use crate::state::{DESIRED_FILE, StateDir, USAGE_FILE, load_json, save_json, write_atomic};
use crate::usage::{Counters, Ledger};
use mrjbot_node_proto::{CoreKind, CoreStatus, DesiredState, Heartbeat, InboundSpec, UserSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the core runs now (its config file reflects it).
const APPLIED_FILE: &str = "applied.json";
/// Intervals used until the control plane gave its own.
const DEFAULT_SECS: u64 = 30;
/// Consecutive failed API checks (one per second) before the core is restarted.
const API_FAILURES_BEFORE_RESTART: u32 = 5;

/// Shared snapshot for heartbeats.
#[derive(Debug, Clone)]
pub struct Status {
    /// Core state.
    pub core_status: CoreStatus,
    /// Core version (first line).
    pub core_version: Option<String>,
    /// Unplanned core restarts since start.
    pub core_restarts: u64,
    /// ETag of the applied desired state.
    pub applied_etag: Option<String>,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Inbound ports (for the connection count).
    pub ports: BTreeSet<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    if_none_match: String,
    state: DesiredState,
}

fn empty_state() -> DesiredState {
    DesiredState {
        etag: String::new(),
        node_id: 0,
        inbounds: Vec::new(),
        users: Vec::new(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The agent.
pub struct Agent {
    cfg: Config,
    dir: StateDir,
    client: Client,
    sup: Supervisor,
    api: Option<Api>,
    ssm: Ssm,
    tags: SingBoxTags,
    ledger: Ledger,
    desired: Option<Saved>,
    applied: Option<DesiredState>,
    apply_error: Option<String>,
    core_error: Option<String>,
    notice: Option<String>,
    status: Arc<Mutex<Status>>,
    adopted: bool,
    api_failures: u32,
    start_backoff: Backoff,
    next_start: Instant,
    running_since: Option<Instant>,
}

impl Agent {
    /// Opens the state directory, finds the core's version and adopts a core left
    /// running by an earlier agent.
    pub async fn new(cfg: Config) -> anyhow::Result<Agent> {
        let dir = StateDir::open(&cfg.state_dir)?;
        let (version, core_error, tags) = match core::version(&cfg).await {
            Ok((first, all)) => {
                let tags = SingBoxTags {
                    v2ray_api: all
                        .lines()
                        .any(|l| l.starts_with("Tags:") && l.contains("with_v2ray_api")),
                };
                (Some(first), None, tags)
            }
            Err(e) => (None, Some(e), SingBoxTags::default()),
        };
        let client = Client::new(
            &cfg.control_plane_url,
            Identity {
                secret: cfg.secret.clone(),
                core: cfg.core,
                core_version: version.clone(),
            },
        );
        let api = match cfg.core {
            CoreKind::SingBox if !tags.v2ray_api => None,
            CoreKind::SingBox => Some(Api::new(cfg.core, render::v2ray_api_port(&cfg))?),
            _ => Some(Api::new(cfg.core, cfg.api_port)?),
        };
        let ledger = Ledger::load(dir.path(USAGE_FILE))?;
        let desired: Option<Saved> = load_json(&dir.path(DESIRED_FILE))?;
        let mut sup = Supervisor::new(&cfg, &dir);
        let adopted = sup.adopt();
        let applied: Option<DesiredState> = if adopted {
            load_json(&dir.path(APPLIED_FILE))?
        } else {
            None
        };
        if adopted {
            tracing::info!(
                pid = sup.pid(),
                "adopted the core left running by an earlier agent"
            );
        }
        let status = Arc::new(Mutex::new(Status {
            core_status: CoreStatus::Unknown,
            core_version: version,
            core_restarts: 0,
            applied_etag: None,
            last_error: core_error.clone(),
            ports: BTreeSet::new(),
        }));
        Ok(Agent {
            ssm: Ssm::new(cfg.api_port),
            cfg,
            dir,
            client,
            sup,
            api,
            tags,
            ledger,
            desired,
            applied,
            apply_error: None,
            core_error,
            notice: None,
            status,
            adopted,
            api_failures: 0,
            start_backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            next_start: Instant::now(),
            running_since: None,
        })
    }

    /// The shared status (for tests and the heartbeat task).
    pub fn status(&self) -> Arc<Mutex<Status>> {
        self.status.clone()
    }

    /// True when a running core was adopted at start.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    fn publish(&mut self, core_status: CoreStatus) {
        let applied_etag = self
            .applied
            .as_ref()
            .map(|a| a.etag.clone())
            .filter(|e| !e.is_empty());
        let ports = self
            .applied
            .as_ref()
            .map(|a| a.inbounds.iter().map(|i| i.port).collect())
            .unwrap_or_default();
        let last_error = self
            .apply_error
            .clone()
            .or_else(|| self.core_error.clone())
            .or_else(|| self.notice.clone());
        if let Ok(mut s) = self.status.lock() {
            s.core_status = core_status;
            s.core_restarts = self.sup.restarts;
            s.applied_etag = applied_etag;
            s.last_error = last_error;
            s.ports = ports;
        }
    }

    fn ss_endpoints(d: &DesiredState) -> Vec<(String, BTreeMap<String, String>)> {
        d.inbounds
            .iter()
            .filter(|i| i.protocol == "shadowsocks")
            .map(|i| {
                let method = i
                    .settings
                    .get("method")
                    .and_then(|m| m.as_str())
                    .unwrap_or("");
                let users = d
                    .users
                    .iter()
                    .map(|u| {
                        let key = u.ss_keys.get(method).unwrap_or(&u.password);
                        (u.email.clone(), key.clone())
                    })
                    .collect();
                (render::ssm_path(&i.tag), users)
            })
            .collect()
    }

    /// Cumulative per-user counters of the running core, with its instance.
    pub async fn read_counters(&self) -> Result<(String, Counters), String> {
        let instance = self.sup.instance().ok_or("core not running")?;
        let mut c = Counters::new();
        match (&self.api, self.cfg.core) {
            (Some(api), _) => c = api.user_counters().await.map_err(|e| e.to_string())?,
            (None, _) => {
                if let Some(applied) = &self.applied {
                    for (ep, _) in Self::ss_endpoints(applied) {
                        self.ssm.counters(&ep, &mut c).await?;
                    }
                }
            }
        }
        Ok((instance, c))
    }

    /// Reads the counters into the ledger's carry before the agent resets them. When the
    /// read fails, the last sample is folded once the process is gone.
    async fn fold_usage(&mut self) {
        if self.sup.pid().is_none() {
            return;
        }
        match self.read_counters().await {
            Ok((inst, c)) => {
                if let Err(e) = self.ledger.fold(&inst, &c) {
                    tracing::error!("usage ledger: {e}");
                }
            }
            Err(e) => tracing::warn!(
                "could not read counters before a restart (the last sample counts): {e}"
            ),
        }
    }

    /// Folds the last usage sample of a core process that is no longer the running one.
    fn settle_usage(&mut self) {
        let running = self.sup.instance();
        let gone = self.ledger.sampled_instance().map(str::to_string);
        match self.ledger.core_gone(running.as_deref()) {
            Ok(true) => tracing::warn!(
                instance = gone.as_deref().unwrap_or(""),
                "core process gone: its usage up to the last sample is kept for the next report"
            ),
            Ok(false) => {}
            Err(e) => tracing::error!("usage ledger: {e}"),
        }
    }

    /// True while the core lives; when it is gone, its last usage sample is kept.
    fn core_alive(&mut self) -> bool {
        let alive = self.sup.alive();
        if !alive {
            self.settle_usage();
        }
        alive
    }

    /// Stops the core (after `fold_usage` when planned) and keeps its last sample otherwise.
    async fn stop_core(&mut self) {
        self.sup.stop().await;
        self.settle_usage();
    }

    /// Reads the running core's counters as the latest sample (no report, no reset).
    async fn sample_usage(&mut self) {
        if !self.core_alive() {
            return;
        }
        match self.read_counters().await {
            Ok((inst, c)) => {
                if let Err(e) = self.ledger.observe(&inst, c) {
                    tracing::error!("usage ledger: {e}");
                }
            }
            Err(e) => tracing::debug!("sampling usage counters: {e}"),
        }
    }

    async fn core_answers(&self) -> bool {
        match (self.cfg.core, &self.api) {
            (CoreKind::SingBox, api) => {
                let eps = self
                    .applied
                    .as_ref()
                    .map(Self::ss_endpoints)
                    .unwrap_or_default();
                if let Some((ep, _)) = eps.first() {
                    return self.ssm.ready(ep).await;
                }
                match api {
                    Some(a) => a.query("user>>>").await.is_ok(),
                    None => true,
                }
            }
            (_, Some(api)) => api.query("inbound>>>api>>>").await.is_ok(),
            (_, None) => true,
        }
    }

    /// Starts the core and waits until its API answers.
    async fn start_core(&mut self) -> Result<(), String> {
        self.sup
            .start()
            .map_err(|e| format!("starting the core: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        // sing-box without an API: give it a moment to fail on a bad config.
        tokio::time::sleep(Duration::from_millis(100)).await;
        loop {
            if !self.core_alive() {
                return Err(format!("core exited: {}", self.sup.log_tail()));
            }
            if self.core_answers().await {
                break;
            }
            if Instant::now() > deadline {
                return Err("core API does not answer".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.running_since = Some(Instant::now());
        self.api_failures = 0;
        self.sync_ssm().await;
        Ok(())
    }

    async fn sync_ssm(&mut self) {
        if self.cfg.core != CoreKind::SingBox {
            return;
        }
        let Some(applied) = &self.applied else { return };
        for (ep, users) in Self::ss_endpoints(applied) {
            if let Err(e) = self.ssm.reconcile(&ep, &users).await {
                tracing::warn!("SSM users on {ep}: {e}");
            }
        }
    }

    fn render(&self, d: &DesiredState) -> Result<Vec<u8>, String> {
        let v = match self.cfg.core {
            CoreKind::SingBox => render::singbox_config(&self.cfg, self.tags, d),
            _ => render::xray_config(&self.cfg, d),
        }
        .map_err(|e| e.to_string())?;
        serde_json::to_vec_pretty(&v).map_err(|e| e.to_string())
    }

    fn skeleton_equal(&self, a: &[InboundSpec], b: &[InboundSpec]) -> bool {
        match (
            render::xray_skeleton(&self.cfg, a),
            render::xray_skeleton(&self.cfg, b),
        ) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }

    /// Changes users through the API; `Err` means "restart instead".
    async fn apply_users_at_runtime(
        &self,
        old: &DesiredState,
        new: &DesiredState,
    ) -> Result<usize, String> {
        let api = self.api.as_ref().ok_or("no API")?;
        let old_u: BTreeMap<&str, &UserSpec> =
            old.users.iter().map(|u| (u.email.as_str(), u)).collect();
        let new_u: BTreeMap<&str, &UserSpec> =
            new.users.iter().map(|u| (u.email.as_str(), u)).collect();
        let mut ops = 0;
        for ib in &new.inbounds {
            for (email, u) in &old_u {
                if new_u.get(email) != Some(u) {
                    api.remove_user(&ib.tag, email)
                        .await
                        .map_err(|e| e.to_string())?;
                    ops += 1;
                }
            }
            for (email, u) in &new_u {
                if old_u.get(email) != Some(u) {
                    let flow = ib
                        .settings
                        .get("flow")
                        .and_then(|f| f.as_str())
                        .filter(|_| self.cfg.core == CoreKind::Xray)
                        .unwrap_or("")
                        .to_string();
                    let acc = match ib.protocol.as_str() {
                        "vless" => Account::Vless {
                            id: u.uuid.clone(),
                            flow,
                        },
                        "vmess" => Account::Vmess { id: u.uuid.clone() },
                        "trojan" => Account::Trojan {
                            password: u.password.clone(),
                        },
                        other => return Err(format!("{other} users need a restart")),
                    };
                    api.add_user(&ib.tag, email, &acc)
                        .await
                        .map_err(|e| e.to_string())?;
                    ops += 1;
                }
            }
        }
        Ok(ops)
    }

    fn save_applied(&mut self, d: DesiredState) {
        if let Err(e) = save_json(&self.dir.path(APPLIED_FILE), &d) {
            tracing::error!("saving applied state: {e}");
        }
        self.applied = Some(d);
    }

    /// Makes the core serve `d`.
    pub async fn apply(&mut self, d: DesiredState) -> Result<(), String> {
        let bytes = self.render(&d)?;
        let alive = self.core_alive();
        if alive
            && self.cfg.core != CoreKind::SingBox
            && let Some(old) = self.applied.clone()
            && self.skeleton_equal(&old.inbounds, &d.inbounds)
            && d.inbounds
                .iter()
                .all(|i| render::runtime_users(&i.protocol))
        {
            match self.apply_users_at_runtime(&old, &d).await {
                Ok(ops) => {
                    write_atomic(self.sup.config_path(), &bytes).map_err(|e| e.to_string())?;
                    tracing::info!(ops, etag = %d.etag, "users changed through the core API");
                    self.save_applied(d);
                    return Ok(());
                }
                Err(e) => tracing::warn!("runtime user change failed, restarting the core: {e}"),
            }
        }
        // Check the new file with the core before it replaces the running one.
        let candidate = self.dir.path("core-config.next.json");
        write_atomic(&candidate, &bytes).map_err(|e| e.to_string())?;
        if let Err(e) = core::test_config(&self.cfg, &candidate).await {
            let _ = std::fs::remove_file(&candidate);
            return Err(e);
        }
        let reload = alive && self.cfg.core == CoreKind::SingBox;
        if alive {
            self.fold_usage().await;
        }
        std::fs::rename(&candidate, self.sup.config_path()).map_err(|e| e.to_string())?;
        self.save_applied(d);
        if reload {
            let reloaded = self.sup.reload();
            self.settle_usage();
            reloaded.map_err(|e| format!("reloading the core: {e}"))?;
            // sing-box drops SSM users on reload; wait for the reloaded service, then
            // push them again (the supervision tick repeats this until it holds).
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.sync_ssm().await;
            tracing::info!("core reloaded in place");
        } else {
            self.stop_core().await;
            self.start_core().await?;
            tracing::info!(
                pid = self.sup.pid(),
                "core (re)started with the new configuration"
            );
        }
        Ok(())
    }

    async fn apply_wanted(&mut self) {
        let want = self
            .desired
            .as_ref()
            .map(|s| s.state.clone())
            .unwrap_or_else(empty_state);
        if self.applied.as_ref() == Some(&want) && self.core_alive() {
            return;
        }
        let etag = want.etag.clone();
        match self.apply(want).await {
            Ok(()) => {
                self.apply_error = None;
                self.core_error = None;
            }
            Err(e) => {
                tracing::error!(etag, "applying the desired state: {e}");
                self.apply_error = Some(e);
            }
        }
        self.notice = self.counting_notice();
        let st = if self.core_alive() {
            CoreStatus::Running
        } else {
            CoreStatus::Error
        };
        self.publish(st);
    }

    fn counting_notice(&self) -> Option<String> {
        let applied = self.applied.as_ref()?;
        (self.cfg.core == CoreKind::SingBox
            && !self.tags.v2ray_api
            && applied.inbounds.iter().any(|i| i.protocol != "shadowsocks"))
        .then(|| {
            "per-user counting is unavailable for non-shadowsocks inbounds: this sing-box build lacks with_v2ray_api".to_string()
        })
    }

    /// One supervision step: restart a dead or unresponsive core, keep SSM users in place.
    async fn supervise(&mut self) {
        if self.core_alive() {
            if self.core_answers().await {
                self.api_failures = 0;
                self.sync_ssm().await;
                if self
                    .running_since
                    .is_some_and(|t| t.elapsed() > Duration::from_secs(30))
                {
                    self.start_backoff.reset();
                }
                self.publish(CoreStatus::Running);
                return;
            }
            self.api_failures += 1;
            if self.api_failures < API_FAILURES_BEFORE_RESTART {
                return;
            }
            tracing::warn!("the core stopped answering its API; restarting it");
            self.stop_core().await;
        } else if self.applied.is_none() {
            return;
        }
        self.publish(CoreStatus::Stopped);
        if Instant::now() < self.next_start {
            return;
        }
        self.sup.restarts += 1;
        tracing::warn!(
            restarts = self.sup.restarts,
            "core not running; starting it"
        );
        match self.start_core().await {
            Ok(()) => {
                self.core_error = None;
                self.publish(CoreStatus::Running);
            }
            Err(e) => {
                tracing::error!("core start: {e}");
                self.core_error = Some(e);
                self.next_start = Instant::now() + self.start_backoff.fail();
                self.publish(CoreStatus::Error);
            }
        }
    }

    async fn poll_desired(&mut self) -> Result<(), String> {
        let inm = self.desired.as_ref().map(|s| s.if_none_match.clone());
        match self
            .client
            .desired(inm.as_deref())
            .await
            .map_err(|e| e.to_string())?
        {
            Desired::NotModified => {}
            Desired::Changed(state, header) => {
                let saved = Saved {
                    if_none_match: header,
                    state: *state,
                };
                if let Err(e) = save_json(&self.dir.path(DESIRED_FILE), &saved) {
                    tracing::error!("saving the desired state: {e}");
                }
                tracing::info!(etag = %saved.state.etag, users = saved.state.users.len(), "new desired state");
                self.desired = Some(saved);
            }
        }
        self.apply_wanted().await;
        Ok(())
    }

    /// Builds (or re-sends) one usage report. `Ok(true)` when more is waiting.
    async fn report_usage(&mut self) -> Result<bool, String> {
        if self.ledger.pending().is_none() {
            let (inst, c) = match self.read_counters().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("reading usage counters: {e}");
                    return Ok(false);
                }
            };
            self.ledger
                .prepare(&inst, &c, now_ms())
                .map_err(|e| format!("usage ledger: {e}"))?;
        }
        let Some(report) = self.ledger.pending().cloned() else {
            return Ok(false);
        };
        let ack = self
            .client
            .usage(&report)
            .await
            .map_err(|e| e.to_string())?;
        if ack.seq != report.seq {
            return Err(format!(
                "usage ack for seq {} while {} was sent",
                ack.seq, report.seq
            ));
        }
        tracing::info!(
            seq = report.seq,
            entries = report.entries.len(),
            duplicate = ack.duplicate,
            "usage acknowledged"
        );
        self.ledger
            .acked(report.seq)
            .map_err(|e| format!("usage ledger: {e}"))?;
        Ok(self.ledger.has_carry())
    }

    async fn shutdown(&mut self) {
        tracing::info!("shutting down: reading counters, stopping the core");
        self.fold_usage().await;
        self.stop_core().await;
    }

    /// Runs until `stop` resolves (SIGTERM / SIGINT in the binary).
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(stop);
        if self.adopted {
            let running = self.applied.clone();
            if running.is_none() {
                // A core with an unknown configuration: replace it (reading its counters first).
                self.fold_usage().await;
                self.stop_core().await;
            }
        }
        self.apply_wanted().await;
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let hb = tokio::spawn(heartbeat_loop(self.client.clone(), self.status.clone(), tx));
        let mut registered = false;
        let mut reg_backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut desired_backoff = reg_backoff.clone();
        let mut usage_backoff = reg_backoff.clone();
        let now = Instant::now();
        let (mut next_reg, mut next_desired, mut next_usage) = (now, now, now);
        let mut next_check = now + Duration::from_secs(1);
        let sample_every = Duration::from_secs(self.cfg.sample_secs);
        let mut next_sample = now + sample_every;
        loop {
            let mut wake = next_check
                .min(next_desired)
                .min(next_usage)
                .min(next_sample);
            if !registered {
                wake = wake.min(next_reg);
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(wake.into()) => {}
                Some(()) = rx.recv() => next_desired = Instant::now(),
            }
            let now = Instant::now();
            if !registered && now >= next_reg {
                match self.client.register().await {
                    Ok(r) => {
                        registered = true;
                        reg_backoff.reset();
                        tracing::info!(node = r.node_id, name = %r.node_name, "registered");
                        if let Err(e) = self.ledger.continue_after(r.last_usage_seq) {
                            tracing::error!("usage ledger: {e}");
                        }
                    }
                    Err(e) => {
                        next_reg = now + reg_backoff.fail();
                        tracing::warn!("register: {e}");
                    }
                }
            }
            // After registering: the intervals come with the answer.
            let iv = self.client.intervals().await;
            let secs = |f: fn(&mrjbot_node_proto::Intervals) -> u64| {
                Duration::from_secs(iv.as_ref().map(f).unwrap_or(DEFAULT_SECS).max(1))
            };
            if now >= next_check {
                self.supervise().await;
                next_check = Instant::now() + Duration::from_secs(1);
            }
            // Independent of the control plane: a crash loses at most one period.
            if now >= next_sample {
                self.sample_usage().await;
                next_sample = Instant::now() + sample_every;
            }
            if registered && now >= next_desired {
                match self.poll_desired().await {
                    Ok(()) => {
                        desired_backoff.reset();
                        next_desired = Instant::now() + secs(|i| i.desired_secs);
                    }
                    Err(e) => {
                        tracing::warn!("desired state: {e}");
                        // Level-triggered: a failed apply is retried with the next poll.
                        self.apply_wanted().await;
                        next_desired =
                            Instant::now() + desired_backoff.fail().min(secs(|i| i.desired_secs));
                    }
                }
            }
            if registered && now >= next_usage {
                match self.report_usage().await {
                    Ok(more) => {
                        usage_backoff.reset();
                        next_usage = if more {
                            Instant::now()
                        } else {
                            Instant::now() + secs(|i| i.usage_secs)
                        };
                    }
                    Err(e) => {
                        tracing::warn!("usage report: {e}");
                        next_usage =
                            Instant::now() + usage_backoff.fail().min(secs(|i| i.usage_secs));
                    }
                }
            }
        }
        hb.abort();
        self.shutdown().await;
        Ok(())
    }
}

async fn heartbeat_loop(client: Client, status: Arc<Mutex<Status>>, tx: mpsc::Sender<()>) {
    let mut sampler = Sampler::new();
    let mut latency: Option<u64> = None;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    loop {
        let Some(iv) = client.intervals().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let st = match status.lock() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        let m = sampler.sample();
        let hb = Heartbeat {
            cpu_percent: m.cpu_percent,
            mem_percent: m.mem_percent,
            rx_bps: m.rx_bps,
            tx_bps: m.tx_bps,
            connections: established_on(&st.ports),
            latency_ms: latency,
            core_status: st.core_status,
            core_version: st.core_version.clone(),
            core_restarts: st.core_restarts,
            applied_etag: st.applied_etag.clone(),
            last_error: st.last_error.clone(),
        };
        let t0 = Instant::now();
        let wait = match client.heartbeat(&hb).await {
            Ok(ack) => {
                latency = Some(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX));
                backoff.reset();
                if st.applied_etag.as_deref() != Some(ack.desired_etag.as_str()) {
                    let _ = tx.try_send(());
                }
                Duration::from_secs(iv.heartbeat_secs.max(1))
            }
            Err(e) => {
                tracing::warn!("heartbeat: {e}");
                backoff
                    .fail()
                    .min(Duration::from_secs(iv.heartbeat_secs.max(1)))
            }
        };
        tokio::time::sleep(wait).await;
    }
}
