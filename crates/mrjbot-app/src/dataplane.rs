//! The control plane's side of its own node agents (`mrjbot-node`), and usage ingestion
//! for every data plane.
//!
//! * **Auth**: an agent trades its node secret (only its SHA-256 is stored) for a
//!   short-lived bearer token signed with a key derived from the app's signing key, so a
//!   node token can never pass as a user token. The token carries a fingerprint of the
//!   secret: rotating the secret ends every token at once.
//! * **Desired state** is read from the in-memory subscription index (the same facts the
//!   subscription documents are built from, so a customer's links and the node agree),
//!   cached per node until the index changes or a user's expiry passes, and identified by
//!   an ETag so an unchanged poll costs a hash lookup.
//! * **Usage**: report `(node, seq)` is recorded in the same transaction as the bytes it
//!   carries, so a re-sent report counts once. Totals that reach a data cap turn the
//!   subscription `limited` in that transaction; the next desired state leaves it out.
//! * **Health**: heartbeats keep a node `online` (or `degraded` past the thresholds); the
//!   sweeper marks a node `down` when they stop.

use crate::App;
use crate::error::{AppError, AppResult};
use crate::feed::{Changed, NodeView};
use crate::token::{self, Claims, TokenError};
use mrjbot_db::nodes::{self as repo, AgentRow, HealthRow};
use mrjbot_db::usage::{self as usage_repo, Applied, SubUsage};
use mrjbot_domain::proxy::Credentials;
use mrjbot_domain::{ErrorCode, Timestamp};
use mrjbot_node_proto as proto;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Intervals handed to agents.
pub const INTERVALS: proto::Intervals = proto::Intervals {
    heartbeat_secs: 10,
    desired_secs: 5,
    usage_secs: 10,
};
/// A node is `down` after this long without a heartbeat (three missed beats).
pub const SILENT_AFTER_MS: i64 = 30_000;
/// Heartbeats above these mark a node `degraded`.
const DEGRADED_CPU: f32 = 90.0;
const DEGRADED_MEM: f32 = 95.0;

/// The core's user name (and counter name) of a subscription on our own nodes.
pub fn email_of(sub_id: i64) -> String {
    format!("sub{sub_id}")
}

/// The subscription an own-node user name stands for.
pub fn sub_of_email(email: &str) -> Option<i64> {
    let n = email.strip_prefix("sub")?;
    if n.is_empty() || n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0')
    {
        return None;
    }
    n.parse().ok()
}

/// An authenticated agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentNode {
    /// Its node.
    pub node_id: i64,
}

/// The desired state of a node and, per user, what panels also enforce.
pub struct NodeDesired {
    /// Identifies this state (also the HTTP ETag, quoted).
    pub etag: String,
    /// What agents get.
    pub state: proto::DesiredState,
    /// One per `state.users`, same order.
    pub accounts: Vec<DesiredAccount>,
}

/// Limits of one desired user (panels enforce them too, so a panel keeps to the plan
/// while the control plane is away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAccount {
    /// The subscription.
    pub subscription_id: i64,
    /// Expiry (epoch ms); none while on hold or unlimited.
    pub expires_at: Option<i64>,
    /// Days the clock runs once an on-hold subscription is first used (0 otherwise).
    pub hold_days: i64,
    /// Data cap in bytes.
    pub data_limit_bytes: Option<i64>,
    /// Bytes used so far.
    pub used_bytes: i64,
    /// The owner's name (a readable label for panels).
    pub username: String,
}

struct Cached {
    changes: u64,
    valid_until: i64,
    desired: Arc<NodeDesired>,
}

/// Desired states already built, per node.
#[derive(Default)]
pub(crate) struct DesiredCache(Mutex<HashMap<i64, Cached>>);

