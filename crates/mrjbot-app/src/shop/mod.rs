//! The shop front's services, for the Telegram bot (a thin front door that calls these
//! in-process): who is writing (customers created on first contact, one per Telegram
//! id even under concurrent updates), their language, bans, the staff's customer lookup
//! and `/stats`, and in the submodules referrals and points, free trials, the seller's
//! shop settings and the expiry / data reminders.

pub mod referrals;
pub mod reminders;
pub mod settings;
pub mod trials;

pub use referrals::ReferralSummary;
pub use settings::{
    AppGuide, FaqEntry, Localized, ReferralSettings, ReminderSettings, ShopSettings, TrialSettings,
};
pub use trials::TrialOffer;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::money::report::{ReportQuery, RevenueReport};
use crate::subscriptions::SubscriptionView;
use crate::{App, ListParams};
use mrjbot_db::shop::{self as repo, CustomerRow, Lookup, NewTelegramUser};
use mrjbot_db::subscriptions::{self as subs_repo, SubscriptionFilter};
use mrjbot_db::{money as money_repo, roles as roles_repo, sessions, stats};
use mrjbot_domain::{Currency, ErrorCode, Money, Permission, TelegramId, Timestamp};
use mrjbot_i18n::Lang;
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;
const LOOKUP_LIMIT: i64 = 10;

/// Who wrote to the bot (from Telegram's User object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramProfile {
    /// Telegram user id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// @username, without or with the `@`.
    pub username: Option<String>,
    /// IETF language tag of the user's Telegram app (`fa`, `en-US`...).
    pub language_code: Option<String>,
}

/// A customer as the bot needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    /// Our user id.
    pub user_id: i64,
    /// Telegram user id (= their private chat id).
    pub telegram_id: i64,
    /// The language they read.
    pub language: Lang,
    /// Their name as Telegram reports it.
    pub display_name: String,
    /// Created by this call.
    pub is_new: bool,
    /// Banned by staff.
    pub disabled: bool,
}

/// What staff see of a customer they looked up.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerCard {
    /// Our user id.
    pub user_id: i64,
    /// Telegram user id.
    pub telegram_id: Option<i64>,
    /// Telegram @username (lower-case, without `@`).
    pub telegram_username: Option<String>,
    /// Name.
    pub display_name: Option<String>,
    /// The language they read.
    pub language: Lang,
    /// `active` or `disabled`.
    pub status: String,
    /// First contact.
    pub created_at: Timestamp,
    /// Every subscription, newest first.
    pub subscriptions: Vec<SubscriptionView>,
    /// Wallet balance per currency.
    pub balances: Vec<Money>,
    /// Points held.
    pub points: i64,
    /// Orders paid.
    pub paid_orders: i64,
    /// When a payment of theirs was last approved.
    pub last_payment_at: Option<Timestamp>,
}

/// The staff's `/stats`. Days and months are the seller's (the UTC offset of the
/// payment settings, which the revenue report uses too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShopStats {
    /// Customers (holders of the `user` or `vip` role).
    pub customers_total: i64,
    /// Of them, created today.
    pub customers_today: i64,
    /// Subscriptions active now.
    pub active_subscriptions: i64,
    /// Of them, ending within 3 days.
    pub expiring_3d: i64,
    /// Net revenue today, per currency.
    pub revenue_today: Vec<Money>,
    /// Net revenue this month, per currency.
    pub revenue_month: Vec<Money>,
    /// Card payments with a receipt waiting for a decision.
    pub awaiting_review: i64,
    /// Tickets waiting for an answer.
    pub open_tickets: i64,
    /// Nodes reporting as online.
    pub nodes_online: i64,
    /// All nodes.
    pub nodes_total: i64,
}

/// The display name from Telegram's first and last name (at most 64 characters).
fn display_name_of(p: &TelegramProfile) -> Option<String> {
    let full = match p.last_name.as_deref().map(str::trim) {
        Some(l) if !l.is_empty() => format!("{} {l}", p.first_name.trim()),
        _ => p.first_name.trim().to_owned(),
    };
    let name: String = full.trim().chars().take(64).collect();
    (!name.is_empty()).then_some(name)
}

