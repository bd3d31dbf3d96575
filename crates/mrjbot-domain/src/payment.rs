//! The money vocabulary: orders, payment attempts and their guarded transitions,
//! discount arithmetic, destination-card choice and the receipt risk verdict.
//!
//! Pure rules only. The store enforces the same transitions with guarded updates
//! (`UPDATE ... WHERE status IN (...)`), so these functions are what the service asks
//! before it tries, and the database is what makes a race impossible.

use crate::error::DomainError;
use crate::money::{Currency, Money};
use serde::{Deserialize, Serialize};

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The value as stored and sent.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            /// Parses the stored form.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(DomainError::invalid(format!(
                        concat!("unknown ", stringify!($name), " `{}`"), s
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(
    /// What an order buys.
    OrderKind {
        /// A new subscription from a plan.
        Purchase => "purchase",
        /// More time (and a fresh quota) on an existing subscription.
        Renewal => "renewal",
        /// Money into the wallet.
        Topup => "topup",
        /// Extra traffic on an existing subscription.
        Addon => "addon",
    }
);

str_enum!(
    /// Where an order stands.
    OrderStatus {
        /// Priced, nothing paid yet.
        Created => "created",
        /// A payment attempt is under way.
        Pending => "pending",
        /// Paid; provisioning follows (see `fulfilled_at`).
        Paid => "paid",
        /// Cancelled by the customer or staff before payment.
        Cancelled => "cancelled",
        /// Not paid in time.
        Expired => "expired",
        /// Paid, but could not be delivered; the money went back to the wallet.
        Failed => "failed",
    }
);

str_enum!(
    /// How a payment is made.
    PaymentMethod {
        /// Card-to-card transfer with a receipt photo, reviewed by staff.
        Card => "card",
        /// Zarinpal (Iran).
        Zarinpal => "zarinpal",
        /// YooKassa (Russia).
        Yookassa => "yookassa",
        /// Telegram Stars.
        Stars => "stars",
        /// Crypto Pay (@CryptoBot).
        Cryptopay => "cryptopay",
        /// The customer's wallet balance.
        Wallet => "wallet",
    }
);

str_enum!(
    /// Where a payment attempt stands.
    PaymentStatus {
        /// Row written, gateway not asked yet (or its answer unknown).
        Created => "created",
        /// Waiting for the customer / gateway / receipt review.
        Pending => "pending",
        /// Money confirmed (gateway verified or staff approved).
        Approved => "approved",
        /// Refused (receipt rejected, payment cancelled or failed at the gateway).
        Rejected => "rejected",
        /// Not completed in time.
        Expired => "expired",
        /// Approved, then (partly) returned.
        Refunded => "refunded",
    }
);

impl PaymentMethod {
    /// Whether the method takes this currency. Card and Zarinpal are rials, YooKassa
    /// rubles, Stars stars, Crypto Pay fiat or its assets; the wallet takes any.
    pub fn accepts(self, c: Currency) -> bool {
        match self {
            PaymentMethod::Card | PaymentMethod::Zarinpal => c == Currency::Irr,
            PaymentMethod::Yookassa => c == Currency::Rub,
            PaymentMethod::Stars => c == Currency::Xtr,
            PaymentMethod::Cryptopay => matches!(
                c,
                Currency::Usd | Currency::Eur | Currency::Rub | Currency::Usdt | Currency::Ton
            ),
            PaymentMethod::Wallet => c != Currency::Xtr,
        }
    }

    /// Whether the gateway can send money back by itself (else refunds go to the wallet).
    pub fn refunds_at_gateway(self) -> bool {
        matches!(
            self,
            PaymentMethod::Zarinpal | PaymentMethod::Yookassa | PaymentMethod::Stars
        )
    }
}

/// Who confirms a payment, which decides the states it may be confirmed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmedBy {
    /// The gateway says the money arrived. Money that arrived is never refused: a late
    /// payment on an expired or customer-cancelled attempt is still confirmed.
    Gateway,
    /// A person (or a seller rule) approved a card receipt: only while it is open.
    Staff,
}

