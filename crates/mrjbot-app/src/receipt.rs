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

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Luma};
use mrjbot_domain::receipt::{ReceiptFields, extract};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Largest receipt file accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Largest receipt picture accepted, in pixels (a 48 MP phone photo is refused; 40 MP of
/// RGBA is 160 MB to decode).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Hashes at most this many bits apart are the same receipt: measured on generated
/// receipts (`near_duplicates_are_caught`), re-encoding, resizing to 90 % and cropping a
/// few pixels moved a hash by at most 4 bits, while different receipts were at least 13 bits
/// apart.
pub const NEAR_DUPLICATE_BITS: u32 = 8;

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
    /// 64-bit perceptual hash (gradient hash, 8x8, on grayscale).
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

/// The perceptual hash: gradient hash over 9x8 grayscale samples. It was picked over mean,
/// DCT (pHash) and double-gradient hashes on the generated test set because it kept the
/// widest gap between copies of one receipt and different receipts, which all share one
/// layout and so look alike to coarser hashes.
fn phash(img: &DynamicImage) -> u64 {
    let hasher = image_hasher::HasherConfig::new()
        .hash_size(8, 8)
        .hash_alg(image_hasher::HashAlg::Gradient)
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
            .args([
                "stdin",
                "stdout",
                "-l",
                &self.langs,
                "--psm",
                &std::env::var("OCR_EXP_PSM").unwrap_or("6".into()),
                "--dpi",
                "300",
            ])
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
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// [`Ocr::read`], then the fields `mrjbot_domain::receipt::extract` finds in the text.
    pub async fn analyze(&self, bytes: &[u8]) -> Result<(String, ReceiptFields), ReceiptError> {
        let text = self.read(bytes).await?;
        let fields = extract(&text);
        Ok((text, fields))
    }
}

/// Widths between which a receipt is OCRed: smaller pictures are enlarged (small text is
/// where tesseract misreads Persian digits), larger ones reduced (time grows with pixels).
const OCR_MIN_WIDTH: u32 = 1400;
const OCR_MAX_WIDTH: u32 = 2200;

/// Turns a receipt into what tesseract reads best: grayscale, dark text on a light
/// background (dark themes inverted), contrast stretched so light-grey text turns black,
/// straightened when the photo is turned, and scaled to [`OCR_MIN_WIDTH`]..[`OCR_MAX_WIDTH`].
pub fn prepare(img: &DynamicImage) -> GrayImage {
    let mut gray = img.to_luma8();
    let (lo, background) = levels(&gray);
    let dark_theme = background < 128;
    let (ink, paper) = if dark_theme {
        (levels_high(&gray), background)
    } else {
        (lo, background)
    };
    if ink.abs_diff(paper) >= 16 && std::env::var("OCR_EXP_NOSTRETCH").is_err() {
        let (ink, paper) = (f32::from(ink), f32::from(paper));
        for p in gray.pixels_mut() {
            let t = ((f32::from(p[0]) - ink) / (paper - ink)).clamp(0.0, 1.0);
            p[0] = (t * 255.0).round() as u8;
        }
    }
    let w = gray.width();
    let min_w: u32 = std::env::var("OCR_EXP_MINW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OCR_MIN_WIDTH);
    let scale = if w < min_w {
        (min_w as f32 / w as f32).min(4.0)
    } else if w > OCR_MAX_WIDTH {
        OCR_MAX_WIDTH as f32 / w as f32
    } else {
        1.0
    };
    if (scale - 1.0).abs() > 0.05 {
        let nw = ((w as f32 * scale).round() as u32).max(1);
        let nh = ((gray.height() as f32 * scale).round() as u32).max(1);
        gray = image::imageops::resize(&gray, nw, nh, image::imageops::FilterType::CatmullRom);
    }
    let angle = skew_degrees(&gray);
    if angle.abs() >= 0.5 && std::env::var("OCR_EXP_NODESKEW").is_err() {
        gray = rotate_gray(&gray, -angle);
    }
    gray
}

/// The 1st percentile (ink) and the median (paper) of a picture.
fn levels(gray: &GrayImage) -> (u8, u8) {
    let hist = histogram(gray);
    (percentile(&hist, 0.01), percentile(&hist, 0.5))
}

/// The 99th percentile: the ink of light text on a dark background.
fn levels_high(gray: &GrayImage) -> u8 {
    percentile(&histogram(gray), 0.99)
}

fn histogram(gray: &GrayImage) -> [u64; 256] {
    let mut hist = [0u64; 256];
    for p in gray.pixels() {
        hist[usize::from(p[0])] += 1;
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

/// The angle (degrees, counter-clockwise positive) the text lines are turned by, found by
/// trying angles up to 8 degrees either way and keeping the one whose row profile of dark
/// pixels is sharpest (lines of text and blank gaps between them).
fn skew_degrees(gray: &GrayImage) -> f32 {
    let step = (gray.width() / 500).max(1);
    let mut points: Vec<(f32, f32)> = Vec::new();
    for y in (0..gray.height()).step_by(step as usize) {
        for x in (0..gray.width()).step_by(step as usize) {
            if gray.get_pixel(x, y)[0] < 110 {
                points.push((x as f32 / step as f32, y as f32 / step as f32));
            }
        }
    }
    if points.len() < 50 {
        return 0.0;
    }
    // Rows of the turned picture fall within this range for angles up to 8 degrees.
    let (w, h) = (gray.width() / step + 1, gray.height() / step + 1);
    let reach = (w as f32 * 0.15).ceil() as i64 + 1;
    let mut rows = vec![0u64; h as usize + 2 * reach as usize + 2];
    let mut score = |deg: f32| -> f64 {
        let (sin, cos) = deg.to_radians().sin_cos();
        rows.iter_mut().for_each(|n| *n = 0);
        for &(x, y) in &points {
            let row = (y * cos + x * sin).round() as i64 + reach;
            if let Some(n) = usize::try_from(row).ok().and_then(|r| rows.get_mut(r)) {
                *n += 1;
            }
        }
        rows.iter().map(|&n| (n * n) as f64).sum()
    };
    let mut best = (0.0f32, score(0.0));
    let mut deg = -8.0f32;
    while deg <= 8.0 {
        let s = score(deg);
        if s > best.1 {
            best = (deg, s);
        }
        deg += 0.25;
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
