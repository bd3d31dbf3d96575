//! Generated card-to-card bank receipts with known truth, for measuring receipt OCR,
//! field extraction and perceptual hashing without any real customer's receipt.
//!
//! [`sample_truths`] draws receipts (amount in rial or toman, 6-digit tracking and 12-digit
//! reference numbers, a Luhn-valid destination card with a real Iranian bank prefix, a
//! masked source card, a Jalali or Gregorian date) from a seed, so a run is reproducible.
//! [`render`] draws one as a bank-app screenshot in one of three layouts (label: value lines,
//! label and value at opposite edges, small label above a large value) and one look (clean,
//! rotated photo, low contrast, dark theme, JPEG-recompressed, small screenshot).
//!
//! Text is shaped by Pango through Debian's `pango-view` (Persian letters must join and run
//! right to left, or OCR cannot read the labels) with Noto fonts, one child process per
//! block of lines; composing, colours, rotation and compression are done here with the
//! `image` crate. `scripts/test-deps.sh` installs `pango-view` and the fonts;
//! [`require_receipt_tools`] skips a local run without them and fails under `CI=true`.

use anyhow::{Context, bail, ensure};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{GrayImage, ImageEncoder, Luma, Rgb, RgbImage};
use mrjbot_domain::receipt::AmountUnit;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::Command;

/// The language a receipt is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    /// Persian labels, Persian digits, `٬` group separators, Jalali date.
    Fa,
    /// English labels, ASCII digits, `,` group separators, Gregorian date.
    En,
}

/// What a generated receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTruth {
    /// The amount as printed, in `unit`.
    pub amount: i64,
    /// [`AmountUnit::Rial`] or [`AmountUnit::Toman`].
    pub unit: AmountUnit,
    /// 6 digits.
    pub tracking_no: String,
    /// 12 digits.
    pub reference_no: String,
    /// 16 digits, Luhn-valid.
    pub dest_card: String,
    /// `6037-99**-****-1234`.
    pub src_card_masked: String,
    /// `YYYY/MM/DD HH:MM` (Jalali for [`Lang::Fa`], Gregorian for [`Lang::En`]).
    pub date: String,
    /// The language of the labels.
    pub lang: Lang,
    /// Whether the receipt reports a successful transfer.
    pub success: bool,
    /// The destination card holder's name.
    pub holder: String,
    /// The bank app's name shown in the header.
    pub bank: String,
}

impl ReceiptTruth {
    /// The amount in rials.
    pub fn amount_rial(&self) -> i64 {
        match self.unit {
            AmountUnit::Toman => self.amount * 10,
            _ => self.amount,
        }
    }

    /// Last four digits of the destination card.
    pub fn dest_last4(&self) -> &str {
        &self.dest_card[12..]
    }

    /// Last four digits of the source card.
    pub fn src_last4(&self) -> &str {
        &self.src_card_masked[self.src_card_masked.len() - 4..]
    }
}

/// How the lines of a receipt are arranged, like three different bank apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    /// `label: value` on one line, aligned at the reading edge.
    Inline,
    /// Label at the reading edge, value at the opposite edge, rules between rows.
    Columns,
    /// A small grey label above a larger value; the amount large on top.
    Stacked,
}

/// How the picture was taken or degraded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Look {
    /// A sharp screenshot, dark text on white (PNG).
    Clean,
    /// A photo of the screen turned by this many degrees (JPEG).
    Rotated {
        /// Positive is counter-clockwise.
        degrees: f32,
    },
    /// Light grey text on white (PNG).
    LowContrast,
    /// Light text on a dark background (PNG).
    Dark,
    /// Re-compressed as JPEG at this quality (1-100).
    Jpeg {
        /// JPEG quality.
        quality: u8,
    },
    /// Downscaled to a small phone-screenshot size (PNG).
    Small,
}

impl Look {
    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Look::Clean => "clean",
            Look::Rotated { .. } => "rotated",
            Look::LowContrast => "low-contrast",
            Look::Dark => "dark",
            Look::Jpeg { .. } => "jpeg",
            Look::Small => "small",
        }
    }
}

/// A layout and a look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// The arrangement of lines.
    pub layout: Layout,
    /// The degradation.
    pub look: Look,
}

