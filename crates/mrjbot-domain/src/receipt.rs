//! Reading a card-to-card bank receipt from OCR text.
//!
//! Customers who pay by card-to-card transfer send a photo or screenshot of their bank app's
//! receipt; OCR turns it into text, and [`extract`] turns that text into [`ReceiptFields`]
//! that the money path compares with the order (amount, destination card, date) and checks
//! for reuse (tracking and reference numbers).
//!
//! The text is whatever the OCR engine made of a receipt in Persian and/or English: digits in
//! Persian (U+06F0-U+06F9), Arabic-Indic (U+0660-U+0669) or ASCII form, separators `,` `٬`
//! `.` or spaces, right-to-left lines that may come out with label and value swapped, labels
//! split or slightly misread, `O`/`o` for 0 and `l`/`I` for 1 inside numbers. Extraction is
//! label-driven first (a value on the label's line, else on a neighbouring line without a
//! label of its own) and falls back on the shape of a value (a Luhn-valid 16-digit card, a
//! number next to a currency word, a date pattern).
//!
//! Guarantees: [`extract`] never panics and never invents a value: a field it cannot read
//! with confidence is `None` (or [`AmountUnit::Unknown`]). A result is a claim made by a
//! picture the customer controls, so it is evidence for an admin, never proof of payment.

use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// The unit an amount was printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountUnit {
    /// Rial (`ریال`, `IRR`, `Rials`).
    Rial,
    /// Toman, ten rials (`تومان`, `Toman`).
    Toman,
    /// No unit could be read.
    #[default]
    Unknown,
}

/// What could be read from a receipt; every field is optional because OCR is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReceiptFields {
    /// The transferred amount as printed, in whole units of [`ReceiptFields::unit`].
    pub amount: Option<i64>,
    /// The unit the amount was printed in.
    pub unit: AmountUnit,
    /// Tracking number (`شماره پیگیری`, "Tracking/Trace no"), digits, typically 6.
    pub tracking_no: Option<String>,
    /// Reference number (`شماره مرجع`, RRN), digits, typically 12.
    pub reference_no: Option<String>,
    /// Last 4 digits of the destination card.
    pub dest_card_last4: Option<String>,
    /// Last 4 digits of the (usually masked) source card.
    pub src_card_last4: Option<String>,
    /// `YYYY/MM/DD`, plus ` HH:MM` when a time was printed; Jalali or Gregorian as printed.
    pub date: Option<String>,
    /// `Some(true)` for a successful transfer, `Some(false)` for a failed one.
    pub success: Option<bool>,
}

impl ReceiptFields {
    /// The amount in rials: toman times 10, rial as is; `None` when the unit is unknown
    /// (guessing would make a 10x error) or the amount overflows.
    pub fn amount_rial(&self) -> Option<i64> {
        match self.unit {
            AmountUnit::Rial => self.amount,
            AmountUnit::Toman => self.amount?.checked_mul(10),
            AmountUnit::Unknown => None,
        }
    }
}

/// Replaces Persian (`۰`-`۹`) and Arabic-Indic (`٠`-`٩`) digits with ASCII `0`-`9`; everything
/// else is kept. (The same rule as `mrjbot_i18n::normalize_digits`; the domain may not depend
/// on i18n.)
pub fn normalize_digits(s: &str) -> String {
    s.chars().map(|c| ascii_digit(c).unwrap_or(c)).collect()
}

fn ascii_digit(c: char) -> Option<char> {
    let code = u32::from(c);
    let d = match code {
        0x06F0..=0x06F9 => code - 0x06F0,
        0x0660..=0x0669 => code - 0x0660,
        _ => return None,
    };
    char::from_digit(d, 10)
}

/// Reads the fields of a receipt from OCR text; see the module docs for what is tolerated.
pub fn extract(text: &str) -> ReceiptFields {
    let lines: Vec<Line> = text
        .lines()
        .map(Line::new)
        .filter(|l| !l.text.trim().is_empty())
        .collect();
    let mut used = Used::default();
    let mut out = ReceiptFields::default();

    if let Some(card) = labelled(&lines, Field::DestCard, &mut used, pick_card) {
        out.dest_card_last4 = Some(card);
    }
    if let Some(card) = labelled(&lines, Field::SrcCard, &mut used, pick_card)
        .or_else(|| labelled(&lines, Field::SrcCard, &mut used, pick_masked_as_digits))
    {
        out.src_card_last4 = Some(card);
    }
    if let Some(date) = labelled(&lines, Field::Date, &mut used, pick_date) {
        out.date = Some(date);
    }
    if let Some(r) = labelled(&lines, Field::Reference, &mut used, pick_reference) {
        out.reference_no = Some(r);
    }
    if let Some(t) = labelled(&lines, Field::Tracking, &mut used, pick_tracking) {
        out.tracking_no = Some(t);
    }
    if let Some((amount, unit)) = labelled(&lines, Field::Amount, &mut used, pick_amount) {
        out.amount = Some(amount);
        out.unit = unit;
    }

    fallback_cards(&lines, &mut used, &mut out);
    if out.date.is_none() {
        out.date = fallback_date(&lines, &mut used);
    }
    if out.amount.is_none()
        && let Some((amount, unit)) = fallback_amount(&lines, &mut used)
    {
        out.amount = Some(amount);
        out.unit = unit;
    }
    if out.date.as_deref().is_some_and(|d| d.len() == 10)
        && let Some(time) = labelled(&lines, Field::Time, &mut used, pick_time)
        && let Some(date) = out.date.as_mut()
    {
        date.push(' ');
        date.push_str(&time);
    }
    if out.tracking_no.is_none() {
        out.tracking_no = unlabelled_run(&lines, &used, 6);
    }
    if out.reference_no.is_none() {
        out.reference_no = unlabelled_run(&lines, &used, 12);
    }
    if out.amount.is_some() && out.unit == AmountUnit::Unknown {
        out.unit = only_unit(&lines);
    }
    out.success = success(&lines);
    out
}

