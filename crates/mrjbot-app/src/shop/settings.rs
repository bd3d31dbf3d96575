//! The seller's settings for the shop front: the free trial, the referral programme,
//! the channel customers must join, the FAQ and help text in three languages, which
//! reminders go out, the app guides, and the per-customer flood limit of the bot.
//!
//! Stored as one JSON value in the settings table; every field has a default, so a
//! fresh shop works before the seller opens the page, and a stored value from an older
//! version gains new fields with their defaults. Saving validates everything and
//! normalises what has one meaning (reminder lists sorted, regions trimmed).

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use mrjbot_db::settings as settings_repo;
use mrjbot_domain::{Currency, PaymentMethod, Permission};
use mrjbot_i18n::Lang;
use serde::{Deserialize, Serialize};

const KEY: &str = "shop";
const GIB: i64 = 1 << 30;

/// The free trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrialSettings {
    /// Whether customers may take a trial.
    pub enabled: bool,
    /// Data cap in bytes (1 MiB to 1 TiB).
    #[schema(minimum = 1_048_576, maximum = 1_099_511_627_776_i64)]
    pub data_bytes: i64,
    /// Length in hours (1 to 720).
    #[schema(minimum = 1, maximum = 720)]
    pub hours: i64,
    /// Region whose nodes serve trials (default: any node).
    pub region: Option<String>,
}

impl Default for TrialSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            data_bytes: GIB,
            hours: 24,
            region: None,
        }
    }
}

/// The referral programme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReferralSettings {
    /// Whether referrers earn points.
    pub enabled: bool,
    /// Points a referrer earns when the customer they brought first gets a paid order
    /// delivered (1 to 1,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub points_per_referral: i64,
    /// Wallet credit per point in minor units of `currency` (0: points cannot be redeemed).
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub point_value_minor: i64,
    /// Currency of the credit (one the wallet holds).
    pub currency: Currency,
}

impl Default for ReferralSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            points_per_referral: 10,
            // 1,000 toman.
            point_value_minor: 10_000,
            currency: Currency::Irr,
        }
    }
}

/// A text in each language the bot speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Localized {
    /// Persian.
    pub fa: String,
    /// English.
    pub en: String,
    /// Russian.
    pub ru: String,
}

impl Localized {
    /// The text in `lang`, or else in English, Persian, Russian (the first non-empty).
    pub fn get(&self, lang: Lang) -> &str {
        let own = match lang {
            Lang::Fa => &self.fa,
            Lang::En => &self.en,
            Lang::Ru => &self.ru,
        };
        [own, &self.en, &self.fa, &self.ru]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Whether every language is empty.
    pub fn is_empty(&self) -> bool {
        [&self.fa, &self.en, &self.ru]
            .iter()
            .all(|s| s.trim().is_empty())
    }

    fn trimmed(&self) -> Localized {
        Localized {
            fa: self.fa.trim().to_owned(),
            en: self.en.trim().to_owned(),
            ru: self.ru.trim().to_owned(),
        }
    }

    fn check(&self, field: &str, max: usize) -> AppResult<()> {
        for (lang, s) in [("fa", &self.fa), ("en", &self.en), ("ru", &self.ru)] {
            if s.chars().count() > max {
                return Err(AppError::field(
                    &format!("{field}.{lang}"),
                    format!("at most {max} characters"),
                ));
            }
        }
        Ok(())
    }
}

/// One question of the FAQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    /// The question (at least one language; at most 200 characters each).
    pub question: Localized,
    /// The answer (at least one language; at most 2000 characters each).
    pub answer: Localized,
}

/// Which reminders customers get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderSettings {
    /// Remind this many days before a subscription ends (each 1 to 30; at most 5).
    pub expiry_days: Vec<u32>,
    /// Warn when this percentage of the data cap is used (each 1 to 100; at most 5).
    pub data_percents: Vec<u8>,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        Self {
            expiry_days: vec![3, 1],
            data_percents: vec![80, 100],
        }
    }
}

/// How to import a subscription into one VPN app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppGuide {
    /// The app (1 to 64 characters).
    pub name: String,
    /// Where it runs, as shown (`Android, iOS`; at most 100 characters).
    pub platforms: String,
    /// Its download or project page (https).
    pub url: String,
}

fn guide(name: &str, platforms: &str, url: &str) -> AppGuide {
    AppGuide {
        name: name.into(),
        platforms: platforms.into(),
        url: url.into(),
    }
}

