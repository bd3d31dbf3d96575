//! Translated messages from the fluent files in `locales/{en,fa,ru}/*.ftl` (`main.ftl`:
//! the web and links; `bot.ftl`: the Telegram bot).
//!
//! The files are compiled into the binary (`static_loader!`), so a running server cannot lack
//! a translation file. A lookup never fails: a message missing from a language falls back to
//! English, and one missing everywhere comes back as its key, which a reader spots at once.
//! A test checks that the three files define the same keys and that every message formats.
//!
//! Two choices differ from fluent's defaults:
//! - Bidi isolation is off. Fluent wraps every argument in FSI/PDI marks (U+2068/U+2069) to
//!   keep a Latin bot name from reordering Persian text, but these strings also end up as
//!   remarks inside VPN apps and in Telegram, where the marks show as boxes or break copying.
//!   Callers that put an argument of the other direction into HTML wrap it in `<bdi>` instead.
//! - Numbers are formatted for the bundle's language (`format_int`'s grouping and, for
//!   Persian, Persian digits), so `{ $days }` reads `۱۲` in Persian. Plural selection still
//!   uses the numeric value, with CLDR's rules (Russian 1 день, 2 дня, 5 дней, 21 день).

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_bundle::FluentValue;
use fluent_templates::Loader;

use crate::Lang;
use crate::number::{decimal_separator, format_int, localize_digits};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| {
            bundle.set_use_isolating(false);
            let lang = bundle
                .locales
                .first()
                .and_then(|id| Lang::parse(id.language.as_str()))
                .unwrap_or(Lang::En);
            bundle.set_formatter(Some(match lang {
                Lang::Fa => format_number_fa,
                Lang::En => format_number_en,
                Lang::Ru => format_number_ru,
            }));
        },
    };
}

/// A value for a message argument, so that callers need no fluent types.
///
/// Build one with `into()` from a string or an integer: `("days", 12.into())`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg<'a> {
    /// Text inserted as is (already formatted dates and sizes, names).
    Str(Cow<'a, str>),
    /// An integer, formatted for the language and usable for plural selection.
    Int(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Str(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Str(Cow::Borrowed(s.as_str()))
    }
}

impl From<String> for Arg<'_> {
    fn from(s: String) -> Self {
        Arg::Str(Cow::Owned(s))
    }
}

macro_rules! int_arg {
    ($($t:ty)*) => {$(
        impl From<$t> for Arg<'_> {
            fn from(n: $t) -> Self {
                Arg::Int(i64::from(n))
            }
        }
    )*};
}
int_arg!(i8 i16 i32 i64 u8 u16 u32);

macro_rules! wide_int_arg {
    ($($t:ty)*) => {$(
        /// Values above `i64::MAX` are clamped to it.
        impl From<$t> for Arg<'_> {
            fn from(n: $t) -> Self {
                Arg::Int(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
    )*};
}
wide_int_arg!(u64 usize);

/// The message `key` in `lang`; English when `lang` lacks it, the key itself when no language
/// has it.
pub fn t(lang: Lang, key: &str) -> String {
    LOCALES
        .try_lookup(lang.langid(), key)
        .unwrap_or_else(|| key.to_owned())
}

/// The message `key` in `lang` with arguments.
///
/// Falls back like [`t`]. A message whose arguments are missing counts as missing in that
/// language, so a forgotten argument shows up as English text or as the key.
///
/// ```
/// use mrjbot_i18n::{Lang, t, t_args};
///
/// assert_eq!(t_args(Lang::Ru, "sub-days-left", &[("days", 21.into())]), "Остался 21 день");
/// let status = t(Lang::Fa, "sub-status-expired");
/// let remark = t_args(Lang::Fa, "sub-inactive-remark", &[("status", status.into()), ("bot", "@MrjBot".into())]);
/// assert_eq!(remark, "منقضی شده — تمدید در @MrjBot");
/// ```
pub fn t_args(lang: Lang, key: &str, args: &[(&str, Arg<'_>)]) -> String {
    let map: HashMap<Cow<'static, str>, FluentValue<'_>> = args
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Arg::Str(s) => FluentValue::from(s.as_ref()),
                Arg::Int(n) => FluentValue::from(*n),
            };
            (Cow::Owned((*name).to_owned()), value)
        })
        .collect();
    LOCALES
        .try_lookup_with_args(lang.langid(), key, &map)
        .unwrap_or_else(|| key.to_owned())
}

/// A count of days for people: en `12 days`, fa `۱۲ روز`, ru `12 дней` / `1 день` / `3 дня`.
/// A negative count (the date has passed) is shown as zero.
pub fn format_days_left(days: i64, lang: Lang) -> String {
    t_args(lang, "days-count", &[("days", Arg::Int(days.max(0)))])
}

/// An emoji for a subscription status (the domain's snake_case status names), for remarks and
/// bot messages: `active` ✅, `on_hold` ⏳, `limited` 🚫, `expired` ⌛, `disabled` ⛔,
/// `temporary` 🕒; `❔` for anything else. All are from Emoji 1.0, so old phones show them too.
pub fn status_emoji(status: &str) -> &'static str {
    match status {
        "active" => "✅",
        "on_hold" => "⏳",
        "limited" => "🚫",
        "expired" => "⌛",
        "disabled" => "⛔",
        "temporary" => "🕒",
        _ => "❔",
    }
}

fn format_number_fa<M>(value: &FluentValue<'_>, _intls: &M) -> Option<String> {
    format_number(value, Lang::Fa)
}

fn format_number_en<M>(value: &FluentValue<'_>, _intls: &M) -> Option<String> {
    format_number(value, Lang::En)
}

fn format_number_ru<M>(value: &FluentValue<'_>, _intls: &M) -> Option<String> {
    format_number(value, Lang::Ru)
}

/// Integers get the language's grouping and digits; other numbers keep fluent's digits with
/// the language's decimal separator. Non-numbers are left to fluent (`None`).
fn format_number(value: &FluentValue<'_>, lang: Lang) -> Option<String> {
    let FluentValue::Number(number) = value else {
        return None;
    };
    let x = number.value;
    let integral = x.fract() == 0.0 && x.abs() < 9.0e15;
    if integral
        && number
            .options
            .minimum_fraction_digits
            .is_none_or(|d| d == 0)
    {
        // Exact: |x| < 2^53, checked above.
        return Some(format_int(x as i64, lang));
    }
    let plain = number
        .as_string()
        .replace('.', &decimal_separator(lang).to_string());
    Some(localize_digits(&plain, lang))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_without_a_bundle_falls_back_to_english() {
        let german = fluent_templates::langid!("de");
        assert_eq!(
            LOCALES.try_lookup(&german, "sub-copy").as_deref(),
            Some("Copy")
        );
    }

    #[test]
    fn numbers_are_formatted_for_the_bundle_language() {
        let format = |x: f64, lang| format_number(&FluentValue::from(x), lang);
        assert_eq!(format(1500.0, Lang::Fa).as_deref(), Some("۱٬۵۰۰"));
        assert_eq!(format(1500.0, Lang::Ru).as_deref(), Some("1\u{202F}500"));
        assert_eq!(format(1.5, Lang::Fa).as_deref(), Some("۱٫۵"));
        assert_eq!(format(1.5, Lang::Ru).as_deref(), Some("1,5"));
        assert_eq!(format(1.5, Lang::En).as_deref(), Some("1.5"));
        assert_eq!(format_number(&FluentValue::from("12"), Lang::Fa), None);
    }
}
