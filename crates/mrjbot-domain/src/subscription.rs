//! The subscription state machine and the rules for how time and data stack.
//!
//! # Stacking rules (what a customer gets when they buy again)
//! * **Renew while still valid** (active or limited, expiry in the future): the plan's days
//!   are added to the current expiry, and the plan's data is added to the data that was
//!   left (`limit - used`, never below zero). The used counter restarts at zero; what was
//!   used is kept in `lifetime_used`. Nothing the customer paid for is lost.
//! * **Renew after expiry**: a fresh period from now with the plan's days and data; the
//!   leftover data of the expired period is not carried over.
//! * **Renew while on hold** (bought, clock not started): days and data are added to the
//!   held period; the clock still starts at first use.
//! * **Renew a temporary subscription** (issued while a card payment waits for review):
//!   the preview is replaced by a fresh full period from now.
//! * **Renew a disabled subscription** is refused: an admin disabled it on purpose and
//!   must activate it first.
//! * Unlimited data (`None`) on either side stays unlimited.
//! * **Extend** adds days to `max(expiry, now)` (to the held period when on hold);
//!   **add data** raises the limit; **reset traffic** zeroes the used counter. Each of
//!   these re-evaluates the status, so an extended expired subscription becomes active
//!   again and a limited one with new data is usable at once.

use crate::bytes::Bytes;
use crate::error::DomainError;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Usable.
    Active,
    /// Bought; the clock starts at first use.
    OnHold,
    /// Data cap reached.
    Limited,
    /// Past its expiry.
    Expired,
    /// Disabled by an admin.
    Disabled,
    /// Issued while a card payment waits for review: a fraction of the quota for a few days.
    Temporary,
}

impl SubscriptionStatus {
    /// All statuses.
    pub const ALL: [SubscriptionStatus; 6] = [
        SubscriptionStatus::Active,
        SubscriptionStatus::OnHold,
        SubscriptionStatus::Limited,
        SubscriptionStatus::Expired,
        SubscriptionStatus::Disabled,
        SubscriptionStatus::Temporary,
    ];

    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::OnHold => "on_hold",
            SubscriptionStatus::Limited => "limited",
            SubscriptionStatus::Expired => "expired",
            SubscriptionStatus::Disabled => "disabled",
            SubscriptionStatus::Temporary => "temporary",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the data plane should let the customer connect.
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active | SubscriptionStatus::Temporary | SubscriptionStatus::OnHold
        )
    }
}

/// Whether a plan's customers keep one address or may be moved between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpType {
    /// Pinned to its node; never migrated.
    Constant,
    /// May be migrated to a healthy node of the same region tier.
    Dynamic,
}

impl IpType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpType::Constant => "constant",
            IpType::Dynamic => "dynamic",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "constant" => Some(IpType::Constant),
            "dynamic" => Some(IpType::Dynamic),
            _ => None,
        }
    }
}

/// What one purchase of a plan grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTerms {
    /// Length of one period in days (1..=3650).
    pub duration_days: i64,
    /// Data per period; `None` is unlimited.
    pub data_limit: Option<Bytes>,
}

impl PlanTerms {
    /// Checks the ranges.
    pub fn new(duration_days: i64, data_limit: Option<Bytes>) -> Result<Self, DomainError> {
        if !(1..=3650).contains(&duration_days) {
            return Err(DomainError::invalid(
                "duration_days must be between 1 and 3650",
            ));
        }
        Ok(Self {
            duration_days,
            data_limit,
        })
    }
}

/// How a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The clock starts now.
    Now,
    /// The clock starts at first use.
    OnFirstUse,
    /// A temporary preview: `percent` of the plan's data for `days` days.
    Temporary {
        /// Share of the plan's data, 1..=100.
        percent: u8,
        /// Length of the preview in days.
        days: i64,
    },
}

/// The part of a subscription the rules act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Current status.
    pub status: SubscriptionStatus,
    /// When it stops working; `None` while on hold.
    pub expires_at: Option<Timestamp>,
    /// Days granted but not started yet (on hold).
    pub hold_days: i64,
    /// Data limit of the current period; `None` is unlimited.
    pub data_limit: Option<Bytes>,
    /// Data used in the current period.
    pub used: Bytes,
    /// Data used over the subscription's whole life.
    pub lifetime_used: Bytes,
}

