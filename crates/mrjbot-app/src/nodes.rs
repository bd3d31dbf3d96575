//! Nodes (VPN servers: our own agent, a 3x-UI panel or a Marzban panel) and their
//! inbounds (protocol endpoints).
//!
//! An agent node gets a random secret at creation, shown once; only its SHA-256 is kept.
//! Panel credentials are needed to drive the panel and are kept as given, never shown.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::util::{clean, max_len};
use crate::{App, ListParams};
use mrjbot_db::nodes::{self as repo, InboundRow, NodeFilter, NodeRow};
use mrjbot_domain::{ErrorCode, InboundSettings, IpType, Permission, SecretToken, Timestamp};
pub use mrjbot_domain::{Network, Protocol, Security};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a node is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Our `mrjbot-node` agent beside an Xray / sing-box / v2ray core.
    Agent,
    /// A 3x-UI panel.
    Xui,
    /// A Marzban (or PasarGuard) panel.
    Marzban,
}

impl NodeKind {
    fn as_str(self) -> &'static str {
        match self {
            NodeKind::Agent => "agent",
            NodeKind::Xui => "xui",
            NodeKind::Marzban => "marzban",
        }
    }

    fn parse(s: &str) -> NodeKind {
        match s {
            "xui" => NodeKind::Xui,
            "marzban" => NodeKind::Marzban,
            _ => NodeKind::Agent,
        }
    }
}

/// A node as shown by the API (no secrets).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// How it is driven.
    pub kind: NodeKind,
    /// Public host name or IP customers connect to.
    pub address: String,
    /// Location / region tier.
    pub region: Option<String>,
    /// Constant or dynamic IP pool.
    pub ip_type: IpType,
    /// Panel URL (panel nodes).
    pub api_url: Option<String>,
    /// Panel user (panel nodes).
    pub api_username: Option<String>,
    /// `unknown`, `online`, `degraded` or `down`.
    pub status: String,
    /// Serves customers.
    pub is_enabled: bool,
    /// Most customers it should carry.
    pub capacity: Option<i64>,
    /// Last heartbeat of its agent.
    pub last_heartbeat_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl From<NodeRow> for NodeView {
    fn from(n: NodeRow) -> Self {
        Self {
            id: n.id,
            name: n.name,
            kind: NodeKind::parse(&n.kind),
            address: n.address,
            region: n.region,
            ip_type: IpType::parse(&n.ip_type).unwrap_or(IpType::Dynamic),
            api_url: n.api_url,
            api_username: n.api_username,
            status: n.status,
            is_enabled: n.is_enabled,
            capacity: n.capacity,
            last_heartbeat_at: n.last_heartbeat_at.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(n.created_at),
            updated_at: Timestamp::from_millis(n.updated_at),
        }
    }
}

/// A created node; `secret` is shown only here.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeCreated {
    /// The node.
    #[serde(flatten)]
    pub node: NodeView,
    /// The agent's secret (agent nodes): put it in the agent's config. Never shown again.
    pub secret: Option<String>,
}

/// Input for a new node.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    /// Unique name (1-64 characters).
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// How it is driven.
    pub kind: NodeKind,
    /// Host name or IP customers connect to.
    #[schema(pattern = r"^[A-Za-z0-9.:\[\]-]{1,253}$")]
    pub address: String,
    /// Location / region tier.
    #[schema(max_length = 64)]
    pub region: Option<String>,
    /// Constant or dynamic (default dynamic).
    pub ip_type: Option<IpType>,
    /// Panel URL (required for panels).
    #[schema(pattern = "^https?://", max_length = 500)]
    pub api_url: Option<String>,
    /// Panel user (required for panels).
    pub api_username: Option<String>,
    /// Panel password (required for panels).
    pub api_password: Option<String>,
    /// 3x-UI v3 API token (3x-UI panels; sent as a Bearer token instead of a session
    /// when set). Never shown again.
    #[schema(max_length = 500)]
    pub api_token: Option<String>,
    /// Most customers (1-1000000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub capacity: Option<i64>,
    /// Serves customers (default true).
    pub is_enabled: Option<bool>,
}

/// Changes to a node; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePatch {
    /// New name.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// New address.
    #[schema(pattern = r"^[A-Za-z0-9.:\[\]-]{1,253}$")]
    pub address: Option<String>,
    /// New region (empty clears).
    #[schema(max_length = 64)]
    pub region: Option<String>,
    /// New IP type.
    pub ip_type: Option<IpType>,
    /// New panel URL.
    #[schema(max_length = 500)]
    pub api_url: Option<String>,
    /// New panel user.
    pub api_username: Option<String>,
    /// New panel password.
    pub api_password: Option<String>,
    /// New 3x-UI v3 API token (3x-UI panels; empty clears).
    #[schema(max_length = 500)]
    pub api_token: Option<String>,
    /// New capacity (0 clears).
    #[schema(minimum = 0, maximum = 1000000)]
    pub capacity: Option<i64>,
    /// Serves customers.
    pub is_enabled: Option<bool>,
}