/// A field that has labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Amount,
    Tracking,
    Reference,
    DestCard,
    SrcCard,
    Date,
    Time,
}

/// A label: its words (matched with spaces and punctuation removed, so a label split or
/// joined by OCR still matches) and whether it must stand at the start or end of a line.
struct Label {
    field: Field,
    words: &'static str,
    anchored: bool,
}

const fn label(field: Field, words: &'static str) -> Label {
    Label {
        field,
        words,
        anchored: false,
    }
}

/// Short or common phrases that also occur inside titles ("Card to card transfer") only
/// count at a line's edge.
const fn edge(field: Field, words: &'static str) -> Label {
    Label {
        field,
        words,
        anchored: true,
    }
}

static LABELS: &[Label] = &[
    label(Field::Amount, "مبلغ"),
    label(Field::Amount, "مبلغ تراکنش"),
    label(Field::Amount, "مبلغ انتقال"),
    label(Field::Amount, "amount"),
    label(Field::Tracking, "پیگیری"),
    label(Field::Tracking, "شماره پیگیری"),
    label(Field::Tracking, "رهگیری"),
    label(Field::Tracking, "tracking"),
    label(Field::Tracking, "trace"),
    edge(Field::Tracking, "track no"),
    label(Field::Reference, "مرجع"),
    label(Field::Reference, "شماره مرجع"),
    label(Field::Reference, "ارجاع"),
    label(Field::Reference, "reference"),
    label(Field::Reference, "rrn"),
    label(Field::Reference, "retrieval"),
    edge(Field::Reference, "ref"),
    label(Field::DestCard, "مقصد"),
    label(Field::DestCard, "کارت مقصد"),
    label(Field::DestCard, "کارت گیرنده"),
    label(Field::DestCard, "گیرنده"),
    label(Field::DestCard, "destination"),
    label(Field::DestCard, "beneficiary"),
    label(Field::DestCard, "recipient"),
    edge(Field::DestCard, "to card"),
    label(Field::SrcCard, "مبدا"),
    label(Field::SrcCard, "کارت مبدا"),
    label(Field::SrcCard, "پرداخت کننده"),
    label(Field::SrcCard, "source"),
    label(Field::SrcCard, "sender"),
    label(Field::SrcCard, "origin"),
    edge(Field::SrcCard, "from card"),
    edge(Field::SrcCard, "از کارت"),
    label(Field::Date, "تاریخ"),
    label(Field::Date, "date"),
    label(Field::Time, "ساعت"),
    label(Field::Time, "زمان"),
    label(Field::Time, "time"),
];

const RIAL_WORDS: &[&str] = &["ریال", "rials", "rial", "irr", "rls"];
const TOMAN_WORDS: &[&str] = &["تومان", "تومن", "tomans", "toman", "tmn"];
const FAILED_WORDS: &[&str] = &[
    "ناموفق",
    "unsuccessful",
    "failed",
    "failure",
    "declined",
    "rejected",
];
const SUCCESS_WORDS: &[&str] = &["موفق", "successful", "success", "completed", "انجامشد"];

/// One OCR line, cleaned, with its labels and the values found in it.
struct Line {
    /// Digits in ASCII, OCR look-alikes fixed, ASCII lowercased, Persian letters unified.
    text: String,
    /// Only the letters of `text`, for label matching.
    letters: Vec<char>,
    labels: Vec<Field>,
    dates: Vec<Span<(u32, u32, u32)>>,
    times: Vec<Span<(u32, u32)>>,
    cards: Vec<Span<Card>>,
    numbers: Vec<Span<Number>>,
    /// Amounts grouped with spaces (`12 500 000`), only trusted next to an amount label.
    spaced: Vec<Span<Number>>,
}

#[derive(Debug, Clone, Copy)]
struct Span<T> {
    start: usize,
    end: usize,
    value: T,
}

#[derive(Debug, Clone, Copy)]
struct Card {
    /// All 16 digits, when none is masked.
    full: Option<[u8; 16]>,
    last4: [u8; 4],
}

#[derive(Debug, Clone)]
struct Number {
    value: Option<i64>,
    /// The digits when the number was written without separators.
    run: Option<String>,
}

/// Values already taken by a field, as (line, start) pairs, so no value serves two fields.
#[derive(Default)]
struct Used(Vec<(usize, usize)>);

impl Used {
    fn has(&self, line: usize, start: usize) -> bool {
        self.0.contains(&(line, start))
    }
}

macro_rules! regex {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new($pattern).ok());
    };
}

regex!(
    DATE_YMD,
    r"(\d{4})\s?[/\-.]\s?(\d{1,2})\s?[/\-.]\s?(\d{1,2})"
);
regex!(
    DATE_DMY,
    r"(\d{1,2})\s?[/\-.]\s?(\d{1,2})\s?[/\-.]\s?(\d{4})"
);
regex!(TIME, r"(\d{1,2})\s?:\s?(\d{2})(?:\s?:\s?\d{2})?");
regex!(
    GLUED_DATE_TIME,
    r"(\d{4}[/\-.]\d{1,2}[/\-.]\d{2})(\d{2}\s?:\s?\d{2})"
);
regex!(CARD, r"[\d*x]{4}(?:[\s\-]?[\d*x]{4}){3}");
regex!(MASKED_TAIL, r"[*x]{2,}[\s\-]?(\d{4})");
regex!(
    NUMBER,
    r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d{1,3}(?:\.\d{3})+|\d+"
);
regex!(SPACED, r"\d{1,3}(?: \d{3})+");

