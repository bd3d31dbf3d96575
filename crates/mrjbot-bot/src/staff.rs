//! Staff in Telegram: Approve / Reject under receipts (exactly once, whoever taps first),
//! answering tickets by replying to the relayed message, /stats, /payments, /user lookup
//! with ban/unban, /nodes and broadcasts with live progress. Every action is a service
//! call as the staff member, so roles are checked where they always are.

use crate::ShopBot;
use crate::cb::{Cb, RejectReason, Seg};
use crate::customer::menu;
use crate::notifier::review_keyboard;
use crate::runtime::{Ctx, Note};
use crate::state::{Awaiting, Dialogue};
use crate::text::{self, bytes, esc, money, num, tr, tra};
use crate::ui::{Kb, Screen};
use mrjbot_app::ListParams;
use mrjbot_app::money::{PaymentQuery, RejectRequest};
use mrjbot_app::nodes::NodeQuery;
use mrjbot_app::support::broadcasts::{BroadcastStatus, NewBroadcast, Segment};
use mrjbot_app::support::tickets::{NewTicketMessage, TicketQuery, TicketStatus};
use mrjbot_domain::Money;
use mrjbot_i18n::Lang;
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::ParseMode;
use teloxide::{ApiError, RequestError};

/// A message in the staff chat: commands, and replies to relayed tickets (`#T12`) or to
/// a rejection prompt (`#R34`).
pub(crate) async fn on_group_message(bot: &ShopBot, ctx: Ctx, m: &Message) {
    let Some(text) = m.text().map(str::trim) else {
        return;
    };
    if let Some(cmd) = text.strip_prefix('/') {
        let (name, args) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
        let name = name.split('@').next().unwrap_or(name).to_ascii_lowercase();
        let mut d = bot.dialogue(ctx.chat).await;
        command(bot, &ctx, &mut d, &name, args.trim()).await;
        return;
    }
    let Some(replied) = m.reply_to_message() else {
        return;
    };
    let quoted = replied.text().or(replied.caption()).unwrap_or_default();
    if let Some(t) = marker(quoted, "#T") {
        answer_ticket(bot, &ctx, t, text).await;
    } else if let Some(p) = marker(quoted, "#R") {
        reject(bot, &ctx, p, text.to_owned()).await;
    }
}

