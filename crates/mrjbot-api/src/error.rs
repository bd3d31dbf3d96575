//! Errors on the wire: one JSON shape for every failure,
//! `{"error":{"code","message","details"}}`, with the HTTP status chosen by the code.
//! An internal error shows only the request id, which matches the log line that has
//! the cause.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mrjbot_app::AppError;
use mrjbot_domain::ErrorCode;
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request's id, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// English explanation.
    pub message: String,
    /// Structured details, e.g. `{"fields": {"username": "already taken"}}`.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An error leaving a handler.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(AppError::new(code, message))
    }
}

/// HTTP status of a code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        MalformedRequest => StatusCode::BAD_REQUEST,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Unauthenticated | InvalidCredentials | RefreshTokenReused => StatusCode::UNAUTHORIZED,
        AccountLocked => StatusCode::LOCKED,
        AccountDisabled | PermissionDenied | WrongPassword => StatusCode::FORBIDDEN,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        NotFound | UserNotFound | PlanNotFound | NodeNotFound | InboundNotFound
        | SubscriptionNotFound | RoleNotFound | OrderNotFound | PaymentNotFound | CardNotFound
        | ReceiptNotFound | DiscountNotFound | TicketNotFound | BroadcastNotFound => {
            StatusCode::NOT_FOUND
        }
        DiscountInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        InsufficientFunds => StatusCode::PAYMENT_REQUIRED,
        GatewayFailed => StatusCode::BAD_GATEWAY,
        AlreadyExists
        | InUse
        | RoleBuiltin
        | InvalidSubscriptionTransition
        | PaymentAlreadyApproved
        | InvalidPaymentTransition
        | PaymentMethodUnavailable
        | NoCardAvailable
        | DuplicateReceipt
        | PlanUnavailable
        | TrialUsed
        | TrialDisabled
        | PointsNotRedeemable
        | TooManyTickets
        | TicketClosed
        | BroadcastFinished => StatusCode::CONFLICT,
        Unavailable | NoServingNode => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(e.code);
        let request_id = current_request_id();
        let message = if e.code == ErrorCode::Internal {
            let rid = request_id.clone().unwrap_or_else(|| "-".into());
            tracing::error!(request_id = %rid, error = ?e.source, "internal error");
            format!("internal error; quote request id {rid} to support")
        } else {
            e.message
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code,
                message,
                details: e.details,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
