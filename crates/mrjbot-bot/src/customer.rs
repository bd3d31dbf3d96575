//! The customer's screens: start and language, the catalog down to a priced checkout,
//! payment hand-over (card-to-card with a receipt photo, gateways, Stars, wallet), the
//! delivered link with its QR code, "My services" (renew, extra traffic, new link,
//! location), trial, wallet, referrals, support tickets, help and FAQ.
//!
//! Every press re-reads what it shows; nothing is cached between screens except the
//! dialogue (what the bot waits for) and an accepted discount code.

use crate::ShopBot;
use crate::cb::{Buy, Cb};
use crate::runtime::{Ctx, Note};
use crate::state::{Awaiting, Dialogue};
use crate::text::{self, bytes, days, esc, money, num, tr, tra};
use crate::ui::{Kb, Screen, qr_png};
use mrjbot_app::AppError;
use mrjbot_app::ListParams;
use mrjbot_app::money::card::ReceiptUpload;
use mrjbot_app::money::{NewOrder, OrderView, PayRequest, PaymentQuery, PaymentView};
use mrjbot_app::plans::{PlanQuery, PlanView};
use mrjbot_app::subscriptions::{SubscriptionQuery, SubscriptionView};
use mrjbot_domain::subscription::IpType;
use mrjbot_domain::{Currency, Money, OrderKind, PaymentMethod, PaymentStatus, SubscriptionStatus};
use mrjbot_i18n::{Arg, Lang};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{ChatMemberStatus, Recipient};

/// GiB choices for extra traffic.
const TRAFFIC_STEPS: [i64; 4] = [5, 10, 20, 50];
/// Top-up choices in toman.
const TOPUP_TOMAN: [i64; 4] = [50_000, 100_000, 200_000, 500_000];

/// A message in a private chat.
pub(crate) async fn on_message(bot: &ShopBot, ctx: Ctx, m: &Message) {
    let mut d = bot.dialogue(ctx.chat).await;
    if let Some(text) = m.text() {
        let text = text.trim();
        if let Some(cmd) = text.strip_prefix('/') {
            let (name, args) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
            let name = name.split('@').next().unwrap_or(name).to_ascii_lowercase();
            command(bot, &ctx, &mut d, &name, args.trim()).await;
            return;
        }
        typed(bot, &ctx, &mut d, text).await;
        return;
    }
    let file = if let Some(sizes) = m.photo() {
        sizes
            .iter()
            .max_by_key(|p| p.width * p.height)
            .map(|p| p.file.clone())
    } else if let Some(doc) = m.document() {
        let image = doc.mime_type.as_ref().is_some_and(|t| t.type_() == "image");
        image.then(|| doc.file.clone())
    } else {
        None
    };
    match file {
        Some(f) => receipt(bot, &ctx, &mut d, f).await,
        None => {
            bot.say(ctx.chat, &tr(ctx.lang, "bot-not-understood"), None)
                .await;
            menu(bot, &ctx, true).await;
        }
    }
}

async fn command(bot: &ShopBot, ctx: &Ctx, d: &mut Dialogue, name: &str, args: &str) {
    if !matches!(name, "start" | "language" | "help") && !joined(bot, ctx).await {
        return;
    }
    if d.awaiting != Awaiting::Nothing && name != "cancel" {
        d.awaiting = Awaiting::Nothing;
        bot.save_dialogue(ctx.chat, d).await;
    }
    let new = Ctx {
        edit: None,
        ..ctx.clone_ctx()
    };
    match name {
        "start" => {
            if ctx.customer.as_ref().is_some_and(|c| c.is_new) {
                languages(bot, &new, true).await;
            } else if joined(bot, ctx).await {
                menu(bot, &new, true).await;
            }
        }
        "menu" => menu(bot, &new, true).await,
        "cancel" => {
            *d = Dialogue::default();
            bot.save_dialogue(ctx.chat, d).await;
            bot.say(ctx.chat, &tr(ctx.lang, "bot-cancelled"), None)
                .await;
            menu(bot, &new, true).await;
        }
        "buy" => screen_cb(bot, &new, Cb::Buy).await,
        "services" => screen_cb(bot, &new, Cb::Services).await,
        "wallet" => screen_cb(bot, &new, Cb::Wallet).await,
        "support" => screen_cb(bot, &new, Cb::Support).await,
        "help" => screen_cb(bot, &new, Cb::Help).await,
        "faq" => screen_cb(bot, &new, Cb::Help).await,
        "trial" => screen_cb(bot, &new, Cb::Trial).await,
        "referral" | "invite" => screen_cb(bot, &new, Cb::Referral).await,
        "language" | "settings" => languages(bot, &new, false).await,
        _ if ctx.is_staff() => crate::staff::command(bot, &new, d, name, args).await,
        _ => {
            bot.say(ctx.chat, &tr(ctx.lang, "bot-unknown-command"), None)
                .await;
            menu(bot, &new, true).await;
        }
    }
}

async fn screen_cb(bot: &ShopBot, ctx: &Ctx, cb: Cb) {
    let note = on_callback(bot, ctx, cb).await;
    if let Note::Alert(t) | Note::Toast(t) = note {
        bot.say(ctx.chat, &t, None).await;
    }
}

