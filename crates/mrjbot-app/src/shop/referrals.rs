//! Referrals and points: a customer shares `https://t.me/<bot>?start=ref_<code>`; a
//! newcomer who starts the bot with it is recorded as theirs (once per newcomer, ever);
//! when the newcomer's first paid order is delivered, the referrer earns the seller's
//! points, once, and is told. Points turn into wallet credit at the seller's rate.
//!
//! The code is not the user id (ids are guessable and say how big the shop is): it is
//! eight base32 characters of an HMAC of the id under a secret kept in the settings
//! table, stored on the user the first time it is shown, and looked up from there.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::money::ledger_entry;
use crate::money::outbox::enqueue_notice;
use crate::notify::{Notice, NoticeTarget};
use crate::shop::settings::ReferralSettings;
use hmac::{Hmac, KeyInit, Mac};
use mrjbot_db::money::{self as money_repo, OrderRow};
use mrjbot_db::shop::{self as repo, PointsRow};
use mrjbot_db::{Conn, DbError};
use mrjbot_domain::{ErrorCode, Money, SecretToken};
use serde::Serialize;
use sha2::Sha256;

const SECRET_SETTING: &str = "shop.referral_secret";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters in a referral code.
pub const CODE_LEN: usize = 8;
/// The `/start` payload prefix of a referral link.
pub const START_PREFIX: &str = "ref_";

/// The referral code of `user_id` under `secret`. `round` 0 is the code; higher rounds
/// are the alternatives taken when another user holds it (40 bits make that rare, not
/// impossible).
pub fn referral_code(secret: &[u8], user_id: i64, round: u32) -> String {
    let mut bits: u64 = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(b"referral:");
            m.update(&user_id.to_be_bytes());
            m.update(&round.to_be_bytes());
            let d = m.finalize().into_bytes();
            d.iter()
                .take(5)
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        }
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => 0,
    };
    let mut out = [0u8; CODE_LEN];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// The referral code in a `/start` payload (`ref_<code>`, any case), or `None` when the
/// payload is something else.
pub fn code_of_start_payload(payload: &str) -> Option<String> {
    let code = payload
        .trim()
        .strip_prefix(START_PREFIX)?
        .to_ascii_lowercase();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// What a customer sees of their referrals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralSummary {
    /// The code for the link `https://t.me/<bot>?start=ref_<code>`.
    pub code: String,
    /// Customers who started the bot with the link.
    pub invited: i64,
    /// Of them, those whose first paid order earned the points.
    pub rewarded: i64,
    /// Points held now.
    pub points: i64,
    /// Wallet credit one point is worth (none: points cannot be redeemed now).
    pub point_value: Option<Money>,
    /// Whether [`App::redeem_points`] would credit something now.
    pub can_redeem: bool,
}

impl App {
    /// The secret behind referral codes, made once and shared by every replica.
    async fn referral_secret(&self) -> AppResult<Vec<u8>> {
        let fresh = serde_json::json!(SecretToken::generate().as_str()).to_string();
        let mut tx = self.db().begin().await?;
        let stored = mrjbot_db::settings::insert_or_get(
            tx.conn(),
            SECRET_SETTING,
            &fresh,
            self.now().millis(),
        )
        .await?;
        tx.commit().await?;
        let s: String = serde_json::from_str(&stored).map_err(AppError::internal)?;
        Ok(s.into_bytes())
    }

