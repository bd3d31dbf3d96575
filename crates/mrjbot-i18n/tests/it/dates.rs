use mrjbot_i18n::{
    IRAN_OFFSET_MINUTES, Lang, format_date, format_date_in, from_jalali, is_jalali_leap_year,
    to_jalali,
};
use proptest::prelude::*;
use time::{Date, Duration, macros::date, macros::datetime};

/// Year, month, day.
type Ymd = (i32, u32, u32);

/// Gregorian and Jalali dates known from calendars and history.
const KNOWN: [(Ymd, Ymd); 12] = [
    ((2026, 3, 21), (1405, 1, 1)),
    ((2025, 3, 21), (1404, 1, 1)),
    ((2024, 3, 20), (1403, 1, 1)),
    ((2026, 11, 21), (1405, 8, 30)),
    ((1979, 2, 11), (1357, 11, 22)),
    ((2025, 3, 20), (1403, 12, 30)),
    ((2026, 3, 20), (1404, 12, 29)),
    ((2023, 3, 21), (1402, 1, 1)),
    ((2000, 1, 1), (1378, 10, 11)),
    ((1900, 1, 1), (1278, 10, 11)),
    ((2100, 12, 31), (1479, 10, 10)),
    ((2026, 9, 23), (1405, 7, 1)),
];

fn unix_ms(dt: time::OffsetDateTime) -> i64 {
    dt.unix_timestamp() * 1000
}

fn triple(d: Date) -> Ymd {
    (d.year(), u32::from(u8::from(d.month())), u32::from(d.day()))
}

#[test]
fn known_pairs_convert_both_ways() {
    for ((gy, gm, gd), jalali) in KNOWN {
        assert_eq!(to_jalali(gy, gm, gd), Some(jalali), "{gy}-{gm}-{gd}");
        assert_eq!(
            from_jalali(jalali.0, jalali.1, jalali.2),
            Some((gy, gm, gd)),
            "{jalali:?}"
        );
    }
}

#[test]
fn invalid_dates_are_none() {
    assert_eq!(to_jalali(2026, 2, 29), None);
    assert_eq!(to_jalali(2026, 13, 1), None);
    assert_eq!(to_jalali(2026, 1, 0), None);
    assert_eq!(from_jalali(1404, 12, 30), None, "1404 is a common year");
    assert_eq!(
        from_jalali(1403, 12, 30),
        Some((2025, 3, 20)),
        "1403 is a leap year"
    );
    assert_eq!(from_jalali(1405, 7, 31), None);
    assert_eq!(from_jalali(1405, 6, 31), Some((2026, 9, 22)));
    assert_eq!(from_jalali(1405, 13, 1), None);
    assert_eq!(from_jalali(1405, 0, 1), None);
    assert_eq!(from_jalali(1405, 1, 0), None);
    assert_eq!(from_jalali(9999, 1, 1), None, "outside the supported years");
    assert_eq!(is_jalali_leap_year(1403), Some(true));
    assert_eq!(is_jalali_leap_year(1404), Some(false));
    assert_eq!(is_jalali_leap_year(5000), None);
}

#[test]
fn every_day_from_1900_to_2100_follows_the_previous_one() {
    let mut day = date!(1900 - 01 - 01);
    let Some(mut prev) = to_jalali(1900, 1, 1) else {
        panic!("1900-01-01 has no Jalali date");
    };
    while day < date!(2101 - 01 - 01) {
        day += Duration::DAY;
        let (gy, gm, gd) = triple(day);
        let Some(next) = to_jalali(gy, gm, gd) else {
            panic!("{day} has no Jalali date");
        };
        let (py, pm, pd) = prev;
        let expected = if from_jalali(py, pm, pd + 1).is_some() {
            (py, pm, pd + 1)
        } else if pm < 12 {
            (py, pm + 1, 1)
        } else {
            (py + 1, 1, 1)
        };
        assert_eq!(next, expected, "{day}");
        prev = next;
    }
}