#[cfg(test)]
fn all_regexes() -> [&'static LazyLock<Option<Regex>>; 8] {
    [
        &DATE_YMD,
        &DATE_DMY,
        &TIME,
        &GLUED_DATE_TIME,
        &CARD,
        &MASKED_TAIL,
        &NUMBER,
        &SPACED,
    ]
}

/// Matches of `re` in `text` whose edges do not touch another digit.
fn matches<'t>(
    re: &LazyLock<Option<Regex>>,
    text: &'t str,
) -> impl Iterator<Item = regex_lite::Captures<'t>> {
    let re = re.as_ref();
    re.into_iter()
        .flat_map(move |re| re.captures_iter(text))
        .filter(move |c| {
            c.get(0).is_some_and(|m| {
                let before = text[..m.start()].chars().next_back();
                let after = text[m.end()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_digit())
                    && !after.is_some_and(|c| c.is_ascii_digit())
            })
        })
}

fn cap_u32(c: &regex_lite::Captures<'_>, i: usize) -> Option<u32> {
    c.get(i)?.as_str().parse().ok()
}

impl Line {
    fn new(raw: &str) -> Line {
        let text = clean(raw);
        let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
        let labels = find_labels(&letters);
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let overlaps = |taken: &[(usize, usize)], s: usize, e: usize| {
            taken.iter().any(|&(a, b)| s < b && a < e)
        };

        let mut dates = Vec::new();
        for (re, ymd) in [(&DATE_YMD, true), (&DATE_DMY, false)] {
            for c in matches(re, &text) {
                let Some(m) = c.get(0) else { continue };
                if overlaps(&taken, m.start(), m.end()) {
                    continue;
                }
                let (Some(a), Some(b), Some(d)) = (cap_u32(&c, 1), cap_u32(&c, 2), cap_u32(&c, 3))
                else {
                    continue;
                };
                let (y, mo, day) = if ymd { (a, b, d) } else { (d, b, a) };
                let year_ok = (1300..=1499).contains(&y) || (1900..=2199).contains(&y);
                if year_ok && (1..=12).contains(&mo) && (1..=31).contains(&day) {
                    taken.push((m.start(), m.end()));
                    dates.push(Span {
                        start: m.start(),
                        end: m.end(),
                        value: (y, mo, day),
                    });
                }
            }
        }

        let mut times = Vec::new();
        for c in matches(&TIME, &text) {
            let Some(m) = c.get(0) else { continue };
            let (Some(h), Some(mi)) = (cap_u32(&c, 1), cap_u32(&c, 2)) else {
                continue;
            };
            if h < 24 && mi < 60 && !overlaps(&taken, m.start(), m.end()) {
                taken.push((m.start(), m.end()));
                times.push(Span {
                    start: m.start(),
                    end: m.end(),
                    value: (h, mi),
                });
            }
        }

        let mut cards = Vec::new();
        for c in matches(&CARD, &text) {
            let Some(m) = c.get(0) else { continue };
            if let Some(card) = parse_card(m.as_str())
                && !overlaps(&taken, m.start(), m.end())
            {
                taken.push((m.start(), m.end()));
                cards.push(Span {
                    start: m.start(),
                    end: m.end(),
                    value: card,
                });
            }
        }
        for c in matches(&MASKED_TAIL, &text) {
            let (Some(m), Some(tail)) = (c.get(0), c.get(1)) else {
                continue;
            };
            let mut last4 = [0u8; 4];
            for (slot, b) in last4.iter_mut().zip(tail.as_str().bytes()) {
                *slot = b - b'0';
            }
            if !overlaps(&taken, m.start(), m.end()) {
                taken.push((m.start(), m.end()));
                cards.push(Span {
                    start: m.start(),
                    end: m.end(),
                    value: Card { full: None, last4 },
                });
            }
        }

        let mut numbers = Vec::new();
        for c in matches(&NUMBER, &text) {
            let Some(m) = c.get(0) else { continue };
            if overlaps(&taken, m.start(), m.end()) {
                continue;
            }
            let s = m.as_str();
            let whole = s.split('.').next().unwrap_or(s);
            let whole = if s.contains(',') { whole } else { s };
            let digits: String = whole.chars().filter(char::is_ascii_digit).collect();
            numbers.push(Span {
                start: m.start(),
                end: m.end(),
                value: Number {
                    value: digits.parse().ok(),
                    run: s.bytes().all(|b| b.is_ascii_digit()).then(|| s.to_owned()),
                },
            });
        }
        let spaced = matches(&SPACED, &text)
            .filter_map(|c| {
                let m = c.get(0)?;
                if overlaps(&taken, m.start(), m.end()) {
                    return None;
                }
                let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
                Some(Span {
                    start: m.start(),
                    end: m.end(),
                    value: Number {
                        value: digits.parse().ok(),
                        run: None,
                    },
                })
            })
            .collect();

        Line {
            text,
            letters,
            labels,
            dates,
            times,
            cards,
            numbers,
            spaced,
        }
    }
}