/// The seller's shop front settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ShopSettings {
    /// The free trial.
    pub trial: TrialSettings,
    /// The referral programme.
    pub referral: ReferralSettings,
    /// A channel customers must join before buying: `@channel` or a `-100…` chat id.
    pub required_channel: Option<String>,
    /// Questions and answers shown in the bot (at most 50).
    pub faq: Vec<FaqEntry>,
    /// Shown on /help (at most 2000 characters per language).
    pub support_note: Localized,
    /// Which reminders go out.
    pub reminders: ReminderSettings,
    /// Per-app import help (at most 20).
    pub app_guides: Vec<AppGuide>,
    /// Messages and taps one customer may send the bot per minute (1 to 10000).
    #[schema(minimum = 1, maximum = 10000)]
    pub user_rate_per_minute: u32,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            trial: TrialSettings::default(),
            referral: ReferralSettings::default(),
            required_channel: None,
            faq: Vec::new(),
            support_note: Localized::default(),
            reminders: ReminderSettings::default(),
            app_guides: vec![
                guide("v2rayNG", "Android", "https://github.com/2dust/v2rayNG"),
                guide(
                    "Hiddify",
                    "Android, iOS, Windows, macOS, Linux",
                    "https://github.com/hiddify/hiddify-app",
                ),
                guide(
                    "Streisand",
                    "iOS, macOS",
                    "https://apps.apple.com/us/app/streisand/id6450534064",
                ),
                guide(
                    "v2rayN",
                    "Windows, macOS, Linux",
                    "https://github.com/2dust/v2rayN",
                ),
                guide(
                    "sing-box",
                    "Android, iOS, macOS, Linux",
                    "https://sing-box.sagernet.org/clients/",
                ),
            ],
            user_rate_per_minute: 30,
        }
    }
}

