//! Words and numbers as a customer reads them: translated messages, amounts (toman with
//! separators and Persian digits in Persian), sizes, dates (Jalali in Persian), and HTML
//! escaping for everything that came from a person.

use mrjbot_app::AppError;
use mrjbot_domain::{Currency, ErrorCode, Money};
use mrjbot_i18n::{Arg, Lang, format_bytes, format_date, format_days_left, format_int, t, t_args};

/// A translated message.
pub fn tr(lang: Lang, key: &str) -> String {
    t(lang, key)
}

/// A translated message with arguments.
pub fn tra(lang: Lang, key: &str, args: &[(&str, Arg<'_>)]) -> String {
    t_args(lang, key, args)
}

/// Escapes text for Telegram's HTML parse mode.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// An amount for people: rials are shown in toman (÷10) with grouping, stars with a star,
/// other currencies with their symbol or code.
pub fn money(lang: Lang, m: Money) -> String {
    let minor = m.amount_minor;
    match m.currency {
        Currency::Irr => tra(
            lang,
            "bot-amount-toman",
            &[("amount", Arg::Int(minor / 10))],
        ),
        Currency::Xtr => format!("{} ⭐", format_int(minor, lang)),
        c => {
            let exp = c.exponent();
            let unit = 10i64.pow(exp);
            let whole = format_int(minor / unit, lang);
            let frac = (minor % unit).abs();
            let num = if frac == 0 || exp == 0 {
                whole
            } else {
                let sep = if lang == Lang::En { '.' } else { ',' };
                let digits = format!("{frac:0width$}", width = exp as usize);
                let digits = digits.trim_end_matches('0');
                format!("{whole}{sep}{digits}")
            };
            match c {
                Currency::Rub => format!("{num} ₽"),
                Currency::Usd => format!("${num}"),
                Currency::Eur => format!("€{num}"),
                other => format!("{num} {}", other.code()),
            }
        }
    }
}

/// A byte count, or "unlimited".
pub fn bytes(lang: Lang, b: Option<i64>) -> String {
    match b {
        Some(b) => format_bytes(u64::try_from(b.max(0)).unwrap_or(0), lang),
        None => tr(lang, "bot-unlimited"),
    }
}

/// A date (Jalali in Persian).
pub fn date(lang: Lang, unix_ms: i64) -> String {
    format_date(unix_ms, lang)
}

/// "12 days".
pub fn days(lang: Lang, n: i64) -> String {
    format_days_left(n, lang)
}

/// A number in the language's digits.
pub fn num(lang: Lang, n: i64) -> String {
    format_int(n, lang)
}

/// What to tell a person when a service refused: the code's own text when there is one,
/// else a general sentence; validation messages carry the service's words.
pub fn error(lang: Lang, e: &AppError) -> String {
    let code = e.code.as_str();
    let key = format!("bot-error-{code}");
    let text = tr(lang, &key);
    if text != key {
        return text;
    }
    match e.code {
        ErrorCode::ValidationFailed => tra(
            lang,
            "bot-error-invalid",
            &[("reason", esc(&e.message).into())],
        ),
        ErrorCode::Internal | ErrorCode::Unavailable => tr(lang, "bot-error-internal"),
        _ => tra(lang, "bot-error-generic", &[("code", code.into())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_naturally() {
        let irr = Money::new(1_500_000, Currency::Irr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(money(Lang::En, irr), "150,000 toman");
        assert_eq!(money(Lang::Fa, irr), "۱۵۰٬۰۰۰ تومان");
        let rub = Money::new(49_950, Currency::Rub).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(money(Lang::Ru, rub), "499,5 ₽");
        let usd = Money::new(500, Currency::Usd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(money(Lang::En, usd), "$5");
        let xtr = Money::new(250, Currency::Xtr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(money(Lang::En, xtr), "250 ⭐");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(esc("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
    }
}
