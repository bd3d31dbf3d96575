//! Card-to-card receipt pictures: facts for duplicate detection and OCR for the admin.
//!
//! A customer who paid by card-to-card transfer sends a photo or screenshot of the bank
//! receipt. The money path stores [`ImageFacts`] (SHA-256 for exact re-sends, a 64-bit
//! perceptual hash for the same receipt re-encoded, resized or cropped; compare with
//! [`hamming`] against [`NEAR_DUPLICATE_BITS`]) and shows the admin what [`Ocr::analyze`]
//! read (`mrjbot_domain::receipt::extract` over the OCR text).
//!
//! Guarantees: only JPEG, PNG and WebP are decoded, and only up to [`MAX_BYTES`] and
//! [`MAX_PIXELS`] (the declared size is checked before any pixel is allocated, so a
//! decompression bomb costs nothing). OCR runs the `tesseract` program as a child process,
//! never in our address space: a hostile image can at worst crash or hang that child, which
//! is killed on timeout or when the caller gives up (`kill_on_drop`). The image reaches it on
//! stdin and the text comes back on stdout; no temporary files.
//!
//! Before OCR the picture is normalised and laid out again line by line (`prepare`); each
//! step was kept because it raised the hit rate measured on generated receipts
//! (`ocr_reads_generated_receipts`). Persian digits remain tesseract's weak spot: expect
//! Persian amounts and dates to be missing or wrong more often than English ones.

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Luma};
use mrjbot_domain::receipt::{ReceiptFields, extract};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Largest receipt file accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Largest receipt picture accepted, in pixels (a 48 MP phone photo is refused; 40 MP of
/// RGBA is 160 MB to decode).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Hashes at most this many bits apart are treated as the same picture. Measured on 40
/// generated receipts (`near_duplicates_are_caught`): re-encoding as JPEG, resizing to 90 %
/// and cropping 4 pixels moved a hash by at most 4 bits. Different receipts were 0 to 56
/// bits apart, and 4 % of their pairs were within 5 bits: all of one bank-app layout (they
/// differ only in digits, which a 64-bit hash of the whole picture barely sees) or both
/// photos turned by the same angle. A near-duplicate is therefore a reason for an admin
/// to compare the two receipts and their OCR fields, not proof of a re-sent receipt.
pub const NEAR_DUPLICATE_BITS: u32 = 5;

/// Why a receipt picture could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Not a JPEG, PNG or WebP picture, or a damaged one.
    #[error("not a usable receipt picture: {0}")]
    NotAnImage(String),
    /// Over [`MAX_BYTES`] or [`MAX_PIXELS`].
    #[error("receipt picture too large: {0}")]
    TooLarge(String),
    /// The OCR program (or its language data) is not installed.
    #[error("OCR is not available: {0}")]
    OcrUnavailable(String),
    /// The OCR program failed on this picture.
    #[error("OCR failed: {0}")]
    OcrFailed(String),
    /// The OCR program did not finish in time and was killed.
    #[error("OCR timed out")]
    Timeout,
}

/// What the money path stores about a receipt picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// 64-bit perceptual hash (pHash: DCT, 8x8, on grayscale).
    pub phash: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Number of differing bits between two perceptual hashes.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Decodes the picture (see [`decode`]) and computes its [`ImageFacts`].
pub fn image_facts(bytes: &[u8]) -> Result<ImageFacts, ReceiptError> {
    let img = decode(bytes)?;
    let sha256 = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(ImageFacts {
        sha256,
        phash: phash(&img),
        width: img.width(),
        height: img.height(),
    })
}