/// Whether `s` names a Telegram channel: `@name` (5 to 32 of letters, digits and `_`,
/// starting with a letter) or a supergroup/channel chat id (`-100` and digits).
fn is_channel(s: &str) -> bool {
    if let Some(name) = s.strip_prefix('@') {
        return (5..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    s.strip_prefix("-100")
        .is_some_and(|d| (1..=16).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

impl ShopSettings {
    /// Checks every value and returns the settings as they are stored (trimmed texts,
    /// reminder lists without repeats: days from the earliest reminder, percentages
    /// from the lowest).
    pub fn normalized(&self) -> AppResult<ShopSettings> {
        let mut s = self.clone();
        let t = &mut s.trial;
        if !(1 << 20..=1 << 40).contains(&t.data_bytes) {
            return Err(AppError::field("trial.data_bytes", "1 MiB to 1 TiB"));
        }
        if !(1..=720).contains(&t.hours) {
            return Err(AppError::field("trial.hours", "1 to 720"));
        }
        t.region = t
            .region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        if t.region.as_ref().is_some_and(|r| r.chars().count() > 64) {
            return Err(AppError::field("trial.region", "at most 64 characters"));
        }
        let r = &s.referral;
        if !(1..=1_000_000).contains(&r.points_per_referral) {
            return Err(AppError::field(
                "referral.points_per_referral",
                "1 to 1000000",
            ));
        }
        if !(0..=1_000_000_000_000).contains(&r.point_value_minor) {
            return Err(AppError::field(
                "referral.point_value_minor",
                "0 to 1000000000000",
            ));
        }
        if !PaymentMethod::Wallet.accepts(r.currency) {
            return Err(AppError::field(
                "referral.currency",
                "a currency the wallet holds",
            ));
        }
        s.required_channel = s
            .required_channel
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if let Some(c) = &s.required_channel
            && !is_channel(c)
        {
            return Err(AppError::field(
                "required_channel",
                "`@channel` (5 to 32 letters, digits or _) or a chat id like -1001234567890",
            ));
        }
        if s.faq.len() > 50 {
            return Err(AppError::field("faq", "at most 50 entries"));
        }
        for (i, e) in s.faq.iter_mut().enumerate() {
            e.question = e.question.trimmed();
            e.answer = e.answer.trimmed();
            if e.question.is_empty() || e.answer.is_empty() {
                return Err(AppError::field(
                    &format!("faq[{i}]"),
                    "a question and an answer in at least one language",
                ));
            }
            e.question.check(&format!("faq[{i}].question"), 200)?;
            e.answer.check(&format!("faq[{i}].answer"), 2000)?;
        }
        s.support_note = s.support_note.trimmed();
        s.support_note.check("support_note", 2000)?;
        let rem = &mut s.reminders;
        if rem.expiry_days.len() > 5 || rem.expiry_days.iter().any(|d| !(1..=30).contains(d)) {
            return Err(AppError::field(
                "reminders.expiry_days",
                "at most 5 values, each 1 to 30",
            ));
        }
        if rem.data_percents.len() > 5 || rem.data_percents.iter().any(|p| !(1..=100).contains(p)) {
            return Err(AppError::field(
                "reminders.data_percents",
                "at most 5 values, each 1 to 100",
            ));
        }
        rem.expiry_days.sort_unstable_by(|a, b| b.cmp(a));
        rem.expiry_days.dedup();
        rem.data_percents.sort_unstable();
        rem.data_percents.dedup();
        if s.app_guides.len() > 20 {
            return Err(AppError::field("app_guides", "at most 20"));
        }
        for (i, g) in s.app_guides.iter_mut().enumerate() {
            g.name = g.name.trim().to_owned();
            g.platforms = g.platforms.trim().to_owned();
            g.url = g.url.trim().to_owned();
            if g.name.is_empty() || g.name.chars().count() > 64 {
                return Err(AppError::field(
                    &format!("app_guides[{i}].name"),
                    "1 to 64 characters",
                ));
            }
            if g.platforms.chars().count() > 100 {
                return Err(AppError::field(
                    &format!("app_guides[{i}].platforms"),
                    "at most 100 characters",
                ));
            }
            let url_ok = g.url.len() <= 500
                && url::Url::parse(&g.url)
                    .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
            if !url_ok {
                return Err(AppError::field(
                    &format!("app_guides[{i}].url"),
                    "an https URL",
                ));
            }
        }
        if !(1..=10_000).contains(&s.user_rate_per_minute) {
            return Err(AppError::field("user_rate_per_minute", "1 to 10000"));
        }
        Ok(s)
    }
}

impl App {
    /// The shop front settings (defaults until the seller saves some), for the bot and
    /// the services; no permission needed.
    pub async fn shop_settings(&self) -> AppResult<ShopSettings> {
        let raw = settings_repo::get(self.db().read().await?.conn(), KEY).await?;
        Ok(match raw {
            Some(r) => serde_json::from_str(&r).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored shop settings are unreadable; using defaults");
                ShopSettings::default()
            }),
            None => ShopSettings::default(),
        })
    }

    /// Reads the shop front settings (needs `settings.read`).
    pub async fn get_shop_settings(&self, actor: &Actor) -> AppResult<ShopSettings> {
        actor.require(Permission::SettingsRead)?;
        self.shop_settings().await
    }

    /// Replaces the shop front settings (needs `settings.write`), audited; returns them
    /// as stored.
    pub async fn put_shop_settings(
        &self,
        actor: &Actor,
        s: ShopSettings,
    ) -> AppResult<ShopSettings> {
        actor.require(Permission::SettingsWrite)?;
        let s = s.normalized()?;
        let before = self.shop_settings().await?;
        let now = self.now().millis();
        let json = serde_json::to_string(&s).map_err(AppError::internal)?;
        let mut tx = self.db().begin().await?;
        settings_repo::put(tx.conn(), KEY, &json, now, actor.user_id).await?;
        self.audit(
            tx.conn(),
            actor,
            "settings.shop",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_stable() {
        let d = ShopSettings::default();
        assert_eq!(d.normalized().ok(), Some(d.clone()));
        assert_eq!(d.reminders.expiry_days, vec![3, 1]);
        assert_eq!(d.app_guides.len(), 5);
        // A stored value from before a field existed reads with that field's default.
        let old: ShopSettings =
            serde_json::from_str(r#"{"trial":{"hours":48}}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.trial.hours, 48);
        assert!(old.trial.enabled);
        assert_eq!(old.user_rate_per_minute, 30);
    }

    #[test]
    fn channels() {
        for ok in ["@my_shop", "@Shop5", "-1001234567890"] {
            assert!(is_channel(ok), "{ok}");
        }
        for bad in [
            "my_shop", "@abc", "@1shop", "@shop-x", "-123", "-100", "-100x1", "@",
        ] {
            assert!(!is_channel(bad), "{bad}");
        }
    }

    #[test]
    fn localized_falls_back() {
        let l = Localized {
            fa: String::new(),
            en: "Hello".into(),
            ru: "Привет".into(),
        };
        assert_eq!(l.get(Lang::Fa), "Hello");
        assert_eq!(l.get(Lang::Ru), "Привет");
        assert_eq!(Localized::default().get(Lang::En), "");
    }

    #[test]
    fn reminder_lists_are_sorted_and_checked() {
        let mut s = ShopSettings::default();
        s.reminders.expiry_days = vec![7, 1, 3, 1];
        s.reminders.data_percents = vec![100, 50];
        let n = s.normalized().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.reminders.expiry_days, vec![7, 3, 1]);
        assert_eq!(n.reminders.data_percents, vec![50, 100]);
        s.reminders.data_percents = vec![0];
        assert!(s.normalized().is_err());
        s.reminders.data_percents = vec![101];
        assert!(s.normalized().is_err());
    }
}
