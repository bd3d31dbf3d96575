//! The control plane <-> node agent protocol: JSON over HTTP(S), one request per call.
//!
//! The agent (`mrjbot-node`) calls the control plane; the control plane never calls the
//! agent, so nodes behind NAT or a firewall work and a control plane that is down only
//! delays things.
//!
//! 1. [`REGISTER`]: the node's secret (shown once when the node was created) buys a
//!    short-lived bearer token ([`RegisterResponse::token`], [`TOKEN_TTL_SECS`]) and the
//!    intervals to use. [`TOKEN`] renews it with the same secret. Every other call sends
//!    `Authorization: Bearer <token>`; a 401 means "register again".
//! 2. [`HEARTBEAT`] every [`Intervals::heartbeat_secs`]: machine and core health. A node
//!    that stops heartbeating is marked `down` by the control plane.
//! 3. [`DESIRED`] every [`Intervals::desired_secs`] with `If-None-Match: <etag>`: `304`
//!    while nothing changed, else the full [`DesiredState`] (inbounds and the users that
//!    may use them). The agent makes the core match it.
//! 4. [`USAGE`] every [`Intervals::usage_secs`]: per-user byte deltas since the previous
//!    accepted report, numbered by [`UsageReport::seq`]. The control plane records each
//!    `(node, seq)` once: a report sent twice (the answer was lost) is acknowledged as a
//!    [`UsageAck::duplicate`] and counted once. The agent keeps an unacknowledged report
//!    on disk and re-sends it until it is acknowledged, so nothing is lost either.
//!
//! Errors use the control plane's API error body ([`ErrorBody`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST`: [`RegisterRequest`] -> [`RegisterResponse`].
pub const REGISTER: &str = "/node-api/v1/register";
/// `POST`: [`TokenRequest`] -> [`TokenResponse`].
pub const TOKEN: &str = "/node-api/v1/token";
/// `POST`: [`Heartbeat`] -> [`HeartbeatAck`].
pub const HEARTBEAT: &str = "/node-api/v1/heartbeat";
/// `GET` (`If-None-Match`): -> [`DesiredState`] with an `ETag`, or `304 Not Modified`.
pub const DESIRED: &str = "/node-api/v1/desired";
/// `POST`: [`UsageReport`] -> [`UsageAck`].
pub const USAGE: &str = "/node-api/v1/usage";

/// Lifetime of a node token.
pub const TOKEN_TTL_SECS: u64 = 900;
/// The most entries one usage report may carry; the agent splits larger ones.
pub const MAX_USAGE_ENTRIES: usize = 20_000;

/// Which VPN core the agent drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CoreKind {
    /// Xray-core: gRPC API under `xray.*`.
    #[serde(rename = "xray")]
    Xray,
    /// V2Ray 4.x / 5.x: the same API under `v2ray.core.*`.
    #[serde(rename = "v2ray")]
    V2ray,
    /// sing-box: users change by config rewrite and reload.
    #[serde(rename = "sing-box")]
    SingBox,
}

impl CoreKind {
    /// The name used on the wire and in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            CoreKind::Xray => "xray",
            CoreKind::V2ray => "v2ray",
            CoreKind::SingBox => "sing-box",
        }
    }
}

/// State of the core process as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreStatus {
    /// Running and answering its API.
    Running,
    /// Not running (starting, or restarting after a crash).
    Stopped,
    /// Fails to start or to take its configuration.
    Error,
    /// Not known yet.
    Unknown,
}

impl CoreStatus {
    /// The name stored by the control plane.
    pub fn as_str(self) -> &'static str {
        match self {
            CoreStatus::Running => "running",
            CoreStatus::Stopped => "stopped",
            CoreStatus::Error => "error",
            CoreStatus::Unknown => "unknown",
        }
    }
}

/// `POST` [`REGISTER`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The node's secret.
    pub secret: String,
    /// Version of `mrjbot-node`.
    pub agent_version: String,
    /// The core it drives.
    pub core: CoreKind,
    /// The core's own version string (first line of `version`), when known.
    #[serde(default)]
    pub core_version: Option<String>,
    /// Host name of the machine.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// How often the agent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    /// Between heartbeats.
    pub heartbeat_secs: u64,
    /// Between desired-state polls.
    pub desired_secs: u64,
    /// Between usage reports.
    pub usage_secs: u64,
}

/// Answer to [`REGISTER`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The node this secret belongs to.
    pub node_id: i64,
    /// Its name.
    pub node_name: String,
    /// Bearer token for the other calls.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in_secs: u64,
    /// Call intervals.
    pub intervals: Intervals,
    /// The highest usage report sequence number recorded for this node, if any. An agent
    /// whose local state was lost continues above it instead of having its reports
    /// taken for duplicates.
    #[serde(default)]
    pub last_usage_seq: Option<u64>,
}

