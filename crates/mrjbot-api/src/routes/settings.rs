//! `/api/v1/settings/...`: the seller's shop settings.

use crate::error::ApiResult;
use crate::extract::{Auth, Json};
use axum::extract::State;
use mrjbot_app::App;
use mrjbot_app::shop::ShopSettings;
use mrjbot_app::subsettings::SubscriptionSettings;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_subscription, put_subscription))
        .routes(routes!(get_shop, put_shop))
}

/// Subscription link settings (needs `settings.read`).
#[utoipa::path(get, path = "/api/v1/settings/subscription", tag = "settings", security(("bearer" = [])),
    responses((status = 200, description = "The settings", body = SubscriptionSettings)))]
async fn get_subscription(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<SubscriptionSettings>> {
    Ok(axum::Json(app.subscription_settings(&a).await?))
}

/// Replaces the subscription link settings (needs `settings.write`); every link uses
/// them from the next request on.
#[utoipa::path(put, path = "/api/v1/settings/subscription", tag = "settings", request_body = SubscriptionSettings, security(("bearer" = [])),
    responses((status = 200, description = "The stored settings", body = SubscriptionSettings)))]
async fn put_subscription(
    State(app): State<App>,
    Auth(a): Auth,
    Json(s): Json<SubscriptionSettings>,
) -> ApiResult<axum::Json<SubscriptionSettings>> {
    Ok(axum::Json(app.update_subscription_settings(&a, s).await?))
}

/// Shop front settings: trial, referrals, required channel, FAQ, help text, reminders,
/// app guides, flood limit (needs `settings.read`).
#[utoipa::path(get, path = "/api/v1/settings/shop", tag = "settings", security(("bearer" = [])),
    responses((status = 200, description = "The settings", body = ShopSettings)))]
async fn get_shop(State(app): State<App>, Auth(a): Auth) -> ApiResult<axum::Json<ShopSettings>> {
    Ok(axum::Json(app.get_shop_settings(&a).await?))
}

/// Replaces the shop front settings (needs `settings.write`); absent fields take their
/// defaults. Returns them as stored (texts trimmed, reminder lists ordered).
#[utoipa::path(put, path = "/api/v1/settings/shop", tag = "settings", request_body = ShopSettings, security(("bearer" = [])),
    responses((status = 200, description = "The stored settings", body = ShopSettings)))]
async fn put_shop(
    State(app): State<App>,
    Auth(a): Auth,
    Json(s): Json<ShopSettings>,
) -> ApiResult<axum::Json<ShopSettings>> {
    Ok(axum::Json(app.put_shop_settings(&a, s).await?))
}