/// Digits to ASCII, Arabic letter forms to Persian ones, marks and bidi controls removed,
/// mask symbols to `*`, OCR look-alikes inside numbers to digits, ASCII lowercased.
fn clean(raw: &str) -> String {
    let mut chars: Vec<char> = Vec::with_capacity(raw.len());
    for c in raw.chars() {
        let c = match c {
            '\u{064A}' | '\u{0649}' => 'ی',
            '\u{0643}' => 'ک',
            '\u{0623}' | '\u{0625}' | '\u{0622}' => 'ا',
            '\u{0629}' => 'ه',
            '\u{066C}' | '\u{060C}' => ',',
            '\u{066B}' => '.',
            '\u{066D}' | '\u{2217}' | '\u{2022}' | '\u{25CF}' | '\u{00D7}' | '#' => '*',
            '\u{0640}'
            | '\u{064B}'..='\u{0652}'
            | '\u{0670}'
            | '\u{200C}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => continue,
            '\t' | '\u{00A0}' | '\u{202F}' | '\u{2009}' => ' ',
            c => ascii_digit(c).unwrap_or(c),
        };
        chars.push(c);
    }
    fix_lookalikes(&mut chars);
    let text: String = chars.iter().map(char::to_ascii_lowercase).collect();
    // OCR often glues the time to the date (`1405/09/0105:56`); part them again, or the
    // digit boundaries of every number pattern reject both.
    match GLUED_DATE_TIME.as_ref() {
        Some(re) => re.replace_all(&text, "$1 $2").into_owned(),
        None => text,
    }
}

/// `O`/`o` -> 0 and `l`/`I`/`|` -> 1 inside runs (digits, look-alikes and group separators)
/// that hold a real digit, except at a run's edge that touches a word (`No`, `ID`); a
/// Persian alef between two digits is a misread ۱.
fn fix_lookalikes(chars: &mut [char]) {
    let latin = |c: char| match c {
        'O' | 'o' => Some('0'),
        'l' | 'I' | '|' => Some('1'),
        _ => None,
    };
    let in_run = |c: char| c.is_ascii_digit() || c == ',' || c == '.' || latin(c).is_some();
    let mut i = 0;
    while i < chars.len() {
        if !in_run(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && in_run(chars[i]) {
            i += 1;
        }
        let end = i;
        let Some(first) = chars[start..end].iter().position(char::is_ascii_digit) else {
            continue;
        };
        let last = chars[start..end]
            .iter()
            .rposition(char::is_ascii_digit)
            .unwrap_or(first);
        let word_before = start > 0 && chars[start - 1].is_alphabetic();
        let word_after = end < chars.len() && chars[end].is_alphabetic();
        let from = if word_before { start + first } else { start };
        let to = if word_after { start + last + 1 } else { end };
        for c in &mut chars[from..to] {
            if let Some(d) = latin(*c) {
                *c = d;
            }
        }
    }
    for k in 1..chars.len().saturating_sub(1) {
        if chars[k] == 'ا' && chars[k - 1].is_ascii_digit() && chars[k + 1].is_ascii_digit() {
            chars[k] = '1';
        }
    }
}

fn squash(words: &str) -> Vec<char> {
    words.chars().filter(|c| c.is_alphabetic()).collect()
}

fn find_labels(letters: &[char]) -> Vec<Field> {
    let mut found = Vec::new();
    for l in LABELS {
        if found.contains(&l.field) {
            continue;
        }
        let pattern = squash(l.words);
        let hit = if l.anchored {
            letters.starts_with(&pattern) || letters.ends_with(&pattern)
        } else {
            // One misread letter in five, two in a label of ten letters or more.
            let k = usize::from(pattern.len() >= 5) + usize::from(pattern.len() >= 10);
            fuzzy_contains(letters, &pattern, k)
        };
        if hit {
            found.push(l.field);
        }
    }
    found
}

/// Whether `pattern` occurs in `text` with at most `k` edits (Sellers' algorithm).
fn fuzzy_contains(text: &[char], pattern: &[char], k: usize) -> bool {
    if pattern.is_empty() {
        return true;
    }
    if k == 0 {
        return text.windows(pattern.len()).any(|w| w == pattern);
    }
    let m = pattern.len();
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0; m + 1];
    for &t in text {
        cur[0] = 0;
        for j in 1..=m {
            let cost = usize::from(pattern[j - 1] != t);
            cur[j] = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        if cur[m] <= k {
            return true;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m] <= k
}

/// 16 card characters (digits or masks, optionally grouped): a card when at least the last
/// four digits are visible. Reversed groups (an RTL line read backwards) are put right by
/// the Luhn check for full numbers and by where the mask sits for masked ones.
fn parse_card(s: &str) -> Option<Card> {
    let groups: Vec<&str> = s.split([' ', '-']).filter(|g| !g.is_empty()).collect();
    let chars: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_digit() || *b == b'*' || *b == b'x')
        .collect();
    if chars.len() != 16 {
        return None;
    }
    let masked = chars.iter().any(|b| !b.is_ascii_digit());
    if !masked {
        let mut digits = [0u8; 16];
        for (d, b) in digits.iter_mut().zip(&chars) {
            *d = b - b'0';
        }
        // Reordering groups of four keeps the Luhn sum (each digit keeps its parity), so
        // the issuer prefix decides which way a right-to-left line was read.
        if groups.len() > 1 && issuer_rank(&digits) < 2 {
            let rev: Vec<u8> = groups
                .iter()
                .rev()
                .flat_map(|g| g.bytes().map(|b| b - b'0'))
                .collect();
            if let Ok(reversed) = <[u8; 16]>::try_from(rev.as_slice())
                && issuer_rank(&reversed) > issuer_rank(&digits)
            {
                digits = reversed;
            }
        }
        let mut last4 = [0u8; 4];
        last4.copy_from_slice(&digits[12..]);
        return Some(Card {
            full: Some(digits),
            last4,
        });
    }
    // A masked card shows its first six and last four digits: `6037-99**-****-1234`. Read
    // backwards it is `1234-****-**99-6037` (or `1234-****-99**-6037`): digits in the third
    // group, none in the second.
    let is_digit_group = |g: &str| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit());
    let has_digit = |g: &str| g.bytes().any(|b| b.is_ascii_digit());
    let tail: &[u8] = if groups.len() == 4
        && is_digit_group(groups[0])
        && !has_digit(groups[1])
        && has_digit(groups[2])
        && is_digit_group(groups[3])
    {
        groups[0].as_bytes()
    } else {
        &chars[12..]
    };
    if !tail.iter().all(u8::is_ascii_digit) || tail.len() != 4 {
        return None;
    }
    let mut last4 = [0u8; 4];
    for (d, b) in last4.iter_mut().zip(tail) {
        *d = b - b'0';
    }
    Some(Card { full: None, last4 })
}

