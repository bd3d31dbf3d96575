//! `GET /sub/{token}` and `/sub/{token}/{format}`: the subscription link every VPN app
//! fetches, and the customer's page when a browser opens the same URL.
//!
//! This router sits outside the API's middleware stack (request ids, traces, handler
//! tasks): it is answered from memory by `mrjbot_app::feed`, and at tens of thousands of
//! requests per second that stack would cost more than the answer. Every unknown token
//! gets the same 404, produced by the same digest lookup as a known one.

use crate::page;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mrjbot_app::App;
use mrjbot_domain::document::Format;
use serde::Deserialize;
use std::sync::OnceLock;

/// Query of a subscription request.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SubQuery {
    format: Option<String>,
    lang: Option<String>,
}

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/sub/{token}", get(by_agent))
        .route("/sub/{token}/{format}", get(by_path))
}

fn not_found() -> Response {
    let mut r = (StatusCode::NOT_FOUND, "subscription not found\n").into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn bad_format(f: &str) -> Response {
    let body = serde_json::json!({"error": {
        "code": "validation_failed",
        "message": format!("unknown format {f:?}; use base64, plain, clash-meta, clash or sing-box"),
        "details": {"fields": {"format": "unknown format"}}
    }});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// `scheme://host` of the request, for links when no public URL is configured.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let proto = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{proto}://{host}")
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

async fn by_agent(
    State(app): State<App>,
    Path(token): Path<String>,
    query: Result<Query<SubQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let q = query.map(|q| q.0).unwrap_or_default();
    let format = match q.format.as_deref() {
        None | Some("") => None,
        Some(f) => match Format::parse(f) {
            Some(f) => Some(f),
            None => return bad_format(f),
        },
    };
    if format.is_none() && wants_html(&headers) {
        return page_response(&app, &token, q.lang.as_deref(), &headers).await;
    }
    serve(&app, &token, format, &headers).await
}

async fn by_path(
    State(app): State<App>,
    Path((token, format)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match Format::parse(&format) {
        Some(f) => serve(&app, &token, Some(f), &headers).await,
        None => not_found(),
    }
}

static SERVED: OnceLock<metrics::Counter> = OnceLock::new();
static NOT_FOUND: OnceLock<metrics::Counter> = OnceLock::new();

/// The request counter, resolved once (a labelled lookup per request costs more than
/// the rest of a cached answer).
fn counter(c: &'static OnceLock<metrics::Counter>) -> &'static metrics::Counter {
    c.get_or_init(|| {
        let result = if std::ptr::eq(c, &SERVED) {
            "ok"
        } else {
            "not_found"
        };
        metrics::counter!("subscription_requests_total", "result" => result)
    })
}

/// Waits for the read path right after start; a store that does not answer for
/// seconds gets a 503 the apps retry, not a hung connection.
async fn ready(app: &App) -> Result<(), Response> {
    tokio::time::timeout(std::time::Duration::from_secs(5), app.sub_ready())
        .await
        .map_err(|_| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "starting; try again shortly\n",
            )
                .into_response()
        })
}

async fn serve(app: &App, token: &str, format: Option<Format>, headers: &HeaderMap) -> Response {
    if let Err(r) = ready(app).await {
        return r;
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(doc) = app.sub_document(token, format, ua, || base_url(headers)) else {
        counter(&NOT_FOUND).increment(1);
        return not_found();
    };
    counter(&SERVED).increment(1);
    let mut resp = Response::new(axum::body::Body::from(doc.body.clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(doc.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in &doc.headers {
        h.insert(name.clone(), value.clone());
    }
    resp
}

async fn page_response(
    app: &App,
    token: &str,
    lang: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    if let Err(r) = ready(app).await {
        return r;
    }
    let Some(data) = app.sub_page(token, || base_url(headers)) else {
        return not_found();
    };
    let accept_lang = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    match page::render(&data, lang, accept_lang) {
        Ok(html) => {
            let mut r = Html(html).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                ),
            );
            h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "subscription page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
        }
    }
}