/// The number after `tag` in a message we sent (`#T12`).
fn marker(text: &str, tag: &str) -> Option<i64> {
    let at = text.find(tag)? + tag.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn answer_ticket(bot: &ShopBot, ctx: &Ctx, ticket_id: i64, body: &str) {
    let input = NewTicketMessage {
        body: body.to_owned(),
        attachment_file_id: None,
    };
    let reply = match bot
        .app()
        .post_ticket_message(&ctx.actor, ticket_id, input)
        .await
    {
        Ok(_) => tra(
            ctx.lang,
            "bot-staff-answer-sent",
            &[("id", ticket_id.into())],
        ),
        Err(e) => text::error(ctx.lang, &e),
    };
    bot.say(ctx.chat, &reply, None).await;
}

async fn reject(bot: &ShopBot, ctx: &Ctx, payment_id: i64, reason: String) {
    let reply = match bot
        .app()
        .reject_payment(&ctx.actor, payment_id, RejectRequest { reason })
        .await
    {
        Ok(_) => tra(ctx.lang, "bot-staff-rejected", &[("id", payment_id.into())]),
        Err(e) => text::error(ctx.lang, &e),
    };
    bot.say(ctx.chat, &reply, None).await;
}

/// A staff command (private chat or staff chat).
pub(crate) async fn command(bot: &ShopBot, ctx: &Ctx, d: &mut Dialogue, name: &str, args: &str) {
    let l = ctx.lang;
    if !ctx.is_staff() {
        if ctx.private {
            bot.say(ctx.chat, &tr(l, "bot-unknown-command"), None).await;
            menu(bot, ctx, true).await;
        } else {
            bot.say(ctx.chat, &tr(l, "bot-staff-only"), None).await;
        }
        return;
    }
    let screen = match name {
        "admin" | "start" | "menu" => admin_panel(l),
        "stats" => stats(bot, ctx).await,
        "payments" | "receipts" => queue(bot, ctx).await,
        "nodes" => nodes(bot, ctx).await,
        "tickets" => open_tickets(bot, ctx).await,
        "broadcast" => broadcast_start(bot, ctx).await,
        "user" | "find" => {
            if args.is_empty() {
                d.awaiting = Awaiting::UserQuery;
                bot.save_dialogue(ctx.chat, d).await;
                Screen::new(tr(l, "bot-staff-user-ask"), Kb::new())
            } else {
                lookup(bot, ctx, args).await
            }
        }
        "ban" | "unban" => match args.trim().trim_start_matches('#').parse::<i64>() {
            Ok(uid) => {
                let note = ban(bot, ctx, uid, name == "ban").await;
                if let Note::Alert(t) | Note::Toast(t) = note {
                    bot.say(ctx.chat, &t, None).await;
                }
                return;
            }
            Err(_) => Screen::new(tr(l, "bot-staff-ban-usage"), Kb::new()),
        },
        _ => Screen::new(
            tr(l, "bot-unknown-command"),
            Kb::new().button(tr(l, "bot-btn-admin"), Cb::Admin),
        ),
    };
    bot.send(ctx, screen).await;
}

/// Text typed by staff while the dialogue waits for it.
pub(crate) async fn typed(bot: &ShopBot, ctx: &Ctx, d: &mut Dialogue, text: &str) {
    let l = ctx.lang;
    let awaiting = std::mem::take(&mut d.awaiting);
    bot.save_dialogue(ctx.chat, d).await;
    match awaiting {
        Awaiting::BroadcastText { segment } => {
            let count = match seg_of(&segment) {
                Some(s) => bot
                    .app()
                    .preview_broadcast(&ctx.actor, s)
                    .await
                    .unwrap_or(0),
                None => 0,
            };
            d.draft = Some((segment, text.to_owned()));
            bot.save_dialogue(ctx.chat, d).await;
            let s = Screen::new(
                format!(
                    "{}\n\n{}",
                    tra(l, "bot-broadcast-confirm", &[("count", count.into())]),
                    esc(text)
                ),
                Kb::new().row(vec![
                    (tr(l, "bot-btn-send"), Cb::BroadcastSend),
                    (tr(l, "bot-btn-cancel"), Cb::Admin),
                ]),
            );
            bot.send(ctx, s).await;
        }
        Awaiting::StaffAnswer { ticket_id } => answer_ticket(bot, ctx, ticket_id, text).await,
        Awaiting::RejectReason { payment_id } => {
            reject(bot, ctx, payment_id, text.to_owned()).await
        }
        Awaiting::UserQuery => {
            let s = lookup(bot, ctx, text).await;
            bot.send(ctx, s).await;
        }
        _ => {}
    }
}

fn admin_panel(l: Lang) -> Screen {
    Screen::new(
        tr(l, "bot-admin-title"),
        Kb::new()
            .row(vec![
                (tr(l, "bot-btn-stats"), Cb::Stats),
                (tr(l, "bot-btn-queue"), Cb::Queue),
            ])
            .row(vec![
                (tr(l, "bot-btn-nodes"), Cb::Nodes),
                (tr(l, "bot-btn-broadcast"), Cb::Broadcast),
            ])
            .button(tr(l, "bot-btn-menu"), Cb::Menu),
    )
}

async fn stats(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let text = match bot.app().shop_stats(&ctx.actor).await {
        Ok(s) => {
            let sums = |v: &[Money]| {
                if v.is_empty() {
                    num(l, 0)
                } else {
                    v.iter()
                        .map(|m| money(l, *m))
                        .collect::<Vec<_>>()
                        .join(" · ")
                }
            };
            tra(
                l,
                "bot-stats",
                &[
                    ("customers", s.customers_total.into()),
                    ("new", s.customers_today.into()),
                    ("active", s.active_subscriptions.into()),
                    ("expiring", s.expiring_3d.into()),
                    ("today", sums(&s.revenue_today).into()),
                    ("month", sums(&s.revenue_month).into()),
                    ("review", s.awaiting_review.into()),
                    ("tickets", s.open_tickets.into()),
                    ("online", s.nodes_online.into()),
                    ("nodes", s.nodes_total.into()),
                ],
            )
        }
        Err(e) => text::error(l, &e),
    };
    Screen::new(text, Kb::new().back(l, Cb::Admin))
}

async fn queue(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let q = PaymentQuery {
        awaiting_review: Some(true),
        ..Default::default()
    };
    let params = ListParams {
        limit: Some(20),
        ..Default::default()
    };
    match bot.app().list_payments(&ctx.actor, q, params).await {
        Ok((ps, total)) if !ps.is_empty() => {
            let buttons = ps
                .iter()
                .map(|p| {
                    let amount = Money::new(p.amount_minor, p.currency)
                        .map(|m| money(l, m))
                        .unwrap_or_default();
                    (format!("🧾 #{} · {amount}", num(l, p.id)), Cb::Review(p.id))
                })
                .collect();
            Screen::new(
                tra(l, "bot-queue-title", &[("count", total.into())]),
                Kb::new().grid(buttons, 1).back(l, Cb::Admin),
            )
        }
        Ok(_) => Screen::new(tr(l, "bot-queue-empty"), Kb::new().back(l, Cb::Admin)),
        Err(e) => Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Admin)),
    }
}

