//! Getting updates, both ways Telegram offers: `getUpdates` (offset confirms, `limit`,
//! long polling that returns as soon as an update arrives, a persistent
//! `allowed_updates` filter; 409 while a webhook is set) and webhooks (`setWebhook` with
//! `secret_token`, `deleteWebhook`, `getWebhookInfo`). A worker POSTs queued updates to
//! the webhook one at a time, in order, with the `X-Telegram-Bot-Api-Secret-Token`
//! header; a failed delivery is recorded in `last_error_*` and retried with backoff.

use super::state::{ApiError, Shared, Webhook};
use crate::fakes::params::Params;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// First wait after a failed delivery; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The `allowed_updates` parameter, if given.
fn allowed_updates(p: &Params) -> Result<Option<Vec<String>>, ApiError> {
    let bad = || ApiError::bad_request("can't parse allowed_updates");
    match p.json("allowed_updates").map_err(|_| bad())? {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

pub(super) async fn get_updates(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let offset = p.i64("offset")?.unwrap_or(0);
    let limit = usize::try_from(p.i64("limit")?.unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let timeout = u64::try_from(p.i64("timeout")?.unwrap_or(0).max(0)).unwrap_or(0);
    let allowed = allowed_updates(p)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        // Registered before looking at the queue, so an update queued in between still
        // wakes this poll.
        let notified = shared.updates_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = shared.lock();
            if st.webhook.is_some() {
                return Err(ApiError::new(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                ));
            }
            if let Some(list) = &allowed {
                st.allowed_updates = list.clone();
            }
            if offset < 0 {
                let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
                while st.queue.len() > keep {
                    st.queue.pop_front();
                }
            } else {
                st.queue.retain(|u| {
                    u.get("update_id")
                        .and_then(Value::as_i64)
                        .is_some_and(|id| id >= offset)
                });
            }
            st.drop_unwanted();
            let batch: Vec<Value> = st.queue.iter().take(limit).cloned().collect();
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Value::Array(batch));
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

pub(super) fn set_webhook(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let url = p.str("url")?.unwrap_or_default();
    let url = url.trim();
    if url.is_empty() {
        return delete_webhook(shared, p);
    }
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ApiError::bad_request("bad webhook: Failed to resolve host: Name or service not known")
        })?;
    let secret = p.str("secret_token")?.filter(|s| !s.is_empty());
    if let Some(s) = &secret {
        let ok = s.len() <= 256
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(ApiError::bad_request(
                "secret token contains unallowed characters",
            ));
        }
    }
    let max_connections = p.i64("max_connections")?.unwrap_or(40);
    if !(1..=100).contains(&max_connections) {
        return Err(ApiError::bad_request(
            "bad webhook: max_connections must be between 1 and 100",
        ));
    }
    let allowed = allowed_updates(p)?;
    let mut st = shared.lock();
    if p.bool("drop_pending_updates")? == Some(true) {
        st.queue.clear();
    }
    if let Some(list) = allowed {
        st.allowed_updates = list;
    }
    st.webhook = Some(Webhook {
        url: parsed.to_string(),
        secret,
        max_connections,
    });
    st.webhook_error = None;
    drop(st);
    shared.notify();
    Ok(json!(true))
}

pub(super) fn delete_webhook(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let mut st = shared.lock();
    if p.bool("drop_pending_updates")? == Some(true) {
        st.queue.clear();
    }
    st.webhook = None;
    st.webhook_error = None;
    drop(st);
    shared.notify();
    Ok(json!(true))
}

pub(super) fn get_webhook_info(shared: &Shared) -> Result<Value, ApiError> {
    let mut st = shared.lock();
    st.drop_unwanted();
    let mut info = json!({
        "url": st.webhook.as_ref().map(|h| h.url.clone()).unwrap_or_default(),
        "has_custom_certificate": false,
        "pending_update_count": st.queue.len(),
    });
    if let Some(h) = &st.webhook {
        info["max_connections"] = json!(h.max_connections);
        if !st.allowed_updates.is_empty() {
            info["allowed_updates"] = json!(st.allowed_updates);
        }
    }
    if let Some((date, message)) = &st.webhook_error {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    Ok(info)
}

/// Why a delivery failed, worded like `getWebhookInfo.last_error_message`.
fn delivery_error(result: Result<reqwest::Response, reqwest::Error>) -> Option<String> {
    match result {
        Ok(resp) if resp.status().is_success() => None,
        Ok(resp) => Some(format!(
            "Wrong response from the webhook: {} {}",
            resp.status().as_u16(),
            resp.status().canonical_reason().unwrap_or("")
        )),
        Err(e) if e.is_timeout() => Some("Read timeout expired".into()),
        Err(e) if e.is_connect() => Some("Connection refused".into()),
        Err(e) => Some(format!("Failed to deliver: {e}")),
    }
}

/// Delivers queued updates to the webhook while one is set; runs for the fake's life.
pub(super) async fn deliver(shared: Arc<Shared>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let notified = shared.updates_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let job = {
            let mut st = shared.lock();
            st.drop_unwanted();
            match (&st.webhook, st.queue.front()) {
                (Some(h), Some(u)) => Some((h.clone(), u.clone())),
                _ => None,
            }
        };
        let Some((hook, update)) = job else {
            notified.await;
            continue;
        };
        let mut request = shared.http.post(&hook.url).json(&update);
        if let Some(secret) = &hook.secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let error = delivery_error(request.send().await);
        let failed = {
            let mut st = shared.lock();
            match error {
                None => {
                    let id = update.get("update_id");
                    if st.queue.front().and_then(|u| u.get("update_id")) == id {
                        st.queue.pop_front();
                    }
                    false
                }
                Some(message) => {
                    let date = st.now();
                    st.webhook_error = Some((date, message));
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = MIN_BACKOFF;
        }
    }
}
