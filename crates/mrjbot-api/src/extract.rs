//! Extractors that turn every kind of bad input into the one error shape: malformed JSON
//! is 400, JSON of the wrong shape (types, unknown fields, missing fields) is 422 naming
//! the field, an oversized body is 413, and a missing or bad token is 401.

use crate::error::{ApiError, current_request_id};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use mrjbot_app::{Actor, App};
use mrjbot_domain::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::json;

fn field_error(text: &str) -> ApiError {
    // serde_path_to_error renders "path.to.field: what went wrong"; keep both parts.
    let detail = text.split_once(": ").map(|(_, rest)| rest).unwrap_or(text);
    let (field, reason) = match detail.split_once(": ") {
        Some((f, r)) if !f.contains(' ') => (f.to_owned(), r.to_owned()),
        _ => {
            let missing = detail
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next());
            let unknown = detail
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next());
            (
                missing.or(unknown).unwrap_or("body").to_owned(),
                detail.to_owned(),
            )
        }
    };
    ApiError(mrjbot_app::AppError {
        code: ErrorCode::ValidationFailed,
        message: format!("{field}: {reason}"),
        details: Some(json!({ "fields": { field: reason } })),
        source: None,
    })
}

/// A JSON body.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::MalformedRequest,
                "expected Content-Type: application/json",
            ));
        }
        // Reading through the Bytes extractor keeps the configured body limit.
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is too large",
                ));
            }
            Err(e) => return Err(ApiError::new(ErrorCode::MalformedRequest, e.body_text())),
        };
        // PostgreSQL cannot store NUL in text; refuse it on every engine alike.
        if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(nul_error());
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(field_error(&e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                ErrorCode::MalformedRequest,
                format!("the body is not valid JSON: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::new(ErrorCode::MalformedRequest, e.body_text())),
        }
    }
}

fn nul_error() -> ApiError {
    ApiError(mrjbot_app::AppError::field(
        "body",
        "text must not contain NUL characters",
    ))
}

/// A JSON body that may be absent (an empty body or `null` means the default value).
pub struct JsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
            || (req
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_none()
                && req
                    .headers()
                    .get(axum::http::header::TRANSFER_ENCODING)
                    .is_none());
        if empty {
            return Ok(JsonOrEmpty(T::default()));
        }
        Json::<Option<T>>::from_request(req, state)
            .await
            .map(|Json(v)| JsonOrEmpty(v.unwrap_or_default()))
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts
            .uri
            .query()
            .is_some_and(|q| q.to_ascii_lowercase().contains("%00"))
        {
            return Err(nul_error());
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(field_error(&e.body_text()))
            }
            Err(e) => Err(field_error(&e.body_text())),
        }
    }
}

/// Path parameters; an id that is not a number names nothing, so it is 404.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::new(ErrorCode::NotFound, "no such resource"))
            }
            Err(e) => Err(ApiError::new(ErrorCode::Internal, e.body_text())),
        }
    }
}

/// The signed-in caller, from `Authorization: Bearer <access token>`.
pub struct Auth(pub Actor);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "sign in first: send Authorization: Bearer <token>",
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "expected a Bearer token"))?;
        let actor = app.authenticate(token.trim()).await?;
        Ok(Auth(actor.with_request_id(current_request_id())))
    }
}