fn fingerprint(secret_hash: &str) -> i64 {
    let d = Sha256::digest(secret_hash.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_le_bytes(b) & i64::MAX
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn unauthenticated(msg: &str) -> AppError {
    AppError::new(ErrorCode::Unauthenticated, msg)
}

impl App {
    fn node_token_key(&self) -> Vec<u8> {
        Sha256::new()
            .chain_update(b"mrjbot-node-token:")
            .chain_update(&self.inner.jwt_key)
            .finalize()
            .to_vec()
    }

    async fn node_by_secret(&self, secret: &str) -> AppResult<mrjbot_db::nodes::NodeRow> {
        if secret.is_empty() || secret.len() > 256 {
            return Err(unauthenticated("unknown node secret"));
        }
        let mut c = self.db().read().await?;
        repo::by_secret_hash(c.conn(), &sha256_hex(secret))
            .await?
            .ok_or_else(|| unauthenticated("unknown node secret"))
    }

    fn node_token(&self, node_id: i64, secret_hash: &str) -> (String, u64) {
        let now = self.now().millis() / 1000;
        let ttl = proto::TOKEN_TTL_SECS;
        let claims = Claims {
            sub: node_id,
            sid: fingerprint(secret_hash),
            iat: now,
            exp: now + i64::try_from(ttl).unwrap_or(900),
        };
        (token::sign(&self.node_token_key(), &claims), ttl)
    }

    /// `POST /node-api/v1/register`: the agent's secret buys a token; what it told about
    /// itself is recorded.
    pub async fn agent_register(
        &self,
        req: &proto::RegisterRequest,
    ) -> AppResult<proto::RegisterResponse> {
        let node = self.node_by_secret(&req.secret).await?;
        let hash = node.secret_hash.clone().unwrap_or_default();
        let now = self.now().millis();
        let clip = |s: &Option<String>, n: usize| {
            s.as_ref().map(|v| v.chars().take(n).collect::<String>())
        };
        let row = AgentRow {
            node_id: node.id,
            core_kind: req.core.as_str().to_owned(),
            core_version: clip(&req.core_version, 200),
            agent_version: req.agent_version.chars().take(64).collect(),
            hostname: clip(&req.hostname, 255),
            applied_etag: None,
            last_error: None,
            core_restarts: 0,
            registered_at: now,
            updated_at: now,
        };
        let mut tx = self.db().begin().await?;
        repo::upsert_agent(tx.conn(), &row).await?;
        let last = usage_repo::last_seq(tx.conn(), node.id).await?;
        tx.commit().await?;
        tracing::info!(node = node.id, core = req.core.as_str(), agent = %row.agent_version, "node agent registered");
        let (token, ttl) = self.node_token(node.id, &hash);
        Ok(proto::RegisterResponse {
            node_id: node.id,
            node_name: node.name,
            token,
            expires_in_secs: ttl,
            intervals: INTERVALS,
            last_usage_seq: last.and_then(|s| u64::try_from(s).ok()),
        })
    }

    /// `POST /node-api/v1/token`: a fresh token for the same secret.
    pub async fn agent_token(&self, secret: &str) -> AppResult<proto::TokenResponse> {
        let node = self.node_by_secret(secret).await?;
        let (token, ttl) = self.node_token(node.id, node.secret_hash.as_deref().unwrap_or(""));
        Ok(proto::TokenResponse {
            token,
            expires_in_secs: ttl,
        })
    }

    /// Checks an agent's bearer token: signed by us, not expired, and issued for the
    /// node's current secret.
    pub async fn agent_authenticate(&self, bearer: &str) -> AppResult<AgentNode> {
        let now = self.now().millis() / 1000;
        let claims = token::verify(&self.node_token_key(), bearer, now).map_err(|e| match e {
            TokenError::Expired => unauthenticated("node token expired; register again"),
            TokenError::Invalid => unauthenticated("invalid node token"),
        })?;
        let node = {
            let mut c = self.db().read().await?;
            repo::get(c.conn(), claims.sub).await?
        };
        match node {
            Some(n)
                if n.kind == "agent"
                    && n.secret_hash.as_deref().map(fingerprint) == Some(claims.sid) =>
            {
                Ok(AgentNode { node_id: n.id })
            }
            _ => Err(unauthenticated(
                "the node's secret changed or the node is gone",
            )),
        }
    }

    /// `POST /node-api/v1/heartbeat`.
    pub async fn agent_heartbeat(
        &self,
        node: AgentNode,
        hb: &proto::Heartbeat,
    ) -> AppResult<proto::HeartbeatAck> {
        let now = self.now().millis();
        let pct = |v: Option<f32>| {
            v.filter(|x| x.is_finite())
                .map(|x| f64::from(x.clamp(0.0, 100.0)))
        };
        let int = |v: Option<u64>| v.map(|x| i64::try_from(x).unwrap_or(i64::MAX));
        let sample = HealthRow {
            node_id: node.node_id,
            at: now,
            cpu_percent: pct(hb.cpu_percent),
            mem_percent: pct(hb.mem_percent),
            rx_bps: int(hb.rx_bps),
            tx_bps: int(hb.tx_bps),
            latency_ms: int(hb.latency_ms),
            connections: int(hb.connections),
            core_status: hb.core_status.as_str().to_owned(),
        };
        let degraded = hb.core_status != proto::CoreStatus::Running
            || hb.cpu_percent.is_some_and(|c| c >= DEGRADED_CPU)
            || hb.mem_percent.is_some_and(|m| m >= DEGRADED_MEM);
        let status = if degraded { "degraded" } else { "online" };
        let clip = |s: &Option<String>, n: usize| {
            s.as_ref().map(|v| v.chars().take(n).collect::<String>())
        };
        let mut tx = self.db().begin().await?;
        let before = repo::heartbeat(
            tx.conn(),
            &sample,
            status,
            clip(&hb.core_version, 200).as_deref(),
            clip(&hb.applied_etag, 128).as_deref(),
            clip(&hb.last_error, 2000).as_deref(),
            i64::try_from(hb.core_restarts).unwrap_or(i64::MAX),
        )
        .await?;
        let changed = before.as_deref() != Some(status);
        if changed {
            self.commit_changed(tx, Changed::Topology).await?;
            tracing::info!(node = node.node_id, from = ?before, to = status, "node status changed");
        } else {
            tx.commit().await?;
        }
        let desired = self.node_desired(node.node_id);
        Ok(proto::HeartbeatAck {
            desired_etag: desired.etag.clone(),
        })
    }

    /// The desired state of a node now (built once per change; see the module docs).
    pub fn node_desired(&self, node_id: i64) -> Arc<NodeDesired> {
        let now = self.now();
        let changes = self.feed_changes();
        if let Ok(cache) = self.inner.desired.0.lock()
            && let Some(c) = cache.get(&node_id)
            && c.changes == changes
            && now.millis() < c.valid_until
        {
            return c.desired.clone();
        }
        let view = self.node_view(node_id, now);
        let (changes, valid_until) = (view.changes, view.valid_until);
        let desired = Arc::new(build_desired(node_id, view));
        if let Ok(mut cache) = self.inner.desired.0.lock() {
            cache.insert(
                node_id,
                Cached {
                    changes,
                    valid_until,
                    desired: desired.clone(),
                },
            );
        }
        desired
    }

    /// `POST /node-api/v1/usage`: counts a report once, whatever number of times it
    /// arrives.
    pub async fn agent_usage(
        &self,
        node: AgentNode,
        report: &proto::UsageReport,
    ) -> AppResult<proto::UsageAck> {
        if report.entries.len() > proto::MAX_USAGE_ENTRIES {
            return Err(AppError::field(
                "entries",
                format!("at most {} entries per report", proto::MAX_USAGE_ENTRIES),
            ));
        }
        let seq =
            i64::try_from(report.seq).map_err(|_| AppError::field("seq", "must be below 2^63"))?;
        let mut merged: BTreeMap<i64, SubUsage> = BTreeMap::new();
        for e in &report.entries {
            let Some(id) = sub_of_email(&e.email) else {
                continue;
            };
            let (Ok(up), Ok(down)) = (i64::try_from(e.up), i64::try_from(e.down)) else {
                return Err(AppError::field("entries", "byte counts must be below 2^63"));
            };
            let m = merged.entry(id).or_insert(SubUsage {
                subscription_id: id,
                up: 0,
                down: 0,
            });
            m.up = m.up.saturating_add(up);
            m.down = m.down.saturating_add(down);
        }
        let entries: Vec<SubUsage> = merged.into_values().collect();
        // One report at a time per process: a big report holds the single SQLite writer
        // for a while; queued here, the others wait without starving the rest of the app.
        let _one = self.inner.usage_lock.lock().await;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        if !usage_repo::record_report(tx.conn(), node.node_id, seq, &entries, now).await? {
            drop(tx);
            return Ok(proto::UsageAck {
                seq: report.seq,
                duplicate: true,
                counted: 0,
            });
        }
        let started = std::time::Instant::now();
        let applied = usage_repo::apply(tx.conn(), node.node_id, &entries, now).await?;
        let counted = applied.counted;
        let applied_in = started.elapsed();
        self.usage_commit(tx, applied).await?;
        tracing::debug!(node = node.node_id, seq, counted, ?applied_in, total = ?started.elapsed(), "usage report counted");
        Ok(proto::UsageAck {
            seq: report.seq,
            duplicate: false,
            counted,
        })
    }

    /// Commits a transaction that applied usage (agents and panels alike) and brings the
    /// read path up to date: status changes are announced to every replica; the new
    /// totals are reloaded here in bulk.
    pub(crate) async fn usage_commit(
        &self,
        mut tx: mrjbot_db::Tx,
        applied: Applied,
    ) -> AppResult<()> {
        let mut status_changed: Vec<i64> = applied.limited.clone();
        status_changed.extend(&applied.started);
        for id in &status_changed {
            mrjbot_db::feed::announce(tx.conn(), &Changed::Sub(*id).payload()).await?;
        }
        tx.commit().await?;
        if !applied.limited.is_empty() {
            tracing::info!(subscriptions = ?applied.limited, "data cap reached; removed from the nodes");
        }
        let adds: Vec<(i64, i64)> = applied
            .touched
            .iter()
            .copied()
            .zip(applied.added.iter().copied())
            .collect();
        self.feed_usage(&adds, false);
        for id in status_changed {
            self.feed_changed(Changed::Sub(id)).await;
        }
        Ok(())
    }

    /// Marks nodes whose agents went silent `down`; returns how many.
    pub async fn sweep_silent_nodes(&self) -> AppResult<usize> {
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let down = repo::mark_silent_down(tx.conn(), now - SILENT_AFTER_MS, now).await?;
        // Samples are kept for a week.
        repo::prune_health(tx.conn(), now - 7 * 86_400_000).await?;
        if down.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        tracing::warn!(nodes = ?down, "node agents stopped heartbeating; marked down");
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(down.len())
    }
}

fn build_desired(node_id: i64, view: NodeView) -> NodeDesired {
    let ss_methods: Vec<&str> = {
        let mut m: Vec<&str> = view
            .inbounds
            .iter()
            .filter_map(|i| i.ss_method.as_deref())
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    let inbounds: Vec<proto::InboundSpec> = view
        .inbounds
        .iter()
        .map(|i| proto::InboundSpec {
            tag: i.tag.clone(),
            protocol: i.protocol.as_str().to_owned(),
            port: i.port,
            network: i.network.as_str().to_owned(),
            security: i.security.as_str().to_owned(),
            settings: i.raw.clone(),
        })
        .collect();
    let mut users = Vec::with_capacity(view.users.len());
    let mut accounts = Vec::with_capacity(view.users.len());
    for u in view.users {
        let creds = Credentials {
            uuid: u.uuid,
            secret: u.secret,
        };
        let ss_keys = ss_methods
            .iter()
            .map(|m| ((*m).to_owned(), creds.shadowsocks_key(m)))
            .collect();
        users.push(proto::UserSpec {
            email: email_of(u.sub_id),
            uuid: creds.uuid,
            password: creds.secret,
            ss_keys,
        });
        let on_hold = u.status == mrjbot_domain::SubscriptionStatus::OnHold;
        accounts.push(DesiredAccount {
            subscription_id: u.sub_id,
            expires_at: if on_hold { None } else { u.expires_at },
            hold_days: if on_hold { u.hold_days } else { 0 },
            data_limit_bytes: u.data_limit_bytes,
            used_bytes: u.used_bytes,
            username: u.username,
        });
    }
    let mut h = Sha256::new();
    h.update(node_id.to_le_bytes());
    h.update(serde_json::to_vec(&inbounds).unwrap_or_default());
    h.update(serde_json::to_vec(&users).unwrap_or_default());
    let etag = hex::encode(&h.finalize()[..16]);
    NodeDesired {
        etag: etag.clone(),
        state: proto::DesiredState {
            etag,
            node_id,
            inbounds,
            users,
        },
        accounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_round_trip_and_refuse_lookalikes() {
        assert_eq!(sub_of_email(&email_of(42)), Some(42));
        for bad in [
            "sub",
            "sub042",
            "sub-1",
            "sub1x",
            "Sub1",
            "s1",
            "sub99999999999999999999",
        ] {
            assert_eq!(sub_of_email(bad), None, "{bad}");
        }
    }
}

/// How a node is doing, for the dashboard: its status, what its agent or panel last said,
/// and whether it runs the current desired state.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NodeHealth {
    /// The node.
    pub node: crate::nodes::NodeView,
    /// Customers the node should let in now.
    pub desired_users: usize,
    /// The current desired state's ETag.
    pub desired_etag: String,
    /// The agent runs the current desired state (agent nodes; `None` before the first
    /// heartbeat that said which one it runs).
    pub in_sync: Option<bool>,
    /// What the agent told about itself (agent nodes that registered).
    pub agent: Option<AgentInfo>,
    /// The latest health sample.
    pub last_sample: Option<HealthSample>,
    /// The panel's side (panel nodes that were synced).
    pub panel: Option<PanelInfo>,
}

/// An agent's registration and latest report.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AgentInfo {
    /// `xray`, `v2ray` or `sing-box`.
    pub core_kind: String,
    /// The core's version.
    pub core_version: Option<String>,
    /// `mrjbot-node` version.
    pub agent_version: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Desired state the core runs.
    pub applied_etag: Option<String>,
    /// Last error applying the state or running the core.
    pub last_error: Option<String>,
    /// Core restarts since the agent started.
    pub core_restarts: i64,
    /// Last registration.
    pub registered_at: Timestamp,
}

/// One heartbeat's figures.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HealthSample {
    /// When.
    pub at: Timestamp,
    /// CPU use, percent.
    pub cpu_percent: Option<f64>,
    /// Memory use, percent.
    pub mem_percent: Option<f64>,
    /// Received bytes per second.
    pub rx_bps: Option<i64>,
    /// Sent bytes per second.
    pub tx_bps: Option<i64>,
    /// Heartbeat round trip, ms.
    pub latency_ms: Option<i64>,
    /// Open client connections.
    pub connections: Option<i64>,
    /// `running`, `stopped`, `error` or `unknown`.
    pub core_status: String,
}

/// A panel node's last sync.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PanelInfo {
    /// API generation detected.
    pub api_version: Option<String>,
    /// Last successful sync.
    pub last_sync_at: Option<Timestamp>,
    /// Last error.
    pub last_error: Option<String>,
    /// Failed syncs in a row.
    pub failures: i64,
}