fn add_limit(a: Option<Bytes>, b: Option<Bytes>) -> Option<Bytes> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Bytes(a.0.saturating_add(b.0))),
        _ => None,
    }
}

impl SubscriptionState {
    /// A new subscription from a plan.
    pub fn new(terms: PlanTerms, start: Start, now: Timestamp) -> Result<Self, DomainError> {
        let mut s = Self {
            status: SubscriptionStatus::Active,
            expires_at: Some(now.plus_days(terms.duration_days)),
            hold_days: 0,
            data_limit: terms.data_limit,
            used: Bytes(0),
            lifetime_used: Bytes(0),
        };
        match start {
            Start::Now => {}
            Start::OnFirstUse => {
                s.status = SubscriptionStatus::OnHold;
                s.expires_at = None;
                s.hold_days = terms.duration_days;
            }
            Start::Temporary { percent, days } => {
                if !(1..=100).contains(&percent) || !(1..=30).contains(&days) {
                    return Err(DomainError::invalid(
                        "a temporary subscription is 1-100% of the data for 1-30 days",
                    ));
                }
                s.status = SubscriptionStatus::Temporary;
                s.expires_at = Some(now.plus_days(days.min(terms.duration_days)));
                s.data_limit = terms
                    .data_limit
                    .map(|b| Bytes(b.0 / 100 * u64::from(percent)));
            }
        }
        Ok(s)
    }

    /// The status these numbers imply at `now`. Disabled and on-hold are sticky; otherwise
    /// expiry wins over the data cap, and a temporary preview stays temporary while valid.
    pub fn evaluate(&self, now: Timestamp) -> SubscriptionStatus {
        match self.status {
            SubscriptionStatus::Disabled | SubscriptionStatus::OnHold => self.status,
            _ => {
                if self.expires_at.is_some_and(|e| e <= now) {
                    SubscriptionStatus::Expired
                } else if self.data_limit.is_some_and(|l| self.used >= l) {
                    SubscriptionStatus::Limited
                } else if self.status == SubscriptionStatus::Temporary {
                    SubscriptionStatus::Temporary
                } else {
                    SubscriptionStatus::Active
                }
            }
        }
    }

    fn settle(mut self, now: Timestamp) -> Self {
        self.status = self.evaluate(now);
        self
    }

    fn restart_counter(&mut self) {
        self.lifetime_used = Bytes(self.lifetime_used.0.saturating_add(self.used.0));
        self.used = Bytes(0);
    }

    /// Applies one more purchase of `terms`; see the module docs for the rules.
    pub fn renew(mut self, terms: PlanTerms, now: Timestamp) -> Result<Self, DomainError> {
        match self.evaluate(now) {
            SubscriptionStatus::Disabled => {
                return Err(DomainError::transition(
                    "a disabled subscription must be activated before renewal",
                ));
            }
            SubscriptionStatus::OnHold => {
                self.hold_days = self.hold_days.saturating_add(terms.duration_days);
                self.data_limit = add_limit(self.data_limit, terms.data_limit);
            }
            SubscriptionStatus::Active | SubscriptionStatus::Limited => {
                let left = self
                    .data_limit
                    .map(|l| Bytes(l.0.saturating_sub(self.used.0)));
                let base = self.expires_at.map_or(now, |e| e.max(now));
                self.expires_at = Some(base.plus_days(terms.duration_days));
                self.restart_counter();
                self.data_limit = add_limit(left, terms.data_limit);
            }
            SubscriptionStatus::Expired | SubscriptionStatus::Temporary => {
                self.status = SubscriptionStatus::Active;
                self.expires_at = Some(now.plus_days(terms.duration_days));
                self.restart_counter();
                self.data_limit = terms.data_limit;
            }
        }
        if self.status == SubscriptionStatus::Limited || self.status == SubscriptionStatus::Expired
        {
            self.status = SubscriptionStatus::Active;
        }
        Ok(self.settle(now))
    }

