//! Stable error codes. The API renders them as `{"error":{"code": ...}}`, the bot and the
//! dashboard translate the same code; renaming one is a breaking change.

use serde::{Deserialize, Serialize};

/// Every error a caller of MRJBot can see, as one flat list of stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request failed validation; `details` names the fields.
    ValidationFailed,
    /// The body is not the JSON the endpoint expects.
    MalformedRequest,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// No credentials, or credentials that are invalid or expired.
    Unauthenticated,
    /// Username or password wrong.
    InvalidCredentials,
    /// Too many failed logins: the account is locked for a while.
    AccountLocked,
    /// The account is disabled by an administrator.
    AccountDisabled,
    /// Authenticated but not allowed to do this.
    PermissionDenied,
    /// Too many requests from this client.
    RateLimited,
    /// The requested resource does not exist (or is not visible to the caller).
    NotFound,
    UserNotFound,
    PlanNotFound,
    NodeNotFound,
    InboundNotFound,
    SubscriptionNotFound,
    RoleNotFound,
    OrderNotFound,
    PaymentNotFound,
    CardNotFound,
    ReceiptNotFound,
    DiscountNotFound,
    /// The discount code does not apply (expired, used up, other plan or currency).
    DiscountInvalid,
    /// The wallet balance does not cover the amount.
    InsufficientFunds,
    /// The payment or order is in a status that does not allow this action.
    InvalidPaymentTransition,
    /// The payment method is not enabled, not configured, or does not take this currency.
    PaymentMethodUnavailable,
    /// No destination card has room for this amount right now.
    NoCardAvailable,
    /// This receipt image was already sent (the same file or a near copy of it).
    DuplicateReceipt,
    /// The payment gateway refused or did not answer; nothing was charged or changed.
    GatewayFailed,
    /// A unique value is already taken; `details` names the field.
    AlreadyExists,
    /// The resource is still referenced and cannot be deleted.
    InUse,
    /// A built-in role cannot be changed or deleted.
    RoleBuiltin,
    /// The plan is not sold in the requested currency or is inactive.
    PlanUnavailable,
    /// The subscription is in a status that does not allow this action.
    InvalidSubscriptionTransition,
    /// The payment was already approved.
    PaymentAlreadyApproved,
    /// The current password given for a password change is wrong.
    WrongPassword,
    /// The refresh token was already used or revoked.
    RefreshTokenReused,
    /// The service is not ready (database unreachable).
    Unavailable,
    /// Something unexpected failed; the message carries a request id for the logs.
    Internal,
    /// The customer took their free trial already (one per customer, ever).
    TrialUsed,
    /// The seller does not give free trials.
    TrialDisabled,
    /// No node can take a new subscription right now (none enabled and up in the region).
    NoServingNode,
    /// Points cannot be turned into credit now (none to redeem, or the seller set no rate).
    PointsNotRedeemable,
    TicketNotFound,
    /// The customer already has the most open tickets allowed; close one first.
    TooManyTickets,
    /// The ticket is closed: the customer opens a new one instead of writing in it.
    TicketClosed,
    BroadcastNotFound,
    /// The broadcast has finished sending and can no longer be changed.
    BroadcastFinished,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::AccountLocked => "account_locked",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::PlanNotFound => "plan_not_found",
            ErrorCode::NodeNotFound => "node_not_found",
            ErrorCode::InboundNotFound => "inbound_not_found",
            ErrorCode::SubscriptionNotFound => "subscription_not_found",
            ErrorCode::RoleNotFound => "role_not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InUse => "in_use",
            ErrorCode::RoleBuiltin => "role_builtin",
            ErrorCode::PlanUnavailable => "plan_unavailable",
            ErrorCode::InvalidSubscriptionTransition => "invalid_subscription_transition",
            ErrorCode::PaymentAlreadyApproved => "payment_already_approved",
            ErrorCode::WrongPassword => "wrong_password",
            ErrorCode::RefreshTokenReused => "refresh_token_reused",
            ErrorCode::OrderNotFound => "order_not_found",
            ErrorCode::PaymentNotFound => "payment_not_found",
            ErrorCode::CardNotFound => "card_not_found",
            ErrorCode::ReceiptNotFound => "receipt_not_found",
            ErrorCode::DiscountNotFound => "discount_not_found",
            ErrorCode::DiscountInvalid => "discount_invalid",
            ErrorCode::InsufficientFunds => "insufficient_funds",
            ErrorCode::InvalidPaymentTransition => "invalid_payment_transition",
            ErrorCode::PaymentMethodUnavailable => "payment_method_unavailable",
            ErrorCode::NoCardAvailable => "no_card_available",
            ErrorCode::DuplicateReceipt => "duplicate_receipt",
            ErrorCode::GatewayFailed => "gateway_failed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::TrialUsed => "trial_used",
            ErrorCode::TrialDisabled => "trial_disabled",
            ErrorCode::NoServingNode => "no_serving_node",
            ErrorCode::PointsNotRedeemable => "points_not_redeemable",
            ErrorCode::TicketNotFound => "ticket_not_found",
            ErrorCode::TooManyTickets => "too_many_tickets",
            ErrorCode::TicketClosed => "ticket_closed",
            ErrorCode::BroadcastNotFound => "broadcast_not_found",
            ErrorCode::BroadcastFinished => "broadcast_finished",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value failed to parse or a domain rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    /// Which stable code this maps to.
    pub code: ErrorCode,
    /// English explanation for logs and API clients.
    pub message: String,
}

impl DomainError {
    /// A validation failure with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::ValidationFailed,
            message: message.into(),
        }
    }

    /// A refused subscription status transition.
    pub fn transition(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidSubscriptionTransition,
            message: message.into(),
        }
    }
}