/// A Telegram @username as stored: without `@`, lower-case, only if it is one.
fn telegram_username_of(u: Option<&str>) -> Option<String> {
    let u = u?.trim().trim_start_matches('@').to_ascii_lowercase();
    ((1..=32).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(u)
}

fn lang_of(row: &CustomerRow) -> Lang {
    Lang::parse(&row.language).unwrap_or(Lang::Fa)
}

fn customer_of(row: &CustomerRow, telegram_id: i64, is_new: bool) -> Customer {
    Customer {
        user_id: row.id,
        telegram_id,
        language: lang_of(row),
        display_name: row.display_name.clone().unwrap_or_default(),
        is_new,
        disabled: row.status == "disabled",
    }
}

/// Parses a staff lookup query.
fn parse_lookup(query: &str) -> AppResult<Lookup> {
    let q = query.trim();
    if q.is_empty() || q.chars().count() > 64 {
        return Err(AppError::field("query", "1 to 64 characters"));
    }
    if let Some(t) = q.strip_prefix("tg:") {
        return t
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|t| *t > 0)
            .map(Lookup::TelegramId)
            .ok_or_else(|| AppError::field("query", "tg: takes a Telegram id"));
    }
    if q.starts_with('@') {
        return telegram_username_of(Some(q))
            .map(Lookup::TelegramUsername)
            .ok_or_else(|| AppError::field("query", "not a Telegram @username"));
    }
    if let Ok(n) = q.parse::<i64>() {
        return if n > 0 {
            Ok(Lookup::Number(n))
        } else {
            Err(AppError::field("query", "ids are positive"))
        };
    }
    Ok(Lookup::Name(q.to_owned()))
}

/// Start of the seller's day and month containing `now_ms`, as UTC epoch ms.
fn local_day_and_month_start(now_ms: i64, offset_minutes: i32) -> (i64, i64) {
    let off = i64::from(offset_minutes) * 60_000;
    let local = now_ms + off;
    let day = local.div_euclid(DAY_MS) * DAY_MS;
    let month = time::OffsetDateTime::from_unix_timestamp(local.div_euclid(1000))
        .ok()
        .and_then(|dt| dt.date().replace_day(1).ok())
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
        .unwrap_or(day);
    (day - off, month - off)
}

fn net_per_currency(r: &RevenueReport) -> Vec<Money> {
    r.totals
        .iter()
        .filter_map(|t| {
            Currency::parse(&t.currency).ok().map(|currency| Money {
                amount_minor: t.net_minor,
                currency,
            })
        })
        .collect()
}

impl App {
    /// Finds the user with this Telegram id or creates one (a customer: role `user`, no
    /// username or password; language from Telegram's when it is fa/en/ru, else fa),
    /// and keeps their name and @username fresh. A new customer who came with
    /// `start_payload` `ref_<code>` of another user is recorded as that user's referral.
    /// Concurrent calls for the same id create one user (one of them gets `is_new`).
    pub async fn telegram_customer(
        &self,
        p: &TelegramProfile,
        start_payload: Option<&str>,
    ) -> AppResult<Customer> {
        let tg = TelegramId::new(p.id)
            .map_err(|e| AppError::field("telegram_id", e.message))?
            .get();
        let display_name = display_name_of(p);
        let username = telegram_username_of(p.username.as_deref());
        let now = self.now().millis();
        if let Some(row) = repo::customer_by_telegram(self.db().read().await?.conn(), tg).await? {
            if row.display_name != display_name || row.telegram_username != username {
                let mut tx = self.db().begin().await?;
                repo::set_telegram_profile(
                    tx.conn(),
                    row.id,
                    display_name.as_deref(),
                    username.as_deref(),
                    now,
                )
                .await?;
                tx.commit().await?;
                self.inner.caches.users_changed();
                let fresh = CustomerRow {
                    display_name,
                    telegram_username: username,
                    ..row
                };
                return Ok(customer_of(&fresh, tg, false));
            }
            return Ok(customer_of(&row, tg, false));
        }
        let language = p
            .language_code
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or(Lang::Fa);
        let mut tx = self.db().begin().await?;
        let created = repo::insert_telegram_user(
            tx.conn(),
            &NewTelegramUser {
                telegram_id: tg,
                telegram_username: username.as_deref(),
                display_name: display_name.as_deref(),
                language: language.code(),
                now,
            },
        )
        .await?;
        let Some(id) = created else {
            // A concurrent call for the same person created the user first.
            drop(tx);
            let row = repo::customer_by_telegram(self.db().read().await?.conn(), tg)
                .await?
                .ok_or_else(|| AppError::new(ErrorCode::Unavailable, "try again"))?;
            return Ok(customer_of(&row, tg, false));
        };
        let role = roles_repo::get_by_name(tx.conn(), "user")
            .await?
            .ok_or_else(|| AppError::internal(std::io::Error::other("the user role is missing")))?;
        roles_repo::assign(tx.conn(), id, role.id, None, now, None).await?;
        if let Some(code) = start_payload.and_then(referrals::code_of_start_payload)
            && let Some(referrer) = repo::user_by_referral_code(tx.conn(), &code).await?
            && referrer != id
        {
            repo::insert_referral(tx.conn(), referrer, id, now).await?;
            tracing::info!(referrer, referred = id, "referral recorded");
        }
        tx.commit().await?;
        self.inner.caches.users_changed();
        let row = CustomerRow {
            id,
            username: None,
            telegram_id: Some(tg),
            telegram_username: username,
            display_name,
            language: language.code().to_owned(),
            status: "active".into(),
            referral_code: None,
            created_at: now,
        };
        Ok(customer_of(&row, tg, true))
    }