/// Query for listing nodes.
#[derive(Debug, Clone, Default)]
pub struct NodeQuery {
    /// Substring of name or address.
    pub q: Option<String>,
    /// Kind.
    pub kind: Option<NodeKind>,
    /// Status.
    pub status: Option<String>,
    /// Region.
    pub region: Option<String>,
}

/// An inbound as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboundView {
    /// Id.
    pub id: i64,
    /// Node.
    pub node_id: i64,
    /// Tag, unique on the node.
    pub tag: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Listening port.
    pub port: i64,
    /// Transport.
    pub network: Network,
    /// Security.
    pub security: Security,
    /// Protocol and transport settings (sni, host, path, pbk, sid, fp, flow, ...).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Serves customers.
    pub is_enabled: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Input for a new inbound (and the full replacement on update).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundInput {
    /// Tag: 1-64 of `A-Z a-z 0-9 _ . -`.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub tag: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Port (1-65535).
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    /// Transport (default tcp).
    pub network: Option<Network>,
    /// Security (default none).
    pub security: Option<Security>,
    /// Settings object (at most 16 KB).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// Serves customers (default true).
    pub is_enabled: Option<bool>,
}

fn not_found() -> AppError {
    AppError::not_found(ErrorCode::NodeNotFound, "node")
}

fn inbound_not_found() -> AppError {
    AppError::not_found(ErrorCode::InboundNotFound, "inbound")
}

/// A 3x-UI API token from input: `None` when not given, `Some(None)` to clear (empty).
/// Only 3x-UI panels have one.
fn api_token(row: &NodeRow, input: Option<String>) -> AppResult<Option<Option<String>>> {
    let Some(t) = input else { return Ok(None) };
    let t = t.trim().to_owned();
    if row.kind != "xui" {
        return Err(AppError::field(
            "api_token",
            "only 3x-UI panels take an API token",
        ));
    }
    if t.len() > 500 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::field(
            "api_token",
            "at most 500 characters, without spaces",
        ));
    }
    Ok(Some(Some(t).filter(|t| !t.is_empty())))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_node(n: &NodeRow) -> AppResult<()> {
    if n.name.is_empty() {
        return Err(AppError::field("name", "must not be empty"));
    }
    max_len("name", &n.name, 64)?;
    let addr_ok = !n.address.is_empty()
        && n.address.len() <= 253
        && n.address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !addr_ok {
        return Err(AppError::field(
            "address",
            "must be a host name or an IP address",
        ));
    }
    if let Some(r) = &n.region {
        max_len("region", r, 64)?;
    }
    if n.capacity.is_some_and(|c| !(1..=1_000_000).contains(&c)) {
        return Err(AppError::field("capacity", "must be between 1 and 1000000"));
    }
    if n.kind != "agent" {
        let url = n.api_url.as_deref().unwrap_or("");
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 500 {
            return Err(AppError::field(
                "api_url",
                "a panel node needs an http(s) URL",
            ));
        }
        if n.api_username.as_deref().is_none_or(str::is_empty)
            || n.api_password.as_deref().is_none_or(str::is_empty)
        {
            return Err(AppError::field(
                "api_username",
                "a panel node needs api_username and api_password",
            ));
        }
    }
    Ok(())
}

fn de<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn to_inbound_view(i: InboundRow) -> InboundView {
    InboundView {
        id: i.id,
        node_id: i.node_id,
        tag: i.tag,
        protocol: de(&i.protocol).unwrap_or(Protocol::Vless),
        port: i.port,
        network: de(&i.network).unwrap_or(Network::Tcp),
        security: de(&i.security).unwrap_or(Security::None),
        settings: serde_json::from_str(&i.settings).unwrap_or_else(|_| serde_json::json!({})),
        is_enabled: i.is_enabled,
        created_at: Timestamp::from_millis(i.created_at),
        updated_at: Timestamp::from_millis(i.updated_at),
    }
}