/// Card prefixes (BIN) of Iranian banks: Melli, Mellat, Saman, Tejarat, Pasargad, Sepah,
/// Parsian, Keshavarzi.
const BINS: &[&str] = &[
    "603799", "610433", "621986", "627353", "502229", "589210", "622106", "603770",
];
const BANKS_FA: &[&str] = &[
    "بانک ملی ایران",
    "بانک ملت",
    "بانک سامان",
    "بانک تجارت",
    "بانک پاسارگاد",
    "بانک سپه",
];
const BANKS_EN: &[&str] = &[
    "Bank Melli Iran",
    "Bank Mellat",
    "Saman Bank",
    "Tejarat Bank",
    "Pasargad Bank",
    "Bank Sepah",
];
const NAMES_FA: &[&str] = &[
    "علی رضایی",
    "مریم احمدی",
    "حسین محمدی",
    "زهرا کریمی",
    "محمد حسینی",
    "فاطمه موسوی",
];
const NAMES_EN: &[&str] = &[
    "Ali Rezaei",
    "Maryam Ahmadi",
    "Hossein Mohammadi",
    "Zahra Karimi",
    "Mohammad Hosseini",
    "Fatemeh Mousavi",
];
/// VPN plan prices in thousands of toman; an order adds a small unique offset.
const PRICES_K_TOMAN: &[i64] = &[49, 79, 99, 149, 199, 249, 299, 399, 599, 899, 1290];

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|i| {
            let lo = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rng.random_range(lo..10u8))
        })
        .collect()
}

/// `n` receipts drawn from `seed`, alternating Persian and English; about one in seven
/// reports a failed transfer.
pub fn sample_truths(n: usize, seed: u64) -> Vec<ReceiptTruth> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let lang = if i % 2 == 0 { Lang::Fa } else { Lang::En };
            let price = PRICES_K_TOMAN.choose(&mut rng).copied().unwrap_or(199);
            let toman = price * 1000 + rng.random_range(1..1000);
            let unit = if rng.random_bool(0.5) {
                AmountUnit::Toman
            } else {
                AmountUnit::Rial
            };
            let amount = if unit == AmountUnit::Toman {
                toman
            } else {
                toman * 10
            };
            let bin = BINS.choose(&mut rng).copied().unwrap_or("603799");
            let body = format!("{bin}{}", digits(&mut rng, 9));
            let dest_card = format!("{body}{}", mrjbot_domain::payment::luhn_check_digit(&body));
            let src_bin = BINS.choose(&mut rng).copied().unwrap_or("610433");
            let src_card_masked = format!(
                "{}-{}**-****-{}",
                &src_bin[..4],
                &src_bin[4..],
                digits(&mut rng, 4)
            );
            let (year, day) = match lang {
                Lang::Fa => (rng.random_range(1402..=1404), rng.random_range(1..=29)),
                Lang::En => (rng.random_range(2024..=2026), rng.random_range(1..=28)),
            };
            let date = format!(
                "{year:04}/{:02}/{day:02} {:02}:{:02}",
                rng.random_range(1..=12),
                rng.random_range(0..24),
                rng.random_range(0..60)
            );
            let (banks, names) = match lang {
                Lang::Fa => (BANKS_FA, NAMES_FA),
                Lang::En => (BANKS_EN, NAMES_EN),
            };
            ReceiptTruth {
                amount,
                unit,
                tracking_no: digits(&mut rng, 6),
                reference_no: digits(&mut rng, 12),
                dest_card,
                src_card_masked,
                date,
                lang,
                success: !rng.random_bool(1.0 / 7.0),
                holder: names.choose(&mut rng).copied().unwrap_or_default().into(),
                bank: banks.choose(&mut rng).copied().unwrap_or_default().into(),
            }
        })
        .collect()
}

