use mrjbot_i18n::{Lang, format_decimal, format_int, normalize_digits, persian_digits};
use proptest::prelude::*;

#[test]
fn persian_digits_replace_only_ascii_digits() {
    assert_eq!(persian_digits("0123456789"), "۰۱۲۳۴۵۶۷۸۹");
    assert_eq!(
        persian_digits("Plan 30 days, 12.5 GB"),
        "Plan ۳۰ days, ۱۲.۵ GB"
    );
    assert_eq!(persian_digits(""), "");
    assert_eq!(persian_digits("۱۲ ٣"), "۱۲ ٣");
}

#[test]
fn normalize_digits_reads_persian_and_arabic_indic() {
    assert_eq!(normalize_digits("۰۱۲۳۴۵۶۷۸۹"), "0123456789");
    assert_eq!(normalize_digits("٠١٢٣٤٥٦٧٨٩"), "0123456789");
    assert_eq!(normalize_digits("مبلغ: ۱۲٬۵۰۰ تومان"), "مبلغ: 12٬500 تومان");
    assert_eq!(normalize_digits("کد ٤٥۶7"), "کد 4567");
    assert_eq!(normalize_digits("abc 42"), "abc 42");
}

#[test]
fn format_int_groups_per_language() {
    assert_eq!(format_int(0, Lang::En), "0");
    assert_eq!(format_int(0, Lang::Fa), "۰");
    assert_eq!(format_int(999, Lang::En), "999");
    assert_eq!(format_int(1000, Lang::En), "1,000");
    assert_eq!(format_int(1_234_567, Lang::En), "1,234,567");
    assert_eq!(format_int(1_234_567, Lang::Fa), "۱٬۲۳۴٬۵۶۷");
    assert_eq!(format_int(1_234_567, Lang::Ru), "1\u{202F}234\u{202F}567");
    assert_eq!(format_int(-1234, Lang::En), "-1,234");
    assert_eq!(format_int(-1234, Lang::Ru), "-1\u{202F}234");
    assert_eq!(format_int(-1234, Lang::Fa), "\u{2212}۱٬۲۳۴");
    assert_eq!(format_int(i64::MIN, Lang::En), "-9,223,372,036,854,775,808");
    assert_eq!(format_int(i64::MAX, Lang::En), "9,223,372,036,854,775,807");
}

#[test]
fn format_decimal_uses_the_language_separators() {
    assert_eq!(format_decimal(1234.567, 2, Lang::En), "1,234.57");
    assert_eq!(format_decimal(1234.567, 2, Lang::Fa), "۱٬۲۳۴٫۵۷");
    assert_eq!(format_decimal(1234.567, 2, Lang::Ru), "1\u{202F}234,57");
    assert_eq!(format_decimal(2.0, 0, Lang::En), "2");
    assert_eq!(format_decimal(0.5, 3, Lang::En), "0.500");
    assert_eq!(format_decimal(-1.5, 1, Lang::En), "-1.5");
    assert_eq!(format_decimal(-1.5, 1, Lang::Fa), "\u{2212}۱٫۵");
    assert_eq!(format_decimal(-0.004, 2, Lang::En), "0.00");
    assert_eq!(format_decimal(-0.0, 0, Lang::En), "0");
    assert_eq!(format_decimal(f64::NAN, 2, Lang::En), "NaN");
    assert_eq!(format_decimal(f64::INFINITY, 2, Lang::En), "∞");
    assert_eq!(format_decimal(f64::NEG_INFINITY, 2, Lang::Ru), "-∞");
}

/// Removes grouping and turns a localized number back into one Rust parses.
fn unlocalize(s: &str) -> String {
    normalize_digits(s)
        .chars()
        .filter(|c| !matches!(c, ',' | '\u{066C}' | '\u{202F}'))
        .map(|c| match c {
            '\u{066B}' => '.',
            '\u{2212}' => '-',
            c => c,
        })
        .collect()
}

proptest! {
    #[test]
    fn persian_digits_round_trip(s in "[ -~]{0,40}") {
        prop_assert_eq!(normalize_digits(&persian_digits(&s)), s);
    }

    #[test]
    fn format_int_round_trips(n in any::<i64>()) {
        for lang in Lang::ALL {
            prop_assert_eq!(unlocalize(&format_int(n, lang)).parse::<i64>().ok(), Some(n));
        }
    }

    #[test]
    fn format_decimal_round_trips(x in -1.0e12f64..1.0e12) {
        let want = format!("{x:.2}").parse::<f64>().unwrap_or(f64::NAN);
        for lang in Lang::ALL {
            let text = format_decimal(x, 2, lang).replace(',', if lang == Lang::Ru { "." } else { "," });
            let got = unlocalize(&text).parse::<f64>().unwrap_or(f64::NAN);
            prop_assert_eq!(got, want, "{} in {}", x, lang);
        }
    }
}