fn wire<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn inbound_row(node_id: i64, input: InboundInput, now: i64) -> AppResult<InboundRow> {
    let tag = input.tag.trim().to_owned();
    if tag.is_empty()
        || tag.len() > 64
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(AppError::field(
            "tag",
            "must be 1-64 characters of A-Z, a-z, 0-9, _, . or -",
        ));
    }
    if !(1..=65535).contains(&input.port) {
        return Err(AppError::field("port", "must be between 1 and 65535"));
    }
    let network = input
        .network
        .unwrap_or(if input.protocol == Protocol::Hysteria2 {
            Network::Udp
        } else {
            Network::Tcp
        });
    if (input.protocol == Protocol::Hysteria2) != (network == Network::Udp) {
        return Err(AppError::field(
            "network",
            "hysteria2 runs over udp, and only hysteria2 does",
        ));
    }
    // Hysteria 2 always runs over QUIC, which is TLS.
    let security = input
        .security
        .unwrap_or(if input.protocol == Protocol::Hysteria2 {
            Security::Tls
        } else {
            Security::None
        });
    let raw = input.settings.unwrap_or_else(|| serde_json::json!({}));
    if !raw.is_object() {
        return Err(AppError::field("settings", "must be a JSON object"));
    }
    let parsed: InboundSettings = serde_json::from_value(raw)
        .map_err(|e| AppError::field("settings", format!("invalid settings: {e}")))?;
    mrjbot_domain::share::validate_settings(input.protocol, network, security, &parsed)
        .map_err(|(field, msg)| AppError::field(&format!("settings.{field}"), msg))?;
    let settings = serde_json::to_string(&parsed).map_err(AppError::internal)?;
    if settings.len() > 16 * 1024 {
        return Err(AppError::field("settings", "must be at most 16 KB"));
    }
    Ok(InboundRow {
        id: 0,
        node_id,
        tag,
        protocol: wire(input.protocol),
        port: input.port,
        network: wire(network),
        security: wire(security),
        settings,
        is_enabled: input.is_enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    })
}

impl App {
    /// A page of nodes (needs `nodes.read`).
    pub async fn list_nodes(
        &self,
        actor: &Actor,
        q: NodeQuery,
        params: &ListParams,
    ) -> AppResult<(Vec<NodeView>, i64)> {
        actor.require(Permission::NodesRead)?;
        let page = params.page(&["id", "name", "created_at", "status"], "id")?;
        let filter = NodeFilter {
            q: q.q,
            kind: q.kind.map(|k| k.as_str().to_owned()),
            status: q.status,
            region: q.region,
        };
        let (rows, total) = repo::list(self.db().read().await?.conn(), &filter, page).await?;
        Ok((rows.into_iter().map(NodeView::from).collect(), total))
    }