    /// Adds `days` (1..=3650) of validity.
    pub fn extend(mut self, days: i64, now: Timestamp) -> Result<Self, DomainError> {
        if !(1..=3650).contains(&days) {
            return Err(DomainError::invalid("days must be between 1 and 3650"));
        }
        if self.status == SubscriptionStatus::OnHold {
            self.hold_days = self.hold_days.saturating_add(days);
            return Ok(self);
        }
        let base = self.expires_at.map_or(now, |e| e.max(now));
        self.expires_at = Some(base.plus_days(days));
        if self.status == SubscriptionStatus::Expired {
            self.status = SubscriptionStatus::Active;
        }
        Ok(self.settle(now))
    }

    /// Raises the data limit by `bytes` (more than zero). Unlimited stays unlimited.
    pub fn add_data(mut self, bytes: Bytes, now: Timestamp) -> Result<Self, DomainError> {
        if bytes.0 == 0 {
            return Err(DomainError::invalid("bytes must be more than zero"));
        }
        self.data_limit = self.data_limit.map(|l| Bytes(l.0.saturating_add(bytes.0)));
        if self.status == SubscriptionStatus::Limited {
            self.status = SubscriptionStatus::Active;
        }
        Ok(self.settle(now))
    }

    /// Zeroes the used counter of the current period.
    pub fn reset_traffic(mut self, now: Timestamp) -> Self {
        self.restart_counter();
        if self.status == SubscriptionStatus::Limited {
            self.status = SubscriptionStatus::Active;
        }
        self.settle(now)
    }

    /// Disables the subscription (admin action).
    pub fn suspend(mut self) -> Result<Self, DomainError> {
        if self.status == SubscriptionStatus::Disabled {
            return Err(DomainError::transition(
                "the subscription is already disabled",
            ));
        }
        self.status = SubscriptionStatus::Disabled;
        Ok(self)
    }

    /// Re-enables a disabled subscription; its status follows from its numbers again.
    pub fn activate(mut self, now: Timestamp) -> Result<Self, DomainError> {
        if self.status != SubscriptionStatus::Disabled {
            return Err(DomainError::transition(
                "only a disabled subscription can be activated",
            ));
        }
        self.status = if self.expires_at.is_none() {
            SubscriptionStatus::OnHold
        } else {
            SubscriptionStatus::Active
        };
        Ok(self.settle(now))
    }

    /// First traffic seen while on hold: the clock starts now.
    pub fn start_clock(mut self, now: Timestamp) -> Self {
        if self.status == SubscriptionStatus::OnHold {
            self.status = SubscriptionStatus::Active;
            self.expires_at = Some(now.plus_days(self.hold_days));
            self.hold_days = 0;
        }
        self.settle(now)
    }

