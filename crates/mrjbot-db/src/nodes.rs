//! Nodes (VPN servers driven by our agent or a panel) and their inbounds.

use crate::{Conn, DbError, Page, Sql, on};
use serde::Serialize;

/// A stored node. Secrets (`api_password`, `secret_hash`) are never serialised.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct NodeRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub address: String,
    pub region: Option<String>,
    pub ip_type: String,
    pub api_url: Option<String>,
    pub api_username: Option<String>,
    #[serde(skip_serializing)]
    pub api_password: Option<String>,
    #[serde(skip_serializing)]
    pub secret_hash: Option<String>,
    pub status: String,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub is_enabled: bool,
    pub capacity: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored inbound.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct InboundRow {
    pub id: i64,
    pub node_id: i64,
    pub tag: String,
    pub protocol: String,
    pub port: i64,
    pub network: String,
    pub security: String,
    pub settings: String,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub is_enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, name, kind, address, region, ip_type, api_url, api_username, api_password, secret_hash, status, \
                    is_enabled, capacity, last_heartbeat_at, created_at, updated_at";
const ICOLS: &str = "id, node_id, tag, protocol, port, network, security, settings, is_enabled, created_at, updated_at";

/// Filters for listing nodes.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Substring of name or address.
    pub q: Option<String>,
    /// Exact kind.
    pub kind: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Exact region.
    pub region: Option<String>,
}

