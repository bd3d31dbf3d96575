use mrjbot_i18n::{Arg, Lang, format_days_left, status_emoji, t, t_args};

#[test]
fn t_translates_and_returns_unknown_keys() {
    assert_eq!(t(Lang::En, "sub-page-title"), "Your subscription");
    assert_eq!(t(Lang::Fa, "sub-page-title"), "اشتراک شما");
    assert_eq!(t(Lang::Ru, "sub-page-title"), "Ваша подписка");
    assert_eq!(t(Lang::Ru, "sub-status-limited"), "Трафик исчерпан");
    for lang in Lang::ALL {
        assert_eq!(t(lang, "no-such-key"), "no-such-key");
    }
}

#[test]
fn a_missing_argument_counts_as_a_missing_message() {
    assert_eq!(t(Lang::Fa, "sub-expires"), "sub-expires");
}

#[test]
fn arguments_are_inserted_without_isolation_marks() {
    let date = "21 Nov 2026".to_owned();
    assert_eq!(
        t_args(Lang::En, "sub-expires", &[("date", (&date).into())]),
        "Expires on 21 Nov 2026"
    );
    let remark = t_args(
        Lang::Fa,
        "sub-inactive-remark",
        &[
            ("status", t(Lang::Fa, "sub-status-expired").into()),
            ("bot", "@MrjBot".into()),
        ],
    );
    assert_eq!(remark, "منقضی شده — تمدید در @MrjBot");
    let remark = t_args(
        Lang::Ru,
        "sub-inactive-remark",
        &[
            ("status", t(Lang::Ru, "sub-status-limited").into()),
            ("bot", "@MrjBot".into()),
        ],
    );
    assert_eq!(remark, "Трафик исчерпан — продлите в @MrjBot");
    let used = t_args(
        Lang::En,
        "sub-data-used",
        &[("used", "12.5 GB".into()), ("total", "50 GB".into())],
    );
    assert_eq!(used, "12.5 GB of 50 GB used");
    for text in [remark, used] {
        assert!(!text.contains(['\u{2068}', '\u{2069}']), "{text:?}");
    }
}

#[test]
fn integer_arguments_are_localized() {
    let days = |lang, n: i64| t_args(lang, "sub-days-left", &[("days", n.into())]);
    assert_eq!(days(Lang::En, 1), "1 day left");
    assert_eq!(days(Lang::En, 12), "12 days left");
    assert_eq!(days(Lang::En, 1000), "1,000 days left");
    assert_eq!(days(Lang::Fa, 12), "۱۲ روز باقی‌مانده");
    assert_eq!(days(Lang::Fa, 1500), "۱٬۵۰۰ روز باقی‌مانده");
    assert_eq!(days(Lang::Ru, 1), "Остался 1 день");
    assert_eq!(days(Lang::Ru, 3), "Осталось 3 дня");
    assert_eq!(days(Lang::Ru, 11), "Осталось 11 дней");
    assert_eq!(days(Lang::Ru, 21), "Остался 21 день");
    assert_eq!(days(Lang::Ru, 1001), "Остался 1\u{202F}001 день");
}

#[test]
fn arg_conversions() {
    assert_eq!(Arg::from(5u8), Arg::Int(5));
    assert_eq!(Arg::from(-5i32), Arg::Int(-5));
    assert_eq!(Arg::from(7u32), Arg::Int(7));
    assert_eq!(Arg::from(u64::MAX), Arg::Int(i64::MAX));
    assert_eq!(Arg::from(3usize), Arg::Int(3));
    assert_eq!(Arg::from("x"), Arg::Str("x".into()));
    assert_eq!(Arg::from("x".to_owned()), Arg::Str("x".into()));
}

#[test]
fn days_left_in_english_and_persian() {
    assert_eq!(format_days_left(0, Lang::En), "0 days");
    assert_eq!(format_days_left(1, Lang::En), "1 day");
    assert_eq!(format_days_left(12, Lang::En), "12 days");
    assert_eq!(format_days_left(-3, Lang::En), "0 days");
    assert_eq!(format_days_left(12, Lang::Fa), "۱۲ روز");
    assert_eq!(format_days_left(1, Lang::Fa), "۱ روز");
}

#[test]
fn days_left_in_russian_uses_three_plural_forms() {
    let cases = [
        (0, "0 дней"),
        (1, "1 день"),
        (2, "2 дня"),
        (3, "3 дня"),
        (4, "4 дня"),
        (5, "5 дней"),
        (10, "10 дней"),
        (11, "11 дней"),
        (12, "12 дней"),
        (14, "14 дней"),
        (21, "21 день"),
        (22, "22 дня"),
        (25, "25 дней"),
        (101, "101 день"),
        (111, "111 дней"),
        (112, "112 дней"),
        (122, "122 дня"),
    ];
    for (n, want) in cases {
        assert_eq!(format_days_left(n, Lang::Ru), want, "{n}");
    }
}

#[test]
fn status_emojis() {
    assert_eq!(status_emoji("active"), "✅");
    assert_eq!(status_emoji("on_hold"), "⏳");
    assert_eq!(status_emoji("limited"), "🚫");
    assert_eq!(status_emoji("expired"), "⌛");
    assert_eq!(status_emoji("disabled"), "⛔");
    assert_eq!(status_emoji("temporary"), "🕒");
    assert_eq!(status_emoji("Active"), "❔");
    assert_eq!(status_emoji(""), "❔");
}

#[test]
fn every_status_has_a_label_in_every_language() {
    for status in [
        "active",
        "on_hold",
        "limited",
        "expired",
        "disabled",
        "temporary",
    ] {
        let key = format!("sub-status-{status}");
        for lang in Lang::ALL {
            assert_ne!(t(lang, &key), key, "{key} in {lang}");
        }
    }
}
