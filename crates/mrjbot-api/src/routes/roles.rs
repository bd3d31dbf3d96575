//! `/api/v1/roles` and `/api/v1/permissions`.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::routes::Done;
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::roles::{PermissionView, RoleInput, RolePatch, RoleView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(permissions))
}

/// Every role (needs `roles.read`).
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])),
    responses((status = 200, description = "Roles", body = Vec<RoleView>)))]
async fn list(State(app): State<App>, Auth(a): Auth) -> ApiResult<axum::Json<Vec<RoleView>>> {
    Ok(axum::Json(app.list_roles(&a).await?))
}

/// Creates a custom role (needs `roles.write`).
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = RoleInput, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = RoleView)))]
async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(r): Json<RoleInput>,
) -> ApiResult<(StatusCode, axum::Json<RoleView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_role(&a, r).await?),
    ))
}

/// One role.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The role", body = RoleView)))]
async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RoleView>> {
    Ok(axum::Json(app.get_role(&a, id).await?))
}

/// Changes a custom role.
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = i64, Path)), request_body = RolePatch,
    security(("bearer" = [])), responses((status = 200, description = "Updated", body = RoleView)))]
async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(p): Json<RolePatch>,
) -> ApiResult<axum::Json<RoleView>> {
    Ok(axum::Json(app.update_role(&a, id, p).await?))
}

/// Deletes a custom role.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_role(&a, id).await?;
    Ok(Done::json())
}

/// Every permission a role can hold.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "roles", security(("bearer" = [])),
    responses((status = 200, description = "Permissions", body = Vec<PermissionView>)))]
async fn permissions(
    State(app): State<App>,
    Auth(_a): Auth,
) -> ApiResult<axum::Json<Vec<PermissionView>>> {
    Ok(axum::Json(app.list_permissions()))
}
