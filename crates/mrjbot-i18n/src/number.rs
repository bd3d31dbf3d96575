//! Digits, grouped numbers and byte sizes as each language writes them.
//!
//! Persian readers expect Persian digits (`۱۲٬۳۴۵٫۶`), Russian readers a comma for decimals and
//! a narrow no-break space between groups (`12 345,6`). Users also type digits back in either
//! Persian or Arabic-Indic form (a receipt, an amount, a code), so [`normalize_digits`] turns
//! them into ASCII before any parsing.

use crate::Lang;

/// Persian thousands separator (ARABIC THOUSANDS SEPARATOR, U+066C).
const FA_GROUP: char = '\u{066C}';
/// Persian decimal separator (ARABIC DECIMAL SEPARATOR, U+066B).
const FA_DECIMAL: char = '\u{066B}';
/// Russian thousands separator (NARROW NO-BREAK SPACE, U+202F).
const RU_GROUP: char = '\u{202F}';
/// The minus sign Persian text uses (MINUS SIGN, U+2212), as in CLDR's `fa` data.
const FA_MINUS: char = '\u{2212}';

/// Replaces ASCII digits `0`-`9` with Persian digits `۰`-`۹`; everything else is kept.
pub fn persian_digits(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from_u32(0x06F0 + (u32::from(c) - u32::from('0'))).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Replaces Persian (`۰`-`۹`) and Arabic-Indic (`٠`-`٩`) digits with ASCII `0`-`9`; everything
/// else, separators included, is kept. Run user input and OCR text through this before parsing.
pub fn normalize_digits(s: &str) -> String {
    s.chars()
        .map(|c| {
            let code = u32::from(c);
            let digit = match code {
                0x06F0..=0x06F9 => Some(code - 0x06F0),
                0x0660..=0x0669 => Some(code - 0x0660),
                _ => None,
            };
            digit.and_then(|d| char::from_digit(d, 10)).unwrap_or(c)
        })
        .collect()
}

/// Formats an integer with digit grouping: fa `۱۲٬۳۴۵`, en `12,345`, ru `12 345` (U+202F).
pub fn format_int(n: i64, lang: Lang) -> String {
    let body = group(&n.unsigned_abs().to_string(), lang);
    if n < 0 {
        format!("{}{}", minus(lang), localize_digits(&body, lang))
    } else {
        localize_digits(&body, lang)
    }
}

/// Formats a number with exactly `decimals` fraction digits (rounded) and digit grouping:
/// fa `۱۲٬۳۴۵٫۶۷`, en `12,345.67`, ru `12 345,67`.
///
/// A value that rounds to zero has no minus sign; NaN and the infinities come out as `NaN`,
/// `∞` and `-∞` (with the language's minus sign).
pub fn format_decimal(x: f64, decimals: usize, lang: Lang) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x < 0.0 {
            format!("{}∞", minus(lang))
        } else {
            "∞".to_owned()
        };
    }
    let rounded = format!("{:.*}", decimals, x.abs());
    let (int_part, frac_part) = match rounded.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rounded.as_str(), None),
    };
    let mut out = String::new();
    if x.is_sign_negative() && rounded.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        out.push(minus(lang));
    }
    out.push_str(&group(int_part, lang));
    if let Some(frac) = frac_part {
        out.push(decimal_separator(lang));
        out.push_str(frac);
    }
    localize_digits(&out, lang)
}

/// Formats a byte count for people: 1024-based, labelled B/KB/MB/GB/TB as VPN sellers label
/// their plans (a "50 GB" plan is 50 × 1024³ bytes).
///
/// Below 100 units one decimal is shown unless it is zero (`12.5 GB`, `50 GB`); from 100 units
/// on none (`250 GB`). A value that rounds up to 1024 moves to the next unit (`1 GB`, not
/// `1024 MB`). Examples: en `12.5 GB`, fa `۱۲٫۵ گیگابایت`, ru `12,5 ГБ`.
pub fn format_bytes(bytes: u64, lang: Lang) -> String {
    const UNITS: usize = 5;
    let mut unit = 0;
    while unit + 1 < UNITS && bytes >= 1u64 << (10 * (unit + 1)) {
        unit += 1;
    }
    let (mut tenths, mut whole) = rounded(bytes, unit);
    if whole >= 1024 && unit + 1 < UNITS {
        unit += 1;
        (tenths, whole) = rounded(bytes, unit);
    }
    let number = if unit == 0 {
        format_int(clamp_i64(u128::from(bytes)), lang)
    } else if tenths < 1000 && tenths % 10 != 0 {
        let int_part = format_int(clamp_i64(tenths / 10), lang);
        let digit = localize_digits(&(tenths % 10).to_string(), lang);
        format!("{int_part}{}{digit}", decimal_separator(lang))
    } else if tenths < 1000 {
        format_int(clamp_i64(tenths / 10), lang)
    } else {
        format_int(clamp_i64(whole), lang)
    };
    format!("{number} {}", unit_label(unit, lang))
}

/// `bytes` in the given 1024-power unit, rounded half up to tenths and to a whole number.
fn rounded(bytes: u64, unit: usize) -> (u128, u128) {
    let divisor = 1u128 << (10 * unit);
    let bytes = u128::from(bytes);
    let tenths = (bytes * 10 + divisor / 2) / divisor;
    let whole = (bytes + divisor / 2) / divisor;
    (tenths, whole)
}

fn clamp_i64(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unit_label(unit: usize, lang: Lang) -> &'static str {
    const EN: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    const FA: [&str; 5] = ["بایت", "کیلوبایت", "مگابایت", "گیگابایت", "ترابایت"];
    const RU: [&str; 5] = ["Б", "КБ", "МБ", "ГБ", "ТБ"];
    let labels = match lang {
        Lang::Fa => &FA,
        Lang::En => &EN,
        Lang::Ru => &RU,
    };
    labels.get(unit).copied().unwrap_or("")
}

/// Inserts the language's group separator every three digits of an ASCII digit string.
fn group(digits: &str, lang: Lang) -> String {
    let sep = match lang {
        Lang::Fa => FA_GROUP,
        Lang::En => ',',
        Lang::Ru => RU_GROUP,
    };
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

pub(crate) fn decimal_separator(lang: Lang) -> char {
    match lang {
        Lang::Fa => FA_DECIMAL,
        Lang::En => '.',
        Lang::Ru => ',',
    }
}

fn minus(lang: Lang) -> char {
    match lang {
        Lang::Fa => FA_MINUS,
        Lang::En | Lang::Ru => '-',
    }
}

pub(crate) fn localize_digits(s: &str, lang: Lang) -> String {
    match lang {
        Lang::Fa => persian_digits(s),
        Lang::En | Lang::Ru => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_every_three_digits_from_the_right() {
        assert_eq!(group("1", Lang::En), "1");
        assert_eq!(group("123", Lang::En), "123");
        assert_eq!(group("1234", Lang::En), "1,234");
        assert_eq!(group("123456", Lang::En), "123,456");
        assert_eq!(group("1234567", Lang::En), "1,234,567");
    }

    #[test]
    fn rounds_half_up_to_tenths() {
        assert_eq!(rounded(1024 * 1024 * 1024 * 25 / 2, 3), (125, 13));
        assert_eq!(rounded(1023, 1), (10, 1));
    }
}