    /// The user's referral code, made and stored on first use.
    pub(crate) async fn ensure_referral_code(&self, user_id: i64) -> AppResult<String> {
        let row = repo::customer(self.db().read().await?.conn(), user_id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::UserNotFound, "user"))?;
        if let Some(code) = row.referral_code {
            return Ok(code);
        }
        let secret = self.referral_secret().await?;
        for round in 0..8 {
            let code = referral_code(&secret, user_id, round);
            let mut tx = self.db().begin().await?;
            match repo::set_referral_code(tx.conn(), user_id, &code).await {
                Ok(true) => {
                    tx.commit().await?;
                    return Ok(code);
                }
                // Set meanwhile by a concurrent call: that one is the code.
                Ok(false) => break,
                Err(DbError::Unique { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        repo::customer(self.db().read().await?.conn(), user_id)
            .await?
            .and_then(|r| r.referral_code)
            .ok_or_else(|| {
                AppError::internal(std::io::Error::other("no free referral code was found"))
            })
    }

    /// The caller's referral code, how many they brought and their points.
    pub async fn referral_summary(&self, actor: &Actor) -> AppResult<ReferralSummary> {
        let uid = actor.user_id.ok_or_else(AppError::denied)?;
        let code = self.ensure_referral_code(uid).await?;
        let settings = self.shop_settings().await?.referral;
        let mut c = self.db().read().await?;
        let (invited, rewarded) = repo::referral_counts(c.conn(), uid).await?;
        let points = repo::points_balance(c.conn(), uid).await?;
        let point_value = (settings.point_value_minor > 0).then_some(Money {
            amount_minor: settings.point_value_minor,
            currency: settings.currency,
        });
        Ok(ReferralSummary {
            code,
            invited,
            rewarded,
            points,
            can_redeem: point_value.is_some() && points > 0,
            point_value,
        })
    }

    /// Turns all the caller's points into wallet credit at the seller's rate: one points
    /// debit and one wallet credit, in one transaction under the customer's lock, so two
    /// taps redeem once and points never go below zero. Returns the credit.
    pub async fn redeem_points(&self, actor: &Actor) -> AppResult<Money> {
        let uid = actor.user_id.ok_or_else(AppError::denied)?;
        let rate = self.shop_settings().await?.referral;
        if rate.point_value_minor <= 0 {
            return Err(AppError::new(
                ErrorCode::PointsNotRedeemable,
                "the shop does not turn points into credit now",
            ));
        }
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        if !money_repo::lock_user(tx.conn(), uid).await? {
            return Err(AppError::not_found(ErrorCode::UserNotFound, "user"));
        }
        let points = repo::points_balance(tx.conn(), uid).await?;
        if points <= 0 {
            return Err(AppError::new(
                ErrorCode::PointsNotRedeemable,
                "there are no points to redeem",
            ));
        }
        let amount = points
            .checked_mul(rate.point_value_minor)
            .ok_or_else(|| AppError::field("points", "too many points to redeem at once"))?;
        let debit = repo::points_append(
            tx.conn(),
            &PointsRow {
                id: 0,
                user_id: uid,
                amount_minor: -points,
                reason: "redeemed".into(),
                ref_type: None,
                ref_id: None,
                note: None,
                created_by: actor.user_id,
                created_at: now,
            },
        )
        .await?
        .ok_or_else(|| AppError::internal(std::io::Error::other("points debit not written")))?;
        let credit = ledger_entry(
            uid,
            amount,
            rate.currency.code(),
            "points_redeemed",
            Some(("points", debit)),
            now,
        );
        money_repo::ledger_append(tx.conn(), &credit).await?;
        self.audit(
            tx.conn(),
            actor,
            "points.redeem",
            "user",
            Some(uid),
            None::<&()>,
            Some(&serde_json::json!({ "points": points, "credit": &credit })),
        )
        .await?;
        tx.commit().await?;
        Ok(Money {
            amount_minor: amount,
            currency: rate.currency,
        })
    }

    /// Settles the referral of the customer of a delivered order, inside the delivery's
    /// transaction: the first delivered paid order rewards the referrer (or voids the
    /// referral while the programme is off), once, and queues the referrer's notice.
    pub(crate) async fn settle_referral(
        &self,
        mut c: Conn<'_>,
        order: &OrderRow,
        settings: &ReferralSettings,
        now: i64,
    ) -> AppResult<()> {
        // A free order (100% discount) is not a paid one.
        if order.amount_minor <= 0 {
            return Ok(());
        }
        let points = settings.enabled.then_some(settings.points_per_referral);
        let Some((rid, referrer)) =
            repo::settle_referral(c.reborrow(), order.user_id, order.id, points, now).await?
        else {
            return Ok(());
        };
        let Some(points) = points else {
            return Ok(());
        };
        repo::points_append(
            c.reborrow(),
            &PointsRow {
                id: 0,
                user_id: referrer,
                amount_minor: points,
                reason: "referral_reward".into(),
                ref_type: Some("referral".into()),
                ref_id: Some(rid),
                note: None,
                created_by: None,
                created_at: now,
            },
        )
        .await?;
        enqueue_notice(
            c,
            NoticeTarget::Customer { user_id: referrer },
            &Notice::Text {
                key: "referral-rewarded".into(),
                args: vec![("points".into(), points.to_string())],
            },
            &format!("referral:rewarded:{rid}"),
            now,
        )
        .await?;
        tracing::info!(referral = rid, referrer, points, "referral rewarded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_short_stable_and_not_the_id() {
        let a = referral_code(b"secret-one", 42, 0);
        assert_eq!(a.len(), CODE_LEN);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)), "{a}");
        assert_eq!(a, referral_code(b"secret-one", 42, 0));
        assert_ne!(a, referral_code(b"secret-one", 43, 0));
        assert_ne!(a, referral_code(b"secret-two", 42, 0));
        assert_ne!(a, referral_code(b"secret-one", 42, 1));
        assert!(!a.contains("42"));
    }

    #[test]
    fn codes_spread_over_many_ids() {
        let mut seen = std::collections::HashSet::new();
        for id in 1..=20_000 {
            assert!(seen.insert(referral_code(b"k", id, 0)), "collision at {id}");
        }
    }

    #[test]
    fn start_payloads() {
        let code = referral_code(b"k", 7, 0);
        assert_eq!(
            code_of_start_payload(&format!("ref_{code}")).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            code_of_start_payload(&format!("ref_{}", code.to_uppercase())).as_deref(),
            Some(code.as_str())
        );
        for bad in [
            "",
            "ref_",
            "ref_abc",
            "ref_abcdefgh1",
            "ref_abcdefg1",
            "abcdefgh",
            "pay_abcdefgh",
        ] {
            assert_eq!(code_of_start_payload(bad), None, "{bad}");
        }
    }
}
