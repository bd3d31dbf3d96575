//! The bot as the app's notifier: what a reminder, a payment result, a receipt for review
//! or a ticket answer looks like, with the buttons that act on it. Errors are mapped so the
//! outbox knows whether to retry (429, network), stop (blocked) or give up.

use crate::ShopBot;
use crate::cb::Cb;
use crate::customer::{link_of, send_link};
use crate::text::{self, bytes, days, esc, money, tr, tra};
use crate::ui::Kb;
use mrjbot_app::Actor;
use mrjbot_app::notify::{Notice, Notifier, NotifyError, NotifyFuture, Recipient};
use mrjbot_domain::Money;
use mrjbot_i18n::{Arg, Lang};
use teloxide::prelude::*;
use teloxide::types::{InputFile, ParseMode};
use teloxide::{ApiError, RequestError};

impl Notifier for ShopBot {
    fn notify<'a>(&'a self, to: &'a Recipient, notice: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(self.deliver(to, notice))
    }
}

/// Maps a Bot API failure to what the outbox should do about it.
pub(crate) fn classify(e: RequestError) -> NotifyError {
    match e {
        RequestError::RetryAfter(s) => NotifyError::RetryAfter(s.duration()),
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots,
        ) => NotifyError::Blocked,
        RequestError::Api(ApiError::ChatNotFound) => NotifyError::Blocked,
        RequestError::Network(e) => NotifyError::Later(e.to_string()),
        RequestError::Io(e) => NotifyError::Later(e.to_string()),
        RequestError::InvalidJson { raw, .. } => NotifyError::Later(format!("bad answer: {raw}")),
        RequestError::MigrateToChatId(id) => NotifyError::Never(format!("the chat moved to {id}")),
        RequestError::Api(e) => NotifyError::Never(e.to_string()),
    }
}

impl ShopBot {
    /// Sends one HTML message and reports failures as they are.
    pub(crate) async fn send_html(
        &self,
        chat: i64,
        html: &str,
        kb: Option<Kb>,
    ) -> Result<Message, RequestError> {
        let mut req = self
            .bot()
            .send_message(ChatId(chat), html)
            .parse_mode(ParseMode::Html)
            .link_preview_options(crate::runtime::no_preview());
        if let Some(k) = kb {
            req = req.reply_markup(k.markup());
        }
        req.await
    }

