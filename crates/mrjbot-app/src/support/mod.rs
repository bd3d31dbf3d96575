//! Talking with customers: support tickets (a thread per question, staff told of every
//! customer message and the customer of every answer, through the outbox) and broadcasts
//! (one message to a segment of customers, sent at most once each, paced for Telegram).

pub mod broadcasts;
pub mod tickets;

use crate::error::{AppError, AppResult};

/// Longest ticket or broadcast text, in characters (Telegram's message limit is 4096).
pub const MAX_BODY_CHARS: usize = 4000;

/// Checks a message text: trimmed, at most [`MAX_BODY_CHARS`]; `required` refuses empty.
pub(crate) fn body_text(field: &str, body: &str, required: bool) -> AppResult<String> {
    let b = body.trim();
    if required && b.is_empty() {
        return Err(AppError::field(field, "must not be empty"));
    }
    if b.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::field(
            field,
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(b.to_owned())
}
