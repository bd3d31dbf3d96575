//! Calendar dates as each language writes them, Jalali (Solar Hijri) for Persian.
//!
//! Iranians date everything, expiry included, in the Jalali calendar, so a Persian page that
//! says "21 Nov" is wrong even when correctly translated. The conversion is the well-known
//! arithmetic of Kazimierz Borkowski (as in `jalaali-js`): 33-year cycles corrected by a table of
//! break years, valid for Jalali years -61..3177. The Gregorian side is the `time` crate's Julian
//! day numbers. Every function returns `None` (or a placeholder string) for a date it cannot
//! represent instead of panicking.

use time::{Date, Month, OffsetDateTime};

use crate::Lang;
use crate::number::localize_digits;

/// Iran's offset from UTC in minutes (+03:30; Iran has kept no daylight saving time since 2022).
pub const IRAN_OFFSET_MINUTES: i32 = 210;

/// Shown instead of a date that is outside the supported range.
const UNREPRESENTABLE: &str = "—";

/// Jalali years at which the leap pattern of the 33-year cycles shifts (Borkowski's table).
const BREAKS: [i32; 20] = [
    -61, 9, 38, 199, 426, 686, 756, 818, 1111, 1181, 1210, 1635, 2060, 2097, 2192, 2262, 2324,
    2394, 2456, 3178,
];

const FA_MONTHS: [&str; 12] = [
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
];
const EN_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Genitive forms, as used after a day number ("21 ноября").
const RU_MONTHS: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];

/// What Borkowski's `jalCal` computes for one Jalali year.
struct JalaliYear {
    /// The Gregorian year in which the Jalali year starts.
    gregorian_year: i32,
    /// The day of March (Gregorian) that is 1 Farvardin.
    march_day: i32,
    /// Years since the last leap year: 0 means this year is a leap year.
    leap: i32,
}

fn jal_cal(jy: i32) -> Option<JalaliYear> {
    let first = BREAKS[0];
    let last = BREAKS[BREAKS.len() - 1];
    if jy < first || jy >= last {
        return None;
    }
    let mut leap_j = -14;
    let mut jp = first;
    let mut jump = 0;
    for &jm in &BREAKS[1..] {
        jump = jm - jp;
        if jy < jm {
            break;
        }
        leap_j += jump / 33 * 8 + jump % 33 / 4;
        jp = jm;
    }
    let mut n = jy - jp;
    leap_j += n / 33 * 8 + (n % 33 + 3) / 4;
    if jump % 33 == 4 && jump - n == 4 {
        leap_j += 1;
    }
    let gy = jy + 621;
    let leap_g = gy / 4 - (gy / 100 + 1) * 3 / 4 - 150;
    let march_day = 20 + leap_j - leap_g;
    if jump - n < 6 {
        n = n - jump + (jump + 4) / 33 * 33;
    }
    let mut leap = ((n + 1) % 33 - 1) % 4;
    if leap == -1 {
        leap = 4;
    }
    Some(JalaliYear {
        gregorian_year: gy,
        march_day,
        leap,
    })
}

