//! The HTTP front door: the REST API under `/api/v1` with its OpenAPI document and
//! offline docs page, and the operations endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! Every response carries an `x-request-id` (taken from the client or generated), the
//! same id that the log lines and audit entries of that request carry.

pub mod error;
pub mod extract;
mod metrics_mw;
mod node_api;
mod openapi;
mod ops;
mod page;
pub mod routes;
mod sub;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use mrjbot_app::App;
use mrjbot_domain::ErrorCode;
use std::sync::Arc;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use metrics_mw::install_metrics_recorder;
pub use openapi::openapi;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Login attempts allowed per IP per minute (steady rate).
    pub login_per_minute: u32,
    /// Login attempts an IP may make in a burst.
    pub login_burst: u32,
    /// Largest accepted request body.
    pub body_limit: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            login_per_minute: 30,
            login_burst: 10,
            body_limit: 64 * 1024,
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (the login limiter keys on the
/// peer address).
pub fn router(app: App, settings: &ApiSettings) -> Router {
    let period_ms = (60_000 / u64::from(settings.login_per_minute.max(1))).max(1);
    let governor = GovernorConfigBuilder::default()
        .per_millisecond(period_ms)
        .burst_size(settings.login_burst.max(1))
        .key_extractor(PeerIpKeyExtractor)
        .finish()
        .map(Arc::new);
    let mut login_limited = routes::auth::router();
    if let Some(conf) = governor {
        let limiter = conf.limiter().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
            }
        });
        login_limited =
            login_limited.layer(tower_governor::GovernorLayer::new(conf).error_handler(|_| {
                axum::response::IntoResponse::into_response(error::ApiError::new(
                    ErrorCode::RateLimited,
                    "too many attempts; wait a minute and try again",
                ))
            }));
    }
    let (api, spec) = OpenApiRouter::with_openapi(openapi::base())
        .merge(login_limited)
        .merge(routes::resources())
        .split_for_parts();
    let spec = openapi::finish(spec);
    let docs = utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", spec);

    let api = Router::new()
        .merge(api)
        .merge(ops::router())
        .fallback(ops::not_found)
        .with_state(app.clone())
        .merge(docs)
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(axum::middleware::from_fn(metrics_mw::track))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let rid = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %rid)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    // The subscription endpoint skips the API's middleware: see `sub`.
    sub::router()
        .with_state(app.clone())
        .merge(node_api::router(app))
        .merge(api)
}
