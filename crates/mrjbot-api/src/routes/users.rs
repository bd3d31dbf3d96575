//! `/api/v1/users` and their roles and passwords.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::routes::{Done, Page, list_query};
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::roles::AssignmentView;
use mrjbot_app::users::{NewUser, UserPatch, UserQuery, UserView};
use mrjbot_domain::Timestamp;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(UserListQuery {
    /// Substring of username, e-mail or display name.
    q: Option<String>,
    /// `active` or `disabled`.
    #[param(pattern = "^(active|disabled)$")]
    status: Option<String>,
    /// Holders of this role.
    role: Option<String>,
    /// Exact Telegram id.
    telegram_id: Option<i64>,
});

/// A new password set by staff.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The new password (10-128 characters, mixed).
    pub password: String,
}

/// A role to grant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRoleRequest {
    /// Role name.
    #[schema(pattern = "^[a-z0-9_-]{2,32}$")]
    pub role: String,
    /// When the role lapses (never if absent).
    pub expires_at: Option<Timestamp>,
}

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(set_password))
        .routes(routes!(roles, assign_role))
        .routes(routes!(unassign_role))
}

/// Lists users (needs `users.read`).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of users", body = Page<UserView>)))]
async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<UserListQuery>,
) -> ApiResult<axum::Json<Page<UserView>>> {
    let p = q.list_params();
    let query = UserQuery {
        q: q.q,
        status: q.status,
        role: q.role,
        telegram_id: q.telegram_id,
    };
    Ok(axum::Json(Page::new(
        app.list_users(&a, query, &p).await?,
        &p,
    )))
}

/// Creates a user (needs `users.write`).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = UserView)))]
async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(u): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_user(&a, u).await?),
    ))
}

/// One user (oneself, or with `users.read`).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The user", body = UserView)))]
async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(app.get_user(&a, id).await?))
}

/// Edits a user.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserPatch,
    security(("bearer" = [])), responses((status = 200, description = "Updated", body = UserView)))]
async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(p): Json<UserPatch>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(app.update_user(&a, id, p).await?))
}

/// Deletes a user without subscriptions or payments.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_user(&a, id).await?;
    Ok(Done::json())
}

/// Sets a user's password; all their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = i64, Path)),
    request_body = SetPasswordRequest, security(("bearer" = [])), responses((status = 200, description = "Set", body = Done)))]
async fn set_password(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(r): Json<SetPasswordRequest>,
) -> ApiResult<axum::Json<Done>> {
    app.reset_password(&a, id, &r.password).await?;
    Ok(Done::json())
}

/// Roles of a user, expired ones included.
#[utoipa::path(get, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Assignments", body = Vec<AssignmentView>)))]
async fn roles(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<AssignmentView>>> {
    Ok(axum::Json(app.user_roles(&a, id).await?))
}

/// Grants a role, optionally until a date.
#[utoipa::path(post, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = i64, Path)),
    request_body = AssignRoleRequest, security(("bearer" = [])),
    responses((status = 200, description = "Assignments after the change", body = Vec<AssignmentView>)))]
async fn assign_role(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(r): Json<AssignRoleRequest>,
) -> ApiResult<axum::Json<Vec<AssignmentView>>> {
    Ok(axum::Json(
        app.assign_role(&a, id, &r.role, r.expires_at).await?,
    ))
}

/// Takes a role away.
#[utoipa::path(delete, path = "/api/v1/users/{id}/roles/{role_id}", tag = "users",
    params(("id" = i64, Path), ("role_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Removed", body = Done)))]
async fn unassign_role(
    State(app): State<App>,
    Auth(a): Auth,
    Path((id, role_id)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<Done>> {
    app.unassign_role(&a, id, role_id).await?;
    Ok(Done::json())
}