async fn nodes(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let params = ListParams {
        limit: Some(100),
        ..Default::default()
    };
    let text = match bot
        .app()
        .list_nodes(&ctx.actor, NodeQuery::default(), &params)
        .await
    {
        Ok((ns, _)) if !ns.is_empty() => {
            let now = bot.app().now().millis();
            let mut s = tr(l, "bot-nodes-title");
            for n in ns {
                let emoji = match (n.is_enabled, n.status.as_str()) {
                    (false, _) => "⏸",
                    (_, "online") => "🟢",
                    (_, "degraded") => "🟡",
                    (_, "down") => "🔴",
                    _ => "⚪",
                };
                let seen = n
                    .last_heartbeat_at
                    .map(|t| {
                        tra(
                            l,
                            "bot-nodes-seen",
                            &[("secs", ((now - t.millis()) / 1000).max(0).into())],
                        )
                    })
                    .unwrap_or_default();
                s.push_str(&format!(
                    "\n{emoji} <b>{}</b> {} · {} {seen}",
                    esc(&n.name),
                    esc(n.region.as_deref().unwrap_or("")),
                    esc(&n.status)
                ));
            }
            s
        }
        Ok(_) => tr(l, "bot-nodes-none"),
        Err(e) => text::error(l, &e),
    };
    Screen::new(text, Kb::new().back(l, Cb::Admin))
}

async fn open_tickets(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let q = TicketQuery {
        status: Some(TicketStatus::Open),
        ..Default::default()
    };
    crate::customer::ticket_list(bot, ctx, q, Cb::Answer, Cb::Admin).await
}

fn seg_of(code: &str) -> Option<Segment> {
    Some(match code {
        "all" => Segment::All,
        "act" => Segment::Active,
        "exp" => Segment::Expired,
        "new" => Segment::NoPurchase,
        _ => return None,
    })
}

fn seg_code(s: Seg) -> &'static str {
    match s {
        Seg::All => "all",
        Seg::Active => "act",
        Seg::Expired => "exp",
        Seg::NoPurchase => "new",
    }
}

async fn broadcast_start(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let mut buttons = Vec::new();
    for (s, key) in [
        (Seg::All, "bot-seg-all"),
        (Seg::Active, "bot-seg-active"),
        (Seg::Expired, "bot-seg-expired"),
        (Seg::NoPurchase, "bot-seg-new"),
    ] {
        let count = match seg_of(seg_code(s)) {
            Some(seg) => match bot.app().preview_broadcast(&ctx.actor, seg).await {
                Ok(n) => n,
                Err(e) => return Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Admin)),
            },
            None => 0,
        };
        buttons.push((
            format!("{} ({})", tr(l, key), num(l, count)),
            Cb::BroadcastTo(s),
        ));
    }
    Screen::new(
        tr(l, "bot-broadcast-choose"),
        Kb::new().grid(buttons, 1).back(l, Cb::Admin),
    )
}

async fn broadcast_status(bot: &ShopBot, ctx: &Ctx, id: i64) -> Screen {
    let l = ctx.lang;
    match bot.app().get_broadcast(&ctx.actor, id).await {
        Ok(b) => {
            let text = tra(
                l,
                "bot-broadcast-progress",
                &[
                    ("id", b.id.into()),
                    (
                        "status",
                        tr(l, &format!("bot-broadcast-{}", status_word(b.status))).into(),
                    ),
                    ("sent", b.sent.into()),
                    ("failed", b.failed.into()),
                    ("blocked", b.blocked.into()),
                    ("pending", b.pending.into()),
                    ("total", b.total.into()),
                ],
            );
            let mut kb = Kb::new();
            if b.status == BroadcastStatus::Sending {
                kb = kb.button(tr(l, "bot-btn-refresh"), Cb::BroadcastStatus(id));
            }
            Screen::new(text, kb.back(l, Cb::Admin))
        }
        Err(e) => Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Admin)),
    }
}

