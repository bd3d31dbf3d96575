//! The endpoints node agents call (`/node-api/v1/*`, see `mrjbot_node_proto`). Not part of
//! the public REST API: machines speak it, with a bearer token bought by the node secret,
//! and usage reports may be larger than the REST body limit.

use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mrjbot_app::App;
use mrjbot_app::dataplane::AgentNode;
use mrjbot_domain::ErrorCode;
use mrjbot_node_proto as proto;

/// Largest accepted body: a usage report of `MAX_USAGE_ENTRIES` users.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The agent endpoints.
pub fn router(app: App) -> Router {
    Router::new()
        .route(proto::REGISTER, post(register))
        .route(proto::TOKEN, post(token))
        .route(proto::HEARTBEAT, post(heartbeat))
        .route(proto::DESIRED, get(desired))
        .route(proto::USAGE, post(usage))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

/// An agent authenticated by its bearer token.
struct Agent(AgentNode);

impl FromRequestParts<App> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "a node token is required"))?;
        Ok(Agent(app.agent_authenticate(bearer.trim()).await?))
    }
}

async fn register(
    State(app): State<App>,
    Json(req): Json<proto::RegisterRequest>,
) -> ApiResult<axum::Json<proto::RegisterResponse>> {
    Ok(axum::Json(app.agent_register(&req).await?))
}

async fn token(
    State(app): State<App>,
    Json(req): Json<proto::TokenRequest>,
) -> ApiResult<axum::Json<proto::TokenResponse>> {
    Ok(axum::Json(app.agent_token(&req.secret).await?))
}

async fn heartbeat(
    State(app): State<App>,
    Agent(node): Agent,
    Json(hb): Json<proto::Heartbeat>,
) -> ApiResult<axum::Json<proto::HeartbeatAck>> {
    Ok(axum::Json(app.agent_heartbeat(node, &hb).await?))
}

async fn desired(State(app): State<App>, Agent(node): Agent, headers: HeaderMap) -> Response {
    let d = app.node_desired(node.node_id);
    let etag = format!("\"{}\"", d.etag);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    ([(header::ETAG, etag_value)], axum::Json(&d.state)).into_response()
}

async fn usage(
    State(app): State<App>,
    Agent(node): Agent,
    Json(report): Json<proto::UsageReport>,
) -> ApiResult<axum::Json<proto::UsageAck>> {
    Ok(axum::Json(app.agent_usage(node, &report).await?))
}