/// `POST` [`TOKEN`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// The node's secret.
    pub secret: String,
}

/// Answer to [`TOKEN`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Bearer token.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in_secs: u64,
}

/// `POST` [`HEARTBEAT`]: a health sample. Values the agent cannot measure are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Whole-machine CPU use, percent (0-100).
    #[serde(default)]
    pub cpu_percent: Option<f32>,
    /// Memory in use, percent (0-100).
    #[serde(default)]
    pub mem_percent: Option<f32>,
    /// Bytes per second received on the machine's interfaces.
    #[serde(default)]
    pub rx_bps: Option<u64>,
    /// Bytes per second sent.
    #[serde(default)]
    pub tx_bps: Option<u64>,
    /// Open client connections on the core's inbound ports.
    #[serde(default)]
    pub connections: Option<u64>,
    /// Round trip of the previous heartbeat, milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// The core process.
    pub core_status: CoreStatus,
    /// The core's version string.
    #[serde(default)]
    pub core_version: Option<String>,
    /// Times the agent restarted the core since the agent started.
    #[serde(default)]
    pub core_restarts: u64,
    /// The ETag of the desired state the core runs now.
    #[serde(default)]
    pub applied_etag: Option<String>,
    /// The last error applying the desired state or running the core, if any.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Answer to [`HEARTBEAT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The ETag of the current desired state: when it differs from what the agent
    /// applied, it should fetch [`DESIRED`] now instead of at its next poll.
    pub desired_etag: String,
}

/// One protocol endpoint the core must serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundSpec {
    /// Unique on the node; names the core's inbound (and its counters).
    pub tag: String,
    /// `vless`, `vmess`, `trojan`, `shadowsocks` or `hysteria2`.
    pub protocol: String,
    /// Listening port.
    pub port: u16,
    /// Transport: `tcp`, `ws`, `grpc`, `httpupgrade`, `xhttp`, `h2`, `kcp`, `quic`.
    pub network: String,
    /// `none`, `tls` or `reality`.
    pub security: String,
    /// Protocol and transport settings, as the control plane stores them (`sni`, `path`,
    /// `host`, `service_name`, `flow`, `method`, `server_key`, `alpn`, REALITY
    /// `private_key` / `short_id`, ...). Certificate files are the agent's own config.
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// One customer (subscription) allowed on every inbound of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    /// The core's user key and counter name (`user>>>EMAIL>>>traffic>>>...`). Opaque to the
    /// agent; usage reports name users by it.
    pub email: String,
    /// VLESS / VMess id.
    pub uuid: String,
    /// Trojan / Hysteria 2 password.
    pub password: String,
    /// Shadowsocks per-user key by method (only for methods the node's inbounds use).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ss_keys: BTreeMap<String, String>,
}

/// What the node must serve, in full. Identified by [`DesiredState::etag`] (also sent as
/// the HTTP `ETag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredState {
    /// Changes whenever anything below changes.
    pub etag: String,
    /// The node.
    pub node_id: i64,
    /// Enabled inbounds.
    pub inbounds: Vec<InboundSpec>,
    /// Users allowed now, sorted by email.
    pub users: Vec<UserSpec>,
}

/// Bytes one user moved since the previous accepted report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEntry {
    /// [`UserSpec::email`].
    pub email: String,
    /// Client to server.
    pub up: u64,
    /// Server to client.
    pub down: u64,
}

/// `POST` [`USAGE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Grows by one per accepted report of this node; a re-sent report keeps its number.
    pub seq: u64,
    /// When the counters were read (epoch milliseconds).
    pub collected_at_ms: i64,
    /// Users with traffic (at most [`MAX_USAGE_ENTRIES`]).
    pub entries: Vec<UsageEntry>,
}

/// Answer to [`USAGE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageAck {
    /// The report's number.
    pub seq: u64,
    /// True when this number was recorded before: nothing was counted this time.
    pub duplicate: bool,
    /// Entries counted (users the control plane no longer knows are skipped).
    pub counted: usize,
}

/// The control plane's error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable code (`unauthorized`, `validation`, ...).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_kinds_use_their_config_names() {
        for k in [CoreKind::Xray, CoreKind::V2ray, CoreKind::SingBox] {
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let hb: Heartbeat =
            serde_json::from_str(r#"{"core_status":"running"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hb.core_status, CoreStatus::Running);
        assert_eq!(hb.cpu_percent, None);
        let u: UserSpec = serde_json::from_str(r#"{"email":"s1","uuid":"u","password":"p"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(u.ss_keys.is_empty());
        assert!(
            !serde_json::to_string(&u)
                .unwrap_or_default()
                .contains("ss_keys")
        );
    }
}
