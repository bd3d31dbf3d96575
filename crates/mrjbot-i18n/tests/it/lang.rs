use mrjbot_i18n::Lang;

#[test]
fn codes_and_direction() {
    assert_eq!(Lang::ALL, [Lang::Fa, Lang::En, Lang::Ru]);
    let codes: Vec<&str> = Lang::ALL.iter().map(|l| l.code()).collect();
    assert_eq!(codes, ["fa", "en", "ru"]);
    assert!(Lang::Fa.is_rtl());
    assert!(!Lang::En.is_rtl());
    assert!(!Lang::Ru.is_rtl());
    assert_eq!(Lang::Fa.html_dir(), "rtl");
    assert_eq!(Lang::Ru.html_dir(), "ltr");
    assert_eq!(Lang::Ru.to_string(), "ru");
}

#[test]
fn parses_usual_spellings() {
    for tag in ["fa", "FA", "fa-IR", "fa_IR", " fa-ir ", "fas", "per", "pes"] {
        assert_eq!(Lang::parse(tag), Some(Lang::Fa), "{tag}");
    }
    for tag in ["en", "en-US", "en_GB", "EN-gb", "eng"] {
        assert_eq!(Lang::parse(tag), Some(Lang::En), "{tag}");
    }
    for tag in ["ru", "ru-RU", "ru_RU", "RU", "rus"] {
        assert_eq!(Lang::parse(tag), Some(Lang::Ru), "{tag}");
    }
    for tag in ["", " ", "de", "ar", "farsi", "-fa", "e", "*"] {
        assert_eq!(Lang::parse(tag), None, "{tag:?}");
    }
}

#[test]
fn serde_uses_lower_case_codes() {
    for lang in Lang::ALL {
        let json = serde_json::to_string(&lang).unwrap_or_default();
        assert_eq!(json, format!("\"{}\"", lang.code()));
        let back: Lang = serde_json::from_str(&json).unwrap_or(Lang::En);
        assert_eq!(back, lang);
    }
    assert!(serde_json::from_str::<Lang>("\"Fa\"").is_err());
    assert!(serde_json::from_str::<Lang>("\"de\"").is_err());
}

#[test]
fn accept_language_honours_q_values() {
    let cases = [
        ("fa-IR,fa;q=0.9,en-US;q=0.8,en;q=0.7", Some(Lang::Fa)),
        ("de-DE,de;q=0.9,ru;q=0.8,en;q=0.5", Some(Lang::Ru)),
        ("en;q=0.5, ru;q=0.9", Some(Lang::Ru)),
        ("en;q=0.5, ru;Q=0.9", Some(Lang::Ru)),
        ("ru;q=0, en;q=0.1", Some(Lang::En)),
        ("ru, en", Some(Lang::Ru)),
        ("en;q=0.8, fa;q=0.8", Some(Lang::En)),
        ("en;q=abc, fa;q=0.2", Some(Lang::Fa)),
        ("en;q=2, ru;q=0.3", Some(Lang::Ru)),
        ("*;q=1, fa;q=0.1", Some(Lang::Fa)),
        ("fr-CH, fr;q=0.9, *;q=0.5", None),
        ("ru;q=0", None),
        ("*", None),
        ("", None),
        (",,;", None),
    ];
    for (header, want) in cases {
        assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
    }
}