impl PaymentStatus {
    /// States from which a payment may become approved.
    pub fn approvable_from(by: ConfirmedBy) -> &'static [PaymentStatus] {
        match by {
            ConfirmedBy::Gateway => &[
                PaymentStatus::Created,
                PaymentStatus::Pending,
                PaymentStatus::Expired,
                PaymentStatus::Rejected,
            ],
            ConfirmedBy::Staff => &[PaymentStatus::Created, PaymentStatus::Pending],
        }
    }

    /// Whether the attempt is still open (money may still arrive or be approved).
    pub fn is_open(self) -> bool {
        matches!(self, PaymentStatus::Created | PaymentStatus::Pending)
    }

    /// Whether the money of this attempt was received.
    pub fn is_paid(self) -> bool {
        matches!(self, PaymentStatus::Approved | PaymentStatus::Refunded)
    }
}

/// A discount as stored: percent of the price or a fixed amount in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// 1..=100 percent.
    Percent(u8),
    /// A fixed amount off, only for prices in its currency.
    Fixed(Money),
}

impl Discount {
    /// Builds a discount from stored columns.
    pub fn new(kind: &str, value: i64, currency: Option<Currency>) -> Result<Self, DomainError> {
        match (kind, currency) {
            ("percent", None) if (1..=100).contains(&value) => Ok(Discount::Percent(value as u8)),
            ("fixed", Some(c)) if value > 0 => Ok(Discount::Fixed(Money::new(value, c)?)),
            _ => Err(DomainError::invalid(
                "a discount is 1..100 percent (no currency) or a positive fixed amount with a currency",
            )),
        }
    }

    /// How much comes off `price`: never more than the price, rounded down for
    /// percentages (the seller never gives away a fraction of a minor unit).
    pub fn off(self, price: Money) -> Result<Money, DomainError> {
        match self {
            Discount::Percent(p) => Ok(price.percent(p)),
            Discount::Fixed(m) if m.currency == price.currency => Ok(Money {
                amount_minor: m.amount_minor.min(price.amount_minor),
                currency: price.currency,
            }),
            Discount::Fixed(m) => Err(DomainError::invalid(format!(
                "this code is worth {m} and cannot be used for a price in {}",
                price.currency
            ))),
        }
    }
}

/// The Luhn checksum digit over `digits` (each 0..=9), doubling from the right: the
/// last digit of a valid card number is the check digit of the ones before it.
fn luhn_sum(digits: impl DoubleEndedIterator<Item = u8>, double_first: bool) -> u32 {
    digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d);
            if (i % 2 == 0) == double_first {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

/// Whether a card number (ASCII digits) passes the Luhn check.
pub fn luhn_valid(number: &str) -> bool {
    number.bytes().all(|b| b.is_ascii_digit())
        && !number.is_empty()
        && luhn_sum(number.bytes().map(|b| b - b'0'), false).is_multiple_of(10)
}

/// The digit that makes `body` followed by it a valid card number.
pub fn luhn_check_digit(body: &str) -> char {
    let sum = luhn_sum(
        body.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0'),
        true,
    );
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// Rotation of destination cards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardRotation {
    /// The card used longest ago goes next.
    #[default]
    RoundRobin,
    /// Cards share today's volume in proportion to their weight.
    Weighted,
}

/// A destination card with what it received and has reserved, as the chooser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardLoad {
    /// Card id.
    pub id: i64,
    /// Relative share for weighted rotation (0 = never chosen).
    pub weight: i64,
    /// Approved today plus open reservations, in minor units.
    pub today_minor: i64,
    /// Approved this month plus open reservations.
    pub month_minor: i64,
    /// Transfers this month (approved and reserved).
    pub month_count: i64,
    /// Daily cap on the sum (None: no cap).
    pub daily_cap_minor: Option<i64>,
    /// Monthly cap on the sum.
    pub monthly_cap_minor: Option<i64>,
    /// Monthly cap on the number of transfers.
    pub monthly_tx_cap: Option<i64>,
    /// Last time the card was handed out (ms), for round robin.
    pub last_used_at: Option<i64>,
}

impl CardLoad {
    /// Whether `amount` still fits under every cap of the card.
    pub fn has_room(&self, amount: i64) -> bool {
        let fits =
            |used: i64, cap: Option<i64>| cap.is_none_or(|c| used.saturating_add(amount) <= c);
        self.weight > 0
            && fits(self.today_minor, self.daily_cap_minor)
            && fits(self.month_minor, self.monthly_cap_minor)
            && self.monthly_tx_cap.is_none_or(|c| self.month_count < c)
    }
}