/// Text typed when no command: what the dialogue waits for, or the menu.
async fn typed(bot: &ShopBot, ctx: &Ctx, d: &mut Dialogue, text: &str) {
    match d.awaiting.clone() {
        Awaiting::Discount { plan_id } => {
            let code = text.trim().to_uppercase();
            d.awaiting = Awaiting::Nothing;
            let plan = match bot.app().get_plan(&ctx.actor, plan_id).await {
                Ok(p) => p,
                Err(e) => return fail(bot, ctx, &e).await,
            };
            let Some(price) = first_price(&plan) else {
                return fail_text(bot, ctx, "bot-plan-unavailable").await;
            };
            match bot
                .app()
                .quote_discount(&ctx.actor, &code, Some(plan_id), price)
                .await
            {
                Ok(off) => {
                    d.discount = Some((plan_id, code));
                    bot.save_dialogue(ctx.chat, d).await;
                    bot.say(
                        ctx.chat,
                        &tra(
                            ctx.lang,
                            "bot-discount-ok",
                            &[("off", money(ctx.lang, off).into())],
                        ),
                        None,
                    )
                    .await;
                }
                Err(e) => {
                    bot.save_dialogue(ctx.chat, d).await;
                    bot.say(ctx.chat, &text::error(ctx.lang, &e), None).await;
                }
            }
            let s = checkout(bot, ctx, plan_id).await;
            bot.send(ctx, s).await;
        }
        Awaiting::TicketText => {
            d.awaiting = Awaiting::Nothing;
            bot.save_dialogue(ctx.chat, d).await;
            let subject: String = text
                .lines()
                .next()
                .unwrap_or(text)
                .chars()
                .take(60)
                .collect();
            let input = mrjbot_app::support::tickets::NewTicket {
                subject,
                body: text.to_owned(),
                attachment_file_id: None,
            };
            match bot.app().open_ticket(&ctx.actor, input).await {
                Ok(t) => {
                    let s = Screen::new(
                        tra(ctx.lang, "bot-ticket-opened", &[("id", t.ticket.id.into())]),
                        Kb::new().back(ctx.lang, Cb::Support),
                    );
                    bot.send(ctx, s).await;
                }
                Err(e) => fail(bot, ctx, &e).await,
            }
        }
        Awaiting::TicketReply { ticket_id } => {
            d.awaiting = Awaiting::Nothing;
            bot.save_dialogue(ctx.chat, d).await;
            let input = mrjbot_app::support::tickets::NewTicketMessage {
                body: text.to_owned(),
                attachment_file_id: None,
            };
            match bot
                .app()
                .post_ticket_message(&ctx.actor, ticket_id, input)
                .await
            {
                Ok(_) => {
                    let s = ticket_screen(bot, ctx, ticket_id).await;
                    bot.send(ctx, s).await;
                }
                Err(e) => fail(bot, ctx, &e).await,
            }
        }
        Awaiting::TopupAmount => {
            let digits = mrjbot_i18n::normalize_digits(text);
            let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
            match digits.parse::<i64>() {
                Ok(toman) if (10_000..=100_000_000).contains(&toman) => {
                    d.awaiting = Awaiting::Nothing;
                    bot.save_dialogue(ctx.chat, d).await;
                    let s = methods_screen(bot, ctx, Buy::Topup(toman * 10)).await;
                    bot.send(ctx, s).await;
                }
                _ => {
                    bot.say(ctx.chat, &tr(ctx.lang, "bot-topup-bad-amount"), None)
                        .await;
                }
            }
        }
        Awaiting::Receipt { .. } => {
            bot.say(ctx.chat, &tr(ctx.lang, "bot-receipt-send-photo"), None)
                .await;
        }
        Awaiting::BroadcastText { .. }
        | Awaiting::StaffAnswer { .. }
        | Awaiting::RejectReason { .. }
        | Awaiting::UserQuery => crate::staff::typed(bot, ctx, d, text).await,
        Awaiting::Nothing => {
            if !joined(bot, ctx).await {
                return;
            }
            bot.say(ctx.chat, &tr(ctx.lang, "bot-use-buttons"), None)
                .await;
            menu(
                bot,
                &Ctx {
                    edit: None,
                    ..ctx.clone_ctx()
                },
                true,
            )
            .await;
        }
    }
}

/// A picture: a receipt for the payment the dialogue names, or for the customer's only
/// open card payment.
async fn receipt(bot: &ShopBot, ctx: &Ctx, d: &mut Dialogue, file: teloxide::types::FileMeta) {
    let payment_id = match &d.awaiting {
        Awaiting::Receipt { payment_id } => Some(*payment_id),
        _ => open_card_payment(bot, ctx).await,
    };
    let Some(payment_id) = payment_id else {
        bot.say(ctx.chat, &tr(ctx.lang, "bot-photo-unexpected"), None)
            .await;
        return;
    };
    if file.size > 10 * 1024 * 1024 {
        bot.say(ctx.chat, &tr(ctx.lang, "bot-receipt-too-big"), None)
            .await;
        return;
    }
    let mut bytes_in = Vec::new();
    let downloaded = match bot.bot().get_file(file.id.clone()).await {
        Ok(f) => bot
            .bot()
            .download_file(&f.path, &mut bytes_in)
            .await
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "bot: getFile failed");
            false
        }
    };
    if !downloaded {
        bot.say(ctx.chat, &tr(ctx.lang, "bot-receipt-download-failed"), None)
            .await;
        return;
    }
    let upload = ReceiptUpload {
        bytes: bytes_in,
        telegram_file_id: Some(file.id.0.clone()),
        telegram_file_unique_id: Some(file.unique_id.0.clone()),
    };
    match bot
        .app()
        .submit_receipt(&ctx.actor, payment_id, upload)
        .await
    {
        Ok(_) => {
            d.awaiting = Awaiting::Nothing;
            bot.save_dialogue(ctx.chat, d).await;
            let s = Screen::new(
                tra(
                    ctx.lang,
                    "bot-receipt-received",
                    &[("id", payment_id.into())],
                ),
                Kb::new()
                    .button(tr(ctx.lang, "bot-btn-services"), Cb::Services)
                    .back(ctx.lang, Cb::Menu),
            );
            bot.send(ctx, s).await;
        }
        Err(e) => fail(bot, ctx, &e).await,
    }
}

async fn open_card_payment(bot: &ShopBot, ctx: &Ctx) -> Option<i64> {
    let q = PaymentQuery {
        user_id: ctx.actor.user_id,
        method: Some(PaymentMethod::Card),
        status: Some(PaymentStatus::Pending),
        ..Default::default()
    };
    let (ps, _) = bot
        .app()
        .list_payments(&ctx.actor, q, ListParams::default())
        .await
        .ok()?;
    (ps.len() == 1).then(|| ps[0].id)
}

async fn fail(bot: &ShopBot, ctx: &Ctx, e: &AppError) {
    bot.say(ctx.chat, &text::error(ctx.lang, e), None).await;
}

async fn fail_text(bot: &ShopBot, ctx: &Ctx, key: &str) {
    bot.say(ctx.chat, &tr(ctx.lang, key), None).await;
}

/// The language picker (in all three languages at once).
pub(crate) async fn languages(bot: &ShopBot, ctx: &Ctx, first: bool) {
    let text = if first {
        Lang::ALL
            .iter()
            .map(|l| tr(*l, "bot-welcome-choose-language"))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        tr(ctx.lang, "bot-choose-language")
    };
    let kb = Kb::new().row(vec![
        ("🇮🇷 فارسی".to_owned(), Cb::Lang(Lang::Fa)),
        ("🇬🇧 English".to_owned(), Cb::Lang(Lang::En)),
        ("🇷🇺 Русский".to_owned(), Cb::Lang(Lang::Ru)),
    ]);
    bot.show(ctx, Screen::new(text, kb)).await;
}

/// Whether the customer may use the shop: a member of the seller's channel when one is
/// required (staff always). Shows the join screen otherwise. If Telegram cannot tell (the
/// bot is not an admin there), the customer is let through and the seller warned in logs.
pub(crate) async fn joined(bot: &ShopBot, ctx: &Ctx) -> bool {
    if ctx.is_staff() {
        return true;
    }
    let Ok(settings) = bot.app().shop_settings().await else {
        return true;
    };
    let Some(channel) = settings.required_channel.clone() else {
        return true;
    };
    let recipient = match channel.parse::<i64>() {
        Ok(id) => Recipient::Id(ChatId(id)),
        Err(_) => Recipient::ChannelUsername(channel.clone()),
    };
    let user = teloxide::types::UserId(u64::try_from(ctx.tg_id).unwrap_or(0));
    match bot.bot().get_chat_member(recipient, user).await {
        Ok(m) => {
            let member = matches!(
                m.status(),
                ChatMemberStatus::Owner
                    | ChatMemberStatus::Administrator
                    | ChatMemberStatus::Member
            ) || (m.status() == ChatMemberStatus::Restricted && m.kind.is_present());
            if member {
                return true;
            }
        }
        Err(e) => {
            tracing::warn!(channel, error = %e, "bot: membership check failed; letting the customer in");
            return true;
        }
    }
    let link = match channel.strip_prefix('@') {
        Some(name) => format!("https://t.me/{name}"),
        None => String::new(),
    };
    let mut kb = Kb::new();
    if !link.is_empty() {
        kb = kb.url(tr(ctx.lang, "bot-btn-join-channel"), &link);
    }
    kb = kb.button(tr(ctx.lang, "bot-btn-joined"), Cb::Joined);
    let text = tra(
        ctx.lang,
        "bot-join-required",
        &[("channel", esc(&channel).into())],
    );
    bot.show(ctx, Screen::new(text, kb)).await;
    false
}