async fn lookup(bot: &ShopBot, ctx: &Ctx, q: &str) -> Screen {
    let l = ctx.lang;
    match bot.app().lookup_customers(&ctx.actor, q.trim()).await {
        Ok(cards) if cards.len() == 1 => user_card(bot, ctx, cards[0].user_id).await,
        Ok(cards) if !cards.is_empty() => {
            let buttons = cards
                .iter()
                .map(|c| {
                    (
                        format!(
                            "#{} {}",
                            c.user_id,
                            c.display_name.clone().unwrap_or_default()
                        ),
                        Cb::User(c.user_id),
                    )
                })
                .collect();
            Screen::new(
                tr(l, "bot-staff-users-found"),
                Kb::new().grid(buttons, 1).back(l, Cb::Admin),
            )
        }
        Ok(_) => Screen::new(tr(l, "bot-staff-user-none"), Kb::new().back(l, Cb::Admin)),
        Err(e) => Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Admin)),
    }
}

async fn user_card(bot: &ShopBot, ctx: &Ctx, user_id: i64) -> Screen {
    let l = ctx.lang;
    let cards = match bot
        .app()
        .lookup_customers(&ctx.actor, &user_id.to_string())
        .await
    {
        Ok(c) => c,
        Err(e) => return Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Admin)),
    };
    let Some(c) = cards.into_iter().find(|c| c.user_id == user_id) else {
        return Screen::new(tr(l, "bot-staff-user-none"), Kb::new().back(l, Cb::Admin));
    };
    let wallet = if c.balances.is_empty() {
        num(l, 0)
    } else {
        c.balances
            .iter()
            .map(|m| money(l, *m))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let mut text = tra(
        l,
        "bot-staff-user",
        &[
            ("id", c.user_id.into()),
            ("name", esc(c.display_name.as_deref().unwrap_or("")).into()),
            (
                "username",
                esc(c.telegram_username.as_deref().unwrap_or("-")).into(),
            ),
            (
                "tg",
                c.telegram_id
                    .map(|t| t.to_string())
                    .unwrap_or_default()
                    .into(),
            ),
            ("status", esc(&c.status).into()),
            ("wallet", wallet.into()),
            ("points", c.points.into()),
            ("orders", c.paid_orders.into()),
        ],
    );
    for s in &c.subscriptions {
        text.push_str(&format!(
            "\n{} #{} {} / {} · {}",
            mrjbot_i18n::status_emoji(s.status.as_str()),
            s.id,
            bytes(l, Some(s.used_bytes)),
            bytes(l, s.data_limit_bytes),
            s.expires_at
                .map(|e| text::date(l, e.millis()))
                .unwrap_or_default()
        ));
        let link = bot.sub_link(s);
        if !link.is_empty() {
            text.push_str(&format!("\n<code>{}</code>", esc(&link)));
        }
    }
    let banned = c.status == "disabled";
    let kb = Kb::new()
        .button(
            tr(
                l,
                if banned {
                    "bot-btn-unban"
                } else {
                    "bot-btn-ban"
                },
            ),
            Cb::Ban(c.user_id, !banned),
        )
        .back(l, Cb::Admin);
    Screen::new(text, kb)
}

async fn ban(bot: &ShopBot, ctx: &Ctx, uid: i64, banned: bool) -> Note {
    let l = ctx.lang;
    match bot.app().set_banned(&ctx.actor, uid, banned).await {
        Ok(()) => Note::Toast(tr(
            l,
            if banned {
                "bot-staff-banned"
            } else {
                "bot-staff-unbanned"
            },
        )),
        Err(e) => Note::Alert(text::error(l, &e)),
    }
}