/// A balanced test set: `n` receipts from `seed`, each with a style so that every layout
/// meets every look in both languages as `n` grows; rotations alternate between 2 and 7
/// degrees either way.
pub fn test_set(n: usize, seed: u64) -> Vec<(ReceiptTruth, Style)> {
    let layouts = [Layout::Inline, Layout::Columns, Layout::Stacked];
    let angles = [3.5f32, -5.0, 6.5, -2.5, 4.5, -7.0, 2.0];
    sample_truths(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let look = match (i / 2) % 6 {
                0 => Look::Clean,
                1 => Look::Rotated {
                    degrees: angles[(i / 12) % angles.len()],
                },
                2 => Look::LowContrast,
                3 => Look::Dark,
                4 => Look::Jpeg {
                    quality: 30 + (i % 4) as u8 * 10,
                },
                _ => Look::Small,
            };
            let layout = layouts[(i / 2 + i / 12) % 3];
            (t, Style { layout, look })
        })
        .collect()
}

/// The `pango-view` program: env `PANGO_VIEW_BIN`, else `pango-view` on `PATH`.
pub fn pango_view_bin() -> PathBuf {
    match std::env::var_os("PANGO_VIEW_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("pango-view"),
    }
}

fn runs(bin: &std::path::Path, arg: &str) -> bool {
    Command::new(bin)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_font(family: &str) -> bool {
    Command::new("fc-list")
        .arg(family)
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// Whether `pango-view` and the Noto fonts the renderer uses are installed. A local run
/// without them prints why and gets `false`; under `CI=true` this panics instead.
pub fn require_receipt_tools() -> bool {
    let bin = pango_view_bin();
    let missing: Vec<&str> = [
        (!runs(&bin, "--version")).then_some("pango-view (pango1.0-tools)"),
        (!has_font(FONT_FA)).then_some("Noto Sans Arabic (fonts-noto-core)"),
        (!has_font(FONT_EN)).then_some("Noto Sans (fonts-noto-core)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "receipt rendering needs {} in CI: run scripts/test-deps.sh",
        missing.join(", ")
    );
    eprintln!(
        "skipped: receipt rendering needs {} (run scripts/test-deps.sh)",
        missing.join(", ")
    );
    false
}

/// Whether `ocr` can run (tesseract with its language data). A local run without it prints
/// why and gets `false`; under `CI=true` this panics instead.
pub async fn require_ocr(ocr: &mrjbot_app::receipt::Ocr) -> bool {
    if ocr.available().await {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "tesseract with fas and eng data is required in CI: run scripts/test-deps.sh \
         (or set TESSERACT_BIN)"
    );
    eprintln!(
        "skipped: tesseract with fas and eng data is not installed (run scripts/test-deps.sh)"
    );
    false
}

const FONT_FA: &str = "Noto Sans Arabic";
const FONT_EN: &str = "Noto Sans";
/// Pango's resolution: 13 pt at 144 dpi is text about 26 px high, like a 2x phone screen.
const DPI: u32 = 144;
const WIDTH: u32 = 720;
const MARGIN: u32 = 40;

/// Shapes `lines` with Pango (one child process) and returns one coverage mask per line,
/// cropped to its ink.
fn shape(lines: &[String], font: &str, rtl: bool) -> anyhow::Result<Vec<GrayImage>> {
    ensure!(!lines.is_empty(), "nothing to shape");
    let dir = tempfile::tempdir().context("temp dir for pango-view")?;
    let out = dir.path().join("block.png");
    let mut cmd = Command::new(pango_view_bin());
    cmd.args([
        "-q",
        "--background=transparent",
        "--margin=8",
        "--hinting=slight",
    ])
    .arg(format!("--dpi={DPI}"))
    .arg(format!("--font={font}"))
    // Room between lines so that they can be cut apart again on blank rows.
    .arg("--spacing=14")
    .arg(format!("--text={}", lines.join("\n")))
    .arg("-o")
    .arg(&out);
    if rtl {
        cmd.arg("--rtl");
    }
    let res = cmd
        .output()
        .with_context(|| format!("running {}", pango_view_bin().display()))?;
    if !res.status.success() {
        bail!(
            "pango-view failed: {}",
            String::from_utf8_lossy(&res.stderr).trim()
        );
    }
    let block = image::open(&out)
        .context("reading pango-view's PNG")?
        .to_rgba8();
    let (w, h) = block.dimensions();
    let mask = GrayImage::from_fn(w, h, |x, y| Luma([block.get_pixel(x, y)[3]]));
    split_lines(&mask, lines.len())
}

/// Cuts a block into `n` lines at the `n - 1` widest blank gaps between rows of ink, so a
/// blank strip inside a line (between a letter and its dots) never splits it.
fn split_lines(mask: &GrayImage, n: usize) -> anyhow::Result<Vec<GrayImage>> {
    let (w, h) = mask.dimensions();
    let inked: Vec<bool> = (0..h)
        .map(|y| (0..w).any(|x| mask.get_pixel(x, y)[0] > 40))
        .collect();
    let first = inked
        .iter()
        .position(|&b| b)
        .context("pango drew nothing")?;
    let last = inked.iter().rposition(|&b| b).unwrap_or(first);
    let mut gaps: Vec<(usize, usize)> = Vec::new();
    let mut y = first;
    while y <= last {
        if inked[y] {
            y += 1;
            continue;
        }
        let start = y;
        while y <= last && !inked[y] {
            y += 1;
        }
        gaps.push((start, y));
    }
    ensure!(
        gaps.len() + 1 >= n,
        "expected {n} lines, found only {} blocks of ink",
        gaps.len() + 1
    );
    gaps.sort_by_key(|&(a, b)| std::cmp::Reverse(b - a));
    let mut cuts: Vec<(usize, usize)> = gaps.into_iter().take(n - 1).collect();
    cuts.sort();
    let mut bounds = Vec::with_capacity(n);
    let mut top = first;
    for (a, b) in cuts {
        bounds.push((top, a));
        top = b;
    }
    bounds.push((top, last + 1));
    Ok(bounds
        .into_iter()
        .map(|(t, b)| crop_to_ink(mask, t as u32, b as u32))
        .collect())
}

fn crop_to_ink(mask: &GrayImage, top: u32, bottom: u32) -> GrayImage {
    let w = mask.width();
    let cols: Vec<u32> = (0..w)
        .filter(|&x| (top..bottom).any(|y| mask.get_pixel(x, y)[0] > 0))
        .collect();
    let (left, right) = match (cols.first(), cols.last()) {
        (Some(&l), Some(&r)) => (l, r + 1),
        _ => (0, 1),
    };
    image::imageops::crop_imm(mask, left, top, right - left, bottom - top).to_image()
}

/// Persian digits for a Persian receipt.
fn fa_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => char::from_u32(0x06F0 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn grouped(n: i64, sep: char) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// Left-to-right isolate: card numbers and dates keep their order inside Persian lines, as
/// bank apps show them.
fn ltr(s: &str) -> String {
    format!("\u{2066}{s}\u{2069}")
}

/// One printed row: label and value.
struct Row {
    label: &'static str,
    value: String,
}

/// The receipt's rows in the words of the bank app that `layout` imitates.
fn rows(t: &ReceiptTruth, layout: Layout) -> (String, String, Vec<Row>) {
    let card_groups = |sep: &str| {
        t.dest_card
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(sep)
    };
    match t.lang {
        Lang::Fa => {
            let unit = if t.unit == AmountUnit::Toman {
                "تومان"
            } else {
                "ریال"
            };
            let amount = format!("{} {unit}", fa_digits(&grouped(t.amount, '\u{066C}')));
            let card = ltr(&fa_digits(&card_groups(if layout == Layout::Columns {
                " "
            } else {
                "-"
            })));
            let date = match layout {
                Layout::Stacked => t.date.replacen(' ', " - ", 1),
                _ => t.date.clone(),
            };
            let title = "انتقال وجه کارت به کارت".to_owned();
            let status = if t.success {
                "تراکنش موفق"
            } else {
                "تراکنش ناموفق"
            };
            let labels: [&'static str; 7] = match layout {
                Layout::Inline => [
                    "مبلغ",
                    "شماره پیگیری",
                    "شماره مرجع",
                    "کارت مقصد",
                    "نام دارنده کارت",
                    "کارت مبدا",
                    "تاریخ و زمان",
                ],
                Layout::Columns => [
                    "مبلغ انتقال",
                    "کد پیگیری",
                    "شماره مرجع",
                    "شماره کارت مقصد",
                    "به نام",
                    "از کارت",
                    "تاریخ",
                ],
                Layout::Stacked => [
                    "مبلغ تراکنش",
                    "شماره پیگیری",
                    "شماره ارجاع",
                    "کارت گیرنده",
                    "صاحب کارت",
                    "کارت مبدا",
                    "زمان تراکنش",
                ],
            };
            let values = [
                amount,
                fa_digits(&t.tracking_no),
                fa_digits(&t.reference_no),
                card,
                t.holder.clone(),
                ltr(&fa_digits(&t.src_card_masked)),
                ltr(&fa_digits(&date)),
            ];
            (title, status.into(), zip_rows(labels, values))
        }
        Lang::En => {
            let amount = match (t.unit, layout) {
                (AmountUnit::Toman, _) => format!("{} Toman", grouped(t.amount, ',')),
                (_, Layout::Columns) => format!("IRR {}", grouped(t.amount, ',')),
                _ => format!("{} Rials", grouped(t.amount, ',')),
            };
            let card = card_groups(if layout == Layout::Columns { " " } else { "-" });
            let date = match layout {
                Layout::Columns => t.date.replace('/', "-"),
                _ => t.date.clone(),
            };
            let title = "Card to card transfer".to_owned();
            let status = if t.success { "Successful" } else { "Failed" };
            let labels: [&'static str; 7] = match layout {
                Layout::Inline => [
                    "Amount",
                    "Tracking No",
                    "Reference No",
                    "Destination card",
                    "Card holder",
                    "Source card",
                    "Date",
                ],
                Layout::Columns => [
                    "Transfer amount",
                    "Trace No.",
                    "RRN",
                    "To card",
                    "Beneficiary",
                    "From card",
                    "Date & time",
                ],
                Layout::Stacked => [
                    "Amount",
                    "Tracking number",
                    "Reference",
                    "Beneficiary card",
                    "Name",
                    "Source",
                    "Time",
                ],
            };
            let values = [
                amount,
                t.tracking_no.clone(),
                t.reference_no.clone(),
                card,
                t.holder.clone(),
                t.src_card_masked.clone(),
                date,
            ];
            (title, status.into(), zip_rows(labels, values))
        }
    }
}

fn zip_rows(labels: [&'static str; 7], values: [String; 7]) -> Vec<Row> {
    labels
        .into_iter()
        .zip(values)
        .map(|(label, value)| Row { label, value })
        .collect()
}

/// Colours of one look: background, label, value, header band, status (ok, failed).
struct Palette {
    bg: [u8; 3],
    label: [u8; 3],
    value: [u8; 3],
    band: [u8; 3],
    ok: [u8; 3],
    failed: [u8; 3],
}

fn palette(look: Look) -> Palette {
    match look {
        Look::LowContrast => Palette {
            bg: [255, 255, 255],
            label: [178, 178, 178],
            value: [160, 160, 160],
            band: [214, 226, 240],
            ok: [150, 200, 160],
            failed: [225, 160, 160],
        },
        Look::Dark => Palette {
            bg: [24, 26, 32],
            label: [150, 155, 165],
            value: [236, 236, 236],
            band: [40, 60, 96],
            ok: [90, 200, 120],
            failed: [235, 100, 100],
        },
        _ => Palette {
            bg: [255, 255, 255],
            label: [96, 96, 96],
            value: [20, 20, 20],
            band: [20, 70, 140],
            ok: [20, 140, 60],
            failed: [190, 30, 30],
        },
    }
}

/// Paints `mask` onto `canvas` at (`x`, `y`) in `color`, blending by coverage.
fn blit(canvas: &mut RgbImage, mask: &GrayImage, x: u32, y: u32, color: [u8; 3]) {
    for (mx, my, a) in mask.enumerate_pixels() {
        let (cx, cy) = (x + mx, y + my);
        if cx >= canvas.width() || cy >= canvas.height() || a[0] == 0 {
            continue;
        }
        let a = u32::from(a[0]);
        let p = canvas.get_pixel_mut(cx, cy);
        for (c, fg) in p.0.iter_mut().zip(color) {
            *c = ((u32::from(*c) * (255 - a) + u32::from(fg) * a) / 255) as u8;
        }
    }
}

fn fill(canvas: &mut RgbImage, top: u32, height: u32, color: [u8; 3]) {
    for y in top..(top + height).min(canvas.height()) {
        for x in 0..canvas.width() {
            canvas.put_pixel(x, y, Rgb(color));
        }
    }
}

/// A thing to paint: mask, x, y, colour.
type Placed = (GrayImage, u32, u32, [u8; 3]);

/// Draws `truth` as an app screenshot in `style`: PNG bytes, or JPEG for the rotated and
/// JPEG looks.
pub fn render(truth: &ReceiptTruth, style: Style) -> anyhow::Result<Vec<u8>> {
    let fa = truth.lang == Lang::Fa;
    let font = if fa { FONT_FA } else { FONT_EN };
    let pal = palette(style.look);
    let (title, status, rows) = rows(truth, style.layout);

    let head_lines = vec![truth.bank.clone(), title, status];
    let body_lines: Vec<String>;
    let mut label_lines: Vec<String> = Vec::new();
    match style.layout {
        Layout::Inline => {
            body_lines = rows
                .iter()
                .map(|r| format!("{}: {}", r.label, r.value))
                .collect();
        }
        Layout::Columns | Layout::Stacked => {
            label_lines = rows.iter().map(|r| r.label.to_owned()).collect();
            body_lines = rows.iter().map(|r| r.value.clone()).collect();
        }
    }
    let head_font = format!("{font} Bold 14");
    let body_font = match style.layout {
        Layout::Stacked => format!("{font} 15"),
        _ => format!("{font} 13"),
    };
    let mut head = shape(&head_lines, &head_font, fa)?;
    let body = shape(&body_lines, &body_font, fa)?;
    let labels = if label_lines.is_empty() {
        Vec::new()
    } else {
        shape(&label_lines, &format!("{font} 11"), fa)?
    };

    // Reading edge: right for Persian, left for English.
    let at_edge = |w: u32, reading: bool| -> u32 {
        let right = WIDTH.saturating_sub(MARGIN + w);
        if reading == fa { right } else { MARGIN }
    };
    let centre = |w: u32| WIDTH.saturating_sub(w) / 2;

    let mut placed: Vec<Placed> = Vec::new();
    let mut rules: Vec<u32> = Vec::new();
    let band_h = 96;
    let mut y = 0;
    if let [bank, title, status] = &mut head[..] {
        let bank = std::mem::take(bank);
        placed.push((
            bank.clone(),
            centre(bank.width()),
            (band_h - bank.height()) / 2,
            [255, 255, 255],
        ));
        y = band_h + 36;
        let title = std::mem::take(title);
        placed.push((title.clone(), centre(title.width()), y, pal.value));
        y += title.height() + 22;
        let status = std::mem::take(status);
        let color = if truth.success { pal.ok } else { pal.failed };
        placed.push((status.clone(), centre(status.width()), y, color));
        y += status.height() + 44;
    }
    match style.layout {
        Layout::Inline => {
            for line in body {
                let h = line.height();
                placed.push((line.clone(), at_edge(line.width(), true), y, pal.value));
                y += h.max(30) + 26;
            }
        }
        Layout::Columns => {
            for (label, value) in labels.into_iter().zip(body) {
                let h = label.height().max(value.height()).max(30);
                let ly = y + (h - label.height()) / 2;
                let vy = y + (h - value.height()) / 2;
                placed.push((label.clone(), at_edge(label.width(), true), ly, pal.label));
                placed.push((value.clone(), at_edge(value.width(), false), vy, pal.value));
                y += h + 18;
                rules.push(y);
                y += 18;
            }
        }
        Layout::Stacked => {
            for (label, value) in labels.into_iter().zip(body) {
                placed.push((label.clone(), at_edge(label.width(), true), y, pal.label));
                y += label.height() + 10;
                placed.push((value.clone(), at_edge(value.width(), true), y, pal.value));
                y += value.height() + 30;
            }
        }
    }
    let height = y + MARGIN;
    let mut canvas = RgbImage::from_pixel(WIDTH, height, Rgb(pal.bg));
    fill(&mut canvas, 0, band_h, pal.band);
    let rule = mix(pal.bg, pal.label, 0.35);
    for r in rules {
        for x in MARGIN..WIDTH - MARGIN {
            canvas.put_pixel(x, r, Rgb(rule));
        }
    }
    for (mask, x, y, color) in &placed {
        blit(&mut canvas, mask, *x, *y, *color);
    }

    match style.look {
        Look::Rotated { degrees } => {
            let photo = rotate(&canvas, degrees, [186, 184, 178]);
            encode_jpeg(&photo, 88)
        }
        Look::Jpeg { quality } => encode_jpeg(&canvas, quality),
        Look::Small => {
            let (w, h) = canvas.dimensions();
            let small = resize_rgb(
                canvas,
                w * 11 / 20,
                h * 11 / 20,
                image::imageops::FilterType::Triangle,
            );
            encode_png(&small)
        }
        _ => encode_png(&canvas),
    }
}

/// Resizes through `DynamicImage`, whose code is compiled optimised inside `image` (the
/// generic `imageops::resize` would be compiled unoptimised into this crate in tests).
fn resize_rgb(img: RgbImage, w: u32, h: u32, filter: image::imageops::FilterType) -> RgbImage {
    image::DynamicImage::ImageRgb8(img)
        .resize_exact(w, h, filter)
        .into_rgb8()
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let mut out = a;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = (f32::from(x) * (1.0 - t) + f32::from(y) * t).round() as u8;
    }
    out
}

/// Turns `img` by `degrees` (counter-clockwise) on a canvas large enough for the corners,
/// with bilinear sampling; uncovered area is `background` (the table under the phone).
pub fn rotate(img: &RgbImage, degrees: f32, background: [u8; 3]) -> RgbImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let nw = (w * cos.abs() + h * sin.abs()).ceil() as u32 + 40;
    let nh = (w * sin.abs() + h * cos.abs()).ceil() as u32 + 40;
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (ncx, ncy) = (nw as f32 / 2.0, nh as f32 / 2.0);
    RgbImage::from_fn(nw, nh, |x, y| {
        let dx = x as f32 - ncx;
        let dy = y as f32 - ncy;
        // Inverse mapping: where in the source this output pixel comes from.
        let sx = cos * dx - sin * dy + cx;
        let sy = sin * dx + cos * dy + cy;
        sample(img, sx, sy).unwrap_or(Rgb(background))
    })
}

fn sample(img: &RgbImage, x: f32, y: f32) -> Option<Rgb<u8>> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    if x < 0.0 || y < 0.0 || x > w - 1.0 || y > h - 1.0 {
        return None;
    }
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |x, y| img.get_pixel(x, y).0.map(f32::from);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0u8; 3];
    for i in 0..3 {
        let top = a[i] * (1.0 - fx) + b[i] * fx;
        let bottom = c[i] * (1.0 - fx) + d[i] * fx;
        out[i] = (top * (1.0 - fy) + bottom * fy).round() as u8;
    }
    Some(Rgb(out))
}

fn encode_png(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn encode_jpeg(img: &RgbImage, quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// How a near-duplicate of a receipt picture is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Variant {
    /// Decoded and saved again as JPEG at this quality.
    Reencoded {
        /// JPEG quality.
        quality: u8,
    },
    /// Resized to this percentage of the original size (PNG).
    Resized {
        /// Percent of the original width and height.
        percent: u32,
    },
    /// Cropped by this many pixels on every side, like a screenshot cut differently (PNG).
    Cropped {
        /// Pixels removed on each side.
        pixels: u32,
    },
}

/// A near-duplicate of the picture in `bytes`.
pub fn variant(bytes: &[u8], v: Variant) -> anyhow::Result<Vec<u8>> {
    let img = image::load_from_memory(bytes)
        .context("decoding the original")?
        .to_rgb8();
    let (w, h) = img.dimensions();
    match v {
        Variant::Reencoded { quality } => encode_jpeg(&img, quality),
        Variant::Resized { percent } => encode_png(&resize_rgb(
            img,
            w * percent / 100,
            h * percent / 100,
            image::imageops::FilterType::CatmullRom,
        )),
        Variant::Cropped { pixels } => {
            ensure!(w > 2 * pixels && h > 2 * pixels, "image too small to crop");
            encode_png(
                &image::imageops::crop_imm(&img, pixels, pixels, w - 2 * pixels, h - 2 * pixels)
                    .to_image(),
            )
        }
    }
}

/// A PNG signature, a header chunk declaring `width` x `height` and an empty data chunk (a
/// decompression bomb's first bytes), with valid checksums.
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::with_capacity(17);
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8-bit RGB, deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(b"IDAT");
    out.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}
