//! Byte counts (traffic, quotas) with human parsing (`50GB`, `1.5 GiB`) and display.
//! Decimal units are powers of 1000, binary units powers of 1024; "GB" is decimal,
//! as VPN sellers and client apps mean it.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};

/// A number of bytes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Bytes(pub u64);

const UNITS: [(&str, u64); 11] = [
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("k", 1_000),
    ("g", 1_000_000_000),
];

impl Bytes {
    /// `n` gigabytes (decimal).
    pub const fn gb(n: u64) -> Self {
        Self(n * 1_000_000_000)
    }

    /// As an `i64` for storage, saturating.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// From a stored `i64`; negatives clamp to zero.
    pub fn from_i64(v: i64) -> Self {
        Self(u64::try_from(v).unwrap_or(0))
    }

    /// Parses `"1024"`, `"50GB"`, `"1.5 GiB"`, `"500 mb"`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = s.trim().to_ascii_lowercase();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        let mult = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, m)| *m)
                .ok_or_else(|| DomainError::invalid(format!("unknown size unit `{unit}`")))?
        };
        let bad = || DomainError::invalid(format!("`{s}` is not a size"));
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() || frac.len() > 9 {
            return Err(bad());
        }
        let int: u64 = int.parse().map_err(|_| bad())?;
        let mut total = int.checked_mul(mult).ok_or_else(bad)?;
        if !frac.is_empty() {
            let digits: u64 = frac.parse().map_err(|_| bad())?;
            let scale = 10u64.pow(u32::try_from(frac.len()).map_err(|_| bad())?);
            let part = u128::from(digits) * u128::from(mult) / u128::from(scale);
            total = total
                .checked_add(u64::try_from(part).map_err(|_| bad())?)
                .ok_or_else(bad)?;
        }
        Ok(Self(total))
    }
}

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const STEPS: [(&str, u64); 4] = [
            ("TB", 1_000_000_000_000),
            ("GB", 1_000_000_000),
            ("MB", 1_000_000),
            ("KB", 1_000),
        ];
        for (name, size) in STEPS {
            if self.0 >= size {
                let whole = self.0 / size;
                let tenth = (self.0 % size) * 10 / size;
                return if tenth == 0 {
                    write!(f, "{whole} {name}")
                } else {
                    write!(f, "{whole}.{tenth} {name}")
                };
            }
        }
        write!(f, "{} B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!(Bytes::parse("50GB"), Ok(Bytes(50_000_000_000)));
        assert_eq!(Bytes::parse("1.5 GiB"), Ok(Bytes(1_610_612_736)));
        assert_eq!(Bytes::parse("1024"), Ok(Bytes(1024)));
        assert!(Bytes::parse("GB").is_err());
        assert!(Bytes::parse("5 parsecs").is_err());
        assert!(Bytes::parse("99999999999 TB").is_err());
        assert_eq!(Bytes(1_500_000_000).to_string(), "1.5 GB");
    }

    proptest! {
        #[test]
        fn plain_numbers_round_trip(n in any::<u64>()) {
            prop_assert_eq!(Bytes::parse(&n.to_string()), Ok(Bytes(n)));
        }

        #[test]
        fn never_panics(s in ".{0,20}") {
            let _ = Bytes::parse(&s);
        }
    }
}
