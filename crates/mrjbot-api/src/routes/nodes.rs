//! `/api/v1/nodes` and `/api/v1/nodes/{id}/inbounds`.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::routes::{Done, Page, list_query};
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::nodes::{
    InboundInput, InboundView, NewNode, NodeCreated, NodeKind, NodePatch, NodeQuery, NodeView,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(NodeListQuery {
    /// Substring of name or address.
    q: Option<String>,
    /// Kind.
    kind: Option<NodeKind>,
    /// Status.
    status: Option<String>,
    /// Region.
    region: Option<String>,
});

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(health))
        .routes(routes!(list_inbounds, create_inbound))
        .routes(routes!(get_inbound, update_inbound, delete_inbound))
}

/// Lists nodes (needs `nodes.read`).
#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes", params(NodeListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of nodes", body = Page<NodeView>)))]
async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<NodeListQuery>,
) -> ApiResult<axum::Json<Page<NodeView>>> {
    let p = q.list_params();
    let query = NodeQuery {
        q: q.q,
        kind: q.kind,
        status: q.status,
        region: q.region,
    };
    Ok(axum::Json(Page::new(
        app.list_nodes(&a, query, &p).await?,
        &p,
    )))
}

/// Creates a node (needs `nodes.write`); an agent node's secret is in the reply, once.
#[utoipa::path(post, path = "/api/v1/nodes", tag = "nodes", request_body = NewNode, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = NodeCreated)))]
async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(n): Json<NewNode>,
) -> ApiResult<(StatusCode, axum::Json<NodeCreated>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_node(&a, n).await?),
    ))
}

/// One node.
#[utoipa::path(get, path = "/api/v1/nodes/{id}", tag = "nodes", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The node", body = NodeView)))]
async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<NodeView>> {
    Ok(axum::Json(app.get_node(&a, id).await?))
}

/// Changes a node.
#[utoipa::path(patch, path = "/api/v1/nodes/{id}", tag = "nodes", params(("id" = i64, Path)), request_body = NodePatch,
    security(("bearer" = [])), responses((status = 200, description = "Updated", body = NodeView)))]
async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(p): Json<NodePatch>,
) -> ApiResult<axum::Json<NodeView>> {
    Ok(axum::Json(app.update_node(&a, id, p).await?))
}

/// Deletes a node and its inbounds.
#[utoipa::path(delete, path = "/api/v1/nodes/{id}", tag = "nodes", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_node(&a, id).await?;
    Ok(Done::json())
}

/// Issues a new agent secret; the old one stops working.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/rotate-secret", tag = "nodes", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "New secret", body = NodeCreated)))]
async fn rotate_secret(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<NodeCreated>> {
    Ok(axum::Json(app.rotate_node_secret(&a, id).await?))
}

/// How a node is doing: status, its agent's or panel's last word, the latest health
/// sample, and whether it runs the current desired state.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/health", tag = "nodes", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "Health", body = mrjbot_app::dataplane::NodeHealth)))]
async fn health(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<mrjbot_app::dataplane::NodeHealth>> {
    Ok(axum::Json(app.node_health(&a, id).await?))
}

/// Inbounds of a node.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/inbounds", tag = "nodes", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "Inbounds", body = Vec<InboundView>)))]
async fn list_inbounds(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<InboundView>>> {
    Ok(axum::Json(app.list_inbounds(&a, id).await?))
}

/// Adds an inbound.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/inbounds", tag = "nodes", params(("id" = i64, Path)),
    request_body = InboundInput, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = InboundView)))]
async fn create_inbound(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(i): Json<InboundInput>,
) -> ApiResult<(StatusCode, axum::Json<InboundView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_inbound(&a, id, i).await?),
    ))
}

/// One inbound.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/inbounds/{inbound_id}", tag = "nodes",
    params(("id" = i64, Path), ("inbound_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The inbound", body = InboundView)))]
async fn get_inbound(
    State(app): State<App>,
    Auth(a): Auth,
    Path((id, iid)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<InboundView>> {
    Ok(axum::Json(app.get_inbound(&a, id, iid).await?))
}

/// Replaces an inbound.
#[utoipa::path(put, path = "/api/v1/nodes/{id}/inbounds/{inbound_id}", tag = "nodes",
    params(("id" = i64, Path), ("inbound_id" = i64, Path)), request_body = InboundInput, security(("bearer" = [])),
    responses((status = 200, description = "Replaced", body = InboundView)))]
async fn update_inbound(
    State(app): State<App>,
    Auth(a): Auth,
    Path((id, iid)): Path<(i64, i64)>,
    Json(i): Json<InboundInput>,
) -> ApiResult<axum::Json<InboundView>> {
    Ok(axum::Json(app.update_inbound(&a, id, iid, i).await?))
}

/// Removes an inbound.
#[utoipa::path(delete, path = "/api/v1/nodes/{id}/inbounds/{inbound_id}", tag = "nodes",
    params(("id" = i64, Path), ("inbound_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete_inbound(
    State(app): State<App>,
    Auth(a): Auth,
    Path((id, iid)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_inbound(&a, id, iid).await?;
    Ok(Done::json())
}
