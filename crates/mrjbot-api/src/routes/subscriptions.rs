//! `/api/v1/subscriptions` and their lifecycle actions.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, JsonOrEmpty, Path, Query};
use crate::routes::{Done, Page, list_query};
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::subscriptions::{
    AddDataInput, ExtendInput, NewSubscription, RenewInput, SubscriptionPatch, SubscriptionQuery,
    SubscriptionView,
};
use mrjbot_domain::SubscriptionStatus;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(SubscriptionListQuery {
    /// Owner.
    user_id: Option<i64>,
    /// Status.
    status: Option<SubscriptionStatus>,
    /// Plan.
    plan_id: Option<i64>,
});

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(renew))
        .routes(routes!(extend))
        .routes(routes!(add_data))
        .routes(routes!(suspend))
        .routes(routes!(activate))
        .routes(routes!(reset_traffic))
        .routes(routes!(rotate_token))
        .routes(routes!(revoke_token))
}

type One = ApiResult<axum::Json<SubscriptionView>>;

/// Lists subscriptions: one's own, or all with `subscriptions.read`.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions", params(SubscriptionListQuery),
    security(("bearer" = [])), responses((status = 200, description = "A page of subscriptions", body = Page<SubscriptionView>)))]
async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<SubscriptionListQuery>,
) -> ApiResult<axum::Json<Page<SubscriptionView>>> {
    let p = q.list_params();
    let query = SubscriptionQuery {
        user_id: q.user_id,
        status: q.status,
        plan_id: q.plan_id,
    };
    Ok(axum::Json(Page::new(
        app.list_subscriptions(&a, query, &p).await?,
        &p,
    )))
}

/// Creates a subscription from a plan (needs `subscriptions.write`).
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions", request_body = NewSubscription,
    security(("bearer" = [])), responses((status = 201, description = "Created", body = SubscriptionView)))]
async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(s): Json<NewSubscription>,
) -> ApiResult<(StatusCode, axum::Json<SubscriptionView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_subscription(&a, s).await?),
    ))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "The subscription", body = SubscriptionView)))]
async fn get(State(app): State<App>, Auth(a): Auth, Path(id): Path<i64>) -> One {
    Ok(axum::Json(app.get_subscription(&a, id).await?))
}

/// Edits note, device limit and pinned node.
#[utoipa::path(patch, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = i64, Path)),
    request_body = SubscriptionPatch, security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = SubscriptionView)))]
async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(p): Json<SubscriptionPatch>,
) -> One {
    Ok(axum::Json(app.update_subscription(&a, id, p).await?))
}

/// Deletes a subscription.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "Deleted", body = Done)))]
async fn delete(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_subscription(&a, id).await?;
    Ok(Done::json())
}

/// Renews with a plan (default: its own). Time and data stack as documented.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/renew", tag = "subscriptions", params(("id" = i64, Path)),
    request_body(content = Option<RenewInput>), security(("bearer" = [])),
    responses((status = 200, description = "Renewed", body = SubscriptionView)))]
async fn renew(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    JsonOrEmpty(input): JsonOrEmpty<RenewInput>,
) -> One {
    Ok(axum::Json(app.renew_subscription(&a, id, input).await?))
}

/// Adds days.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/extend", tag = "subscriptions", params(("id" = i64, Path)),
    request_body = ExtendInput, security(("bearer" = [])),
    responses((status = 200, description = "Extended", body = SubscriptionView)))]
async fn extend(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(e): Json<ExtendInput>,
) -> One {
    Ok(axum::Json(app.extend_subscription(&a, id, e).await?))
}

/// Adds data.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/add-data", tag = "subscriptions", params(("id" = i64, Path)),
    request_body = AddDataInput, security(("bearer" = [])),
    responses((status = 200, description = "Data added", body = SubscriptionView)))]
async fn add_data(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(d): Json<AddDataInput>,
) -> One {
    Ok(axum::Json(app.add_data(&a, id, d).await?))
}

/// Disables.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/suspend", tag = "subscriptions", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "Suspended", body = SubscriptionView)))]
async fn suspend(State(app): State<App>, Auth(a): Auth, Path(id): Path<i64>) -> One {
    Ok(axum::Json(app.suspend_subscription(&a, id).await?))
}

/// Re-enables a disabled subscription.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/activate", tag = "subscriptions", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, description = "Activated", body = SubscriptionView)))]
async fn activate(State(app): State<App>, Auth(a): Auth, Path(id): Path<i64>) -> One {
    Ok(axum::Json(app.activate_subscription(&a, id).await?))
}

/// Zeroes the period's traffic.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/reset-traffic", tag = "subscriptions",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Reset", body = SubscriptionView)))]
async fn reset_traffic(State(app): State<App>, Auth(a): Auth, Path(id): Path<i64>) -> One {
    Ok(axum::Json(app.reset_traffic(&a, id).await?))
}

/// Issues a new subscription link; the old one stops working.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/rotate-token", tag = "subscriptions",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "New link", body = SubscriptionView)))]
async fn rotate_token(State(app): State<App>, Auth(a): Auth, Path(id): Path<i64>) -> One {
    Ok(axum::Json(app.rotate_token(&a, id).await?))
}

/// Revokes the subscription link without a new one.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/revoke-token", tag = "subscriptions",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Link revoked", body = SubscriptionView)))]
async fn revoke_token(State(app): State<App>, Auth(a): Auth, Path(id): Path<i64>) -> One {
    Ok(axum::Json(app.revoke_token(&a, id).await?))
}