/// Picks the card for a transfer of `amount`: only cards with room under their caps;
/// round robin takes the one handed out longest ago (never-used first), weighted the one
/// furthest below its share of today's volume. Ties go to the lower id, so the choice is
/// deterministic.
pub fn pick_card(cards: &[CardLoad], amount: i64, rotation: CardRotation) -> Option<i64> {
    let eligible = cards.iter().filter(|c| c.has_room(amount));
    match rotation {
        CardRotation::RoundRobin => eligible
            .min_by_key(|c| (c.last_used_at.unwrap_or(i64::MIN), c.id))
            .map(|c| c.id),
        CardRotation::Weighted => eligible
            .min_by(|a, b| {
                // today_a / weight_a < today_b / weight_b, compared without division.
                let l = i128::from(a.today_minor) * i128::from(b.weight);
                let r = i128::from(b.today_minor) * i128::from(a.weight);
                l.cmp(&r)
                    .then(b.weight.cmp(&a.weight))
                    .then(a.id.cmp(&b.id))
            })
            .map(|c| c.id),
    }
}

/// How risky a card receipt looks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything read matches the order.
    Low,
    /// Something could not be read or does not quite match: look closer.
    Medium,
    /// A duplicate, a mismatch or a failed transfer: very likely not paid.
    High,
}

impl Verdict {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Low => "low",
            Verdict::Medium => "medium",
            Verdict::High => "high",
        }
    }
}

/// What is known about a receipt when it is judged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptEvidence {
    /// The amount the order asks for, in rials.
    pub expected_rial: i64,
    /// The amount read from the receipt, in rials (None: not readable).
    pub read_rial: Option<i64>,
    /// Last four digits of the card assigned to this payment.
    pub expected_card_last4: String,
    /// Destination card digits read from the receipt.
    pub read_card_last4: Option<String>,
    /// Whether OCR ran at all (off or failed: the admin must read the image).
    pub ocr_ran: bool,
    /// The receipt says the transfer failed.
    pub says_failed: bool,
    /// A tracking or reference number was read.
    pub has_tracking: bool,
    /// Days between the reservation day and the date printed on the receipt (receipt
    /// minus reservation, in the seller's calendar), when a date was read.
    pub date_offset_days: Option<i64>,
    /// Ids of earlier receipts with the same tracking/reference number.
    pub same_tracking_as: Vec<i64>,
    /// Ids of earlier receipts that look like the same picture (perceptual hash) and
    /// whose numbers do not tell them apart.
    pub near_duplicate_of: Vec<i64>,
    /// Ids of earlier receipts that look alike but carry other tracking numbers (the
    /// same bank app's layout): worth a glance, not a finding.
    pub similar_to: Vec<i64>,
    /// Earlier approved and rejected card payments of this customer.
    pub customer_approved: i64,
    /// Earlier rejected card payments of this customer.
    pub customer_rejected: i64,
}

/// A verdict with its score (0 best .. 100 worst) and the reasons, as stable codes that
/// the dashboard and the bot translate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Risk {
    /// 0..=100.
    pub score: u8,
    /// Low / medium / high.
    pub verdict: Verdict,
    /// Findings, e.g. `amount_mismatch`, `near_duplicate:12`.
    pub reasons: Vec<String>,
}