    async fn deliver(&self, to: &Recipient, n: &Notice) -> Result<(), NotifyError> {
        let l = to.lang;
        let sys = Actor::system("bot");
        match n {
            Notice::Text { key, args } if key == "order-delivered" => {
                let sub_id = arg_i64(args, "subscription");
                let order_id = arg_i64(args, "order").unwrap_or(0);
                match sub_id.filter(|s| *s != 0) {
                    Some(sid) => {
                        let sub = self.subscription(sid).await?;
                        let head = tra(l, "bot-delivered", &[("order", order_id.into())]);
                        self.send_html(to.chat_id, &head, None)
                            .await
                            .map_err(classify)?;
                        send_link(self, to.chat_id, l, &sub).await;
                        Ok(())
                    }
                    None => {
                        let text = tra(l, "bot-delivered-wallet", &[("order", order_id.into())]);
                        let kb = Kb::new().button(tr(l, "bot-btn-wallet"), Cb::Wallet);
                        self.post(to.chat_id, &text, Some(kb)).await
                    }
                }
            }
            Notice::Text { key, args } => {
                // Amounts arrive as "1500000 IRR": shown as people read them (toman...).
                let shown: Vec<(String, String)> = args
                    .iter()
                    .map(|(k, v)| match Money::parse(v) {
                        Ok(m) if v.contains(' ') => (k.clone(), money(l, m)),
                        _ => (k.clone(), v.clone()),
                    })
                    .collect();
                let refs: Vec<(&str, Arg<'_>)> = shown
                    .iter()
                    .map(|(k, v)| (k.as_str(), Arg::Str(v.as_str().into())))
                    .collect();
                let text = esc(&mrjbot_i18n::t_args(l, key, &refs));
                let kb = to
                    .user_id
                    .is_some()
                    .then(|| Kb::new().button(tr(l, "bot-btn-menu"), Cb::Menu));
                self.post(to.chat_id, &text, kb).await
            }
            Notice::ExpiryReminder {
                subscription_id,
                days_left,
            } => {
                let sub = self.subscription(*subscription_id).await?;
                let date = sub
                    .expires_at
                    .map(|e| text::date(l, e.millis()))
                    .unwrap_or_default();
                let text = tra(
                    l,
                    "bot-remind-expiry",
                    &[
                        ("id", sub.id.into()),
                        ("days", days(l, *days_left).into()),
                        ("date", date.into()),
                    ],
                );
                let kb = Kb::new()
                    .button(tr(l, "bot-btn-renew"), Cb::Renew(sub.id))
                    .button(tr(l, "bot-btn-services"), Cb::Sub(sub.id));
                self.post(to.chat_id, &text, Some(kb)).await
            }
            Notice::DataWarning {
                subscription_id,
                percent,
            } => {
                let sub = self.subscription(*subscription_id).await?;
                let key = if *percent >= 100 {
                    "bot-remind-data-out"
                } else {
                    "bot-remind-data"
                };
                let left = sub
                    .data_limit_bytes
                    .map(|lim| (lim - sub.used_bytes).max(0));
                let text = tra(
                    l,
                    key,
                    &[
                        ("id", sub.id.into()),
                        ("percent", i64::from(*percent).into()),
                        ("left", bytes(l, left).into()),
                    ],
                );
                let kb = Kb::new()
                    .button(tr(l, "bot-btn-traffic"), Cb::Traffic(sub.id))
                    .button(tr(l, "bot-btn-renew"), Cb::Renew(sub.id));
                self.post(to.chat_id, &text, Some(kb)).await
            }
            Notice::TicketAnswer {
                ticket_id,
                message_id,
            } => {
                let (_, body) = self.ticket_message(*ticket_id, *message_id).await?;
                let text = tra(
                    l,
                    "bot-ticket-answered",
                    &[("id", (*ticket_id).into()), ("body", esc(&body).into())],
                );
                let kb = Kb::new().row(vec![
                    (tr(l, "bot-btn-reply"), Cb::TicketReply(*ticket_id)),
                    (tr(l, "bot-btn-close-ticket"), Cb::TicketClose(*ticket_id)),
                ]);
                self.post(to.chat_id, &text, Some(kb)).await
            }
            Notice::TicketForStaff {
                ticket_id,
                message_id,
            } => {
                let (t, body) = self.ticket_message(*ticket_id, *message_id).await?;
                let who = self.customer_label(t.ticket.user_id).await;
                let text = tra(
                    l,
                    "bot-staff-ticket",
                    &[
                        ("marker", format!("#T{ticket_id}").into()),
                        ("customer", who.into()),
                        ("subject", esc(&t.ticket.subject).into()),
                        ("body", esc(&body).into()),
                    ],
                );
                let kb = Kb::new().row(vec![
                    (tr(l, "bot-btn-answer"), Cb::Answer(*ticket_id)),
                    (tr(l, "bot-btn-close-ticket"), Cb::TicketClose(*ticket_id)),
                ]);
                self.post(to.chat_id, &text, Some(kb)).await
            }
            Notice::ReceiptForReview { payment_id } => {
                self.receipt_for_review(to, *payment_id).await
            }
            Notice::OrderPaid {
                order_id,
                payment_id,
            } => {
                let p = self
                    .app()
                    .get_payment(&sys, *payment_id)
                    .await
                    .map_err(|e| NotifyError::Never(e.to_string()))?;
                let amount = Money::new(p.amount_minor, p.currency)
                    .map(|m| money(l, m))
                    .unwrap_or_default();
                let who = self.customer_label(p.user_id).await;
                let text = tra(
                    l,
                    "bot-staff-order-paid",
                    &[
                        ("order", (*order_id).into()),
                        ("amount", amount.into()),
                        (
                            "method",
                            tr(l, &format!("bot-method-{}", p.method.as_str())).into(),
                        ),
                        ("customer", who.into()),
                    ],
                );
                self.post(to.chat_id, &text, None).await
            }
            Notice::Broadcast { body, .. } => self.post(to.chat_id, &esc(body), None).await,
        }
    }

    /// Sends one HTML message as a delivery attempt.
    async fn post(&self, chat: i64, html: &str, kb: Option<Kb>) -> Result<(), NotifyError> {
        self.send_html(chat, html, kb)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// A subscription a notice is about (gone: never deliverable).
    async fn subscription(
        &self,
        id: i64,
    ) -> Result<mrjbot_app::subscriptions::SubscriptionView, NotifyError> {
        self.app()
            .get_subscription(&Actor::system("bot"), id)
            .await
            .map_err(|e| NotifyError::Never(e.to_string()))
    }

    /// A ticket and the body of one of its messages.
    async fn ticket_message(
        &self,
        ticket_id: i64,
        message_id: i64,
    ) -> Result<(mrjbot_app::support::tickets::TicketThread, String), NotifyError> {
        let t = self
            .app()
            .get_ticket(&Actor::system("bot"), ticket_id)
            .await
            .map_err(|e| NotifyError::Never(e.to_string()))?;
        let body = t
            .messages
            .iter()
            .find(|m| m.id == message_id)
            .map(|m| m.body.clone())
            .unwrap_or_default();
        Ok((t, body))
    }

    /// "Ali (@ali, #12)" for staff messages.
    pub(crate) async fn customer_label(&self, user_id: i64) -> String {
        let sys = Actor::system("bot");
        match self.app().get_user(&sys, user_id).await {
            Ok(u) => {
                let name = u
                    .display_name
                    .clone()
                    .or(u.username.clone())
                    .unwrap_or_default();
                format!("{} (#{user_id})", esc(&name))
            }
            Err(_) => format!("#{user_id}"),
        }
    }

    /// The caption staff see on a receipt: amount, card, customer, what the analysis found.
    pub(crate) async fn receipt_caption(&self, l: Lang, payment_id: i64) -> Option<(String, bool)> {
        let sys = Actor::system("bot");
        let p = self.app().get_payment(&sys, payment_id).await.ok()?;
        let receipts = self.app().list_receipts(&sys, payment_id).await.ok()?;
        let r = receipts.last();
        let amount = Money::new(p.amount_minor, p.currency)
            .map(|m| money(l, m))
            .unwrap_or_default();
        let card = p
            .card
            .as_ref()
            .map(|c| {
                format!(
                    "{} ({})",
                    c.card_number
                        .chars()
                        .rev()
                        .take(4)
                        .collect::<String>()
                        .chars()
                        .rev()
                        .collect::<String>(),
                    esc(&c.owner_name)
                )
            })
            .unwrap_or_default();
        let risk = match r {
            Some(r) if r.analyzed => {
                let verdict = r
                    .risk_verdict
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                let emoji = match verdict.as_str() {
                    "low" => "🟢",
                    "medium" => "🟡",
                    _ => "🔴",
                };
                format!(
                    "{emoji} {} {}{}",
                    tr(l, &format!("bot-risk-{verdict}")),
                    r.risk_score.map(|s| format!("({s})")).unwrap_or_default(),
                    if r.risk_reasons.is_empty() {
                        String::new()
                    } else {
                        format!("\n{}", esc(&r.risk_reasons.join(", ")))
                    }
                )
            }
            _ => tr(l, "bot-risk-pending"),
        };
        let who = self.customer_label(p.user_id).await;
        let mut caption = tra(
            l,
            "bot-staff-receipt",
            &[
                ("marker", format!("#R{payment_id}").into()),
                ("order", p.order_id.into()),
                ("amount", amount.into()),
                ("card", card.into()),
                ("customer", who.into()),
                ("risk", risk.into()),
            ],
        );
        let open = matches!(p.status.as_str(), "pending" | "created");
        if !open {
            let by = match p.approved_by {
                Some(u) => self.customer_label(u).await,
                None => String::new(),
            };
            let line = match p.status.as_str() {
                "approved" | "refunded" => tra(l, "bot-decided-approved", &[("by", by.into())]),
                "rejected" => tra(
                    l,
                    "bot-decided-rejected",
                    &[(
                        "reason",
                        esc(p.rejected_reason.as_deref().unwrap_or("")).into(),
                    )],
                ),
                other => tra(l, "bot-decided-other", &[("status", other.into())]),
            };
            caption.push_str("\n\n");
            caption.push_str(&line);
        }
        Some((caption, open))
    }

    async fn receipt_for_review(&self, to: &Recipient, payment_id: i64) -> Result<(), NotifyError> {
        let l = to.lang;
        let sys = Actor::system("bot");
        let receipts = self
            .app()
            .list_receipts(&sys, payment_id)
            .await
            .map_err(|e| NotifyError::Never(e.to_string()))?;
        let Some(r) = receipts.last() else {
            return Err(NotifyError::Never("no receipt".into()));
        };
        // Wait (a little) for the analysis so staff see the verdict with the picture.
        let age = self.app().now().millis() - r.created_at.millis();
        if !r.analyzed && age < 90_000 {
            return Err(NotifyError::Later("the receipt is being analysed".into()));
        }
        let Some((caption, open)) = self.receipt_caption(l, payment_id).await else {
            return Err(NotifyError::Never("payment gone".into()));
        };
        let kb = if open {
            review_keyboard(l, payment_id)
        } else {
            Kb::new()
        };
        let image = self.app().receipt_image(&sys, r.id).await.ok();
        let sent = match image {
            Some((_, bytes)) => self
                .bot()
                .send_photo(
                    ChatId(to.chat_id),
                    InputFile::memory(bytes).file_name("receipt.jpg"),
                )
                .caption(caption.clone())
                .parse_mode(ParseMode::Html)
                .reply_markup(kb.clone().markup())
                .await
                .map(|_| ()),
            None => self
                .send_html(to.chat_id, &caption, Some(kb.clone()))
                .await
                .map(|_| ()),
        };
        match sent {
            // A picture Telegram will not take still reaches staff as text.
            Err(RequestError::Api(ApiError::PhotoAsInputFileRequired | ApiError::WrongFileId))
            | Err(RequestError::Api(ApiError::Unknown(_))) => self
                .send_html(to.chat_id, &caption, Some(kb))
                .await
                .map(|_| ())
                .map_err(classify),
            other => other.map_err(classify),
        }
    }

    /// The link of a subscription for staff views.
    pub(crate) fn sub_link(&self, sub: &mrjbot_app::subscriptions::SubscriptionView) -> String {
        link_of(self, sub).unwrap_or_default()
    }
}

/// Approve / Reject under a receipt.
pub(crate) fn review_keyboard(l: Lang, payment_id: i64) -> Kb {
    Kb::new().row(vec![
        (tr(l, "bot-btn-approve"), Cb::Approve(payment_id)),
        (tr(l, "bot-btn-reject"), Cb::Reject(payment_id)),
    ])
}

fn arg_i64(args: &[(String, String)], key: &str) -> Option<i64> {
    args.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
}