/// Inserts a node and returns its id.
pub async fn insert(c: Conn<'_>, n: &NodeRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO nodes (name, kind, address, region, ip_type, api_url, api_username, api_password, secret_hash, \
               status, is_enabled, capacity, last_heartbeat_at, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(&n.name).bind(&n.kind).bind(&n.address).bind(&n.region).bind(&n.ip_type).bind(&n.api_url)
        .bind(&n.api_username).bind(&n.api_password).bind(&n.secret_hash).bind(&n.status).bind(n.is_enabled)
        .bind(n.capacity).bind(n.last_heartbeat_at).bind(n.created_at).bind(n.updated_at)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes every editable column (by id).
pub async fn update(c: Conn<'_>, n: &NodeRow) -> Result<bool, DbError> {
    let sql = "UPDATE nodes SET name = $1, kind = $2, address = $3, region = $4, ip_type = $5, api_url = $6, \
               api_username = $7, api_password = $8, secret_hash = $9, is_enabled = $10, capacity = $11, updated_at = $12 \
               WHERE id = $13";
    let r = on!(c, c, D => sqlx::query::<D>(sql)
        .bind(&n.name).bind(&n.kind).bind(&n.address).bind(&n.region).bind(&n.ip_type).bind(&n.api_url)
        .bind(&n.api_username).bind(&n.api_password).bind(&n.secret_hash).bind(n.is_enabled).bind(n.capacity)
        .bind(n.updated_at).bind(n.id).execute(&mut *c).await?.rows_affected());
    Ok(r == 1)
}

/// One node.
pub async fn get(c: Conn<'_>, id: i64) -> Result<Option<NodeRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM nodes WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, NodeRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// A page of nodes and the total.
pub async fn list(c: Conn<'_>, f: &NodeFilter, page: Page) -> Result<(Vec<NodeRow>, i64), DbError> {
    let mut w = Sql::new(" FROM nodes WHERE 1 = 1");
    if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
        w.and_search(&["name", "address"], q);
    }
    if let Some(k) = &f.kind {
        w.and("kind = ?", k.as_str());
    }
    if let Some(s) = &f.status {
        w.and("status = ?", s.as_str());
    }
    if let Some(r) = &f.region {
        w.and("region = ?", r.as_str());
    }
    crate::sql::fetch_page::<NodeRow>(c, COLS, &w, page, None).await
}

/// Deletes a node and its inbounds.
pub async fn delete(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM nodes WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Inserts an inbound and returns its id.
pub async fn insert_inbound(c: Conn<'_>, i: &InboundRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO inbounds (node_id, tag, protocol, port, network, security, settings, is_enabled, created_at, \
               updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(i.node_id).bind(&i.tag).bind(&i.protocol).bind(i.port).bind(&i.network).bind(&i.security)
        .bind(&i.settings).bind(i.is_enabled).bind(i.created_at).bind(i.updated_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes every editable column of an inbound (by id and node).
pub async fn update_inbound(c: Conn<'_>, i: &InboundRow) -> Result<bool, DbError> {
    let sql = "UPDATE inbounds SET tag = $1, protocol = $2, port = $3, network = $4, security = $5, settings = $6, \
               is_enabled = $7, updated_at = $8 WHERE id = $9 AND node_id = $10";
    let n = on!(c, c, D => sqlx::query::<D>(sql)
        .bind(&i.tag).bind(&i.protocol).bind(i.port).bind(&i.network).bind(&i.security).bind(&i.settings)
        .bind(i.is_enabled).bind(i.updated_at).bind(i.id).bind(i.node_id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// One inbound of a node.
pub async fn get_inbound(
    c: Conn<'_>,
    node_id: i64,
    id: i64,
) -> Result<Option<InboundRow>, DbError> {
    let sql = format!("SELECT {ICOLS} FROM inbounds WHERE id = $1 AND node_id = $2");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, InboundRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(node_id).fetch_optional(&mut *c).await?),
    )
}

/// Every inbound of a node.
pub async fn list_inbounds(c: Conn<'_>, node_id: i64) -> Result<Vec<InboundRow>, DbError> {
    let sql = format!("SELECT {ICOLS} FROM inbounds WHERE node_id = $1 ORDER BY id");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, InboundRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(node_id).fetch_all(&mut *c).await?),
    )
}

/// Every node and every inbound, in id order (the topology of the subscription read path).
pub async fn all_with_inbounds(c: Conn<'_>) -> Result<(Vec<NodeRow>, Vec<InboundRow>), DbError> {
    let nodes = format!("SELECT {COLS} FROM nodes ORDER BY id");
    let inbounds = format!("SELECT {ICOLS} FROM inbounds ORDER BY node_id, id");
    on!(c, c, D => {
        let n = sqlx::query_as::<D, NodeRow>(sqlx::AssertSqlSafe(nodes.as_str())).fetch_all(&mut *c).await?;
        let i = sqlx::query_as::<D, InboundRow>(sqlx::AssertSqlSafe(inbounds.as_str())).fetch_all(&mut *c).await?;
        Ok((n, i))
    })
}

/// Deletes an inbound of a node.
pub async fn delete_inbound(c: Conn<'_>, node_id: i64, id: i64) -> Result<bool, DbError> {
    let sql = "DELETE FROM inbounds WHERE id = $1 AND node_id = $2";
    let n = on!(c, c, D => sqlx::query::<D>(sql).bind(id).bind(node_id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Nodes that can serve customers of a region now (enabled, not marked down); every
/// node counts for a plan without a region.
pub async fn serving_count(c: Conn<'_>, region: Option<&str>) -> Result<i64, DbError> {
    let r: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM nodes WHERE is_enabled = TRUE AND status <> 'down' \
        AND ($1 IS NULL OR region = $1)")
        .bind(region).fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// The node whose agent secret hashes to `hash`.
pub async fn by_secret_hash(c: Conn<'_>, hash: &str) -> Result<Option<NodeRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM nodes WHERE secret_hash = $1 AND kind = 'agent'");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, NodeRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(hash).fetch_optional(&mut *c).await?),
    )
}

/// What an agent told about itself.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct AgentRow {
    pub node_id: i64,
    pub core_kind: String,
    pub core_version: Option<String>,
    pub agent_version: String,
    pub hostname: Option<String>,
    pub applied_etag: Option<String>,
    pub last_error: Option<String>,
    pub core_restarts: i64,
    pub registered_at: i64,
    pub updated_at: i64,
}

/// Records a registration (a new agent or the same one again).
pub async fn upsert_agent(c: Conn<'_>, a: &AgentRow) -> Result<(), DbError> {
    let sql = "INSERT INTO node_agents (node_id, core_kind, core_version, agent_version, hostname, applied_etag, \
               last_error, core_restarts, registered_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
               ON CONFLICT (node_id) DO UPDATE SET core_kind = excluded.core_kind, core_version = excluded.core_version, \
               agent_version = excluded.agent_version, hostname = excluded.hostname, registered_at = excluded.registered_at, \
               updated_at = excluded.updated_at";
    on!(c, c, D => sqlx::query::<D>(sql).bind(a.node_id).bind(&a.core_kind).bind(&a.core_version).bind(&a.agent_version)
        .bind(&a.hostname).bind(&a.applied_etag).bind(&a.last_error).bind(a.core_restarts).bind(a.registered_at)
        .bind(a.updated_at).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// The agent of a node, if one registered.
pub async fn agent(c: Conn<'_>, node_id: i64) -> Result<Option<AgentRow>, DbError> {
    Ok(on!(c, c, D => sqlx::query_as::<D, AgentRow>(
        "SELECT node_id, core_kind, core_version, agent_version, hostname, applied_etag, last_error, core_restarts, \
         registered_at, updated_at FROM node_agents WHERE node_id = $1").bind(node_id).fetch_optional(&mut *c).await?))
}

/// One health sample of a node.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct HealthRow {
    pub node_id: i64,
    pub at: i64,
    pub cpu_percent: Option<f64>,
    pub mem_percent: Option<f64>,
    pub rx_bps: Option<i64>,
    pub tx_bps: Option<i64>,
    pub latency_ms: Option<i64>,
    pub connections: Option<i64>,
    pub core_status: String,
}

/// Records a heartbeat: the sample, the agent's state and the node's status. Returns the
/// status the node had before.
pub async fn heartbeat(
    c: Conn<'_>,
    h: &HealthRow,
    status: &str,
    core_version: Option<&str>,
    applied_etag: Option<&str>,
    last_error: Option<&str>,
    core_restarts: i64,
) -> Result<Option<String>, DbError> {
    on!(c, c, D => {
        let before: Option<(String,)> = sqlx::query_as::<D, (String,)>("SELECT status FROM nodes WHERE id = $1")
            .bind(h.node_id).fetch_optional(&mut *c).await?;
        sqlx::query::<D>("INSERT INTO node_health (node_id, at, cpu_percent, mem_percent, rx_bps, tx_bps, latency_ms, \
            connections, core_status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(h.node_id).bind(h.at).bind(h.cpu_percent).bind(h.mem_percent).bind(h.rx_bps).bind(h.tx_bps)
            .bind(h.latency_ms).bind(h.connections).bind(&h.core_status).execute(&mut *c).await?;
        sqlx::query::<D>("UPDATE nodes SET status = $1, last_heartbeat_at = $2 WHERE id = $3")
            .bind(status).bind(h.at).bind(h.node_id).execute(&mut *c).await?;
        sqlx::query::<D>("UPDATE node_agents SET core_version = COALESCE($1, core_version), applied_etag = $2, \
            last_error = $3, core_restarts = $4, updated_at = $5 WHERE node_id = $6")
            .bind(core_version).bind(applied_etag).bind(last_error).bind(core_restarts).bind(h.at).bind(h.node_id)
            .execute(&mut *c).await?;
        Ok(before.map(|b| b.0))
    })
}

/// The latest health samples of a node, newest first.
pub async fn recent_health(
    c: Conn<'_>,
    node_id: i64,
    limit: i64,
) -> Result<Vec<HealthRow>, DbError> {
    Ok(on!(c, c, D => sqlx::query_as::<D, HealthRow>(
        "SELECT node_id, at, cpu_percent, mem_percent, rx_bps, tx_bps, latency_ms, connections, core_status \
         FROM node_health WHERE node_id = $1 ORDER BY at DESC LIMIT $2").bind(node_id).bind(limit).fetch_all(&mut *c).await?))
}

/// Marks `down` every agent node whose last heartbeat is older than `cutoff` (or that
/// never sent one and was created before it); returns their ids.
pub async fn mark_silent_down(c: Conn<'_>, cutoff: i64, now: i64) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(
        "UPDATE nodes SET status = 'down', updated_at = $2 WHERE kind = 'agent' AND status <> 'down' \
         AND COALESCE(last_heartbeat_at, created_at) < $1 AND (last_heartbeat_at IS NOT NULL OR status <> 'unknown') \
         RETURNING id").bind(cutoff).bind(now).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Drops health samples older than `before`.
pub async fn prune_health(c: Conn<'_>, before: i64) -> Result<u64, DbError> {
    Ok(
        on!(c, c, D => sqlx::query::<D>("DELETE FROM node_health WHERE at < $1").bind(before).execute(&mut *c).await?.rows_affected()),
    )
}