    /// One node (needs `nodes.read`).
    pub async fn get_node(&self, actor: &Actor, id: i64) -> AppResult<NodeView> {
        actor.require(Permission::NodesRead)?;
        Ok(repo::get(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(not_found)?
            .into())
    }

    /// Creates a node (needs `nodes.write`); an agent node's secret is returned once.
    pub async fn create_node(&self, actor: &Actor, input: NewNode) -> AppResult<NodeCreated> {
        actor.require(Permission::NodesWrite)?;
        let now = self.now().millis();
        let secret = (input.kind == NodeKind::Agent).then(SecretToken::generate);
        let mut row = NodeRow {
            id: 0,
            name: input.name.trim().to_owned(),
            kind: input.kind.as_str().to_owned(),
            address: input.address.trim().to_owned(),
            region: clean(input.region),
            ip_type: input.ip_type.unwrap_or(IpType::Dynamic).as_str().to_owned(),
            api_url: clean(input.api_url),
            api_username: clean(input.api_username),
            api_password: input.api_password.filter(|p| !p.is_empty()),
            secret_hash: secret.as_ref().map(|s| sha256_hex(s.as_str())),
            status: "unknown".into(),
            is_enabled: input.is_enabled.unwrap_or(true),
            capacity: input.capacity,
            last_heartbeat_at: None,
            created_at: now,
            updated_at: now,
        };
        check_node(&row)?;
        let token = api_token(&row, input.api_token)?;
        let mut tx = self.db().begin().await?;
        row.id = repo::insert(tx.conn(), &row).await?;
        if let Some(t) = token.flatten() {
            mrjbot_db::panels::set_api_token(tx.conn(), row.id, Some(&t), now).await?;
        }
        self.audit(
            tx.conn(),
            actor,
            "node.create",
            "node",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(NodeCreated {
            node: row.into(),
            secret: secret.map(|s| s.as_str().to_owned()),
        })
    }

    /// Changes a node (needs `nodes.write`).
    pub async fn update_node(
        &self,
        actor: &Actor,
        id: i64,
        patch: NodePatch,
    ) -> AppResult<NodeView> {
        actor.require(Permission::NodesWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        let mut row = before.clone();
        if let Some(v) = patch.name {
            row.name = v.trim().to_owned();
        }
        if let Some(v) = patch.address {
            row.address = v.trim().to_owned();
        }
        if let Some(v) = patch.region {
            row.region = clean(Some(v));
        }
        if let Some(v) = patch.ip_type {
            row.ip_type = v.as_str().to_owned();
        }
        if let Some(v) = patch.api_url {
            row.api_url = clean(Some(v));
        }
        if let Some(v) = patch.api_username {
            row.api_username = clean(Some(v));
        }
        if let Some(v) = patch.api_password {
            row.api_password = Some(v).filter(|p| !p.is_empty());
        }
        if let Some(v) = patch.capacity {
            row.capacity = (v != 0).then_some(v);
        }
        if let Some(v) = patch.is_enabled {
            row.is_enabled = v;
        }
        row.updated_at = self.now().millis();
        check_node(&row)?;
        if let Some(t) = api_token(&row, patch.api_token)? {
            mrjbot_db::panels::set_api_token(tx.conn(), id, t.as_deref(), row.updated_at).await?;
        }
        repo::update(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "node.update",
            "node",
            Some(id),
            Some(&before),
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(row.into())
    }

    /// Deletes a node and its inbounds (needs `nodes.write`).
    pub async fn delete_node(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::NodesWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        repo::delete(tx.conn(), id).await?;
        self.audit(
            tx.conn(),
            actor,
            "node.delete",
            "node",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(())
    }

    /// A new agent secret for a node; the old one stops working (needs `nodes.write`).
    pub async fn rotate_node_secret(&self, actor: &Actor, id: i64) -> AppResult<NodeCreated> {
        actor.require(Permission::NodesWrite)?;
        let mut tx = self.db().begin().await?;
        let mut row = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        if row.kind != "agent" {
            return Err(AppError::field("kind", "only agent nodes have a secret"));
        }
        let secret = SecretToken::generate();
        row.secret_hash = Some(sha256_hex(secret.as_str()));
        row.updated_at = self.now().millis();
        repo::update(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "node.rotate_secret",
            "node",
            Some(id),
            None::<&()>,
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        Ok(NodeCreated {
            node: row.into(),
            secret: Some(secret.as_str().to_owned()),
        })
    }

    /// Inbounds of a node (needs `nodes.read`).
    pub async fn list_inbounds(&self, actor: &Actor, node_id: i64) -> AppResult<Vec<InboundView>> {
        actor.require(Permission::NodesRead)?;
        let mut rc = self.db().read().await?;
        repo::get(rc.conn(), node_id).await?.ok_or_else(not_found)?;
        Ok(repo::list_inbounds(rc.conn(), node_id)
            .await?
            .into_iter()
            .map(to_inbound_view)
            .collect())
    }

    /// One inbound (needs `nodes.read`).
    pub async fn get_inbound(
        &self,
        actor: &Actor,
        node_id: i64,
        id: i64,
    ) -> AppResult<InboundView> {
        actor.require(Permission::NodesRead)?;
        let row = repo::get_inbound(self.db().read().await?.conn(), node_id, id)
            .await?
            .ok_or_else(inbound_not_found)?;
        Ok(to_inbound_view(row))
    }

    /// Adds an inbound to a node (needs `nodes.write`).
    pub async fn create_inbound(
        &self,
        actor: &Actor,
        node_id: i64,
        input: InboundInput,
    ) -> AppResult<InboundView> {
        actor.require(Permission::NodesWrite)?;
        let mut row = inbound_row(node_id, input, self.now().millis())?;
        let mut tx = self.db().begin().await?;
        repo::get(tx.conn(), node_id).await?.ok_or_else(not_found)?;
        row.id = repo::insert_inbound(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "inbound.create",
            "inbound",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(to_inbound_view(row))
    }

    /// Replaces an inbound's settings (needs `nodes.write`).
    pub async fn update_inbound(
        &self,
        actor: &Actor,
        node_id: i64,
        id: i64,
        input: InboundInput,
    ) -> AppResult<InboundView> {
        actor.require(Permission::NodesWrite)?;
        let mut row = inbound_row(node_id, input, self.now().millis())?;
        let mut tx = self.db().begin().await?;
        let before = repo::get_inbound(tx.conn(), node_id, id)
            .await?
            .ok_or_else(inbound_not_found)?;
        row.id = id;
        row.created_at = before.created_at;
        repo::update_inbound(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "inbound.update",
            "inbound",
            Some(id),
            Some(&before),
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(to_inbound_view(row))
    }

    /// Removes an inbound (needs `nodes.write`).
    pub async fn delete_inbound(&self, actor: &Actor, node_id: i64, id: i64) -> AppResult<()> {
        actor.require(Permission::NodesWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get_inbound(tx.conn(), node_id, id)
            .await?
            .ok_or_else(inbound_not_found)?;
        repo::delete_inbound(tx.conn(), node_id, id).await?;
        self.audit(
            tx.conn(),
            actor,
            "inbound.delete",
            "inbound",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(())
    }
}