proptest! {
    #[test]
    fn gregorian_round_trips_from_1900_to_2100(offset in 0i64..73_415) {
        let day = date!(1900 - 01 - 01) + Duration::days(offset);
        let (gy, gm, gd) = triple(day);
        let jalali = to_jalali(gy, gm, gd);
        prop_assert!(jalali.is_some());
        let back = jalali.and_then(|(jy, jm, jd)| from_jalali(jy, jm, jd));
        prop_assert_eq!(back, Some((gy, gm, gd)));
    }

    #[test]
    fn jalali_round_trips(jy in 1279i32..1479, jm in 1u32..=12, jd in 1u32..=31) {
        if let Some((gy, gm, gd)) = from_jalali(jy, jm, jd) {
            prop_assert_eq!(to_jalali(gy, gm, gd), Some((jy, jm, jd)));
        } else {
            prop_assert!(jd >= 30, "{}/{}/{} rejected", jy, jm, jd);
        }
    }
}

#[test]
fn format_date_per_language() {
    let ms = unix_ms(datetime!(2026-11-21 12:00 UTC));
    assert_eq!(format_date(ms, Lang::Fa), "۳۰ آبان ۱۴۰۵");
    assert_eq!(format_date(ms, Lang::En), "21 Nov 2026");
    assert_eq!(format_date(ms, Lang::Ru), "21 ноября 2026");
    let ms = unix_ms(datetime!(2026-03-01 00:00 UTC));
    assert_eq!(format_date(ms, Lang::Fa), "۱۰ اسفند ۱۴۰۴");
    assert_eq!(format_date(ms, Lang::En), "1 Mar 2026");
    assert_eq!(format_date(ms, Lang::Ru), "1 марта 2026");
    let ms = unix_ms(datetime!(2025-05-09 08:00 UTC));
    assert_eq!(format_date(ms, Lang::Ru), "9 мая 2025");
    assert_eq!(format_date(ms, Lang::Fa), "۱۹ اردیبهشت ۱۴۰۴");
}

#[test]
fn format_date_is_utc_and_format_date_in_shifts() {
    // 21:00 UTC on 20 Nov is already 00:30 on 21 Nov in Tehran.
    let ms = unix_ms(datetime!(2026-11-20 21:00 UTC));
    assert_eq!(format_date(ms, Lang::Fa), "۲۹ آبان ۱۴۰۵");
    assert_eq!(
        format_date_in(ms, IRAN_OFFSET_MINUTES, Lang::Fa),
        "۳۰ آبان ۱۴۰۵"
    );
    assert_eq!(
        format_date_in(ms, IRAN_OFFSET_MINUTES, Lang::En),
        "21 Nov 2026"
    );
    assert_eq!(format_date_in(ms, 0, Lang::En), format_date(ms, Lang::En));
    assert_eq!(format_date_in(ms, -300, Lang::En), "20 Nov 2026");
    // Nowruz starts at midnight Tehran time.
    let ms = unix_ms(datetime!(2025-03-20 20:30 UTC));
    assert_eq!(
        format_date_in(ms, IRAN_OFFSET_MINUTES, Lang::Fa),
        "۱ فروردین ۱۴۰۴"
    );
    assert_eq!(
        format_date_in(ms - 1, IRAN_OFFSET_MINUTES, Lang::Fa),
        "۳۰ اسفند ۱۴۰۳"
    );
}

#[test]
fn format_date_edges() {
    assert_eq!(format_date(0, Lang::En), "1 Jan 1970");
    assert_eq!(format_date(-1, Lang::En), "31 Dec 1969");
    assert_eq!(format_date(0, Lang::Fa), "۱۱ دی ۱۳۴۸");
    for lang in Lang::ALL {
        assert_eq!(format_date(i64::MAX, lang), "—");
        assert_eq!(format_date(i64::MIN, lang), "—");
    }
    // About 4085 years later: still a Gregorian date, but past the last Jalali year supported.
    assert_eq!(format_date_in(0, i32::MAX, Lang::En), "23 Jan 6053");
    assert_eq!(format_date_in(0, i32::MAX, Lang::Fa), "—");
}