/// The perceptual hash: pHash (DCT of the grayscale picture, 8x8 low frequencies against
/// their median). Of the hashes `image_hasher` offers (mean, gradient, vertical and double
/// gradient, blockhash, mean and median over DCT) it kept copies of one receipt closest (at
/// most 4 bits apart) while confusing the fewest different receipts, measured on the
/// generated set (`near_duplicates_are_caught`).
fn phash(img: &DynamicImage) -> u64 {
    let hasher = image_hasher::HasherConfig::new()
        .hash_size(8, 8)
        .hash_alg(image_hasher::HashAlg::Median)
        .preproc_dct()
        .to_hasher();
    let gray = DynamicImage::ImageLuma8(img.to_luma8());
    let hash = hasher.hash_image(&gray);
    hash.as_bytes()
        .iter()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Decodes a JPEG, PNG or WebP picture within [`MAX_BYTES`] and [`MAX_PIXELS`]; the format
/// is read from the bytes, never from a file name or a client's content type.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ReceiptError> {
    if bytes.len() > MAX_BYTES {
        return Err(ReceiptError::TooLarge(format!(
            "{} bytes, the limit is {MAX_BYTES}",
            bytes.len()
        )));
    }
    let format = image::guess_format(bytes).map_err(|_| {
        ReceiptError::NotAnImage("unknown file type; send a JPEG, PNG or WebP picture".into())
    })?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(ReceiptError::NotAnImage(format!(
            "{format:?} pictures are not accepted; send a JPEG, PNG or WebP picture"
        )));
    }
    let reader = || {
        let mut r = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
        r.limits(limits);
        r
    };
    let damaged = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => ReceiptError::TooLarge(l.to_string()),
        other => ReceiptError::NotAnImage(format!("damaged {format:?} picture: {other}")),
    };
    let (w, h) = reader().into_dimensions().map_err(damaged)?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ReceiptError::TooLarge(format!(
            "{w}x{h} pixels, the limit is {MAX_PIXELS} pixels"
        )));
    }
    let img = reader().decode().map_err(damaged)?;
    if img.width() == 0 || img.height() == 0 {
        return Err(ReceiptError::NotAnImage("empty picture".into()));
    }
    Ok(img)
}

/// The `tesseract` command-line program as an OCR engine.
#[derive(Debug, Clone)]
pub struct Ocr {
    bin: PathBuf,
    langs: String,
    timeout: Duration,
}