    /// The actor for a Telegram user (the permissions of their roles), `None` when no
    /// user has this Telegram id; a banned user gets `account_disabled`.
    pub async fn actor_for_telegram(&self, telegram_id: i64) -> AppResult<Option<Actor>> {
        let mut rc = self.db().read().await?;
        let Some(row) = repo::customer_by_telegram(rc.conn(), telegram_id).await? else {
            return Ok(None);
        };
        if row.status != "active" {
            return Err(AppError::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        let (permissions, roles) = self.permissions_of(rc.conn(), row.id, self.now()).await?;
        Ok(Some(Actor {
            user_id: Some(row.id),
            label: row.username.unwrap_or_else(|| format!("tg:{telegram_id}")),
            permissions,
            roles,
            session_id: None,
            request_id: None,
        }))
    }

    /// Sets the caller's language.
    pub async fn set_language(&self, actor: &Actor, lang: Lang) -> AppResult<()> {
        let uid = actor.user_id.ok_or_else(AppError::denied)?;
        let mut tx = self.db().begin().await?;
        if !repo::set_language(tx.conn(), uid, lang.code(), self.now().millis()).await? {
            return Err(AppError::not_found(ErrorCode::UserNotFound, "user"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Bans (`status` disabled: the bot stops serving them, their sessions end) or
    /// unbans a customer (needs `users.write` and every permission the target holds),
    /// audited. Their subscriptions keep their state: the seller decides about those
    /// separately.
    pub async fn set_banned(&self, actor: &Actor, user_id: i64, banned: bool) -> AppResult<()> {
        actor.require(Permission::UsersWrite)?;
        if banned && actor.is(user_id) {
            return Err(AppError::field("user_id", "you cannot ban yourself"));
        }
        let before = self.manageable(actor, user_id).await?;
        let status = if banned { "disabled" } else { "active" };
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        if !repo::set_status(tx.conn(), user_id, status, now).await? {
            return Ok(());
        }
        if banned {
            sessions::revoke_all(tx.conn(), user_id, None, now).await?;
        }
        self.audit(
            tx.conn(),
            actor,
            if banned { "user.ban" } else { "user.unban" },
            "user",
            Some(user_id),
            Some(&serde_json::json!({ "status": before.status })),
            Some(&serde_json::json!({ "status": status })),
        )
        .await?;
        tx.commit().await?;
        self.inner.caches.forget_user(user_id);
        self.announce_actors();
        Ok(())
    }

    /// Staff lookup (needs `users.read`): `123` (a user id or a Telegram id), `tg:123`
    /// (a Telegram id), `@username` (Telegram), or part of the name (the first 10).
    pub async fn lookup_customers(
        &self,
        actor: &Actor,
        query: &str,
    ) -> AppResult<Vec<CustomerCard>> {
        actor.require(Permission::UsersRead)?;
        let by = parse_lookup(query)?;
        let mut rc = self.db().read().await?;
        let rows = repo::find_customers(rc.conn(), &by, LOOKUP_LIMIT).await?;
        let page = ListParams {
            limit: Some(100),
            sort: Some("id".into()),
            order: Some("desc".into()),
            ..ListParams::default()
        }
        .page(&["id"], "id")?;
        let mut cards = Vec::with_capacity(rows.len());
        for row in rows {
            let filter = SubscriptionFilter {
                user_id: Some(row.id),
                ..SubscriptionFilter::default()
            };
            let (subs, _) = subs_repo::list(rc.conn(), &filter, page).await?;
            let balances = money_repo::balances(rc.conn(), row.id)
                .await?
                .into_iter()
                .filter_map(|(cur, amount)| {
                    Currency::parse(&cur).ok().map(|currency| Money {
                        amount_minor: amount,
                        currency,
                    })
                })
                .collect();
            let points = repo::points_balance(rc.conn(), row.id).await?;
            let (paid_orders, last_payment_at) = repo::payment_summary(rc.conn(), row.id).await?;
            cards.push(CustomerCard {
                user_id: row.id,
                telegram_id: row.telegram_id,
                language: lang_of(&row),
                telegram_username: row.telegram_username,
                display_name: row.display_name,
                status: row.status,
                created_at: Timestamp::from_millis(row.created_at),
                subscriptions: subs.into_iter().map(SubscriptionView::from).collect(),
                balances,
                points,
                paid_orders,
                last_payment_at: last_payment_at.map(Timestamp::from_millis),
            });
        }
        Ok(cards)
    }

    /// The numbers of the staff's `/stats` (needs `reports.read`).
    pub async fn shop_stats(&self, actor: &Actor) -> AppResult<ShopStats> {
        actor.require(Permission::ReportsRead)?;
        let offset = self.payment_settings().await?.utc_offset_minutes;
        let now = self.now().millis();
        let (day, month) = local_day_and_month_start(now, offset);
        let report = |from: i64| ReportQuery {
            from: Some(Timestamp::from_millis(from)),
            utc_offset_minutes: Some(offset),
            ..ReportQuery::default()
        };
        let today = self.revenue_report(actor, report(day)).await?;
        let this_month = self.revenue_report(actor, report(month)).await?;
        let mut rc = self.db().read().await?;
        let counts = repo::counts(rc.conn(), day, now, now + 3 * DAY_MS).await?;
        let nodes = stats::nodes_by_status(rc.conn()).await?;
        Ok(ShopStats {
            customers_total: counts.customers,
            customers_today: counts.customers_since,
            active_subscriptions: counts.active_subscriptions,
            expiring_3d: counts.expiring,
            revenue_today: net_per_currency(&today),
            revenue_month: net_per_currency(&this_month),
            awaiting_review: counts.awaiting_review,
            open_tickets: counts.open_tickets,
            nodes_online: nodes
                .iter()
                .filter(|(s, _)| s == "online")
                .map(|(_, n)| n)
                .sum(),
            nodes_total: nodes.iter().map(|(_, n)| n).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(first: &str, last: Option<&str>) -> TelegramProfile {
        TelegramProfile {
            id: 1,
            first_name: first.into(),
            last_name: last.map(str::to_owned),
            username: None,
            language_code: None,
        }
    }

    #[test]
    fn names_and_usernames() {
        assert_eq!(
            display_name_of(&profile(" Ali ", Some("Rezaei"))).as_deref(),
            Some("Ali Rezaei")
        );
        assert_eq!(
            display_name_of(&profile("Ali", Some(" "))).as_deref(),
            Some("Ali")
        );
        assert_eq!(display_name_of(&profile(" ", None)), None);
        assert_eq!(
            display_name_of(&profile(&"x".repeat(100), None)).map(|n| n.len()),
            Some(64)
        );
        assert_eq!(
            telegram_username_of(Some("@Shop_Bot")).as_deref(),
            Some("shop_bot")
        );
        assert_eq!(telegram_username_of(Some("bad name")), None);
        assert_eq!(telegram_username_of(Some("@")), None);
    }

    #[test]
    fn lookups() {
        assert_eq!(parse_lookup(" 42 ").ok(), Some(Lookup::Number(42)));
        assert_eq!(parse_lookup("tg:77").ok(), Some(Lookup::TelegramId(77)));
        assert_eq!(
            parse_lookup("@Ali_R").ok(),
            Some(Lookup::TelegramUsername("ali_r".into()))
        );
        assert_eq!(
            parse_lookup("Ali Re").ok(),
            Some(Lookup::Name("Ali Re".into()))
        );
        for bad in ["", "tg:x", "tg:-5", "@a b", "-3"] {
            assert!(parse_lookup(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn day_and_month_follow_the_offset() {
        // 2026-11-30 22:00 UTC is 2026-12-01 01:30 in Tehran (+03:30).
        let now = 1_796_076_000_000;
        let (day, month) = local_day_and_month_start(now, 0);
        assert_eq!(day, 1_795_996_800_000); // 2026-11-30 00:00 UTC
        assert_eq!(month, 1_793_491_200_000); // 2026-11-01 00:00 UTC
        let (day, month) = local_day_and_month_start(now, 210);
        // 2026-12-01 00:00 +03:30 = 2026-11-30 20:30 UTC, both the day and the month.
        assert_eq!(day, 1_796_070_600_000);
        assert_eq!(month, day);
    }
}