/// Re-renders a receipt message after a decision (caption of a photo, or text).
async fn refresh_receipt(bot: &ShopBot, ctx: &Ctx, payment_id: i64, kb: Kb) {
    let Some(mid) = ctx.edit else { return };
    let Some((caption, _)) = bot.receipt_caption(ctx.lang, payment_id).await else {
        return;
    };
    let r = if ctx.edit_is_text {
        bot.bot()
            .edit_message_text(ChatId(ctx.chat), mid, caption)
            .parse_mode(ParseMode::Html)
            .reply_markup(kb.markup())
            .await
            .map(|_| ())
    } else {
        bot.bot()
            .edit_message_caption(ChatId(ctx.chat), mid)
            .caption(caption)
            .parse_mode(ParseMode::Html)
            .reply_markup(kb.markup())
            .await
            .map(|_| ())
    };
    match r {
        Ok(()) | Err(RequestError::Api(ApiError::MessageNotModified)) => {}
        Err(e) => tracing::debug!(error = %e, "bot: updating a receipt message failed"),
    }
}

/// A button press by staff (staff chat, or the staff panel in a private chat).
pub(crate) async fn on_callback(bot: &ShopBot, ctx: &Ctx, cb: Cb) -> Note {
    let l = ctx.lang;
    if !ctx.is_staff() {
        return Note::Alert(tr(l, "bot-staff-only"));
    }
    let screen = match cb {
        Cb::Admin | Cb::Menu if !ctx.private => admin_panel(l),
        Cb::Admin => {
            let mut d = bot.dialogue(ctx.chat).await;
            if d.awaiting != Awaiting::Nothing || d.draft.is_some() {
                d.awaiting = Awaiting::Nothing;
                d.draft = None;
                bot.save_dialogue(ctx.chat, &d).await;
            }
            admin_panel(l)
        }
        Cb::Stats => stats(bot, ctx).await,
        Cb::Queue => queue(bot, ctx).await,
        Cb::Nodes => nodes(bot, ctx).await,
        Cb::Approve(p) => {
            return match bot.app().approve_payment(&ctx.actor, p).await {
                Ok(_) => {
                    refresh_receipt(bot, ctx, p, Kb::new()).await;
                    Note::Toast(tra(l, "bot-staff-approved", &[("id", p.into())]))
                }
                Err(e) => {
                    refresh_receipt(bot, ctx, p, Kb::new()).await;
                    Note::Alert(text::error(l, &e))
                }
            };
        }
        Cb::Reject(p) => {
            let mut buttons: Vec<(String, Cb)> = RejectReason::ALL
                .iter()
                .map(|r| (tr(l, r.key()), Cb::RejectWith(p, *r)))
                .collect();
            buttons.push((tr(l, "bot-reason-other"), Cb::RejectOther(p)));
            buttons.push((tr(l, "bot-btn-back"), Cb::Review(p)));
            refresh_receipt(bot, ctx, p, Kb::new().grid(buttons, 2)).await;
            return Note::Quiet;
        }
        Cb::RejectWith(p, r) => {
            let sys = mrjbot_app::Actor::system("bot");
            // The reason reaches the customer: write it in their language.
            let lang = match bot.app().get_payment(&sys, p).await {
                Ok(pay) => match bot.app().get_user(&sys, pay.user_id).await {
                    Ok(u) => Lang::parse(&u.language).unwrap_or(Lang::Fa),
                    Err(_) => Lang::Fa,
                },
                Err(_) => Lang::Fa,
            };
            let reason = tr(lang, r.key());
            return match bot
                .app()
                .reject_payment(&ctx.actor, p, RejectRequest { reason })
                .await
            {
                Ok(_) => {
                    refresh_receipt(bot, ctx, p, Kb::new()).await;
                    Note::Toast(tra(l, "bot-staff-rejected", &[("id", p.into())]))
                }
                Err(e) => {
                    refresh_receipt(bot, ctx, p, Kb::new()).await;
                    Note::Alert(text::error(l, &e))
                }
            };
        }
        Cb::RejectOther(p) => {
            if ctx.private {
                let mut d = bot.dialogue(ctx.chat).await;
                d.awaiting = Awaiting::RejectReason { payment_id: p };
                bot.save_dialogue(ctx.chat, &d).await;
            }
            let prompt = tra(
                l,
                "bot-staff-reject-prompt",
                &[("marker", format!("#R{p}").into())],
            );
            bot.say(ctx.chat, &prompt, None).await;
            return Note::Quiet;
        }
        Cb::Review(p) => {
            let open = bot
                .receipt_caption(l, p)
                .await
                .map(|(_, o)| o)
                .unwrap_or(false);
            if ctx.edit.is_some() && !ctx.edit_is_text {
                let kb = if open {
                    review_keyboard(l, p)
                } else {
                    Kb::new()
                };
                refresh_receipt(bot, ctx, p, kb).await;
                return Note::Quiet;
            }
            // From the queue: send the receipt as a new message with its buttons.
            let to = mrjbot_app::notify::Recipient {
                chat_id: ctx.chat,
                lang: l,
                user_id: None,
            };
            let n = mrjbot_app::notify::Notice::ReceiptForReview { payment_id: p };
            return match mrjbot_app::notify::Notifier::notify(bot, &to, &n).await {
                Ok(()) => Note::Quiet,
                Err(e) => Note::Alert(esc(&e.to_string())),
            };
        }
        Cb::Broadcast => broadcast_start(bot, ctx).await,
        Cb::BroadcastTo(s) => {
            let mut d = bot.dialogue(ctx.chat).await;
            d.awaiting = Awaiting::BroadcastText {
                segment: seg_code(s).to_owned(),
            };
            d.draft = None;
            bot.save_dialogue(ctx.chat, &d).await;
            Screen::new(tr(l, "bot-broadcast-ask"), Kb::new().back(l, Cb::Admin))
        }
        Cb::BroadcastSend => {
            let mut d = bot.dialogue(ctx.chat).await;
            let Some((seg, body)) = d.draft.take() else {
                return Note::Alert(tr(l, "bot-stale-button"));
            };
            bot.save_dialogue(ctx.chat, &d).await;
            let Some(segment) = seg_of(&seg) else {
                return Note::Alert(tr(l, "bot-stale-button"));
            };
            match bot
                .app()
                .create_broadcast(&ctx.actor, NewBroadcast { segment, body })
                .await
            {
                Ok(b) => {
                    follow_progress(bot, ctx, b.id);
                    broadcast_status(bot, ctx, b.id).await
                }
                Err(e) => return Note::Alert(text::error(l, &e)),
            }
        }
        Cb::BroadcastStatus(id) => broadcast_status(bot, ctx, id).await,
        Cb::User(u) => user_card(bot, ctx, u).await,
        Cb::Ban(u, yes) => {
            let note = ban(bot, ctx, u, yes).await;
            let s = user_card(bot, ctx, u).await;
            bot.show(ctx, s).await;
            return note;
        }
        Cb::Answer(t) => {
            if ctx.private {
                let mut d = bot.dialogue(ctx.chat).await;
                d.awaiting = Awaiting::StaffAnswer { ticket_id: t };
                bot.save_dialogue(ctx.chat, &d).await;
            }
            let prompt = tra(
                l,
                "bot-staff-answer-prompt",
                &[("marker", format!("#T{t}").into())],
            );
            bot.say(ctx.chat, &prompt, None).await;
            return Note::Quiet;
        }
        Cb::TicketClose(t) => {
            return match bot.app().close_ticket(&ctx.actor, t).await {
                Ok(_) => Note::Toast(tr(l, "bot-ticket-closed")),
                Err(e) => Note::Alert(text::error(l, &e)),
            };
        }
        Cb::Noop => return Note::Quiet,
        _ if ctx.private => return crate::customer::on_callback(bot, ctx, cb).await,
        _ => return Note::Alert(tr(l, "bot-stale-button")),
    };
    bot.show(ctx, screen).await;
    Note::Quiet
}

/// Keeps a broadcast's progress message current (every few seconds until it is done).
fn follow_progress(bot: &ShopBot, ctx: &Ctx, id: i64) {
    let Some(mid) = ctx.edit.filter(|_| ctx.edit_is_text) else {
        return;
    };
    let (bot, ctx) = (bot.clone(), ctx.clone_ctx());
    tokio::spawn(async move {
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let s = broadcast_status(&bot, &ctx, id).await;
            let r = bot
                .bot()
                .edit_message_text(ChatId(ctx.chat), mid, s.text)
                .parse_mode(ParseMode::Html)
                .reply_markup(s.kb.markup())
                .await;
            if let Err(e) = &r
                && !matches!(e, RequestError::Api(ApiError::MessageNotModified))
            {
                break;
            }
            match bot.app().get_broadcast(&ctx.actor, id).await {
                Ok(b) if b.status == BroadcastStatus::Sending => {}
                _ => break,
            }
        }
    });
}

fn status_word(s: BroadcastStatus) -> &'static str {
    match s {
        BroadcastStatus::Draft => "draft",
        BroadcastStatus::Sending => "sending",
        BroadcastStatus::Done => "done",
        BroadcastStatus::Cancelled => "cancelled",
    }
}
