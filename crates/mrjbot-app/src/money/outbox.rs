//! The outbox worker: does, exactly once and after the commit that asked for it, the
//! work that follows a payment: delivering the subscription, analysing a receipt,
//! telling the customer or the staff chat (typed [`Notice`]s, queued with
//! [`enqueue_notice`] and handed to the notifier).
//!
//! Items are claimed with a lease (a crashed worker's item is taken again when the lease
//! ends); delivery runs in one transaction that sets `orders.fulfilled_at` only where it
//! is empty and marks the item done, so a repeat is a no-op. A delivery that cannot
//! happen yet (no serving node in the plan's region) is retried with backoff until the
//! seller's give-up deadline; then the order fails, the amount goes to the wallet and the
//! customer is told, in one transaction.

use crate::App;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::money::ledger_entry;
use crate::notify::{Notice, NoticeTarget, NotifyError, Recipient};
use mrjbot_db::money::{self as repo, Lane, LedgerRow, OutboxRow};
use mrjbot_db::{
    Conn, nodes as nodes_repo, plans as plans_repo, subscriptions as subs_repo, users as users_repo,
};
use mrjbot_domain::subscription::Start;
use mrjbot_domain::{Bytes, Currency, Money, OrderKind, SubscriptionState, SubscriptionStatus};
use mrjbot_i18n::Lang;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Deliver a paid order.
pub const PROVISION: &str = "provision";
/// Tell a customer or the staff something (a [`Notice`]).
pub const NOTIFY: &str = "notify";
/// OCR and judge a card receipt.
pub const ANALYZE_RECEIPT: &str = "analyze_receipt";

const LEASE_MS: i64 = 120_000;
const OCR_LANE: Lane<'static> = Lane {
    kind: ANALYZE_RECEIPT,
    only: true,
};
const MAIN_LANE: Lane<'static> = Lane {
    kind: ANALYZE_RECEIPT,
    only: false,
};
const MAX_NOTIFY_ATTEMPTS: i64 = 10;
const MAX_RATE_LIMITED_ATTEMPTS: i64 = 50;

/// Why an item could not be done now.
#[derive(Debug)]
pub(crate) enum WorkError {
    /// Try again later.
    Later(String),
    /// Try again after this long, as the other side asked (Telegram's rate limit).
    RetryAfter(Duration),
    /// Will never work; give up on the item.
    Never(String),
    /// Try again at this time (epoch ms), not before: the receiver said when.
    RetryAt(i64, String),
}

impl From<AppError> for WorkError {
    fn from(e: AppError) -> Self {
        WorkError::Later(e.to_string())
    }
}

impl From<mrjbot_db::DbError> for WorkError {
    fn from(e: mrjbot_db::DbError) -> Self {
        WorkError::Later(e.to_string())
    }
}

fn backoff(attempts: i64) -> i64 {
    // 2 s, 4 s, 8 s ... capped at 10 minutes.
    let secs = 1i64 << attempts.clamp(1, 10);
    secs.min(600) * 1000
}

impl App {
    /// Nudges the workers: something was queued in this process.
    pub(crate) fn wake_outbox(&self) {
        for lane in &self.inner.outbox_wake {
            lane.notify_one();
        }
    }

    /// Runs the outbox workers until the task is dropped: receipt analysis (OCR, seconds
    /// per picture) has a lane of its own so it never holds up deliveries and notices,
    /// which keep their order in the other lane.
    pub async fn run_outbox(self) {
        let ocr = self.clone().run_outbox_lane(OCR_LANE, 0);
        let rest = self.run_outbox_lane(MAIN_LANE, 1);
        tokio::join!(ocr, rest);
    }

