//! `/api/v1/plans`.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::routes::{Done, Page, list_query};
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::plans::{NewPlan, PlanPatch, PlanQuery, PlanView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(PlanListQuery {
    /// Substring of the name.
    q: Option<String>,
    /// Active or not (staff only).
    is_active: Option<bool>,
    /// Exact region.
    region: Option<String>,
});

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
}

/// Lists plans: the active catalogue, or all with `plans.read`.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", params(PlanListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of plans", body = Page<PlanView>)))]
async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<PlanListQuery>,
) -> ApiResult<axum::Json<Page<PlanView>>> {
    let p = q.list_params();
    let query = PlanQuery {
        q: q.q,
        is_active: q.is_active,
        region: q.region,
    };
    Ok(axum::Json(Page::new(
        app.list_plans(&a, query, &p).await?,
        &p,
    )))
}

/// Creates a plan (needs `plans.write`).
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans", request_body = NewPlan, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = PlanView)))]
async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(p): Json<NewPlan>,
) -> ApiResult<(StatusCode, axum::Json<PlanView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_plan(&a, p).await?),
    ))
}

/// One plan.
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The plan", body = PlanView)))]
async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<PlanView>> {
    Ok(axum::Json(app.get_plan(&a, id).await?))
}

/// Changes a plan (needs `plans.write`).
#[utoipa::path(patch, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = i64, Path)), request_body = PlanPatch,
    security(("bearer" = [])), responses((status = 200, description = "Updated", body = PlanView)))]
async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(p): Json<PlanPatch>,
) -> ApiResult<axum::Json<PlanView>> {
    Ok(axum::Json(app.update_plan(&a, id, p).await?))
}

/// Deletes a plan nobody ordered (needs `plans.write`).
#[utoipa::path(delete, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_plan(&a, id).await?;
    Ok(Done::json())
}
