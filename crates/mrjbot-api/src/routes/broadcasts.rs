//! Broadcasts: a message to a segment of customers, its progress and its cancellation
//! (all need `broadcasts.write`). Sending happens in the background sender.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::routes::{Page, list_query};
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::support::broadcasts::{BroadcastView, NewBroadcast, Segment};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(BroadcastListQuery {});

/// Which segment to count.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// `all`, `active`, `expired` or `no_purchase`.
    pub segment: Segment,
}

/// How many customers a broadcast to a segment would reach now.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BroadcastPreview {
    pub segment: Segment,
    pub recipients: i64,
}

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_broadcasts, create_broadcast))
        .routes(routes!(preview_broadcast))
        .routes(routes!(get_broadcast))
        .routes(routes!(cancel_broadcast))
}

/// Lists broadcasts with their progress.
#[utoipa::path(get, path = "/api/v1/broadcasts", tag = "support", params(BroadcastListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of broadcasts", body = Page<BroadcastView>)))]
async fn list_broadcasts(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<BroadcastListQuery>,
) -> ApiResult<axum::Json<Page<BroadcastView>>> {
    let p = q.list_params();
    Ok(axum::Json(Page::new(
        app.list_broadcasts(&a, p.clone()).await?,
        &p,
    )))
}

/// Creates a broadcast to a segment; its recipients are fixed now and sending starts.
#[utoipa::path(post, path = "/api/v1/broadcasts", tag = "support", request_body = NewBroadcast, security(("bearer" = [])),
    responses((status = 201, description = "Created and sending", body = BroadcastView)))]
async fn create_broadcast(
    State(app): State<App>,
    Auth(a): Auth,
    Json(b): Json<NewBroadcast>,
) -> ApiResult<(StatusCode, axum::Json<BroadcastView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_broadcast(&a, b).await?),
    ))
}

/// Counts the customers a segment has now.
#[utoipa::path(get, path = "/api/v1/broadcasts/preview", tag = "support", params(PreviewQuery), security(("bearer" = [])),
    responses((status = 200, description = "The recipient count", body = BroadcastPreview)))]
async fn preview_broadcast(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<axum::Json<BroadcastPreview>> {
    Ok(axum::Json(BroadcastPreview {
        segment: q.segment,
        recipients: app.preview_broadcast(&a, q.segment).await?,
    }))
}

/// One broadcast with its progress (total, sent, failed, blocked, pending).
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}", tag = "support", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The broadcast", body = BroadcastView)))]
async fn get_broadcast(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<BroadcastView>> {
    Ok(axum::Json(app.get_broadcast(&a, id).await?))
}

/// Stops a broadcast; recipients not reached yet stay unsent.
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/cancel", tag = "support", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = BroadcastView)))]
async fn cancel_broadcast(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<BroadcastView>> {
    Ok(axum::Json(app.cancel_broadcast(&a, id).await?))
}
