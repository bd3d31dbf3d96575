//! The languages MRJBot speaks and how a caller picks one.
//!
//! Language hints arrive in many spellings (Telegram's `language_code`, a browser's
//! `Accept-Language`, a stored setting); [`Lang::parse`] and [`Lang::from_accept_language`]
//! turn any of them into one of the three supported languages or `None`, so the rest of the
//! code never handles a language tag as a string.

use std::fmt;
use std::sync::LazyLock;

use fluent_templates::LanguageIdentifier;
use serde::{Deserialize, Serialize};

/// A language MRJBot has translations for. Serialized as its lower-case code (`"fa"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Persian (Farsi), written right to left, with Jalali dates.
    Fa,
    /// English; also the fallback for a message missing from another language.
    En,
    /// Russian.
    Ru,
}

static FA_ID: LazyLock<LanguageIdentifier> = LazyLock::new(|| fluent_templates::langid!("fa"));
static EN_ID: LazyLock<LanguageIdentifier> = LazyLock::new(|| fluent_templates::langid!("en"));
static RU_ID: LazyLock<LanguageIdentifier> = LazyLock::new(|| fluent_templates::langid!("ru"));

impl Lang {
    /// Every supported language, in the order a language picker shows them.
    pub const ALL: [Lang; 3] = [Lang::Fa, Lang::En, Lang::Ru];

    /// The ISO 639-1 code: `"fa"`, `"en"` or `"ru"`.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// Reads a language tag in any usual spelling: `fa`, `FA`, `fa-IR`, `en_US`, `ru-RU`,
    /// and the three-letter codes (`fas`/`per`/`pes`, `eng`, `rus`). Only the primary subtag
    /// counts; anything else (or an empty string) is `None`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fa" | "fas" | "per" | "pes" => Some(Lang::Fa),
            "en" | "eng" => Some(Lang::En),
            "ru" | "rus" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// Whether the language is written right to left.
    pub const fn is_rtl(self) -> bool {
        matches!(self, Lang::Fa)
    }

    /// The value for an HTML `dir` attribute: `"rtl"` or `"ltr"`.
    pub const fn html_dir(self) -> &'static str {
        if self.is_rtl() { "rtl" } else { "ltr" }
    }

    /// Picks the supported language a browser prefers most from an `Accept-Language` header.
    ///
    /// Entries are ranked by their `q` value (1 when absent); among equal values the earlier
    /// entry wins. Entries with `q=0`, a malformed `q`, the wildcard `*` or an unsupported
    /// language are skipped. `None` when nothing supported is acceptable.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, f32)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let mut quality = 1.0_f32;
            let mut valid = true;
            for param in parts {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    match value.trim().parse::<f32>() {
                        Ok(q) if (0.0..=1.0).contains(&q) => quality = q,
                        _ => valid = false,
                    }
                }
            }
            if !valid || quality <= 0.0 {
                continue;
            }
            if best.is_none_or(|(_, q)| quality > q) {
                best = Some((lang, quality));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// The language identifier the fluent bundles are keyed by.
    pub(crate) fn langid(self) -> &'static LanguageIdentifier {
        match self {
            Lang::Fa => &FA_ID,
            Lang::En => &EN_ID,
            Lang::Ru => &RU_ID,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
