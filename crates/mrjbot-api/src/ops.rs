//! Operations endpoints: liveness, readiness (the database answers) and Prometheus
//! metrics with pool and business gauges.

use crate::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mrjbot_app::App;
use mrjbot_domain::{ErrorCode, SubscriptionStatus};

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<App>) -> Response {
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.db().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        _ => ApiError::new(ErrorCode::Unavailable, "the database does not answer").into_response(),
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let Some(handle) = crate::install_metrics_recorder() else {
        return ApiError::new(ErrorCode::Unavailable, "metrics recorder unavailable")
            .into_response();
    };
    let (open, idle) = app.db().pool_stats();
    metrics::gauge!("db_pool_connections").set(f64::from(open));
    metrics::gauge!("db_pool_idle_connections").set(idle as f64);
    if let Ok(mut rc) = app.db().read().await {
        if let Ok(rows) = mrjbot_db::stats::subscriptions_by_status(rc.conn()).await {
            for s in SubscriptionStatus::ALL {
                let n = rows
                    .iter()
                    .find(|(k, _)| k == s.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("subscriptions", "status" => s.as_str()).set(n as f64);
            }
        }
        if let Ok(rows) = mrjbot_db::stats::nodes_by_status(rc.conn()).await {
            for st in ["unknown", "online", "degraded", "down"] {
                let n = rows.iter().find(|(k, _)| k == st).map_or(0, |(_, n)| *n);
                metrics::gauge!("nodes", "status" => st).set(n as f64);
            }
        }
        if let Ok(n) = mrjbot_db::users::count(rc.conn()).await {
            metrics::gauge!("users").set(n as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response()
}