/// Languages read by default: Persian and English receipts.
pub const DEFAULT_LANGS: &str = "fas+eng";
/// Time one OCR run may take by default before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Ocr {
    /// An engine running `bin` with tesseract's `-l langs` (e.g. `fas+eng`), killed after
    /// `timeout`.
    pub fn new(bin: impl Into<PathBuf>, langs: impl Into<String>, timeout: Duration) -> Ocr {
        Ocr {
            bin: bin.into(),
            langs: langs.into(),
            timeout,
        }
    }

    /// From the environment: `TESSERACT_BIN` (default `tesseract` on `PATH`),
    /// `TESSERACT_LANGS` (default [`DEFAULT_LANGS`]) and `TESSERACT_TIMEOUT_SECS` (default
    /// [`DEFAULT_TIMEOUT`]). Not `MRJBOT_*` names: those are product settings read by the
    /// configuration, which refuses names it does not know.
    pub fn from_env() -> Ocr {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Ocr::new(
            var("TESSERACT_BIN").unwrap_or_else(|| "tesseract".into()),
            var("TESSERACT_LANGS").unwrap_or_else(|| DEFAULT_LANGS.into()),
            var("TESSERACT_TIMEOUT_SECS")
                .and_then(|s| s.trim().parse().ok())
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
        )
    }

    /// Whether the program runs and has every language asked for.
    pub async fn available(&self) -> bool {
        self.missing().await.is_none()
    }

    /// Why OCR cannot run, or `None` when it can.
    async fn missing(&self) -> Option<String> {
        let run = Command::new(&self.bin)
            .arg("--list-langs")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(Duration::from_secs(10), run).await {
            Ok(Ok(out)) if out.status.success() => out,
            Ok(Ok(out)) => {
                return Some(format!(
                    "{} --list-langs exited with {}",
                    self.bin.display(),
                    out.status
                ));
            }
            Ok(Err(e)) => return Some(format!("cannot run {}: {e}", self.bin.display())),
            Err(_) => return Some(format!("{} did not answer", self.bin.display())),
        };
        // Tesseract 4 lists languages on stderr, 5 on stdout.
        let mut listed = String::from_utf8_lossy(&out.stdout).into_owned();
        listed.push_str(&String::from_utf8_lossy(&out.stderr));
        let have: Vec<&str> = listed.lines().map(str::trim).collect();
        let absent: Vec<&str> = self
            .langs
            .split('+')
            .filter(|l| !have.contains(l))
            .collect();
        (!absent.is_empty()).then(|| format!("no language data for {}", absent.join(", ")))
    }

    /// The text of a receipt picture: decoded and checked like [`decode`], prepared for OCR
    /// (see [`prepare`]) and read by tesseract.
    pub async fn read(&self, bytes: &[u8]) -> Result<String, ReceiptError> {
        let owned = bytes.to_vec();
        let pgm =
            tokio::task::spawn_blocking(move || decode(&owned).map(|img| pgm(&prepare(&img))))
                .await
                .map_err(|e| ReceiptError::OcrFailed(format!("preparing the picture: {e}")))??;
        let mut child = Command::new(&self.bin)
            // psm 6 (one block of text) read the relaid-out receipts best; psm 4 and 11 lost
            // more digits. The dpi only silences tesseract's guess of the resolution.
            .args([
                "stdin",
                "stdout",
                "-l",
                &self.langs,
                "--psm",
                "6",
                "--dpi",
                "300",
            ])
            // One thread per run: tesseract's OpenMP threads only contend when several
            // receipts are read at once, which is how a server runs it.
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ReceiptError::OcrUnavailable(format!("cannot run {}: {e}", self.bin.display()))
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| ReceiptError::OcrFailed("no stdin pipe".into()))?;
        let feed = async move {
            // A child that exits early closes the pipe; its exit status tells why.
            let _ = stdin.write_all(&pgm).await;
            drop(stdin);
        };
        let run = async {
            let ((), out) = tokio::join!(feed, child.wait_with_output());
            out
        };
        let out = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| ReceiptError::Timeout)?
            .map_err(|e| ReceiptError::OcrFailed(format!("waiting for tesseract: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let err: String = err.trim().chars().take(500).collect();
            if err.contains("Failed loading language") || err.contains("Error opening data file") {
                return Err(ReceiptError::OcrUnavailable(err));
            }
            return Err(ReceiptError::OcrFailed(format!("{}: {err}", out.status)));
        }
        Ok(strip_markers(&String::from_utf8_lossy(&out.stdout)))
    }

    /// [`Ocr::read`], then the fields `mrjbot_domain::receipt::extract` finds in the text.
    pub async fn analyze(&self, bytes: &[u8]) -> Result<(String, ReceiptFields), ReceiptError> {
        let text = self.read(bytes).await?;
        let fields = extract(&text);
        Ok((text, fields))
    }
}

/// Height of a line of text (rows of ink, see [`line_height`]) the picture is scaled to.
/// Measured on the generated receipts (from 18 to 34 px): tesseract's Persian model reads
/// digits best at about 22 px and worse both smaller and larger.
const LINE_HEIGHT: f32 = 22.0;
/// Widest picture handed to tesseract; its time grows with the pixels.
const OCR_MAX_WIDTH: u32 = 2400;
/// A pixel darker than this is ink once the picture is [`prepare`]d.
const INK: u8 = 128;

