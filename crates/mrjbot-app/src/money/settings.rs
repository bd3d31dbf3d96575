//! The seller's payment rules, stored as one JSON value in the settings table and edited
//! from the dashboard/API: order and reservation windows, card rotation, the optional
//! receipt rules (trusted customers, temporary service during review, auto-accept under a
//! risk threshold), when to give up delivering and refund, and add-on traffic prices.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use mrjbot_db::settings as settings_repo;
use mrjbot_domain::Permission;
use mrjbot_domain::payment::CardRotation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const KEY: &str = "payments";

/// Auto-approval of card receipts from customers with a clean history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedRule {
    /// Approved card payments needed (and no rejected one).
    pub min_approved: u32,
    /// Only up to this amount, in rials.
    pub max_amount_minor: i64,
    /// Only when the receipt's verdict is low risk.
    #[serde(default = "yes")]
    pub require_low_risk: bool,
}

fn yes() -> bool {
    true
}

/// A temporary subscription while a receipt waits for review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemporaryRule {
    /// Percent of the plan's data (1..=50).
    pub percent: u8,
    /// Days it lasts (1..=7).
    pub days: u8,
}

/// Accepting card payments nobody reviewed, only under a risk threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoAccept {
    /// Days a receipt waited.
    pub after_days: u32,
    /// Highest risk score (0..=100) that may be accepted; high verdicts never are.
    pub max_risk_score: u8,
}

/// The seller's payment rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSettings {
    /// Minutes an unpaid order stays payable.
    pub order_ttl_minutes: u32,
    /// Minutes a reserved card waits for the transfer and the receipt.
    pub card_reservation_minutes: u32,
    /// How destination cards take turns.
    pub card_rotation: CardRotation,
    /// UTC offset of the seller's day, in minutes (card daily caps reset at local midnight).
    pub utc_offset_minutes: i32,
    /// Auto-approve receipts of trusted customers.
    pub trusted_auto_approve: Option<TrustedRule>,
    /// Give a temporary subscription while a receipt is reviewed.
    pub temporary_while_review: Option<TemporaryRule>,
    /// Accept unreviewed receipts after some days under a risk threshold.
    pub auto_accept: Option<AutoAccept>,
    /// Hours to keep retrying delivery before refunding to the wallet.
    pub provision_give_up_hours: u32,
    /// Where customers land after paying on a gateway page (e.g. `https://t.me/shop_bot`).
    pub return_url: Option<String>,
    /// Price of 1 GiB of extra traffic per currency code, in minor units.
    pub addon_price_per_gib: BTreeMap<String, i64>,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            order_ttl_minutes: 60,
            card_reservation_minutes: 30,
            card_rotation: CardRotation::RoundRobin,
            utc_offset_minutes: 210,
            trusted_auto_approve: None,
            temporary_while_review: None,
            auto_accept: None,
            provision_give_up_hours: 24,
            return_url: None,
            addon_price_per_gib: BTreeMap::new(),
        }
    }
}

impl PaymentSettings {
    /// Checks every value's range.
    pub fn validate(&self) -> AppResult<()> {
        if !(5..=10_080).contains(&self.order_ttl_minutes) {
            return Err(AppError::field("order_ttl_minutes", "5 to 10080"));
        }
        if !(5..=1_440).contains(&self.card_reservation_minutes) {
            return Err(AppError::field("card_reservation_minutes", "5 to 1440"));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(AppError::field("utc_offset_minutes", "-720 to 840"));
        }
        if let Some(t) = &self.trusted_auto_approve
            && (t.min_approved == 0 || t.min_approved > 1000 || t.max_amount_minor <= 0)
        {
            return Err(AppError::field(
                "trusted_auto_approve",
                "min_approved 1..1000 and a positive max_amount_minor",
            ));
        }
        if let Some(t) = &self.temporary_while_review
            && (!(1..=50).contains(&t.percent) || !(1..=7).contains(&t.days))
        {
            return Err(AppError::field(
                "temporary_while_review",
                "percent 1..50 and days 1..7",
            ));
        }
        if let Some(a) = &self.auto_accept
            && (!(1..=60).contains(&a.after_days) || a.max_risk_score > 59)
        {
            return Err(AppError::field(
                "auto_accept",
                "after_days 1..60 and max_risk_score 0..59 (high risk is never accepted)",
            ));
        }
        if !(1..=720).contains(&self.provision_give_up_hours) {
            return Err(AppError::field("provision_give_up_hours", "1 to 720"));
        }
        if let Some(u) = &self.return_url
            && (!(u.starts_with("https://") || u.starts_with("http://") || u.starts_with("tg://"))
                || u.len() > 500)
        {
            return Err(AppError::field("return_url", "an http(s) or tg:// URL"));
        }
        for (cur, price) in &self.addon_price_per_gib {
            if mrjbot_domain::Currency::parse(cur)
                .map(|c| c.code() != cur)
                .unwrap_or(true)
                || *price <= 0
            {
                return Err(AppError::field(
                    "addon_price_per_gib",
                    format!("`{cur}`: a known currency code and a positive price"),
                ));
            }
        }
        Ok(())
    }
}

impl App {
    /// The payment rules (defaults until the seller saves some).
    pub async fn payment_settings(&self) -> AppResult<PaymentSettings> {
        let raw = settings_repo::get(self.db().read().await?.conn(), KEY).await?;
        Ok(raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default())
    }

    /// Reads the payment rules (needs `settings.read`).
    pub async fn get_payment_settings(&self, actor: &Actor) -> AppResult<PaymentSettings> {
        actor.require(Permission::SettingsRead)?;
        self.payment_settings().await
    }

    /// Replaces the payment rules (needs `settings.write`), audited.
    pub async fn put_payment_settings(
        &self,
        actor: &Actor,
        s: PaymentSettings,
    ) -> AppResult<PaymentSettings> {
        actor.require(Permission::SettingsWrite)?;
        s.validate()?;
        let before = self.payment_settings().await?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let json = serde_json::to_string(&s).map_err(AppError::internal)?;
        settings_repo::put(tx.conn(), KEY, &json, now, actor.user_id).await?;
        self.audit(
            tx.conn(),
            actor,
            "settings.payments",
            "settings",
            None,
            Some(&before),
            Some(&s),
        )
        .await?;
        tx.commit().await?;
        Ok(s)
    }
}