impl App {
    /// `GET /api/v1/nodes/{id}/health` (needs `nodes.read`).
    pub async fn node_health(&self, actor: &crate::actor::Actor, id: i64) -> AppResult<NodeHealth> {
        let node = self.get_node(actor, id).await?;
        let mut c = self.db().read().await?;
        let agent = repo::agent(c.conn(), id).await?;
        let sample = repo::recent_health(c.conn(), id, 1)
            .await?
            .into_iter()
            .next();
        let panel = mrjbot_db::panels::state(c.conn(), id).await?;
        drop(c);
        let desired = self.node_desired(id);
        Ok(NodeHealth {
            desired_users: desired.state.users.len(),
            in_sync: agent
                .as_ref()
                .and_then(|a| a.applied_etag.as_ref())
                .map(|e| *e == desired.etag),
            desired_etag: desired.etag.clone(),
            node,
            agent: agent.map(|a| AgentInfo {
                core_kind: a.core_kind,
                core_version: a.core_version,
                agent_version: a.agent_version,
                hostname: a.hostname,
                applied_etag: a.applied_etag,
                last_error: a.last_error,
                core_restarts: a.core_restarts,
                registered_at: Timestamp::from_millis(a.registered_at),
            }),
            last_sample: sample.map(|h| HealthSample {
                at: Timestamp::from_millis(h.at),
                cpu_percent: h.cpu_percent,
                mem_percent: h.mem_percent,
                rx_bps: h.rx_bps,
                tx_bps: h.tx_bps,
                latency_ms: h.latency_ms,
                connections: h.connections,
                core_status: h.core_status,
            }),
            panel: panel.map(|p| PanelInfo {
                api_version: p.api_version,
                last_sync_at: p.last_sync_at.map(Timestamp::from_millis),
                last_error: p.last_error,
                failures: p.failures,
            }),
        })
    }
}
