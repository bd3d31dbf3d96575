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
