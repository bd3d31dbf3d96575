//! `/api/v1/auth`: login, refresh, logout, me, password change.

use crate::error::ApiResult;
use crate::extract::{Auth, Json};
use crate::routes::Done;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use mrjbot_app::App;
use mrjbot_app::auth::{ClientInfo, TokenPair};
use mrjbot_app::users::UserView;
use mrjbot_domain::Permission;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Credentials.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

/// A password change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password (10-128 characters, mixed).
    pub new_password: String,
}

/// The signed-in user and what they may do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// Effective permissions.
    pub permissions: Vec<Permission>,
}

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// Signs in; returns an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Signed in", body = TokenPair)))]
async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenPair>> {
    let client = ClientInfo {
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: Some(peer.ip().to_string()),
    };
    Ok(axum::Json(
        app.login(&req.username, &req.password, client).await?,
    ))
}

/// Exchanges a refresh token for a new pair (the old refresh token stops working).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "New tokens", body = TokenPair)))]
async fn refresh(
    State(app): State<App>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenPair>> {
    Ok(axum::Json(app.refresh(&req.refresh_token).await?))
}

/// Ends the current session; its tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Signed out", body = Done)))]
async fn logout(State(app): State<App>, Auth(actor): Auth) -> ApiResult<axum::Json<Done>> {
    app.logout(&actor).await?;
    Ok(Done::json())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me)))]
async fn me(State(app): State<App>, Auth(actor): Auth) -> ApiResult<axum::Json<Me>> {
    let id = actor.user_id.unwrap_or_default();
    let user = app.get_user(&actor, id).await?;
    Ok(axum::Json(Me {
        user,
        permissions: actor.permissions.iter().copied().collect(),
    }))
}

/// Changes one's own password; every other session ends.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest, responses((status = 200, description = "Changed", body = Done)))]
async fn change_password(
    State(app): State<App>,
    Auth(actor): Auth,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<axum::Json<Done>> {
    app.change_password(&actor, &req.current_password, &req.new_password)
        .await?;
    Ok(Done::json())
}