fn gregorian(year: i32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

/// The Julian day number of 1 Farvardin of Jalali year `jy`.
fn farvardin_first(year: &JalaliYear) -> Option<i32> {
    let march = u32::try_from(year.march_day).ok()?;
    Some(gregorian(year.gregorian_year, 3, march)?.to_julian_day())
}

fn date_to_jalali(date: Date) -> Option<(i32, u32, u32)> {
    let jdn = date.to_julian_day();
    let mut jy = date.year() - 621;
    let year = jal_cal(jy)?;
    let mut k = jdn - farvardin_first(&year)?;
    if k >= 0 {
        if k <= 185 {
            return Some((jy, month_u32(1 + k / 31), month_u32(k % 31 + 1)));
        }
        k -= 186;
    } else {
        // Before Nowruz: the last months of the previous Jalali year.
        jy -= 1;
        k += 179;
        if year.leap == 1 {
            k += 1;
        }
    }
    Some((jy, month_u32(7 + k / 30), month_u32(k % 30 + 1)))
}

/// Month and day numbers computed above are always small and positive.
fn month_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Whether Jalali year `jy` is a leap year (its Esfand has 30 days). `None` outside the
/// supported years -61..3177.
pub fn is_jalali_leap_year(jy: i32) -> Option<bool> {
    jal_cal(jy).map(|y| y.leap == 0)
}

/// Converts a Gregorian date to Jalali `(year, month, day)`, months numbered 1 (Farvardin) to
/// 12 (Esfand). `None` for an invalid Gregorian date or one outside the supported range.
///
/// ```
/// assert_eq!(mrjbot_i18n::to_jalali(2026, 3, 21), Some((1405, 1, 1)));
/// ```
pub fn to_jalali(year: i32, month: u32, day: u32) -> Option<(i32, u32, u32)> {
    date_to_jalali(gregorian(year, month, day)?)
}

/// Converts a Jalali date to Gregorian `(year, month, day)`. `None` for an invalid Jalali date
/// (month outside 1..=12, day past the month's end, 30 Esfand in a common year) or one outside
/// the supported range.
///
/// ```
/// assert_eq!(mrjbot_i18n::from_jalali(1357, 11, 22), Some((1979, 2, 11)));
/// ```
pub fn from_jalali(year: i32, month: u32, day: u32) -> Option<(i32, u32, u32)> {
    let info = jal_cal(year)?;
    let days_in_month = match month {
        1..=6 => 31,
        7..=11 => 30,
        12 if info.leap == 0 => 30,
        12 => 29,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let jm = i32::try_from(month).ok()?;
    let jd = i32::try_from(day).ok()?;
    let jdn = farvardin_first(&info)? + (jm - 1) * 31 - jm / 7 * (jm - 7) + jd - 1;
    let date = Date::from_julian_day(jdn).ok()?;
    Some((
        date.year(),
        u32::from(u8::from(date.month())),
        u32::from(date.day()),
    ))
}

/// Formats the UTC calendar day of a Unix timestamp in milliseconds: fa `۳۰ آبان ۱۴۰۵`
/// (Jalali), en `21 Nov 2026`, ru `21 ноября 2026`. Same as [`format_date_in`] with offset 0.
pub fn format_date(unix_ms: i64, lang: Lang) -> String {
    format_date_in(unix_ms, 0, lang)
}

/// Formats the calendar day of a Unix timestamp in milliseconds as seen at `offset_minutes`
/// east of UTC (for Iran pass [`IRAN_OFFSET_MINUTES`]). A day the calendar cannot show comes out
/// as `—`: Gregorian years beyond ±9999, Jalali years outside -61..3177 (Gregorian 560..3798).
pub fn format_date_in(unix_ms: i64, offset_minutes: i32, lang: Lang) -> String {
    local_date(unix_ms, offset_minutes)
        .and_then(|date| format_day(date, lang))
        .unwrap_or_else(|| UNREPRESENTABLE.to_owned())
}

fn local_date(unix_ms: i64, offset_minutes: i32) -> Option<Date> {
    let seconds = unix_ms
        .div_euclid(1000)
        .checked_add(i64::from(offset_minutes) * 60)?;
    Some(OffsetDateTime::from_unix_timestamp(seconds).ok()?.date())
}

fn format_day(date: Date, lang: Lang) -> Option<String> {
    match lang {
        Lang::Fa => {
            let (jy, jm, jd) = date_to_jalali(date)?;
            let month = FA_MONTHS.get(usize::try_from(jm).ok()?.checked_sub(1)?)?;
            Some(localize_digits(&format!("{jd} {month} {jy}"), lang))
        }
        Lang::En | Lang::Ru => {
            let names = if lang == Lang::En {
                &EN_MONTHS
            } else {
                &RU_MONTHS
            };
            let month = names.get(usize::from(u8::from(date.month())) - 1)?;
            Some(format!("{} {month} {}", date.day(), date.year()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_years_follow_the_astronomical_calendar() {
        // Every fourth year, except for the five-year gap from 1403 to 1408 that ends a cycle.
        let leap: Vec<i32> = (1390..=1412)
            .filter(|&y| is_jalali_leap_year(y) == Some(true))
            .collect();
        assert_eq!(leap, vec![1391, 1395, 1399, 1403, 1408, 1412]);
    }

    #[test]
    fn the_supported_range_is_bounded() {
        assert!(jal_cal(-62).is_none());
        assert!(jal_cal(-61).is_some());
        assert!(jal_cal(3177).is_some());
        assert!(jal_cal(3178).is_none());
    }
}
