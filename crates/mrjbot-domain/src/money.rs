//! Money as integer minor units with a currency. No floats anywhere: an amount is
//! parsed from text straight into minor units and summed with overflow checks.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};

/// A currency code MRJBot knows, with its number of minor-unit digits.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    /// Iranian rial (no minor unit; Toman is a display unit of 10 rials).
    Irr,
    /// US dollar (cents).
    Usd,
    /// Euro (cents).
    Eur,
    /// Russian ruble (kopeks).
    Rub,
    /// Telegram Stars (whole stars).
    Xtr,
    /// Tether, 6 decimal digits as Crypto Pay reports it.
    Usdt,
    /// Toncoin, 9 decimal digits.
    Ton,
}

impl Currency {
    /// All supported currencies.
    pub const ALL: [Currency; 7] = [
        Currency::Irr,
        Currency::Usd,
        Currency::Eur,
        Currency::Rub,
        Currency::Xtr,
        Currency::Usdt,
        Currency::Ton,
    ];

    /// The ISO-like code (`USD`).
    pub fn code(self) -> &'static str {
        match self {
            Currency::Irr => "IRR",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Rub => "RUB",
            Currency::Xtr => "XTR",
            Currency::Usdt => "USDT",
            Currency::Ton => "TON",
        }
    }

    /// Number of digits after the decimal point.
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Irr | Currency::Xtr => 0,
            Currency::Usd | Currency::Eur | Currency::Rub => 2,
            Currency::Usdt => 6,
            Currency::Ton => 9,
        }
    }

    /// Parses a code, case-insensitively.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DomainError::invalid(format!("unknown currency `{s}`")))
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative amount in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in minor units (cents, kopeks, rials, stars).
    pub amount_minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// A non-negative amount in minor units.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, DomainError> {
        if amount_minor < 0 {
            return Err(DomainError::invalid("an amount cannot be negative"));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    /// Parses `"12.50 USD"`, `"USD 12.5"` or `"150000 IRR"` into minor units exactly.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let mut parts = s.split_whitespace();
        let (a, b) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => (a, b),
            _ => return Err(DomainError::invalid("expected `<amount> <CURRENCY>`")),
        };
        let (amount, currency) = match Currency::parse(b) {
            Ok(c) => (a, c),
            Err(_) => (b, Currency::parse(a)?),
        };
        Self::parse_amount(amount, currency)
    }

    /// Parses a decimal amount (`"12.5"`) in `currency` into exact minor units.
    pub fn parse_amount(amount: &str, currency: Currency) -> Result<Self, DomainError> {
        let exp = currency.exponent() as usize;
        let bad = || DomainError::invalid(format!("`{amount}` is not a valid {currency} amount"));
        let (int, frac) = match amount.split_once('.') {
            Some((i, f)) => (i, f),
            None => (amount, ""),
        };
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if frac.len() > exp || (amount.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        let mut minor: i64 = int.parse().map_err(|_| bad())?;
        for _ in 0..exp {
            minor = minor.checked_mul(10).ok_or_else(bad)?;
        }
        let mut frac_val: i64 = 0;
        for (i, d) in frac.bytes().enumerate() {
            let mut v = i64::from(d - b'0');
            for _ in 0..(exp - i - 1) {
                v *= 10;
            }
            frac_val += v;
        }
        minor = minor.checked_add(frac_val).ok_or_else(bad)?;
        Self::new(minor, currency)
    }

    /// Sum of two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, DomainError> {
        if self.currency != other.currency {
            return Err(DomainError::invalid(
                "cannot add amounts in different currencies",
            ));
        }
        let sum = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or_else(|| DomainError::invalid("amount overflow"))?;
        Money::new(sum, self.currency)
    }

    /// `percent` (0..=100) of this amount, rounded down to a minor unit.
    pub fn percent(self, percent: u8) -> Money {
        let p = i128::from(percent.min(100));
        let v = i128::from(self.amount_minor) * p / 100;
        Money {
            amount_minor: i64::try_from(v).unwrap_or(0),
            currency: self.currency,
        }
    }
}

impl Money {
    /// The amount as a decimal string with exactly the currency's number of digits after
    /// the point (`"199.00"` for 19900 RUB kopeks, `"150000"` for IRR): the form gateway
    /// APIs such as YooKassa want, and the inverse of [`Money::parse_amount`].
    pub fn decimal_string(&self) -> String {
        let exp = self.currency.exponent();
        if exp == 0 {
            return self.amount_minor.to_string();
        }
        let div = 10i64.pow(exp);
        format!(
            "{}.{:0width$}",
            self.amount_minor / div,
            self.amount_minor % div,
            width = exp as usize
        )
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(Money::parse("12.50 USD").map(|m| m.amount_minor), Ok(1250));
        assert_eq!(Money::parse("USD 12.5").map(|m| m.amount_minor), Ok(1250));
        assert_eq!(
            Money::parse("150000 irr").map(|m| m.amount_minor),
            Ok(150_000)
        );
        assert!(Money::parse("1.5 IRR").is_err());
        assert!(Money::parse("-1 USD").is_err());
        assert!(Money::parse("1.234 USD").is_err());
        assert!(Money::parse("1. USD").is_err());
        assert!(Money::parse("99999999999999999999 USD").is_err());
        assert_eq!(Money::parse("0.000001 USDT").map(|m| m.amount_minor), Ok(1));
    }

    #[test]
    fn decimal_strings_have_the_currency_digits() {
        let m = |a, c| Money::new(a, c).map(|m| m.decimal_string());
        assert_eq!(m(19900, Currency::Rub), Ok("199.00".to_owned()));
        assert_eq!(m(5, Currency::Rub), Ok("0.05".to_owned()));
        assert_eq!(m(150_000, Currency::Irr), Ok("150000".to_owned()));
        assert_eq!(m(1, Currency::Ton), Ok("0.000000001".to_owned()));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(minor in 0i64..i64::MAX / 10, idx in 0usize..7) {
            let m = Money::new(minor, Currency::ALL[idx]).map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(Money::parse(&m.to_string()), Ok(m));
        }

        #[test]
        fn decimal_string_round_trip(minor in 0i64..i64::MAX, idx in 0usize..7) {
            let m = Money::new(minor, Currency::ALL[idx]).map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(Money::parse_amount(&m.decimal_string(), m.currency), Ok(m));
        }

        #[test]
        fn addition_is_exact(a in 0i64..1i64 << 40, b in 0i64..1i64 << 40) {
            let x = Money::new(a, Currency::Rub).and_then(|x| x.checked_add(Money::new(b, Currency::Rub)?));
            prop_assert_eq!(x.map(|m| m.amount_minor), Ok(a + b));
        }

        #[test]
        fn percent_never_exceeds(a in 0i64..i64::MAX, p in 0u8..=255) {
            let m = Money { amount_minor: a, currency: Currency::Usd };
            prop_assert!(m.percent(p).amount_minor <= a);
        }
    }
}