/// First six digits (BIN) of Iranian bank cards (Shetab), to tell a card read backwards.
const IRANIAN_BINS: &[&str] = &[
    "603799", "589210", "627648", "627961", "603770", "628023", "627760", "502908", "627412",
    "622106", "502229", "627488", "621986", "639346", "639607", "636214", "502806", "502938",
    "603769", "610433", "627353", "589463", "627381", "505785", "636795", "606373", "505416",
    "639599", "504172", "507677", "585983",
];

/// 2 for a known Iranian bank prefix, 1 for a card-like first digit (5 or 6, as every
/// Shetab card), 0 otherwise.
fn issuer_rank(digits: &[u8; 16]) -> u8 {
    let prefix: String = digits[..6].iter().map(|d| char::from(b'0' + d)).collect();
    if IRANIAN_BINS.contains(&prefix.as_str()) {
        2
    } else {
        u8::from(matches!(digits[0], 5 | 6))
    }
}

fn luhn(digits: &[u8; 16]) -> bool {
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    crate::payment::luhn_valid(&text)
}

fn last4_string(card: &Card) -> String {
    card.last4.iter().map(|d| char::from(b'0' + d)).collect()
}

/// What a picker returns: the value and the start of the span it used on the line.
type Pick<T> = Option<(T, usize)>;

fn pick_card(line: &Line, li: usize, used: &Used) -> Pick<String> {
    let free = line.cards.iter().filter(|c| !used.has(li, c.start));
    // A Luhn-valid full number beats a masked or unchecked one.
    let best = free.max_by_key(|c| {
        (
            c.value.full.as_ref().is_some_and(luhn),
            c.value.full.is_some(),
        )
    })?;
    Some((last4_string(&best.value), best.start))
}

/// A source card whose mask OCR turned into digits (`6219868202285137`, 16 to 20 digits
/// with no group separators): its last four digits are still the card's.
fn pick_masked_as_digits(line: &Line, li: usize, used: &Used) -> Pick<String> {
    line.numbers
        .iter()
        .filter(|n| !used.has(li, n.start))
        .find_map(|n| {
            let run = n.value.run.as_ref()?;
            let tail = run.get(run.len().checked_sub(4)?..)?;
            (16..=20)
                .contains(&run.len())
                .then(|| (tail.to_owned(), n.start))
        })
}

fn pick_date(line: &Line, li: usize, used: &Used) -> Pick<String> {
    let d = line.dates.iter().find(|d| !used.has(li, d.start))?;
    let (y, m, day) = d.value;
    let mut s = format!("{y:04}/{m:02}/{day:02}");
    if let Some(t) = line.times.iter().find(|t| !used.has(li, t.start)) {
        s.push_str(&format!(" {:02}:{:02}", t.value.0, t.value.1));
    }
    Some((s, d.start))
}

fn pick_time(line: &Line, li: usize, used: &Used) -> Pick<String> {
    let t = line.times.iter().find(|t| !used.has(li, t.start))?;
    Some((format!("{:02}:{:02}", t.value.0, t.value.1), t.start))
}

/// A digit run of 4 to 20 digits, the one closest to `typical` digits. Runs that OCR split
/// with one stray mark (`1377/38`) count joined, after unbroken runs of the same fit.
fn pick_run(line: &Line, li: usize, used: &Used, typical: usize) -> Pick<String> {
    let free: Vec<&Span<Number>> = line
        .numbers
        .iter()
        .filter(|n| !used.has(li, n.start))
        .collect();
    let mut candidates: Vec<(String, usize, bool)> = free
        .iter()
        .filter_map(|n| Some((n.value.run.clone()?, n.start, false)))
        .collect();
    for pair in free.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let between = line.text.get(a.end..b.start).unwrap_or(" ");
        if let (Some(x), Some(y)) = (&a.value.run, &b.value.run)
            && between.chars().count() == 1
            && between.chars().all(|c| "/.,'\"`".contains(c))
        {
            candidates.push((format!("{x}{y}"), a.start, true));
        }
    }
    candidates
        .into_iter()
        .filter(|(r, ..)| (4..=20).contains(&r.len()))
        .min_by_key(|(r, _, joined)| (r.len().abs_diff(typical), *joined))
        .map(|(r, start, _)| (r, start))
}

fn pick_tracking(line: &Line, li: usize, used: &Used) -> Pick<String> {
    pick_run(line, li, used, 6)
}

fn pick_reference(line: &Line, li: usize, used: &Used) -> Pick<String> {
    pick_run(line, li, used, 12)
}

/// The largest number on the line, with the unit word nearest to it.
fn pick_amount(line: &Line, li: usize, used: &Used) -> Pick<(i64, AmountUnit)> {
    let best = line
        .numbers
        .iter()
        .chain(&line.spaced)
        .filter(|n| !used.has(li, n.start))
        .filter_map(|n| Some((n.value.value?, n)))
        .filter(|(v, _)| *v > 0)
        .max_by_key(|(v, _)| *v)?;
    let (value, span) = best;
    Some((
        (value, nearest_unit(line, span.start, span.end)),
        span.start,
    ))
}