/// Judges a receipt. Duplicates, a failed transfer or a short amount make it high risk
/// whatever else holds; unread fields add doubt; a clean history lowers the score a
/// little but never hides a finding.
pub fn assess(e: &ReceiptEvidence) -> Risk {
    let mut score: i32 = 0;
    let mut reasons = Vec::new();
    let mut high = false;
    for id in &e.near_duplicate_of {
        reasons.push(format!("near_duplicate:{id}"));
        high = true;
    }
    for id in &e.similar_to {
        reasons.push(format!("similar_picture:{id}"));
        score += 10;
    }
    for id in &e.same_tracking_as {
        reasons.push(format!("tracking_reused:{id}"));
        high = true;
    }
    if e.says_failed {
        reasons.push("transfer_failed".into());
        high = true;
    }
    let read_nothing = e.read_rial.is_none() && e.read_card_last4.is_none() && !e.has_tracking;
    if !e.ocr_ran || read_nothing {
        // No text to judge (OCR off, failed, or a picture without a readable receipt):
        // the admin must look; this alone is doubt, not evidence of fraud.
        reasons.push("not_read".into());
        score += 40;
    } else {
        match e.read_rial {
            Some(r) if r < e.expected_rial => {
                reasons.push("amount_short".into());
                high = true;
            }
            Some(r) if r > e.expected_rial => {
                reasons.push("amount_over".into());
                score += 20;
            }
            Some(_) => {}
            None => {
                reasons.push("amount_unread".into());
                score += 30;
            }
        }
        match &e.read_card_last4 {
            Some(d) if *d != e.expected_card_last4 => {
                reasons.push("card_mismatch".into());
                high = true;
            }
            Some(_) => {}
            None => {
                reasons.push("card_unread".into());
                score += 15;
            }
        }
        if !e.has_tracking {
            reasons.push("tracking_unread".into());
            score += 15;
        }
        match e.date_offset_days {
            // Dated before the card was even shown: an old receipt sent again.
            Some(d) if d < 0 => {
                reasons.push("date_before_order".into());
                high = true;
            }
            // More than a day after the reservation: late, or a made-up date.
            Some(d) if d > 1 => {
                reasons.push("date_late".into());
                score += 20;
            }
            Some(_) => {}
            None => {
                reasons.push("date_unread".into());
                score += 5;
            }
        }
    }
    if e.customer_rejected > 0 {
        reasons.push(format!("customer_rejected_before:{}", e.customer_rejected));
        score += 25;
    } else if e.customer_approved >= 3 {
        score -= 10;
    }
    if high {
        score = score.max(80);
    }
    let score = score.clamp(0, 100) as u8;
    let verdict = if high || score >= 60 {
        Verdict::High
    } else if score >= 25 {
        Verdict::Medium
    } else {
        Verdict::Low
    };
    Risk {
        score,
        verdict,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card(id: i64, weight: i64, today: i64, last: Option<i64>) -> CardLoad {
        CardLoad {
            id,
            weight,
            today_minor: today,
            month_minor: today,
            month_count: 0,
            daily_cap_minor: Some(1_000),
            monthly_cap_minor: None,
            monthly_tx_cap: Some(3),
            last_used_at: last,
        }
    }

    #[test]
    fn round_robin_takes_the_longest_unused_card_with_room() {
        let cards = [
            card(1, 1, 0, Some(50)),
            card(2, 1, 0, Some(10)),
            card(3, 1, 0, None),
        ];
        assert_eq!(pick_card(&cards, 100, CardRotation::RoundRobin), Some(3));
        let cards = [card(1, 1, 0, Some(50)), card(2, 1, 950, Some(10))];
        assert_eq!(pick_card(&cards, 100, CardRotation::RoundRobin), Some(1));
        let mut full = card(1, 1, 0, None);
        full.month_count = 3;
        assert_eq!(pick_card(&[full], 1, CardRotation::RoundRobin), None);
        assert_eq!(
            pick_card(&[card(1, 0, 0, None)], 1, CardRotation::RoundRobin),
            None
        );
    }

    #[test]
    fn weighted_rotation_follows_the_weights() {
        // Simulate 600 equal transfers over weights 1:2:3 without caps.
        let mut cards: Vec<CardLoad> = [1, 2, 3]
            .iter()
            .map(|&w| CardLoad {
                daily_cap_minor: None,
                monthly_tx_cap: None,
                ..card(w, w, 0, None)
            })
            .collect();
        for _ in 0..600 {
            let Some(id) = pick_card(&cards, 10, CardRotation::Weighted) else {
                panic!("a card with room exists")
            };
            if let Some(c) = cards.iter_mut().find(|c| c.id == id) {
                c.today_minor += 10;
            }
        }
        let shares: Vec<i64> = cards.iter().map(|c| c.today_minor / 10).collect();
        assert_eq!(shares, vec![100, 200, 300]);
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("6037997599514529"));
        assert!(!luhn_valid("6037997599514523"));
        assert!(!luhn_valid("60379975995145x9"));
        assert_eq!(luhn_check_digit("603799759951452"), '9');
        assert_eq!(luhn_check_digit("621986103452900"), '7');
    }

    #[test]
    fn discounts_never_exceed_the_price() {
        let price = Money::new(1_000, Currency::Irr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Discount::Percent(15).off(price).map(|m| m.amount_minor),
            Ok(150)
        );
        let fixed =
            Discount::new("fixed", 5_000, Some(Currency::Irr)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fixed.off(price).map(|m| m.amount_minor), Ok(1_000));
        let usd = Discount::new("fixed", 5, Some(Currency::Usd)).unwrap_or_else(|e| panic!("{e}"));
        assert!(usd.off(price).is_err());
        assert!(Discount::new("percent", 101, None).is_err());
        assert!(Discount::new("percent", 10, Some(Currency::Irr)).is_err());
    }

    #[test]
    fn gateway_money_is_never_refused_staff_only_approve_open_attempts() {
        let g = PaymentStatus::approvable_from(ConfirmedBy::Gateway);
        assert!(g.contains(&PaymentStatus::Expired) && g.contains(&PaymentStatus::Rejected));
        assert!(!g.contains(&PaymentStatus::Approved));
        let s = PaymentStatus::approvable_from(ConfirmedBy::Staff);
        assert!(!s.contains(&PaymentStatus::Rejected) && !s.contains(&PaymentStatus::Expired));
        assert!(PaymentMethod::Card.accepts(Currency::Irr));
        assert!(!PaymentMethod::Stars.accepts(Currency::Irr));
        assert!(!PaymentMethod::Wallet.accepts(Currency::Xtr));
        for m in PaymentMethod::ALL {
            assert_eq!(PaymentMethod::parse(m.as_str()), Ok(*m));
        }
    }

    fn clean() -> ReceiptEvidence {
        ReceiptEvidence {
            expected_rial: 1_500_000,
            read_rial: Some(1_500_000),
            expected_card_last4: "1234".into(),
            read_card_last4: Some("1234".into()),
            ocr_ran: true,
            has_tracking: true,
            date_offset_days: Some(0),
            ..ReceiptEvidence::default()
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(assess(&clean()).verdict, Verdict::Low);
        let r = assess(&ReceiptEvidence {
            near_duplicate_of: vec![7],
            ..clean()
        });
        assert_eq!(r.verdict, Verdict::High);
        assert_eq!(r.reasons, vec!["near_duplicate:7".to_owned()]);
        let old = assess(&ReceiptEvidence {
            date_offset_days: Some(-3),
            ..clean()
        });
        assert_eq!(old.verdict, Verdict::High);
        let short = assess(&ReceiptEvidence {
            read_rial: Some(150_000),
            ..clean()
        });
        assert_eq!(short.verdict, Verdict::High);
        let other_card = assess(&ReceiptEvidence {
            read_card_last4: Some("9999".into()),
            ..clean()
        });
        assert_eq!(other_card.verdict, Verdict::High);
        let unread = assess(&ReceiptEvidence {
            ocr_ran: false,
            ..clean()
        });
        assert_eq!(unread.verdict, Verdict::Medium);
        let vague = assess(&ReceiptEvidence {
            read_rial: None,
            has_tracking: false,
            ..clean()
        });
        assert_eq!(vague.verdict, Verdict::Medium);
        let blank = assess(&ReceiptEvidence {
            read_rial: None,
            read_card_last4: None,
            has_tracking: false,
            ..clean()
        });
        assert_eq!(
            (blank.verdict, blank.reasons),
            (Verdict::Medium, vec!["not_read".to_owned()])
        );
        // A long clean history never hides a finding.
        let loyal = assess(&ReceiptEvidence {
            customer_approved: 50,
            same_tracking_as: vec![3],
            ..clean()
        });
        assert_eq!(loyal.verdict, Verdict::High);
    }

    proptest! {
        #[test]
        fn findings_always_mean_high(dups in proptest::collection::vec(1i64..100, 0..3), failed: bool, approved in 0i64..100) {
            let e = ReceiptEvidence { near_duplicate_of: dups.clone(), says_failed: failed, customer_approved: approved, ..clean() };
            let r = assess(&e);
            prop_assert!(r.score <= 100);
            if !dups.is_empty() || failed {
                prop_assert_eq!(r.verdict, Verdict::High);
            }
        }

        #[test]
        fn picked_card_always_has_room(loads in proptest::collection::vec((0i64..3, 0i64..2_000, 0i64..5), 0..6), amount in 1i64..1_500, weighted: bool) {
            let cards: Vec<CardLoad> = loads.iter().enumerate().map(|(i, &(w, t, n))| CardLoad { month_count: n, ..card(i as i64, w, t, Some(t)) }).collect();
            let rot = if weighted { CardRotation::Weighted } else { CardRotation::RoundRobin };
            match pick_card(&cards, amount, rot) {
                Some(id) => prop_assert!(cards.iter().any(|c| c.id == id && c.has_room(amount))),
                None => prop_assert!(cards.iter().all(|c| !c.has_room(amount))),
            }
        }
    }
}