/// The main menu.
pub(crate) async fn menu(bot: &ShopBot, ctx: &Ctx, fresh: bool) {
    let name = ctx
        .customer
        .as_ref()
        .map(|c| c.display_name.clone())
        .unwrap_or_default();
    let l = ctx.lang;
    let mut kb = Kb::new()
        .row(vec![
            (tr(l, "bot-btn-buy"), Cb::Buy),
            (tr(l, "bot-btn-services"), Cb::Services),
        ])
        .row(vec![
            (tr(l, "bot-btn-trial"), Cb::Trial),
            (tr(l, "bot-btn-wallet"), Cb::Wallet),
        ])
        .row(vec![
            (tr(l, "bot-btn-referral"), Cb::Referral),
            (tr(l, "bot-btn-support"), Cb::Support),
        ])
        .row(vec![
            (tr(l, "bot-btn-help"), Cb::Help),
            (tr(l, "bot-btn-language"), Cb::Languages),
        ]);
    if ctx.is_staff() {
        kb = kb.button(tr(l, "bot-btn-admin"), Cb::Admin);
    }
    let s = Screen::new(tra(l, "bot-menu", &[("name", esc(&name).into())]), kb);
    if fresh {
        bot.send(ctx, s).await;
    } else {
        bot.show(ctx, s).await;
    }
}