    async fn run_outbox_lane(self, lane: Lane<'static>, wake: usize) {
        let worker = format!("w{}-{wake}", std::process::id());
        loop {
            match self.outbox_step_in(lane, &worker).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "outbox: claiming work failed"),
            }
            let wait = match self.outbox_next_due(lane).await {
                Some(due) => {
                    Duration::from_millis((due - self.now().millis()).clamp(20, 1_000) as u64)
                }
                None => Duration::from_secs(1),
            };
            let _ = tokio::time::timeout(wait, self.inner.outbox_wake[wake].notified()).await;
        }
    }

    async fn outbox_next_due(&self, lane: Lane<'_>) -> Option<i64> {
        let mut c = self.db().read().await.ok()?;
        repo::outbox_next_due(c.conn(), lane).await.ok().flatten()
    }

    /// Claims and does one due item of any kind; false when nothing was due.
    pub async fn outbox_step(&self, worker: &str) -> AppResult<bool> {
        if self.outbox_step_in(MAIN_LANE, worker).await? {
            return Ok(true);
        }
        self.outbox_step_in(OCR_LANE, worker).await
    }

    async fn outbox_step_in(&self, lane: Lane<'_>, worker: &str) -> AppResult<bool> {
        let now = self.now().millis();
        let item = {
            let mut tx = self.db().begin().await?;
            let item = repo::claim(tx.conn(), lane, worker, now, LEASE_MS).await?;
            tx.commit().await?;
            item
        };
        let Some(item) = item else { return Ok(false) };
        let result = match item.kind.as_str() {
            PROVISION => self.provision(&item).await,
            NOTIFY => self.deliver_notice(&item).await,
            ANALYZE_RECEIPT => self.analyze_receipt_item(&item).await,
            crate::support::tickets::TICKET_NOTICE => self.deliver_ticket_notice(&item).await,
            other => Err(WorkError::Never(format!("unknown outbox kind `{other}`"))),
        };
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        match result {
            Ok(()) => repo::outbox_done(tx.conn(), item.id, now).await?,
            Err(WorkError::Later(e)) => {
                let give_up = item.kind == NOTIFY && item.attempts >= MAX_NOTIFY_ATTEMPTS;
                tracing::info!(id = item.id, kind = %item.kind, attempts = item.attempts, error = %e, "outbox: will retry");
                repo::outbox_retry(
                    tx.conn(),
                    item.id,
                    &e,
                    now + backoff(item.attempts),
                    give_up,
                )
                .await?;
            }
            Err(WorkError::RetryAfter(d)) => {
                // Being rate limited says nothing about the notice: it gets more rounds.
                let give_up = item.attempts >= MAX_RATE_LIMITED_ATTEMPTS;
                let wait = i64::try_from(d.as_millis())
                    .unwrap_or(i64::MAX / 4)
                    .max(1_000);
                tracing::info!(id = item.id, kind = %item.kind, wait_ms = wait, "outbox: rate limited");
                repo::outbox_retry(
                    tx.conn(),
                    item.id,
                    &format!("rate limited; retry after {d:?}"),
                    now.saturating_add(wait),
                    give_up,
                )
                .await?;
            }
            Err(WorkError::RetryAt(at, e)) => {
                repo::outbox_retry(tx.conn(), item.id, &e, at, false).await?;
            }
            Err(WorkError::Never(e)) => {
                tracing::warn!(id = item.id, kind = %item.kind, error = %e, "outbox: giving up");
                repo::outbox_retry(tx.conn(), item.id, &e, now, true).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Delivers a paid order: creates, upgrades, renews or tops up the subscription.
    async fn provision(&self, item: &OutboxRow) -> Result<(), WorkError> {
        let payload: Value =
            serde_json::from_str(&item.payload).map_err(|e| WorkError::Never(e.to_string()))?;
        let order_id = payload["order_id"]
            .as_i64()
            .ok_or_else(|| WorkError::Never("no order_id".into()))?;
        let now = self.now();
        let settings = self.payment_settings().await?;
        let referral = self.shop_settings().await?.referral;
        let mut tx = self.db().begin().await?;
        let Some(order) = repo::get_order(tx.conn(), order_id, true).await? else {
            return Err(WorkError::Never(format!("order {order_id} is gone")));
        };
        if order.fulfilled_at.is_some() || order.status != "paid" {
            repo::outbox_done(tx.conn(), item.id, now.millis()).await?;
            tx.commit().await?;
            return Ok(());
        }
        let kind = OrderKind::parse(&order.kind).map_err(|e| WorkError::Never(e.message))?;
        let plan = match order.plan_id {
            Some(p) => plans_repo::get(tx.conn(), p).await?,
            None => None,
        };
        let region = plan.as_ref().and_then(|p| p.region.clone());
        let serving = nodes_repo::serving_count(tx.conn(), region.as_deref()).await?;
        if serving == 0 {
            let paid_at = order.paid_at.unwrap_or(order.created_at);
            if now.millis() - paid_at < i64::from(settings.provision_give_up_hours) * 3_600_000 {
                return Err(WorkError::Later(format!(
                    "no serving node in region {}",
                    region.as_deref().unwrap_or("(any)")
                )));
            }
            return self.give_up_and_refund(tx, &order, item.id).await;
        }
        let sub_id = match kind {
            OrderKind::Purchase => {
                let Some(plan) = plan else {
                    return Err(WorkError::Never("the order's plan was deleted".into()));
                };
                let (_, terms) = self.plan_terms(plan.id).await?;
                let temp = match order.subscription_id {
                    Some(s) => subs_repo::get_for_update(tx.conn(), s).await?,
                    None => None,
                };
                match temp.filter(|t| t.status == SubscriptionStatus::Temporary.as_str()) {
                    Some(mut t) => {
                        // The customer keeps the link and credentials they already use.
                        let start = if plan.start_on_first_use {
                            Start::OnFirstUse
                        } else {
                            Start::Now
                        };
                        let mut st = SubscriptionState::new(terms, start, now)
                            .map_err(|e| WorkError::Never(e.message))?;
                        st.used = Bytes::from_i64(t.used_bytes);
                        st.lifetime_used = Bytes::from_i64(t.lifetime_used_bytes);
                        crate::subscriptions::apply_state(&mut t, st);
                        t.updated_at = now.millis();
                        if !subs_repo::update_guarded(tx.conn(), &t).await? {
                            return Err(WorkError::Later(
                                "the temporary subscription changed meanwhile".into(),
                            ));
                        }
                        t.id
                    }
                    None => {
                        let start = if plan.start_on_first_use {
                            Start::OnFirstUse
                        } else {
                            Start::Now
                        };
                        let st = SubscriptionState::new(terms, start, now)
                            .map_err(|e| WorkError::Never(e.message))?;
                        let row =
                            crate::subscriptions::new_row(order.user_id, &plan, st, None, now);
                        subs_repo::insert(tx.conn(), &row).await?
                    }
                }
            }
            OrderKind::Renewal | OrderKind::Addon => {
                let sid = order
                    .subscription_id
                    .ok_or_else(|| WorkError::Never("the subscription was deleted".into()))?;
                let Some(mut row) = subs_repo::get_for_update(tx.conn(), sid).await? else {
                    return self.give_up_and_refund(tx, &order, item.id).await;
                };
                let st = crate::subscriptions::state_of(&row);
                let next = if kind == OrderKind::Renewal {
                    let plan_id = order
                        .plan_id
                        .ok_or_else(|| WorkError::Never("renewal without a plan".into()))?;
                    let (_, terms) = self.plan_terms(plan_id).await?;
                    row.plan_id = Some(plan_id);
                    st.renew(terms, now)
                } else {
                    let details: Value = order
                        .details
                        .as_deref()
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    let bytes = details["addon_bytes"]
                        .as_i64()
                        .ok_or_else(|| WorkError::Never("add-on without bytes".into()))?;
                    st.add_data(Bytes::from_i64(bytes), now)
                };
                match next {
                    Ok(next) => crate::subscriptions::apply_state(&mut row, next),
                    // The subscription cannot take it (e.g. disabled by staff): money back.
                    Err(_) => return self.give_up_and_refund(tx, &order, item.id).await,
                }
                row.updated_at = now.millis();
                if !subs_repo::update_guarded(tx.conn(), &row).await? {
                    return Err(WorkError::Later(
                        "the subscription changed meanwhile".into(),
                    ));
                }
                sid
            }
            OrderKind::Topup => sid_none(),
        };
        if !repo::set_order_fulfilled(
            tx.conn(),
            order.id,
            (sub_id != 0).then_some(sub_id),
            now.millis(),
        )
        .await?
        {
            return Err(WorkError::Later("the order changed meanwhile".into()));
        }
        self.settle_referral(tx.conn(), &order, &referral, now.millis())
            .await?;
        self.notify(
            tx.conn(),
            order.user_id,
            "order-delivered",
            json!({ "order": order.id, "subscription": sub_id }),
            &format!("delivered:{}", order.id),
        )
        .await?;
        repo::outbox_done(tx.conn(), item.id, now.millis()).await?;
        let changes: Vec<Changed> = if sub_id != 0 {
            vec![Changed::Sub(sub_id)]
        } else {
            Vec::new()
        };
        self.commit_changes(tx, &changes).await?;
        self.wake_outbox();
        tracing::info!(order = order.id, subscription = sub_id, "order delivered");
        Ok(())
    }

    /// Fails an undeliverable paid order and puts its amount in the wallet, once.
    async fn give_up_and_refund(
        &self,
        mut tx: mrjbot_db::Tx,
        order: &mrjbot_db::money::OrderRow,
        item_id: i64,
    ) -> Result<(), WorkError> {
        let now = self.now().millis();
        let reason = "could not be delivered in time; refunded to the wallet";
        let mut changes = Vec::new();
        if repo::set_order_failed(tx.conn(), order.id, reason, now).await? {
            if order.amount_minor > 0 {
                repo::ledger_append(
                    tx.conn(),
                    &LedgerRow {
                        note: Some(reason.into()),
                        ..ledger_entry(
                            order.user_id,
                            order.amount_minor,
                            &order.currency,
                            "undelivered_refund",
                            Some(("order", order.id)),
                            now,
                        )
                    },
                )
                .await?;
            }
            if let Some(sid) = order
                .subscription_id
                .filter(|_| order.kind == OrderKind::Purchase.as_str())
            {
                changes.extend(self.disable_subscription_in(tx.conn(), sid).await?);
            }
            let money = Money {
                amount_minor: order.amount_minor,
                currency: Currency::parse(&order.currency)
                    .map_err(|e| WorkError::Never(e.message))?,
            };
            self.notify(
                tx.conn(),
                order.user_id,
                "order-failed-refunded",
                json!({ "order": order.id, "amount": money.to_string() }),
                &format!("failed:{}", order.id),
            )
            .await?;
            tracing::warn!(
                order = order.id,
                "order could not be delivered; refunded to the wallet"
            );
        }
        repo::outbox_done(tx.conn(), item_id, now).await?;
        self.commit_changes(tx, &changes).await?;
        self.wake_outbox();
        Ok(())
    }

    /// Delivers a queued notice: resolves who reads it (the customer's chat and language,
    /// or the staff chat) and hands it to the notifier (the bot). Without a notifier,
    /// keyed text still goes out as plain text through the Bot API client; other notices
    /// are recorded only. Someone who blocked the bot is not asked again.
    async fn deliver_notice(&self, item: &OutboxRow) -> Result<(), WorkError> {
        let (target, notice) = parse_notice(&item.payload).map_err(WorkError::Never)?;
        let to = match target {
            NoticeTarget::Customer { user_id } => {
                let Some(user) = users_repo::get(self.db().read().await?.conn(), user_id).await?
                else {
                    return Err(WorkError::Never("the customer is gone".into()));
                };
                let Some(chat_id) = user.telegram_id else {
                    tracing::info!(
                        user = user_id,
                        "the customer has no Telegram chat; notice recorded only"
                    );
                    return Ok(());
                };
                Recipient {
                    chat_id,
                    lang: Lang::parse(&user.language).unwrap_or(Lang::Fa),
                    user_id: Some(user_id),
                }
            }
            NoticeTarget::Staff => {
                let Some((chat_id, lang)) = self.staff_chat() else {
                    tracing::info!("no staff chat is configured; staff notice recorded only");
                    return Ok(());
                };
                Recipient {
                    chat_id,
                    lang,
                    user_id: None,
                }
            }
        };
        if let Some(n) = self.notifier() {
            return match n.notify(&to, &notice).await {
                Ok(()) => Ok(()),
                Err(NotifyError::RetryAfter(d)) => Err(WorkError::RetryAfter(d)),
                Err(NotifyError::Blocked) => {
                    tracing::info!(
                        chat = to.chat_id,
                        user = ?to.user_id,
                        "the recipient blocked the bot; notice dropped"
                    );
                    Ok(())
                }
                Err(NotifyError::Later(e)) => Err(WorkError::Later(e)),
                Err(NotifyError::Never(e)) => Err(WorkError::Never(e)),
            };
        }
        let Notice::Text { key, args } = &notice else {
            tracing::info!(
                chat = to.chat_id,
                ?notice,
                "no notifier; notice recorded only"
            );
            return Ok(());
        };
        let arg_refs: Vec<(&str, mrjbot_i18n::Arg<'_>)> = args
            .iter()
            .map(|(k, v)| (k.as_str(), mrjbot_i18n::Arg::Str(v.as_str().into())))
            .collect();
        let text = mrjbot_i18n::t_args(to.lang, key, &arg_refs);
        match self.gateways().telegram.as_ref() {
            Some(tg) => match tg.send_message(to.chat_id, &text).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_retryable() => Err(WorkError::Later(e.to_string())),
                Err(e) => Err(WorkError::Never(e.to_string())),
            },
            None => {
                tracing::info!(
                    chat = to.chat_id,
                    key = %key,
                    "no channel to reach the reader; notice recorded only"
                );
                Ok(())
            }
        }
    }
}

/// The stored form of a queued notice: the target and the notice side by side,
/// `{"to":"customer","user_id":7,"notice":{"type":"text",...}}` or
/// `{"to":"staff","notice":{...}}`.
#[derive(Serialize, Deserialize)]
struct NoticePayload {
    #[serde(flatten)]
    target: NoticeTarget,
    notice: Notice,
}

/// Queues `notice` for `target` in the caller's transaction, once per `dedupe_key`
/// (a key seen before, even long done, queues nothing). True when queued now.
pub(crate) async fn enqueue_notice(
    c: Conn<'_>,
    target: NoticeTarget,
    notice: &Notice,
    dedupe_key: &str,
    now: i64,
) -> AppResult<bool> {
    let payload = serde_json::to_string(&NoticePayload {
        target,
        notice: notice.clone(),
    })
    .map_err(AppError::internal)?;
    Ok(repo::enqueue(c, NOTIFY, &payload, dedupe_key, now).await?)
}

/// Reads a queued notice; payloads queued before notices were typed
/// (`{"user_id","key","args"}`) are text notices to that customer.
fn parse_notice(payload: &str) -> Result<(NoticeTarget, Notice), String> {
    let value: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    if value.get("notice").is_some() {
        let p: NoticePayload = serde_json::from_value(value).map_err(|e| e.to_string())?;
        return Ok((p.target, p.notice));
    }
    let user_id = value["user_id"]
        .as_i64()
        .ok_or_else(|| "a notice without a reader".to_owned())?;
    let key = value["key"]
        .as_str()
        .ok_or_else(|| "a notice without a message key".to_owned())?;
    Ok((
        NoticeTarget::Customer { user_id },
        Notice::Text {
            key: key.to_owned(),
            args: text_args(&value["args"]),
        },
    ))
}

/// Fluent arguments from a JSON object: strings as they are, anything else as JSON text.
pub(crate) fn text_args(args: &Value) -> Vec<(String, String)> {
    args.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn sid_none() -> i64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_old_payloads_read_as_text() {
        let n = Notice::DataWarning {
            subscription_id: 4,
            percent: 80,
        };
        let stored = serde_json::to_string(&NoticePayload {
            target: NoticeTarget::Customer { user_id: 9 },
            notice: n.clone(),
        })
        .unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Value>(&stored).ok(),
            Some(json!({"to": "customer", "user_id": 9,
                        "notice": {"type": "data_warning", "subscription_id": 4, "percent": 80}}))
        );
        assert_eq!(
            parse_notice(&stored),
            Ok((NoticeTarget::Customer { user_id: 9 }, n))
        );
        let staff = r#"{"to":"staff","notice":{"type":"receipt_for_review","payment_id":3}}"#;
        assert_eq!(
            parse_notice(staff),
            Ok((
                NoticeTarget::Staff,
                Notice::ReceiptForReview { payment_id: 3 }
            ))
        );
        let old = r#"{"user_id":5,"key":"pay-approved","args":{"amount":"10 USD","order":12}}"#;
        assert_eq!(
            parse_notice(old),
            Ok((
                NoticeTarget::Customer { user_id: 5 },
                Notice::Text {
                    key: "pay-approved".into(),
                    args: vec![
                        ("amount".into(), "10 USD".into()),
                        ("order".into(), "12".into())
                    ],
                }
            ))
        );
        assert!(parse_notice(r#"{"key":"x"}"#).is_err());
        assert!(parse_notice(r#"{"to":"nobody","notice":{"type":"text"}}"#).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff(1), 2_000);
        assert_eq!(super::backoff(3), 8_000);
        assert_eq!(super::backoff(50), 600_000);
    }
}