    /// Counts traffic; the status follows (limited when the cap is reached).
    pub fn record_usage(mut self, bytes: Bytes, now: Timestamp) -> Self {
        if self.status == SubscriptionStatus::OnHold && bytes.0 > 0 {
            self = self.start_clock(now);
        }
        self.used = Bytes(self.used.0.saturating_add(bytes.0));
        self.settle(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn terms(days: i64, gb: Option<u64>) -> PlanTerms {
        PlanTerms {
            duration_days: days,
            data_limit: gb.map(Bytes::gb),
        }
    }

    fn fresh(days: i64, gb: Option<u64>) -> SubscriptionState {
        SubscriptionState::new(terms(days, gb), Start::Now, NOW).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn renew_while_valid_stacks_days_and_leftover_data() {
        let mut s = fresh(30, Some(50));
        s = s.record_usage(Bytes::gb(20), NOW.plus_days(10));
        let r = s
            .renew(terms(30, Some(50)), NOW.plus_days(10))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.expires_at, Some(NOW.plus_days(60)));
        assert_eq!(r.data_limit, Some(Bytes::gb(80)));
        assert_eq!(r.used, Bytes(0));
        assert_eq!(r.lifetime_used, Bytes::gb(20));
        assert_eq!(r.status, SubscriptionStatus::Active);
    }

    #[test]
    fn renew_after_expiry_starts_fresh() {
        let s = fresh(30, Some(50)).record_usage(Bytes::gb(1), NOW);
        let later = NOW.plus_days(45);
        assert_eq!(s.evaluate(later), SubscriptionStatus::Expired);
        let r = s
            .renew(terms(30, Some(50)), later)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.expires_at, Some(later.plus_days(30)));
        assert_eq!(r.data_limit, Some(Bytes::gb(50)));
        assert_eq!(r.status, SubscriptionStatus::Active);
    }

    #[test]
    fn limited_renewal_and_add_data() {
        let s = fresh(30, Some(10)).record_usage(Bytes::gb(11), NOW);
        assert_eq!(s.status, SubscriptionStatus::Limited);
        let r = s
            .renew(terms(30, Some(10)), NOW)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.status, r.data_limit),
            (SubscriptionStatus::Active, Some(Bytes::gb(10)))
        );
        let a = s
            .add_data(Bytes::gb(5), NOW)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.status, SubscriptionStatus::Active);
    }

    #[test]
    fn on_hold_stacks_and_starts_at_first_use() {
        let s = SubscriptionState::new(terms(30, None), Start::OnFirstUse, NOW)
            .unwrap_or_else(|e| panic!("{e}"));
        let s = s
            .renew(terms(30, None), NOW)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.status, s.hold_days, s.expires_at),
            (SubscriptionStatus::OnHold, 60, None)
        );
        let used_at = NOW.plus_days(100);
        let s = s.record_usage(Bytes(1), used_at);
        assert_eq!(s.expires_at, Some(used_at.plus_days(60)));
        assert_eq!(s.status, SubscriptionStatus::Active);
    }

    #[test]
    fn disabled_refuses_renewal_until_activated() {
        let s = fresh(30, None).suspend().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.renew(terms(30, None), NOW).is_err());
        assert!(s.suspend().is_err());
        let a = s.activate(NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.status, SubscriptionStatus::Active);
        assert!(a.activate(NOW).is_err());
    }

    #[test]
    fn temporary_preview_then_full_period() {
        let s = SubscriptionState::new(
            terms(30, Some(100)),
            Start::Temporary {
                percent: 10,
                days: 3,
            },
            NOW,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.status, s.data_limit),
            (SubscriptionStatus::Temporary, Some(Bytes::gb(10)))
        );
        assert_eq!(s.evaluate(NOW.plus_days(4)), SubscriptionStatus::Expired);
        let r = s
            .renew(terms(30, Some(100)), NOW.plus_days(1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.status, r.data_limit),
            (SubscriptionStatus::Active, Some(Bytes::gb(100)))
        );
        assert_eq!(r.expires_at, Some(NOW.plus_days(31)));
    }

    #[test]
    fn extend_revives_expired() {
        let s = fresh(1, None);
        let later = NOW.plus_days(5);
        let e = s.extend(7, later).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.status, e.expires_at),
            (SubscriptionStatus::Active, Some(later.plus_days(7)))
        );
        assert!(s.extend(0, later).is_err());
    }

    proptest! {
        /// Renewing while valid never loses paid days or paid data.
        #[test]
        fn renewal_never_loses_what_was_paid(
            days in 1i64..400, gb in 1u64..500, used_gb in 0u64..600, elapsed in 0i64..399, plan_days in 1i64..400, plan_gb in 1u64..500
        ) {
            prop_assume!(elapsed < days);
            let now = NOW.plus_millis(elapsed * DAY_MS);
            let s = fresh(days, Some(gb)).record_usage(Bytes::gb(used_gb), now);
            let r = s.renew(terms(plan_days, Some(plan_gb)), now).map_err(|e| TestCaseError::fail(e.message))?;
            let left = gb.saturating_sub(used_gb);
            prop_assert_eq!(r.data_limit, Some(Bytes::gb(left + plan_gb)));
            prop_assert_eq!(r.expires_at, Some(NOW.plus_days(days + plan_days)));
            prop_assert_eq!(r.status, SubscriptionStatus::Active);
            prop_assert_eq!(r.lifetime_used.0 + r.used.0, Bytes::gb(used_gb).0);
        }
    }
}