/// A button press in a private chat.
pub(crate) async fn on_callback(bot: &ShopBot, ctx: &Ctx, cb: Cb) -> Note {
    let l = ctx.lang;
    if !matches!(cb, Cb::Lang(_) | Cb::Languages | Cb::Joined) && !joined(bot, ctx).await {
        return Note::Quiet;
    }
    let screen = match cb {
        Cb::Menu => {
            clear_awaiting(bot, ctx).await;
            menu(bot, ctx, false).await;
            return Note::Quiet;
        }
        Cb::Languages => {
            languages(bot, ctx, false).await;
            return Note::Quiet;
        }
        Cb::Lang(lang) => {
            if let Err(e) = bot.app().set_language(&ctx.actor, lang).await {
                return Note::Alert(text::error(l, &e));
            }
            let ctx = Ctx {
                lang,
                ..ctx.clone_ctx()
            };
            if joined(bot, &ctx).await {
                menu(bot, &ctx, false).await;
            }
            return Note::Toast(tr(lang, "bot-language-set"));
        }
        Cb::Joined => {
            if joined(bot, ctx).await {
                menu(bot, ctx, false).await;
                return Note::Toast(tr(l, "bot-thanks-joined"));
            }
            return Note::Alert(tr(l, "bot-not-joined-yet"));
        }
        Cb::Buy => regions(bot, ctx).await,
        Cb::Region(p) => ip_types(bot, ctx, p).await,
        Cb::IpType(p, c) => durations(bot, ctx, p, c).await,
        Cb::Duration(p, c, dd) => plans_of(bot, ctx, p, c, dd).await,
        Cb::Plan(p) => checkout(bot, ctx, p).await,
        Cb::Discount(p) => {
            let mut d = bot.dialogue(ctx.chat).await;
            d.awaiting = Awaiting::Discount { plan_id: p };
            bot.save_dialogue(ctx.chat, &d).await;
            Screen::new(tr(l, "bot-discount-ask"), Kb::new().back(l, Cb::Plan(p)))
        }
        Cb::Pay(buy, m) => return pay(bot, ctx, buy, m).await,
        Cb::CancelOrder(o) => match bot.app().cancel_order(&ctx.actor, o).await {
            Ok(_) => {
                clear_awaiting(bot, ctx).await;
                Screen::new(tr(l, "bot-order-cancelled"), Kb::new().back(l, Cb::Menu))
            }
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::Services => services(bot, ctx).await,
        Cb::Sub(s) => sub_screen(bot, ctx, s).await,
        Cb::Link(s) => {
            return match bot.app().get_subscription(&ctx.actor, s).await {
                Ok(sub) => {
                    send_link(bot, ctx.chat, l, &sub).await;
                    Note::Quiet
                }
                Err(e) => Note::Alert(text::error(l, &e)),
            };
        }
        Cb::Renew(s) => methods_screen(bot, ctx, Buy::Renew(s)).await,
        Cb::Traffic(s) => {
            let buttons = TRAFFIC_STEPS
                .iter()
                .map(|g| (bytes(l, Some(g << 30)), Cb::TrafficGib(s, *g)))
                .collect();
            Screen::new(
                tr(l, "bot-traffic-choose"),
                Kb::new().grid(buttons, 2).back(l, Cb::Sub(s)),
            )
        }
        Cb::TrafficGib(s, g) => methods_screen(bot, ctx, Buy::Traffic(s, g)).await,
        Cb::Rotate(s) => Screen::new(
            tr(l, "bot-rotate-confirm"),
            Kb::new().row(vec![
                (tr(l, "bot-btn-yes-rotate"), Cb::RotateYes(s)),
                (tr(l, "bot-btn-no"), Cb::Sub(s)),
            ]),
        ),
        Cb::RotateYes(s) => match bot.app().rotate_own_link(&ctx.actor, s).await {
            Ok(sub) => {
                send_link(bot, ctx.chat, l, &sub).await;
                return Note::Toast(tr(l, "bot-rotated"));
            }
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::Move(s) => match bot.app().locations_for(&ctx.actor, s).await {
            Ok(locs) if !locs.is_empty() => {
                let buttons = locs
                    .iter()
                    .map(|(r, n)| (region_label(Some(r)), Cb::MoveTo(s, *n)))
                    .collect();
                Screen::new(
                    tr(l, "bot-move-choose"),
                    Kb::new().grid(buttons, 2).back(l, Cb::Sub(s)),
                )
            }
            Ok(_) => return Note::Alert(tr(l, "bot-move-none")),
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::MoveTo(s, n) => match bot.app().move_subscription(&ctx.actor, s, n).await {
            Ok(_) => {
                let s = sub_screen(bot, ctx, s).await;
                bot.show(ctx, s).await;
                return Note::Alert(tr(l, "bot-moved"));
            }
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::Help => help(bot, ctx).await,
        Cb::Faq(i) => faq(bot, ctx, i).await,
        Cb::Apps => apps(bot, ctx).await,
        Cb::Trial => trial(bot, ctx).await,
        Cb::TrialYes => match bot.app().claim_trial(&ctx.actor).await {
            Ok(sub) => {
                send_link(bot, ctx.chat, l, &sub).await;
                Screen::new(tr(l, "bot-trial-given"), Kb::new().back(l, Cb::Menu))
            }
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::Wallet => wallet(bot, ctx).await,
        Cb::Topup => {
            let mut d = bot.dialogue(ctx.chat).await;
            d.awaiting = Awaiting::TopupAmount;
            bot.save_dialogue(ctx.chat, &d).await;
            let buttons = TOPUP_TOMAN
                .iter()
                .map(|t| {
                    (
                        tra(l, "bot-amount-toman", &[("amount", Arg::Int(*t))]),
                        Cb::TopupAmount(t * 10),
                    )
                })
                .collect();
            Screen::new(
                tr(l, "bot-topup-choose"),
                Kb::new().grid(buttons, 2).back(l, Cb::Wallet),
            )
        }
        Cb::TopupAmount(a) => {
            clear_awaiting(bot, ctx).await;
            methods_screen(bot, ctx, Buy::Topup(a)).await
        }
        Cb::Referral => referral(bot, ctx).await,
        Cb::Redeem => match bot.app().redeem_points(&ctx.actor).await {
            Ok(m) => {
                let s = referral(bot, ctx).await;
                bot.show(ctx, s).await;
                return Note::Alert(tra(l, "bot-redeemed", &[("amount", money(l, m).into())]));
            }
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::Support => support(bot, ctx).await,
        Cb::TicketNew => {
            let mut d = bot.dialogue(ctx.chat).await;
            d.awaiting = Awaiting::TicketText;
            bot.save_dialogue(ctx.chat, &d).await;
            Screen::new(tr(l, "bot-ticket-ask"), Kb::new().back(l, Cb::Support))
        }
        Cb::Tickets => tickets(bot, ctx).await,
        Cb::Ticket(t) => ticket_screen(bot, ctx, t).await,
        Cb::TicketReply(t) => {
            let mut d = bot.dialogue(ctx.chat).await;
            d.awaiting = Awaiting::TicketReply { ticket_id: t };
            bot.save_dialogue(ctx.chat, &d).await;
            Screen::new(
                tr(l, "bot-ticket-reply-ask"),
                Kb::new().back(l, Cb::Ticket(t)),
            )
        }
        Cb::TicketClose(t) => match bot.app().close_ticket(&ctx.actor, t).await {
            Ok(_) => {
                let s = ticket_screen(bot, ctx, t).await;
                bot.show(ctx, s).await;
                return Note::Toast(tr(l, "bot-ticket-closed"));
            }
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        Cb::Noop => return Note::Quiet,
        staff_cb => {
            if ctx.is_staff() {
                return Box::pin(crate::staff::on_callback(bot, ctx, staff_cb)).await;
            }
            return Note::Alert(tr(l, "bot-stale-button"));
        }
    };
    bot.show(ctx, screen).await;
    Note::Quiet
}

async fn clear_awaiting(bot: &ShopBot, ctx: &Ctx) {
    let mut d = bot.dialogue(ctx.chat).await;
    if d.awaiting != Awaiting::Nothing {
        d.awaiting = Awaiting::Nothing;
        bot.save_dialogue(ctx.chat, &d).await;
    }
}

async fn catalog(bot: &ShopBot, ctx: &Ctx) -> Vec<PlanView> {
    let params = ListParams {
        limit: Some(500),
        ..Default::default()
    };
    match bot
        .app()
        .list_plans(
            &ctx.actor,
            PlanQuery {
                is_active: Some(true),
                ..Default::default()
            },
            &params,
        )
        .await
    {
        Ok((plans, _)) => plans.into_iter().filter(|p| p.is_active).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "bot: catalog failed");
            Vec::new()
        }
    }
}

/// A region's label: its flag (from a two-letter country prefix) and name.
fn region_label(region: Option<&str>) -> String {
    let Some(r) = region else {
        return "🌐".to_owned();
    };
    let cc: Vec<char> = r.chars().take(2).collect();
    let flag: String = if cc.len() == 2 && cc.iter().all(char::is_ascii_alphabetic) {
        cc.iter()
            .filter_map(|c| char::from_u32(0x1F1E6 + (c.to_ascii_uppercase() as u32 - 'A' as u32)))
            .collect()
    } else {
        String::new()
    };
    format!("{flag} {}", r.to_uppercase()).trim().to_owned()
}

async fn regions(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let plans = catalog(bot, ctx).await;
    if plans.is_empty() {
        return Screen::new(tr(l, "bot-catalog-empty"), Kb::new().back(l, Cb::Menu));
    }
    let mut seen: Vec<Option<String>> = Vec::new();
    let mut buttons = Vec::new();
    for p in &plans {
        if !seen.contains(&p.region) {
            seen.push(p.region.clone());
            buttons.push((region_label(p.region.as_deref()), Cb::Region(p.id)));
        }
    }
    Screen::new(
        tr(l, "bot-choose-location"),
        Kb::new().grid(buttons, 2).back(l, Cb::Menu),
    )
}

async fn region_of(
    bot: &ShopBot,
    ctx: &Ctx,
    plan_id: i64,
) -> Option<(Vec<PlanView>, Option<String>)> {
    let plans = catalog(bot, ctx).await;
    let region = plans.iter().find(|p| p.id == plan_id)?.region.clone();
    let same: Vec<PlanView> = plans.into_iter().filter(|p| p.region == region).collect();
    Some((same, region))
}

fn stale(l: Lang) -> Screen {
    Screen::new(tr(l, "bot-stale-button"), Kb::new().back(l, Cb::Buy))
}

async fn ip_types(bot: &ShopBot, ctx: &Ctx, plan_id: i64) -> Screen {
    let l = ctx.lang;
    let Some((plans, region)) = region_of(bot, ctx, plan_id).await else {
        return stale(l);
    };
    let mut buttons = Vec::new();
    for (ip, constant, key) in [
        (IpType::Dynamic, false, "bot-ip-dynamic"),
        (IpType::Constant, true, "bot-ip-constant"),
    ] {
        if let Some(p) = plans.iter().find(|p| p.ip_type == ip) {
            buttons.push((tr(l, key), Cb::IpType(p.id, constant)));
        }
    }
    let text = tra(
        l,
        "bot-choose-ip-type",
        &[("location", region_label(region.as_deref()).into())],
    );
    Screen::new(
        format!("{text}\n\n{}", tr(l, "bot-ip-explain")),
        Kb::new().grid(buttons, 1).back(l, Cb::Buy),
    )
}

fn ip_of(constant: bool) -> IpType {
    if constant {
        IpType::Constant
    } else {
        IpType::Dynamic
    }
}

async fn durations(bot: &ShopBot, ctx: &Ctx, plan_id: i64, constant: bool) -> Screen {
    let l = ctx.lang;
    let Some((plans, _)) = region_of(bot, ctx, plan_id).await else {
        return stale(l);
    };
    let mut seen = Vec::new();
    let mut buttons = Vec::new();
    for p in plans.iter().filter(|p| p.ip_type == ip_of(constant)) {
        if !seen.contains(&p.duration_days) {
            seen.push(p.duration_days);
            buttons.push((
                days(l, p.duration_days),
                Cb::Duration(p.id, constant, p.duration_days),
            ));
        }
    }
    if buttons.is_empty() {
        return stale(l);
    }
    Screen::new(
        tr(l, "bot-choose-duration"),
        Kb::new().grid(buttons, 2).back(l, Cb::Region(plan_id)),
    )
}

async fn plans_of(bot: &ShopBot, ctx: &Ctx, plan_id: i64, constant: bool, d: i64) -> Screen {
    let l = ctx.lang;
    let Some((plans, _)) = region_of(bot, ctx, plan_id).await else {
        return stale(l);
    };
    let buttons: Vec<(String, Cb)> = plans
        .iter()
        .filter(|p| p.ip_type == ip_of(constant) && p.duration_days == d)
        .map(|p| {
            let price = first_price(p).map(|m| money(l, m)).unwrap_or_default();
            (
                format!(
                    "{} · {} · {}",
                    bytes(l, p.data_limit_bytes),
                    devices(l, p.device_limit),
                    price
                ),
                Cb::Plan(p.id),
            )
        })
        .collect();
    if buttons.is_empty() {
        return stale(l);
    }
    Screen::new(
        tr(l, "bot-choose-plan"),
        Kb::new()
            .grid(buttons, 1)
            .back(l, Cb::IpType(plan_id, constant)),
    )
}

fn devices(l: Lang, n: Option<i64>) -> String {
    match n {
        Some(n) => tra(l, "bot-devices", &[("n", n.into())]),
        None => tr(l, "bot-devices-unlimited"),
    }
}

/// The price a plan is shown at first: rials, else the first listed.
fn first_price(p: &PlanView) -> Option<Money> {
    let pick = p
        .prices
        .iter()
        .find(|x| x.currency == Currency::Irr)
        .or_else(|| p.prices.first())?;
    Money::new(pick.amount_minor, pick.currency).ok()
}

fn price_in(p: &PlanView, c: Currency) -> Option<Money> {
    p.prices
        .iter()
        .find(|x| x.currency == c)
        .and_then(|x| Money::new(x.amount_minor, x.currency).ok())
}

/// The currency a method pays a plan in, when the plan has a price in one it takes.
fn currency_for(p: Option<&PlanView>, m: PaymentMethod) -> Option<Currency> {
    let fixed = match m {
        PaymentMethod::Card | PaymentMethod::Zarinpal => Some(Currency::Irr),
        PaymentMethod::Yookassa => Some(Currency::Rub),
        PaymentMethod::Stars => Some(Currency::Xtr),
        _ => None,
    };
    let Some(plan) = p else {
        // Top-ups are in the shop currency (rials).
        return (m.accepts(Currency::Irr)).then_some(Currency::Irr);
    };
    match fixed {
        Some(c) => price_in(plan, c).map(|_| c),
        None => [
            Currency::Irr,
            Currency::Usd,
            Currency::Eur,
            Currency::Rub,
            Currency::Usdt,
            Currency::Ton,
        ]
        .into_iter()
        .find(|c| m.accepts(*c) && price_in(plan, *c).is_some()),
    }
}

fn plan_text(l: Lang, p: &PlanView) -> String {
    let mut s = tra(
        l,
        "bot-plan-card",
        &[
            ("name", esc(&p.name).into()),
            ("location", region_label(p.region.as_deref()).into()),
            ("days", days(l, p.duration_days).into()),
            ("data", bytes(l, p.data_limit_bytes).into()),
            ("devices", devices(l, p.device_limit).into()),
            (
                "iptype",
                tr(
                    l,
                    if p.ip_type == IpType::Constant {
                        "bot-ip-constant"
                    } else {
                        "bot-ip-dynamic"
                    },
                )
                .into(),
            ),
        ],
    );
    if !p.description.trim().is_empty() {
        s.push_str("\n\n");
        s.push_str(&esc(p.description.trim()));
    }
    s
}

/// A plan's checkout: its terms, the price per payment method, discount code entry.
async fn checkout(bot: &ShopBot, ctx: &Ctx, plan_id: i64) -> Screen {
    let l = ctx.lang;
    let plan = match bot.app().get_plan(&ctx.actor, plan_id).await {
        Ok(p) if p.is_active => p,
        _ => return Screen::new(tr(l, "bot-plan-unavailable"), Kb::new().back(l, Cb::Buy)),
    };
    let d = bot.dialogue(ctx.chat).await;
    let code = d
        .discount
        .as_ref()
        .filter(|(p, _)| *p == plan_id)
        .map(|(_, c)| c.clone());
    let mut text = plan_text(l, &plan);
    if let Some(c) = &code {
        text.push_str("\n\n");
        text.push_str(&tra(l, "bot-discount-applied", &[("code", esc(c).into())]));
    }
    let mut s = methods_screen(bot, ctx, Buy::Plan(plan_id)).await;
    s.text = format!("{text}\n\n{}", s.text);
    let mut kb = Kb::new().button(tr(l, "bot-btn-discount"), Cb::Discount(plan_id));
    kb = merge(kb, s.kb);
    s.kb = kb;
    s
}

fn merge(a: Kb, b: Kb) -> Kb {
    let mut m = a.markup();
    m.inline_keyboard.extend(b.markup().inline_keyboard);
    let mut out = Kb::new();
    for row in m.inline_keyboard {
        out = out.raw_row(row);
    }
    out
}

fn method_label(l: Lang, m: PaymentMethod) -> String {
    tr(l, &format!("bot-method-{}", m.as_str()))
}

/// The payment methods for something with its price in each.
pub(crate) async fn methods_screen(bot: &ShopBot, ctx: &Ctx, buy: Buy) -> Screen {
    let l = ctx.lang;
    let (plan, back, title) = match buy {
        Buy::Plan(p) => (
            bot.app().get_plan(&ctx.actor, p).await.ok(),
            Cb::Duration(p, false, 0),
            tr(l, "bot-choose-method"),
        ),
        Buy::Renew(s) | Buy::Traffic(s, _) => {
            let sub = bot.app().get_subscription(&ctx.actor, s).await.ok();
            let plan = match sub.as_ref().and_then(|s| s.plan_id) {
                Some(p) => bot.app().get_plan(&ctx.actor, p).await.ok(),
                None => None,
            };
            let title = match buy {
                Buy::Renew(_) => tr(l, "bot-renew-choose-method"),
                Buy::Traffic(_, g) => tra(
                    l,
                    "bot-traffic-choose-method",
                    &[("data", bytes(l, Some(g << 30)).into())],
                ),
                _ => String::new(),
            };
            (plan, Cb::Sub(s), title)
        }
        Buy::Topup(a) => (
            None,
            Cb::Wallet,
            tra(
                l,
                "bot-topup-choose-method",
                &[(
                    "amount",
                    money(
                        l,
                        Money::new(a, Currency::Irr).unwrap_or(Money {
                            amount_minor: 0,
                            currency: Currency::Irr,
                        }),
                    )
                    .into(),
                )],
            ),
        ),
    };
    let back = match (buy, &plan) {
        (Buy::Plan(_), Some(p)) => {
            Cb::Duration(p.id, p.ip_type == IpType::Constant, p.duration_days)
        }
        _ => back,
    };
    let methods = bot.app().enabled_methods().await.unwrap_or_default();
    let mut buttons = Vec::new();
    for m in methods {
        if matches!(buy, Buy::Topup(_)) && m == PaymentMethod::Wallet {
            continue;
        }
        if matches!(buy, Buy::Renew(_) | Buy::Traffic(..) | Buy::Plan(_)) && plan.is_none() {
            continue;
        }
        let Some(cur) = currency_for(plan.as_ref(), m) else {
            continue;
        };
        let price = match (buy, &plan) {
            (Buy::Topup(a), _) => Money::new(a, cur).ok(),
            (Buy::Traffic(..), _) => None,
            (_, Some(p)) => price_in(p, cur),
            _ => None,
        };
        let label = match price {
            Some(p) => format!("{} — {}", method_label(l, m), money(l, p)),
            None => method_label(l, m),
        };
        buttons.push((label, Cb::Pay(buy, m)));
    }
    if buttons.is_empty() {
        return Screen::new(tr(l, "bot-no-methods"), Kb::new().back(l, back));
    }
    Screen::new(title, Kb::new().grid(buttons, 1).back(l, back))
}

/// Creates the order and starts paying it.
async fn pay(bot: &ShopBot, ctx: &Ctx, buy: Buy, m: PaymentMethod) -> Note {
    let l = ctx.lang;
    let mut d = bot.dialogue(ctx.chat).await;
    let (kind, plan_id, sub_id, amount, gib) = match buy {
        Buy::Plan(p) => (OrderKind::Purchase, Some(p), None, None, None),
        Buy::Renew(s) => (OrderKind::Renewal, None, Some(s), None, None),
        Buy::Traffic(s, g) => (OrderKind::Addon, None, Some(s), None, Some(g)),
        Buy::Topup(a) => (OrderKind::Topup, None, None, Some(a), None),
    };
    let plan = match (plan_id, sub_id) {
        (Some(p), _) => bot.app().get_plan(&ctx.actor, p).await.ok(),
        (None, Some(s)) => match bot.app().get_subscription(&ctx.actor, s).await {
            Ok(sub) => match sub.plan_id {
                Some(p) => bot.app().get_plan(&ctx.actor, p).await.ok(),
                None => None,
            },
            Err(e) => return Note::Alert(text::error(l, &e)),
        },
        _ => None,
    };
    let Some(currency) = currency_for(plan.as_ref(), m) else {
        return Note::Alert(tr(l, "bot-no-methods"));
    };
    let discount_code = match (buy, &d.discount) {
        (Buy::Plan(p), Some((dp, code))) if *dp == p => Some(code.clone()),
        _ => None,
    };
    let order = NewOrder {
        user_id: None,
        kind,
        plan_id,
        subscription_id: sub_id,
        currency,
        amount_minor: amount,
        addon_gib: gib,
        discount_code,
        idempotency_key: None,
    };
    let order = match bot.app().create_order(&ctx.actor, order).await {
        Ok(o) => o,
        Err(e) => return Note::Alert(text::error(l, &e)),
    };
    if d.discount.is_some() && matches!(buy, Buy::Plan(_)) {
        d.discount = None;
        bot.save_dialogue(ctx.chat, &d).await;
    }
    let req = PayRequest {
        method: m,
        email: None,
        phone: None,
    };
    let p = match bot.app().pay_order(&ctx.actor, order.id, req).await {
        Ok(p) => p,
        Err(e) => {
            let _ = bot.app().cancel_order(&ctx.actor, order.id).await;
            return Note::Alert(text::error(l, &e));
        }
    };
    let s = payment_screen(bot, ctx, &order, &p).await;
    bot.show(ctx, s).await;
    Note::Quiet
}

async fn payment_screen(bot: &ShopBot, ctx: &Ctx, order: &OrderView, p: &PaymentView) -> Screen {
    let l = ctx.lang;
    let amount = Money::new(p.amount_minor, p.currency)
        .map(|m| money(l, m))
        .unwrap_or_default();
    let mut discount = String::new();
    if order.discount_minor > 0
        && let Ok(off) = Money::new(order.discount_minor, order.currency)
    {
        discount = format!(
            "\n{}",
            tra(l, "bot-discount-off", &[("off", money(l, off).into())])
        );
    }
    match p.method {
        PaymentMethod::Card => {
            let mut d = bot.dialogue(ctx.chat).await;
            d.awaiting = Awaiting::Receipt { payment_id: p.id };
            bot.save_dialogue(ctx.chat, &d).await;
            let Some(card) = &p.card else {
                return Screen::new(tr(l, "bot-no-methods"), Kb::new().back(l, Cb::Menu));
            };
            let deadline = card
                .expires_at
                .map(|t| text::date(l, t.millis()) + " " + &clock(t.millis()))
                .unwrap_or_default();
            let text = tra(
                l,
                "bot-card-instructions",
                &[
                    ("amount", amount.into()),
                    (
                        "card",
                        format!("<code>{}</code>", esc(&card.card_number)).into(),
                    ),
                    ("owner", esc(&card.owner_name).into()),
                    ("bank", esc(card.bank.as_deref().unwrap_or("")).into()),
                    ("deadline", deadline.into()),
                    ("order", order.id.into()),
                ],
            );
            Screen::new(
                format!("{text}{discount}"),
                Kb::new()
                    .button(tr(l, "bot-btn-cancel-order"), Cb::CancelOrder(order.id))
                    .back(l, Cb::Menu),
            )
        }
        PaymentMethod::Wallet => Screen::new(
            format!(
                "{}{discount}",
                tra(
                    l,
                    "bot-paid-from-wallet",
                    &[("amount", amount.into()), ("order", order.id.into())]
                )
            ),
            Kb::new()
                .button(tr(l, "bot-btn-services"), Cb::Services)
                .back(l, Cb::Menu),
        ),
        _ => {
            let mut kb = Kb::new();
            if let Some(url) = &p.pay_url {
                kb = kb.url(
                    tra(l, "bot-btn-pay", &[("amount", amount.clone().into())]),
                    url,
                );
            }
            kb = kb
                .button(tr(l, "bot-btn-cancel-order"), Cb::CancelOrder(order.id))
                .back(l, Cb::Menu);
            Screen::new(
                format!(
                    "{}{discount}",
                    tra(
                        l,
                        "bot-pay-online",
                        &[
                            ("amount", amount.into()),
                            ("method", method_label(l, p.method).into()),
                            ("order", order.id.into())
                        ]
                    )
                ),
                kb,
            )
        }
    }
}

fn clock(ms: i64) -> String {
    let t = mrjbot_domain::Timestamp::from_millis(ms)
        .to_datetime()
        .to_offset(
            time::UtcOffset::from_whole_seconds(mrjbot_i18n::IRAN_OFFSET_MINUTES * 60)
                .unwrap_or(time::UtcOffset::UTC),
        );
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// The full subscription URL.
pub(crate) fn link_of(bot: &ShopBot, sub: &SubscriptionView) -> Option<String> {
    let path = sub.subscription_url.as_deref()?;
    let base = bot
        .cfg()
        .public_url
        .clone()
        .or_else(|| bot.app().gateways().public_url.clone())
        .unwrap_or_default();
    Some(format!("{}{path}", base.trim_end_matches('/')))
}

fn sub_summary(l: Lang, sub: &SubscriptionView, now_ms: i64) -> String {
    let status = tr(l, &format!("sub-status-{}", sub.status.as_str()));
    let left = sub
        .expires_at
        .map(|e| days(l, (e.millis() - now_ms).max(0) / 86_400_000))
        .unwrap_or_else(|| tr(l, "bot-unlimited"));
    let data_left = sub
        .data_limit_bytes
        .map(|lim| bytes(l, Some((lim - sub.used_bytes).max(0))))
        .unwrap_or_else(|| tr(l, "bot-unlimited"));
    let expires = sub
        .expires_at
        .map(|e| text::date(l, e.millis()))
        .unwrap_or_else(|| tr(l, "bot-not-started"));
    tra(
        l,
        "bot-sub-card",
        &[
            ("id", sub.id.into()),
            (
                "emoji",
                mrjbot_i18n::status_emoji(sub.status.as_str()).into(),
            ),
            ("status", status.into()),
            ("expires", expires.into()),
            ("left", left.into()),
            ("used", bytes(l, Some(sub.used_bytes)).into()),
            ("limit", bytes(l, sub.data_limit_bytes).into()),
            ("dataleft", data_left.into()),
        ],
    )
}

/// Sends the link as a QR picture with the link and how-to buttons.
pub(crate) async fn send_link(bot: &ShopBot, chat: i64, l: Lang, sub: &SubscriptionView) {
    let Some(url) = link_of(bot, sub) else {
        bot.say(chat, &tr(l, "bot-link-revoked"), None).await;
        return;
    };
    let caption = format!(
        "{}\n\n<code>{}</code>\n\n{}",
        tr(l, "bot-link-title"),
        esc(&url),
        sub_summary(l, sub, bot.app().now().millis())
    );
    let kb = Kb::new().button(tr(l, "bot-btn-apps"), Cb::Apps).row(vec![
        (tr(l, "bot-btn-services"), Cb::Services),
        (tr(l, "bot-btn-menu"), Cb::Menu),
    ]);
    let sent = match qr_png(&url) {
        Some(png) => bot.photo(chat, png, &caption, kb.clone()).await.is_ok(),
        None => false,
    };
    if !sent {
        bot.say(chat, &caption, Some(kb.markup())).await;
    }
}

async fn my_subs(bot: &ShopBot, ctx: &Ctx) -> Vec<SubscriptionView> {
    let q = SubscriptionQuery {
        user_id: ctx.actor.user_id,
        ..Default::default()
    };
    bot.app()
        .list_subscriptions(
            &ctx.actor,
            q,
            &ListParams {
                limit: Some(50),
                ..Default::default()
            },
        )
        .await
        .map(|(s, _)| s)
        .unwrap_or_default()
}

async fn services(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let subs = my_subs(bot, ctx).await;
    if subs.is_empty() {
        return Screen::new(
            tr(l, "bot-no-services"),
            Kb::new()
                .button(tr(l, "bot-btn-buy"), Cb::Buy)
                .button(tr(l, "bot-btn-trial"), Cb::Trial)
                .back(l, Cb::Menu),
        );
    }
    let now = bot.app().now().millis();
    let buttons = subs
        .iter()
        .map(|s| {
            let left = s
                .expires_at
                .map(|e| days(l, (e.millis() - now).max(0) / 86_400_000))
                .unwrap_or_default();
            (
                format!(
                    "{} #{} {}",
                    mrjbot_i18n::status_emoji(s.status.as_str()),
                    num(l, s.id),
                    left
                ),
                Cb::Sub(s.id),
            )
        })
        .collect();
    Screen::new(
        tr(l, "bot-services-title"),
        Kb::new().grid(buttons, 1).back(l, Cb::Menu),
    )
}

async fn sub_screen(bot: &ShopBot, ctx: &Ctx, id: i64) -> Screen {
    let l = ctx.lang;
    let sub = match bot.app().get_subscription(&ctx.actor, id).await {
        Ok(s) if ctx.actor.is(s.user_id) => s,
        _ => return Screen::new(tr(l, "bot-stale-button"), Kb::new().back(l, Cb::Services)),
    };
    let mut text = sub_summary(l, &sub, bot.app().now().millis());
    if let Some(url) = link_of(bot, &sub) {
        text.push_str(&format!("\n\n<code>{}</code>", esc(&url)));
    }
    let mut kb = Kb::new().row(vec![
        (tr(l, "bot-btn-link"), Cb::Link(id)),
        (tr(l, "bot-btn-renew"), Cb::Renew(id)),
    ]);
    if sub.data_limit_bytes.is_some() {
        kb = kb.button(tr(l, "bot-btn-traffic"), Cb::Traffic(id));
    }
    kb = kb.row(vec![
        (tr(l, "bot-btn-rotate"), Cb::Rotate(id)),
        (tr(l, "bot-btn-move"), Cb::Move(id)),
    ]);
    if sub.status == SubscriptionStatus::Disabled {
        text.push_str(&format!("\n\n{}", tr(l, "bot-sub-disabled-note")));
    }
    Screen::new(text, kb.back(l, Cb::Services))
}

async fn help(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let settings = bot.app().shop_settings().await.ok();
    let mut text = tr(l, "bot-help");
    if let Some(s) = &settings {
        let note = s.support_note.get(l);
        if !note.trim().is_empty() {
            text.push_str("\n\n");
            text.push_str(&esc(note));
        }
    }
    let mut buttons = Vec::new();
    if let Some(s) = &settings {
        for (i, f) in s.faq.iter().enumerate().take(30) {
            let q: String = f.question.get(l).chars().take(60).collect();
            buttons.push((format!("❔ {q}"), Cb::Faq(u16::try_from(i).unwrap_or(0))));
        }
    }
    if !buttons.is_empty() {
        text.push_str("\n\n");
        text.push_str(&tr(l, "bot-faq-title"));
    }
    Screen::new(
        text,
        Kb::new()
            .grid(buttons, 1)
            .button(tr(l, "bot-btn-apps"), Cb::Apps)
            .button(tr(l, "bot-btn-support"), Cb::Support)
            .back(l, Cb::Menu),
    )
}

async fn faq(bot: &ShopBot, ctx: &Ctx, i: u16) -> Screen {
    let l = ctx.lang;
    let settings = bot.app().shop_settings().await.ok();
    let Some(f) = settings.as_ref().and_then(|s| s.faq.get(usize::from(i))) else {
        return Screen::new(tr(l, "bot-stale-button"), Kb::new().back(l, Cb::Help));
    };
    Screen::new(
        format!(
            "<b>{}</b>\n\n{}",
            esc(f.question.get(l)),
            esc(f.answer.get(l))
        ),
        Kb::new().back(l, Cb::Help),
    )
}

async fn apps(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let guides = bot
        .app()
        .shop_settings()
        .await
        .map(|s| s.app_guides)
        .unwrap_or_default();
    let mut text = tr(l, "bot-apps-intro");
    let mut kb = Kb::new();
    for g in &guides {
        text.push_str(&format!(
            "\n• <b>{}</b> — {}",
            esc(&g.name),
            esc(&g.platforms)
        ));
        kb = kb.url(format!("⬇️ {}", g.name), &g.url);
    }
    Screen::new(text, kb.back(l, Cb::Menu))
}

async fn trial(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    match bot.app().trial_offer(&ctx.actor).await {
        Ok(o) if !o.enabled => Screen::new(tr(l, "bot-trial-off"), Kb::new().back(l, Cb::Menu)),
        Ok(o) if o.used => Screen::new(
            tr(l, "bot-trial-used"),
            Kb::new()
                .button(tr(l, "bot-btn-buy"), Cb::Buy)
                .back(l, Cb::Menu),
        ),
        Ok(o) => Screen::new(
            tra(
                l,
                "bot-trial-offer",
                &[
                    ("data", bytes(l, Some(o.data_bytes)).into()),
                    ("hours", o.hours.into()),
                ],
            ),
            Kb::new()
                .button(tr(l, "bot-btn-trial-take"), Cb::TrialYes)
                .back(l, Cb::Menu),
        ),
        Err(e) => Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Menu)),
    }
}

async fn wallet(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    let Some(uid) = ctx.actor.user_id else {
        return Screen::new(tr(l, "bot-stale-button"), Kb::new().back(l, Cb::Menu));
    };
    let view = bot
        .app()
        .wallet(
            &ctx.actor,
            uid,
            ListParams {
                limit: Some(5),
                ..Default::default()
            },
        )
        .await;
    let text = match view {
        Ok(w) => {
            let balances: Vec<String> = w
                .balances
                .iter()
                .filter_map(|b| Money::new(b.amount_minor, b.currency).ok())
                .map(|m| money(l, m))
                .collect();
            let balance = if balances.is_empty() {
                money(
                    l,
                    Money {
                        amount_minor: 0,
                        currency: Currency::Irr,
                    },
                )
            } else {
                balances.join(" · ")
            };
            tra(l, "bot-wallet", &[("balance", balance.into())])
        }
        Err(e) => text::error(l, &e),
    };
    Screen::new(
        text,
        Kb::new()
            .button(tr(l, "bot-btn-topup"), Cb::Topup)
            .back(l, Cb::Menu),
    )
}

async fn referral(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    match bot.app().referral_summary(&ctx.actor).await {
        Ok(r) => {
            let link = format!("https://t.me/{}?start=ref_{}", bot.username(), r.code);
            let value = r.point_value.map(|m| money(l, m)).unwrap_or_default();
            let text = tra(
                l,
                "bot-referral",
                &[
                    ("link", esc(&link).into()),
                    ("invited", r.invited.into()),
                    ("rewarded", r.rewarded.into()),
                    ("points", r.points.into()),
                    ("value", value.into()),
                ],
            );
            let mut kb = Kb::new();
            if r.can_redeem {
                kb = kb.button(tr(l, "bot-btn-redeem"), Cb::Redeem);
            }
            Screen::new(text, kb.back(l, Cb::Menu))
        }
        Err(e) => Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Menu)),
    }
}

async fn support(_bot: &ShopBot, ctx: &Ctx) -> Screen {
    let l = ctx.lang;
    Screen::new(
        tr(l, "bot-support"),
        Kb::new()
            .button(tr(l, "bot-btn-ticket-new"), Cb::TicketNew)
            .button(tr(l, "bot-btn-tickets"), Cb::Tickets)
            .back(l, Cb::Menu),
    )
}

async fn tickets(bot: &ShopBot, ctx: &Ctx) -> Screen {
    let q = mrjbot_app::support::tickets::TicketQuery {
        user_id: ctx.actor.user_id,
        ..Default::default()
    };
    ticket_list(bot, ctx, q, Cb::Ticket, Cb::Support).await
}

/// Tickets as buttons (`open` says what pressing one does), newest first.
pub(crate) async fn ticket_list(
    bot: &ShopBot,
    ctx: &Ctx,
    q: mrjbot_app::support::tickets::TicketQuery,
    open: fn(i64) -> Cb,
    back: Cb,
) -> Screen {
    let l = ctx.lang;
    let params = ListParams {
        limit: Some(20),
        ..Default::default()
    };
    match bot.app().list_tickets(&ctx.actor, q, params).await {
        Ok((ts, _)) if !ts.is_empty() => {
            let buttons = ts
                .iter()
                .map(|t| {
                    let subject: String = t.subject.chars().take(30).collect();
                    let label = format!(
                        "{} #{} {subject}",
                        ticket_emoji(t.status.as_str()),
                        num(l, t.id)
                    );
                    (label, open(t.id))
                })
                .collect();
            Screen::new(
                tr(l, "bot-tickets-title"),
                Kb::new().grid(buttons, 1).back(l, back),
            )
        }
        Ok(_) => Screen::new(tr(l, "bot-tickets-none"), Kb::new().back(l, back)),
        Err(e) => Screen::new(text::error(l, &e), Kb::new().back(l, back)),
    }
}

pub(crate) fn ticket_emoji(status: &str) -> &'static str {
    match status {
        "open" => "🟡",
        "answered" => "🟢",
        _ => "⚪",
    }
}

/// A ticket's thread (last messages) with reply / close.
pub(crate) async fn ticket_screen(bot: &ShopBot, ctx: &Ctx, id: i64) -> Screen {
    let l = ctx.lang;
    let t = match bot.app().get_ticket(&ctx.actor, id).await {
        Ok(t) => t,
        Err(e) => return Screen::new(text::error(l, &e), Kb::new().back(l, Cb::Tickets)),
    };
    let mut text = tra(
        l,
        "bot-ticket-head",
        &[
            ("id", t.ticket.id.into()),
            ("subject", esc(&t.ticket.subject).into()),
            (
                "status",
                tr(
                    l,
                    &format!("bot-ticket-status-{}", t.ticket.status.as_str()),
                )
                .into(),
            ),
        ],
    );
    let skip = t.messages.len().saturating_sub(8);
    for m in t.messages.iter().skip(skip) {
        let who = if m.from_staff {
            tr(l, "bot-ticket-staff")
        } else {
            tr(l, "bot-ticket-you")
        };
        let body: String = m.body.chars().take(600).collect();
        text.push_str(&format!(
            "\n\n<b>{who}</b> · {}\n{}",
            text::date(l, m.created_at.millis()),
            esc(&body)
        ));
    }
    let mut kb = Kb::new();
    if t.ticket.status != mrjbot_app::support::tickets::TicketStatus::Closed {
        kb = kb.row(vec![
            (tr(l, "bot-btn-reply"), Cb::TicketReply(id)),
            (tr(l, "bot-btn-close-ticket"), Cb::TicketClose(id)),
        ]);
    }
    Screen::new(text, kb.back(l, Cb::Tickets))
}

impl Ctx {
    /// A copy of the context (for variations such as another language or a fresh send).
    pub(crate) fn clone_ctx(&self) -> Ctx {
        Ctx {
            chat: self.chat,
            private: self.private,
            tg_id: self.tg_id,
            lang: self.lang,
            actor: self.actor.clone(),
            customer: self.customer.clone(),
            edit: self.edit,
            edit_is_text: self.edit_is_text,
        }
    }
}