fn unit_positions(text: &str) -> Vec<(usize, AmountUnit)> {
    let mut found = Vec::new();
    for (words, unit) in [
        (RIAL_WORDS, AmountUnit::Rial),
        (TOMAN_WORDS, AmountUnit::Toman),
    ] {
        for w in words {
            found.extend(text.match_indices(w).map(|(i, _)| (i, unit)));
        }
    }
    found
}

fn nearest_unit(line: &Line, start: usize, end: usize) -> AmountUnit {
    unit_positions(&line.text)
        .into_iter()
        .min_by_key(|&(pos, _)| {
            if pos >= end {
                pos - end
            } else {
                start.abs_diff(pos)
            }
        })
        .map_or(AmountUnit::Unknown, |(_, u)| u)
}

/// The value for `field`: first on a line carrying its label, then on the line after or
/// before such a line when that line has no label of its own (label above or below value).
fn labelled<T>(
    lines: &[Line],
    field: Field,
    used: &mut Used,
    pick: impl Fn(&Line, usize, &Used) -> Pick<T>,
) -> Option<T> {
    let with_label: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].labels.contains(&field))
        .collect();
    let mut tries: Vec<usize> = with_label.clone();
    for &i in &with_label {
        if let Some(next) = lines.get(i + 1)
            && next.labels.is_empty()
        {
            tries.push(i + 1);
        }
        if i > 0 && lines[i - 1].labels.is_empty() {
            tries.push(i - 1);
        }
    }
    for li in tries {
        if let Some((value, start)) = pick(&lines[li], li, used) {
            used.0.push((li, start));
            return Some(value);
        }
    }
    None
}

fn fallback_cards(lines: &[Line], used: &mut Used, out: &mut ReceiptFields) {
    if out.dest_card_last4.is_none() {
        let found = lines.iter().enumerate().find_map(|(li, l)| {
            l.cards
                .iter()
                .find(|c| c.value.full.as_ref().is_some_and(luhn) && !used.has(li, c.start))
                .map(|c| (li, c))
        });
        if let Some((li, c)) = found {
            used.0.push((li, c.start));
            out.dest_card_last4 = Some(last4_string(&c.value));
        }
    }
    if out.src_card_last4.is_none() {
        let found = lines.iter().enumerate().find_map(|(li, l)| {
            l.cards
                .iter()
                .find(|c| c.value.full.is_none() && !used.has(li, c.start))
                .map(|c| (li, c))
        });
        if let Some((li, c)) = found {
            used.0.push((li, c.start));
            out.src_card_last4 = Some(last4_string(&c.value));
        }
    }
}

fn fallback_date(lines: &[Line], used: &mut Used) -> Option<String> {
    lines.iter().enumerate().find_map(|(li, l)| {
        let (date, start) = pick_date(l, li, used)?;
        used.0.push((li, start));
        Some(date)
    })
}

/// The largest number of at least four digits on a line that names a currency.
fn fallback_amount(lines: &[Line], used: &mut Used) -> Option<(i64, AmountUnit)> {
    let mut best: Option<(i64, AmountUnit, usize, usize)> = None;
    for (li, line) in lines.iter().enumerate() {
        if unit_positions(&line.text).is_empty() {
            continue;
        }
        for n in &line.numbers {
            let Some(v) = n.value.value else { continue };
            if v < 1000 || used.has(li, n.start) {
                continue;
            }
            if best.is_none_or(|(b, ..)| v > b) {
                best = Some((v, nearest_unit(line, n.start, n.end), li, n.start));
            }
        }
    }
    let (v, unit, li, start) = best?;
    used.0.push((li, start));
    Some((v, unit))
}

/// The only run of exactly `len` digits on lines without any label, if there is exactly one.
fn unlabelled_run(lines: &[Line], used: &Used, len: usize) -> Option<String> {
    let mut found = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.labels.is_empty())
        .flat_map(|(li, l)| {
            l.numbers
                .iter()
                .filter(move |n| !used.has(li, n.start))
                .filter_map(|n| n.value.run.clone())
        })
        .filter(|r| r.len() == len);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// The unit named anywhere in the text when only one unit is named.
fn only_unit(lines: &[Line]) -> AmountUnit {
    let mut units = lines
        .iter()
        .flat_map(|l| unit_positions(&l.text))
        .map(|(_, u)| u);
    let Some(first) = units.next() else {
        return AmountUnit::Unknown;
    };
    if units.all(|u| u == first) {
        first
    } else {
        AmountUnit::Unknown
    }
}

/// Failed when any line says so (`ناموفق` contains `موفق`, so failure is checked first).
fn success(lines: &[Line]) -> Option<bool> {
    let said = |words: &[&str]| {
        lines.iter().any(|l| {
            let letters: String = l.letters.iter().collect();
            words.iter().any(|w| letters.contains(&squash_str(w)))
        })
    };
    if said(FAILED_WORDS) {
        Some(false)
    } else if said(SUCCESS_WORDS) {
        Some(true)
    } else {
        None
    }
}