/// Turns a receipt into what tesseract reads best; each step raised the measured hit rate
/// on generated receipts:
/// 1. grayscale, contrast stretched from ink to paper, so light-grey text turns black and a
///    dark theme turns into dark text on white;
/// 2. straightened when the photo is turned (see [`skew_degrees`]);
/// 3. scaled so that a line of text is [`LINE_HEIGHT`] high;
/// 4. laid out again line by line (see [`relayout`]).
fn prepare(img: &DynamicImage) -> GrayImage {
    let mut gray = img.to_luma8();
    let hist = histogram(&gray);
    let paper = percentile(&hist, 0.5);
    // Ink is the darkest 1 % on a light background, the lightest 1 % on a dark one.
    let ink = if paper < 128 {
        percentile(&hist, 0.99)
    } else {
        percentile(&hist, 0.01)
    };
    if ink.abs_diff(paper) >= 16 {
        let (ink, paper) = (i32::from(ink), i32::from(paper));
        let lut: Vec<u8> = (0..=255i32)
            .map(|v| ((v - ink) * 255 / (paper - ink)).clamp(0, 255) as u8)
            .collect();
        for p in gray.iter_mut() {
            *p = lut[usize::from(*p)];
        }
    }
    let angle = skew_degrees(&gray);
    if angle.abs() >= 0.5 {
        gray = rotate_gray(&gray, -angle);
    }
    let w = gray.width() as f32;
    let scale = line_height(&gray).map_or(1.0, |h| (LINE_HEIGHT / h as f32).clamp(0.25, 4.0));
    let scale = scale.min(OCR_MAX_WIDTH as f32 / w);
    if (scale - 1.0).abs() > 0.05 {
        let nw = ((w * scale).round() as u32).max(1);
        let nh = ((gray.height() as f32 * scale).round() as u32).max(1);
        gray = resize(gray, nw, nh, image::imageops::FilterType::CatmullRom);
    }
    relayout(&gray)
}

/// Which rows of `gray` hold ink (at least one pixel in 400 of the width).
fn inked_rows(gray: &GrayImage) -> Vec<bool> {
    let w = gray.width() as usize;
    let min_ink = (w / 400).max(1);
    gray.as_raw()
        .chunks(w.max(1))
        .map(|row| row.iter().filter(|&&v| v < INK).count() >= min_ink)
        .collect()
}

/// The median height of the lines of text (runs of inked rows) in a stretched picture.
fn line_height(gray: &GrayImage) -> Option<u32> {
    let h = gray.height() as usize;
    let mut heights: Vec<usize> = runs(&inked_rows(gray), 0)
        .into_iter()
        .map(|(a, b)| b - a)
        .filter(|&r| r >= 4 && r < h / 4)
        .collect();
    heights.sort_unstable();
    heights.get(heights.len() / 2).map(|&r| r as u32)
}

