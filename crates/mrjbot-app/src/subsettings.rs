//! The seller's settings for subscription links: what every VPN app shows as the
//! profile's title, how often it refreshes, where support is, how each server is named
//! and which document each app gets.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use mrjbot_db::{feed, settings as settings_repo};
use mrjbot_domain::Permission;
use mrjbot_domain::document::{UaRule, UaRules};
use serde::{Deserialize, Serialize};

/// Settings key in the `settings` table.
pub const KEY: &str = "subscription";

/// Subscription link settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionSettings {
    /// Profile name shown in VPN apps (`profile-title`), 1-64 characters.
    pub title: String,
    /// Hours between automatic refreshes by the apps (1-168).
    pub update_interval_hours: u32,
    /// Support link shown by the apps and on the page (`https://t.me/...`), may be empty.
    pub support_url: String,
    /// Public base URL of the links, e.g. `https://sub.example.com`; empty: taken from
    /// the request's `Host`.
    pub public_url: String,
    /// Remark of each server in the apps. Placeholders: `{USERNAME}`, `{NODE}`,
    /// `{REGION}`, `{FLAG}`, `{PROTOCOL}`, `{TRANSPORT}`, `{SERVER}`, `{DATA_USED}`,
    /// `{DATA_LIMIT}`, `{DATA_LEFT}`, `{DAYS_LEFT}`, `{EXPIRE_DATE}`,
    /// `{JALALI_EXPIRE_DATE}`, `{STATUS_EMOJI}`, `{STATUS_TEXT}`.
    pub remark_template: String,
    /// The shop's Telegram bot (`@name`), named in "renew" messages; may be empty.
    pub bot_username: String,
    /// Announcement shown by apps that support it (Happ, v2RayTun); may be empty.
    pub announce: String,
    /// Language of remarks and the default language of the page: `fa`, `en` or `ru`.
    pub language: String,
    /// Offset of the shop's time zone from UTC in minutes (Iran: 210), for dates.
    pub utc_offset_minutes: i32,
    /// User-Agent rules choosing the document (first match wins); empty: the built-in
    /// table (Clash Meta, sing-box, base64 for everything else).
    pub ua_rules: Vec<UaRule>,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            title: "MRJBot".into(),
            update_interval_hours: 12,
            support_url: String::new(),
            public_url: String::new(),
            remark_template: "{FLAG} {NODE} {PROTOCOL}".into(),
            bot_username: String::new(),
            announce: String::new(),
            language: "en".into(),
            utc_offset_minutes: 0,
            ua_rules: Vec::new(),
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_url(field: &str, url: &str) -> AppResult<()> {
    if url.is_empty() {
        return Ok(());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty()
                && url.len() <= 300
                && !url.contains(char::is_whitespace)
                && !has_control(url) =>
        {
            Ok(())
        }
        _ => Err(AppError::field(
            field,
            "must be an http(s) URL of at most 300 characters",
        )),
    }
}

impl SubscriptionSettings {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> AppResult<()> {
        let title_len = self.title.chars().count();
        if !(1..=64).contains(&title_len) || has_control(&self.title) {
            return Err(AppError::field("title", "must be 1-64 characters"));
        }
        if !(1..=168).contains(&self.update_interval_hours) {
            return Err(AppError::field(
                "update_interval_hours",
                "must be between 1 and 168",
            ));
        }
        check_url("support_url", &self.support_url)?;
        check_url("public_url", &self.public_url)?;
        if self.public_url.ends_with('/') {
            return Err(AppError::field("public_url", "must not end with /"));
        }
        let t = self.remark_template.chars().count();
        if !(1..=200).contains(&t) || has_control(&self.remark_template) {
            return Err(AppError::field(
                "remark_template",
                "must be 1-200 characters",
            ));
        }
        let bot_ok = self.bot_username.is_empty()
            || (self.bot_username.len() <= 33
                && self.bot_username.starts_with('@')
                && self.bot_username[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !bot_ok {
            return Err(AppError::field(
                "bot_username",
                "must look like @my_shop_bot",
            ));
        }
        if self.announce.chars().count() > 200 || has_control(&self.announce) {
            return Err(AppError::field(
                "announce",
                "must be at most 200 characters",
            ));
        }
        if mrjbot_i18n::Lang::parse(&self.language).is_none() {
            return Err(AppError::field("language", "must be fa, en or ru"));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(AppError::field(
                "utc_offset_minutes",
                "must be between -720 and 840",
            ));
        }
        if self.ua_rules.len() > 50 {
            return Err(AppError::field("ua_rules", "at most 50 rules"));
        }
        if self.ua_rules.iter().any(|r| r.pattern.len() > 200) {
            return Err(AppError::field(
                "ua_rules",
                "a pattern is longer than 200 characters",
            ));
        }
        UaRules::new(&self.ua_rules).map_err(|e| AppError::field("ua_rules", e))?;
        Ok(())
    }

    /// Parses a stored document; a damaged one falls back to the defaults (and says so
    /// in the log) rather than taking every link down.
    pub fn from_stored(json: Option<&str>) -> SubscriptionSettings {
        let Some(json) = json else {
            return SubscriptionSettings::default();
        };
        match serde_json::from_str::<SubscriptionSettings>(json) {
            Ok(s) if s.validate().is_ok() => s,
            _ => {
                tracing::warn!("stored subscription settings are invalid; using defaults");
                SubscriptionSettings::default()
            }
        }
    }
}

impl App {
    /// The subscription link settings (needs `settings.read`).
    pub async fn subscription_settings(&self, actor: &Actor) -> AppResult<SubscriptionSettings> {
        actor.require(Permission::SettingsRead)?;
        let stored = settings_repo::get(self.db().read().await?.conn(), KEY).await?;
        Ok(SubscriptionSettings::from_stored(stored.as_deref()))
    }

    /// Replaces the subscription link settings (needs `settings.write`). Every link is
    /// served with the new settings from the next request on, on every replica.
    pub async fn update_subscription_settings(
        &self,
        actor: &Actor,
        new: SubscriptionSettings,
    ) -> AppResult<SubscriptionSettings> {
        actor.require(Permission::SettingsWrite)?;
        new.validate()?;
        let now = self.now().millis();
        let json = serde_json::to_string(&new).map_err(AppError::internal)?;
        let mut tx = self.db().begin().await?;
        let before = settings_repo::get(tx.conn(), KEY).await?;
        let before = SubscriptionSettings::from_stored(before.as_deref());
        settings_repo::put(tx.conn(), KEY, &json, now, actor.user_id).await?;
        feed::announce(tx.conn(), "t").await?;
        self.audit(
            tx.conn(),
            actor,
            "settings.subscription.update",
            "settings",
            None,
            Some(&before),
            Some(&new),
        )
        .await?;
        tx.commit().await?;
        self.feed_changed(crate::feed::Changed::Topology).await;
        Ok(new)
    }
}