fn squash_str(words: &str) -> String {
    squash(words).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_pattern_compiles() {
        for re in all_regexes() {
            assert!(re.is_some());
        }
    }

    #[test]
    fn a_time_glued_to_the_date_is_parted() {
        let f = extract("۱۴۰۵/۰۹/۰۱۰۵:۵۶ \u{200f}تاریخ و زمان:\u{200e}\nمبلغ: ۱۵۰٬۰۰۰ تومان");
        assert_eq!(f.date.as_deref(), Some("1405/09/01 05:56"));
        assert_eq!(f.amount, Some(150_000));
    }

    #[test]
    fn normalize_digits_reads_persian_and_arabic_indic() {
        assert_eq!(normalize_digits("۱۲٬۳۴۵ ٦٧٨ 90"), "12٬345 678 90");
    }

    /// tesseract on a two-column Persian receipt: marker junk (`sac`), the destination card's
    /// groups in right-to-left order with two of them run together, a label after its value.
    #[test]
    fn persian_columns_with_reversed_card_groups() {
        let text = "انتقال وجه کارت به کارت\n\
                    تراکنش موفق\n\
                    مبلغ انتقال ۲۹۹,۴۱۷ تومان\n\
                    کد پیگیری ۲۶۹۲۹۱\n\
                    شماره مرجع ۳۱۱۳۳۳۵۱۳۵۶۴\n\
                    شماره کارت مقصد ۷۳۲۱۸۵۹۷ ۸۶۷۵ ۶۲۱۹\n\
                    sac\u{200f} به نام حسین محمدی\n\
                    از کارت ۶۱-۳۳۳\n\
                    ۱۴۰۳/۰۳/۱۴ ۰۲:۳۲ \u{200f}تاریخ\u{200e} sac";
        let f = extract(text);
        assert_eq!(
            f,
            ReceiptFields {
                amount: Some(299_417),
                unit: AmountUnit::Toman,
                tracking_no: Some("269291".into()),
                reference_no: Some("311333513564".into()),
                dest_card_last4: Some("8597".into()),
                src_card_last4: None,
                date: Some("1403/03/14 02:32".into()),
                success: Some(true),
            }
        );
        assert_eq!(f.amount_rial(), Some(2_994_170));
    }

    /// Labels above values; the amount label misread (so the currency word finds the
    /// amount), a stray `/` inside the tracking number.
    #[test]
    fn persian_stacked_labels_above_values() {
        let text = "انتقال وجه کارت به کارت\n\
                    تراکنش موفق\n\
                    glo\u{200f} تراکنش\n\
                    ۲٬۹۹۰٬۰۱۰ ریال\n\
                    شماره پیگیری\n\
                    ۱۳۷۷/۳۸\n\
                    شماره ارجاع\n\
                    ۲۰۰۳۷۳۹۶۱۵۹۸\n\
                    کارت گیرنده\n\
                    ۶۱۰۴-۳۳۷۱-۶۳۰۲-۴۵۶۳\n\
                    صاحب کارت\n\
                    فاطمه موسوی\n\
                    کارت مبدا\n\
                    ۶۲۷۳-۵۳**-****-۶۹۸۹\n\
                    زمان تراکنش\n\
                    ۰۹:۳۱ - ۱۴۰۳/۰۷/۰۱";
        let f = extract(text);
        assert_eq!(f.amount_rial(), Some(2_990_010));
        assert_eq!(f.unit, AmountUnit::Rial);
        assert_eq!(f.tracking_no.as_deref(), Some("137738"));
        assert_eq!(f.reference_no.as_deref(), Some("200373961598"));
        assert_eq!(f.dest_card_last4.as_deref(), Some("4563"));
        assert_eq!(f.src_card_last4.as_deref(), Some("6989"));
        assert_eq!(f.date.as_deref(), Some("1403/07/01 09:31"));
        assert_eq!(f.success, Some(true));
    }

    /// A failed transfer, a label misread by one letter (`بیگیری`), lines whose value came
    /// out before the label, and a source-card mask OCR turned into digits.
    #[test]
    fn persian_inline_failed_transfer() {
        let text = "بانک باسارگاد\n\
                    sac\u{200f} تراکنش ناموفق\n\
                    مبلغ: ۹۹,۹۴۷ تومان\n\
                    ۲۵۰۰۴۵ \u{200f}شماره بیگیری:\u{200e} sac\n\
                    شماره مرجع: ۹۵۱۸۹۸۶۹۴۳۵۱\n\
                    ۶۲۷۳-۵۳۵۵-۶۷۱۶-۳۳۶۷ \u{200f}کارت مقصد:\u{200e} sac\n\
                    کارت مبدا: ۶۲۱۹۸۶۸۲۰۲۲۸۵۱۳۷\n\
                    تاریخ و زمان: ۱۲:۳۰ ۱۴۰۴/۰۷/۱۲";
        let f = extract(text);
        assert_eq!(
            f,
            ReceiptFields {
                amount: Some(99_947),
                unit: AmountUnit::Toman,
                tracking_no: Some("250045".into()),
                reference_no: Some("951898694351".into()),
                dest_card_last4: Some("3367".into()),
                src_card_last4: Some("5137".into()),
                date: Some("1404/07/12 12:30".into()),
                success: Some(false),
            }
        );
    }

    /// English receipt with OCR look-alikes inside numbers.
    #[test]
    fn english_inline_with_lookalikes() {
        let text = "Bank Mellat\n\
                    Card to card transfer\n\
                    Successful\n\
                    Amount: 12,5OO,000 Rials\n\
                    Tracking No: 4567l9\n\
                    Reference No: l23456789O12\n\
                    Destination card: 6104-3371-6302-4563\n\
                    Card holder: Ali Rezaei\n\
                    Source card: 6037-99**-****-1234\n\
                    Date: 2024/08/02 14:32";
        let f = extract(text);
        assert_eq!(
            f,
            ReceiptFields {
                amount: Some(12_500_000),
                unit: AmountUnit::Rial,
                tracking_no: Some("456719".into()),
                reference_no: Some("123456789012".into()),
                dest_card_last4: Some("4563".into()),
                src_card_last4: Some("1234".into()),
                date: Some("2024/08/02 14:32".into()),
                success: Some(true),
            }
        );
    }

    /// The second English layout: `IRR` before the amount, dashes in the date, short labels.
    #[test]
    fn english_columns_failed() {
        let text = "Saman Bank\nCard to card transfer\nFailed\n\
                    Transfer amount IRR 1,994,370\n\
                    Trace No. 812404\n\
                    RRN 104846769317\n\
                    To card 5892 1081 4517 0255\n\
                    Beneficiary Mohammad Hosseini\n\
                    From card 6037-70**-****-8328\n\
                    Date & time 2025-01-06 23:44";
        let f = extract(text);
        assert_eq!(f.amount_rial(), Some(1_994_370));
        assert_eq!(f.tracking_no.as_deref(), Some("812404"));
        assert_eq!(f.reference_no.as_deref(), Some("104846769317"));
        assert_eq!(f.dest_card_last4.as_deref(), Some("0255"));
        assert_eq!(f.src_card_last4.as_deref(), Some("8328"));
        assert_eq!(f.date.as_deref(), Some("2025/01/06 23:44"));
        assert_eq!(f.success, Some(false));
    }

    /// No label survived OCR: the values are found by their shape alone.
    #[test]
    fn values_without_labels_fall_back_on_shape() {
        // 6273538842996510 passes the Luhn check.
        let text = "۱۲٬۵۰۰٬۰۰۰ ریال\n۶۲۷۳۵۳۸۸۴۲۹۹۶۵۱۰\n۱۴۰۳/۰۵/۱۲\n۴۵۶۷۸۹\n۱۲۳۴۵۶۷۸۹۰۱۲";
        let f = extract(text);
        assert_eq!(f.amount_rial(), Some(12_500_000));
        assert_eq!(f.dest_card_last4.as_deref(), Some("6510"));
        assert_eq!(f.date.as_deref(), Some("1403/05/12"));
        assert_eq!(f.tracking_no.as_deref(), Some("456789"));
        assert_eq!(f.reference_no.as_deref(), Some("123456789012"));
        assert_eq!(f.success, None);
    }

    #[test]
    fn a_card_that_fails_luhn_is_not_taken_without_a_label() {
        let f = extract("6273538842996511");
        assert_eq!(f.dest_card_last4, None);
    }

    #[test]
    fn arabic_indic_digits_and_arabic_letter_forms() {
        let f = extract("المبلغ: ١٢٬٥٠٠٬٠٠٠ ريال");
        assert_eq!(f.amount, Some(12_500_000));
        assert_eq!(f.unit, AmountUnit::Rial);
    }

    #[test]
    fn the_unit_nearest_the_amount_wins() {
        let f = extract("مبلغ: ۱۲٬۵۰۰٬۰۰۰ ریال (۱٬۲۵۰٬۰۰۰ تومان)");
        assert_eq!((f.amount, f.unit), (Some(12_500_000), AmountUnit::Rial));
        let f = extract("Amount 1,250,000 Toman");
        assert_eq!(f.amount_rial(), Some(12_500_000));
    }

    #[test]
    fn without_a_unit_there_is_no_rial_amount() {
        let f = extract("Amount: 125,000");
        assert_eq!((f.amount, f.unit), (Some(125_000), AmountUnit::Unknown));
        assert_eq!(f.amount_rial(), None);
        let overflow = ReceiptFields {
            amount: Some(i64::MAX),
            unit: AmountUnit::Toman,
            ..ReceiptFields::default()
        };
        assert_eq!(overflow.amount_rial(), None);
    }

    #[test]
    fn dates_read_backwards_and_times_on_their_own_line() {
        let f = extract("تاریخ: ۱۲/۰۵/۱۴۰۳\nساعت: ۹:۰۵");
        assert_eq!(f.date.as_deref(), Some("1403/05/12 09:05"));
        let f = extract("Date: 31/13/2024");
        assert_eq!(f.date, None, "month 13 is not a date");
    }

    #[test]
    fn words_next_to_numbers_keep_their_letters() {
        // `No` must not become `N0`, and the `l` of `Total` stays a letter.
        let f = extract("Tracking No:123456\nTotal 9");
        assert_eq!(f.tracking_no.as_deref(), Some("123456"));
        let f = extract("Reference: IIIIII");
        assert_eq!(f.reference_no, None);
    }

    #[test]
    fn reversed_masked_card_keeps_its_last_four() {
        let f = extract("کارت مبدا: ۱۲۳۴-****-**۹۹-۶۰۳۷");
        assert_eq!(f.src_card_last4.as_deref(), Some("1234"));
        let f = extract("From card: ****1234");
        assert_eq!(f.src_card_last4.as_deref(), Some("1234"));
    }

    #[test]
    fn empty_and_garbage_text_give_nothing() {
        assert_eq!(extract(""), ReceiptFields::default());
        assert_eq!(extract("\u{200f}\n  \n***"), ReceiptFields::default());
    }

    fn receiptish() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "مبلغ",
            "ریال",
            "تومان",
            "شماره پیگیری",
            "مرجع",
            "کارت مقصد",
            "مبدا",
            "تاریخ",
            "Amount",
            "Rials",
            "RRN",
            "Trace",
            "To card",
            "Date",
            "۱",
            "۲",
            "۰",
            "٤",
            "9",
            "٬",
            ",",
            ".",
            "/",
            ":",
            "-",
            "*",
            "O",
            "l",
            "I",
            " ",
            "\n",
            "\u{200f}",
            "\u{2066}",
        ]);
        prop::collection::vec(pieces, 0..80).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn extract_never_panics(text in ".*") {
            let f = extract(&text);
            let _ = f.amount_rial();
        }

        #[test]
        fn extract_never_panics_on_receipt_like_text(text in receiptish()) {
            let f = extract(&text);
            if let Some(d) = &f.dest_card_last4 {
                prop_assert_eq!(d.len(), 4);
            }
            if let Some(t) = &f.tracking_no {
                prop_assert!(t.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