/// Runs of `true` in `inked` as (start, end), joining runs separated by at most `join`.
fn runs(inked: &[bool], join: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < inked.len() {
        if !inked[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < inked.len() && inked[i] {
            i += 1;
        }
        match out.last_mut() {
            Some(last) if start - last.1 <= join => last.1 = i,
            _ => out.push((start, i)),
        }
    }
    out
}

/// A picture of the Persian word [`MARKER_TEXT`] ("number") in Noto Sans Arabic 13 pt at
/// 144 dpi, made with `pango-view --font='Noto Sans Arabic 13' --rtl --dpi=144 -t عدد`.
static MARKER_PNG: &[u8] = include_bytes!("../assets/ocr-marker.png");
/// The word in [`MARKER_PNG`]; removed again from the OCR text.
const MARKER_TEXT: &str = "عدد";
/// The line height ([`line_height`]) of text drawn like the marker.
const MARKER_LINE: f32 = 27.0;

/// [`MARKER_PNG`] in grayscale, cropped to its ink.
static MARKER: LazyLock<Option<GrayImage>> = LazyLock::new(|| {
    let gray = image::load_from_memory_with_format(MARKER_PNG, ImageFormat::Png)
        .ok()?
        .to_luma8();
    let rows = runs(&inked_rows(&gray), usize::MAX);
    let (top, bottom) = *rows.first()?;
    let (top, bottom) = (top as u32, bottom as u32);
    let cols: Vec<bool> = (0..gray.width())
        .map(|x| (top..bottom).any(|y| gray.get_pixel(x, y)[0] < INK))
        .collect();
    let (left, right) = *runs(&cols, usize::MAX).first()?;
    let (left, right) = (left as u32, right as u32);
    Some(image::imageops::crop_imm(&gray, left, top, right - left, bottom - top).to_image())
});

/// Rebuilds the receipt line by line so that tesseract sees every number next to Persian
/// letters. On a line of Persian digits alone tesseract's Persian model keeps only the last
/// digit or two (a long-standing weakness of its right-to-left handling); with a Persian
/// word on the same line it reads them. So wide gaps inside a line (label at one edge, value
/// at the other) are closed, and the picture of a Persian word ([`MARKER_PNG`]) is put at
/// the right end, where a Persian line starts, of every line of text; [`strip_markers`]
/// removes it from the text. Solid blocks (a coloured header with light text, black after
/// stretching) are inverted; blocks much taller than a line (logos) are copied as they are.
fn relayout(gray: &GrayImage) -> GrayImage {
    let Some(line_h) = line_height(gray) else {
        return gray.clone();
    };
    let lh = line_h as f32;
    let (w, _) = gray.dimensions();
    let raw = gray.as_raw();
    let at = |x: u32, y: u32| raw[(y * w + x) as usize];
    let marker = MARKER.as_ref().map(|m| {
        let s = lh / MARKER_LINE;
        let mw = ((m.width() as f32 * s).round() as u32).max(1);
        let mh = ((m.height() as f32 * s).round() as u32).max(1);
        resize(m.clone(), mw, mh, image::imageops::FilterType::Triangle)
    });
    let gap = (lh * 0.8) as u32;
    let mut lines: Vec<GrayImage> = Vec::new();
    // Dots above and below letters are a few rows apart from the letters: one line.
    for (top, bottom) in runs(&inked_rows(gray), (lh * 0.2) as usize) {
        let (top, bottom) = (top as u32, bottom as u32);
        let height = bottom - top;
        let cols: Vec<bool> = (0..w)
            .map(|x| (top..bottom).any(|y| at(x, y) < INK))
            .collect();
        let segments = runs(&cols, (lh * 1.5) as usize);
        let (Some(&(left, _)), Some(&(_, right))) = (segments.first(), segments.last()) else {
            continue;
        };
        let inked: usize = (top..bottom)
            .map(|y| {
                (left as u32..right as u32)
                    .filter(|&x| at(x, y) < INK)
                    .count()
            })
            .sum();
        let solid = inked as f32 > 0.5 * height as f32 * (right - left) as f32;
        let tall = height as f32 > 2.5 * lh;
        let mark = marker.as_ref().filter(|_| !solid && !tall);
        let content: u32 = segments.iter().map(|s| (s.1 - s.0) as u32).sum::<u32>()
            + gap * (segments.len() as u32 - 1);
        let width = content + mark.map_or(0, |m| gap + m.width());
        let line_h = height.max(mark.map_or(0, |m| m.height()));
        let mut line = GrayImage::from_pixel(width, line_h, Luma([255]));
        let mut x = 0;
        for &(a, b) in &segments {
            for sy in top..bottom {
                for sx in a as u32..b as u32 {
                    let v = at(sx, sy);
                    let v = if solid { 255 - v } else { v };
                    line.put_pixel(x + sx - a as u32, sy - top, Luma([v]));
                }
            }
            x += (b - a) as u32 + gap;
        }
        if let Some(m) = mark {
            let y = (line_h - m.height()) / 2;
            image::imageops::overlay(&mut line, m, i64::from(x), i64::from(y));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return gray.clone();
    }
    let margin = line_h;
    let cw = lines.iter().map(|l| l.width()).max().unwrap_or(1) + 2 * margin;
    let ch = lines.iter().map(|l| l.height() + gap).sum::<u32>() + 2 * margin;
    let mut canvas = GrayImage::from_pixel(cw, ch, Luma([255]));
    let mut y = margin;
    for l in &lines {
        let x = cw - margin - l.width();
        image::imageops::replace(&mut canvas, l, i64::from(x), i64::from(y));
        y += l.height() + gap;
    }
    canvas
}

/// Removes the marker word [`relayout`] added from each line of OCR text (at the start of
/// a Persian line, at the end of an English one).
fn strip_markers(text: &str) -> String {
    let junk = |c: char| c.is_whitespace() || matches!(c, '\u{200E}' | '\u{200F}');
    text.lines()
        .map(|line| {
            let t = line.trim_matches(junk);
            let t = t
                .strip_prefix(MARKER_TEXT)
                .or_else(|| t.strip_suffix(MARKER_TEXT))
                .unwrap_or(t);
            t.trim_matches(junk)
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Resizes through `DynamicImage`, whose methods are compiled (and optimised) inside the
/// `image` crate; the generic `imageops::resize` would be compiled, unoptimised in debug
/// builds, into ours.
fn resize(gray: GrayImage, w: u32, h: u32, filter: image::imageops::FilterType) -> GrayImage {
    DynamicImage::ImageLuma8(gray)
        .resize_exact(w, h, filter)
        .into_luma8()
}

fn histogram(gray: &GrayImage) -> [u64; 256] {
    let mut hist = [0u64; 256];
    for &v in gray.as_raw() {
        hist[usize::from(v)] += 1;
    }
    hist
}

fn percentile(hist: &[u64; 256], q: f64) -> u8 {
    let total: u64 = hist.iter().sum();
    let target = (total as f64 * q) as u64;
    let mut seen = 0;
    for (v, &n) in hist.iter().enumerate() {
        seen += n;
        if seen > target {
            return v as u8;
        }
    }
    255
}

/// Width of the copy the skew is measured on: enough to resolve text lines, cheap to scan.
const SKEW_WIDTH: u32 = 400;

/// The angle (degrees, counter-clockwise positive) the text lines are turned by, found by
/// trying angles up to 8 degrees either way on a small copy and keeping the one whose row
/// profile of dark pixels is sharpest (lines of text and blank gaps between them).
fn skew_degrees(gray: &GrayImage) -> f32 {
    let (w, h) = gray.dimensions();
    let small_h = ((u64::from(h) * u64::from(SKEW_WIDTH) / u64::from(w.max(1))) as u32).max(1);
    let small = if w > SKEW_WIDTH {
        resize(
            gray.clone(),
            SKEW_WIDTH,
            small_h,
            image::imageops::FilterType::Triangle,
        )
    } else {
        gray.clone()
    };
    let sw = small.width() as usize;
    let points: Vec<(f32, f32)> = small
        .as_raw()
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v < 110)
        .map(|(i, _)| ((i % sw) as f32, (i / sw) as f32))
        .collect();
    if points.len() < 50 {
        return 0.0;
    }
    // Rows of the turned picture fall within this range for angles up to 8 degrees.
    let reach = (sw as f32 * 0.15).ceil() as i64 + 1;
    let mut rows = vec![0u64; small.height() as usize + 2 * reach as usize + 2];
    let mut score = |deg: f32| -> u64 {
        let (sin, cos) = deg.to_radians().sin_cos();
        rows.iter_mut().for_each(|n| *n = 0);
        for &(x, y) in &points {
            let row = (y * cos + x * sin).round() as i64 + reach;
            if let Some(n) = usize::try_from(row).ok().and_then(|r| rows.get_mut(r)) {
                *n += 1;
            }
        }
        rows.iter().map(|&n| n * n).sum()
    };
    let mut best = (0.0f32, score(0.0));
    for step in -32..=32 {
        let deg = step as f32 * 0.25;
        let s = score(deg);
        if s > best.1 {
            best = (deg, s);
        }
    }
    best.0
}

/// Turns `img` by `degrees` (counter-clockwise) about its centre, same size, bilinear,
/// filling with white.
fn rotate_gray(img: &GrayImage, degrees: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    GrayImage::from_fn(w, h, |x, y| {
        let dx = x as f32 - cx;
        let dy = y as f32 - cy;
        let sx = cos * dx - sin * dy + cx;
        let sy = sin * dx + cos * dy + cy;
        if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
            return Luma([255]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |x, y| f32::from(img.get_pixel(x, y)[0]);
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        Luma([(top * (1.0 - fy) + bottom * fy).round() as u8])
    })
}

/// Binary PGM: the simplest format tesseract (Leptonica) reads from stdin, with no
/// compression cost.
fn pgm(img: &GrayImage) -> Vec<u8> {
    let mut out = format!("P5\n{} {}\n255\n", img.width(), img.height()).into_bytes();
    out.extend_from_slice(img.as_raw());
    out
}
