//! Files like Telegram keeps them: a photo (sent by a user or the bot) becomes a
//! `PhotoSize` array of two sizes (a thumbnail that fits 90x90 and the original bytes),
//! a document keeps its name and MIME type; each size has a new, stable `file_id` and
//! `file_unique_id` and a `file_path` that `getFile` returns and
//! `GET /file/bot{token}/{file_path}` serves. The bot can send a file as a multipart
//! upload (a part named after the field, or `attach://name`), by `file_id`, or by URL
//! (fetched like Telegram does).

use super::state::{ApiError, Inner, Shared, StoredFile};
use crate::fakes::params::Params;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use image::{DynamicImage, ImageFormat};
use serde_json::{Value, json};
use std::io::Cursor;
use std::sync::Arc;

/// `getFile` refuses files bigger than this (Telegram: 20 MB).
const MAX_DOWNLOAD: usize = 20 * 1024 * 1024;
/// The thumbnail size.
const THUMB: u32 = 90;

/// A file the bot wants to send.
#[derive(Debug)]
pub(super) enum Input {
    /// New bytes.
    Upload {
        bytes: Vec<u8>,
        file_name: Option<String>,
        mime: Option<String>,
    },
    /// A file Telegram already has.
    Existing(String),
    /// To be fetched from the URL.
    Url(String),
}

/// What kind of media a send method carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Photo,
    Document,
}

impl Kind {
    /// The parameter and the Message field.
    pub(super) fn field(self) -> &'static str {
        match self {
            Kind::Photo => "photo",
            Kind::Document => "document",
        }
    }
}

fn wrong_file() -> ApiError {
    ApiError::bad_request("wrong file identifier/HTTP URL specified")
}

/// Reads the file parameter `field`.
pub(super) fn input(p: &Params, field: &str) -> Result<Input, ApiError> {
    let from_upload = |u: &crate::fakes::params::Upload| Input::Upload {
        bytes: u.bytes.clone(),
        file_name: u.file_name.clone(),
        mime: u.content_type.clone(),
    };
    if let Some(upload) = p.upload(field) {
        return Ok(from_upload(upload));
    }
    let value = p.str(field)?.ok_or_else(|| ApiError::required(field))?;
    let value = value.trim();
    if let Some(name) = value.strip_prefix("attach://") {
        return p.upload(name).map(from_upload).ok_or_else(wrong_file);
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        return Ok(Input::Url(value.to_owned()));
    }
    if value.is_empty() {
        return Err(wrong_file());
    }
    Ok(Input::Existing(value.to_owned()))
}

/// Fetches a URL input, as Telegram does before sending.
pub(super) async fn fetch(shared: &Shared, input: Input) -> Result<Input, ApiError> {
    let Input::Url(url) = input else {
        return Ok(input);
    };
    let failed = || ApiError::bad_request("failed to get HTTP URL content");
    let resp = shared.http.get(&url).send().await.map_err(|_| failed())?;
    if !resp.status().is_success() {
        return Err(failed());
    }
    let mime = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let file_name = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
        .filter(|n| !n.is_empty());
    let bytes = resp.bytes().await.map_err(|_| failed())?.to_vec();
    Ok(Input::Upload {
        bytes,
        file_name,
        mime,
    })
}

fn extension(file_name: Option<&str>) -> Option<String> {
    file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn mime_for(ext: Option<&str>) -> &'static str {
    match ext {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        Some("zip") => "application/zip",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

impl Inner {
    fn add_file(&mut self, file: StoredFile) {
        self.files.insert(file.file_id.clone(), file);
    }

    /// Stores a photo and returns its `PhotoSize` array; `Err` if the bytes are no image.
    pub(super) fn store_photo(&mut self, bytes: Vec<u8>) -> Result<Value, String> {
        let format = image::guess_format(&bytes).map_err(|e| e.to_string())?;
        let img = image::load_from_memory(&bytes).map_err(|e| e.to_string())?;
        let thumb = DynamicImage::ImageRgb8(img.thumbnail(THUMB, THUMB).to_rgb8());
        let mut small = Vec::new();
        thumb
            .write_to(&mut Cursor::new(&mut small), ImageFormat::Jpeg)
            .map_err(|e| e.to_string())?;
        let ext = format.extensions_str().first().copied().unwrap_or("jpg");
        let sizes = [
            (small, "jpg", thumb.width(), thumb.height()),
            (bytes, ext, img.width(), img.height()),
        ];
        let mut stored = Vec::new();
        let mut set = Vec::new();
        for (bytes, ext, width, height) in sizes {
            let (file_id, unique_id, path) = self.next_file_ids("AgAC", "photos", ext);
            set.push(json!({
                "file_id": file_id,
                "file_unique_id": unique_id,
                "file_size": bytes.len(),
                "width": width,
                "height": height,
            }));
            stored.push(StoredFile {
                file_id,
                unique_id,
                mime: Some(format.to_mime_type().to_owned()),
                file_name: None,
                bytes,
                path,
                photo_set: None,
            });
        }
        let set = Value::Array(set);
        for mut file in stored {
            file.photo_set = Some(set.clone());
            self.add_file(file);
        }
        Ok(set)
    }

    /// Stores a document and returns its `Document` object.
    pub(super) fn store_document(
        &mut self,
        bytes: Vec<u8>,
        file_name: Option<String>,
        mime: Option<String>,
    ) -> Value {
        let ext = extension(file_name.as_deref());
        let mime = mime
            .filter(|m| !m.is_empty() && m != "application/octet-stream")
            .unwrap_or_else(|| mime_for(ext.as_deref()).to_owned());
        let (file_id, unique_id, path) =
            self.next_file_ids("BQAC", "documents", ext.as_deref().unwrap_or("bin"));
        let file_name = file_name.unwrap_or_else(|| format!("file_{}", self.next_file));
        let doc = json!({
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_name": file_name,
            "mime_type": mime,
            "file_size": bytes.len(),
        });
        self.add_file(StoredFile {
            file_id,
            unique_id,
            bytes,
            file_name: Some(file_name),
            mime: Some(mime),
            path,
            photo_set: None,
        });
        doc
    }

    /// The Message field for `kind` made from `input` (already fetched).
    pub(super) fn media(&mut self, kind: Kind, input: Input) -> Result<Value, ApiError> {
        match input {
            Input::Upload {
                bytes,
                file_name,
                mime,
            } => match kind {
                Kind::Photo => self
                    .store_photo(bytes)
                    .map_err(|_| ApiError::bad_request("IMAGE_PROCESS_FAILED")),
                Kind::Document => Ok(self.store_document(bytes, file_name, mime)),
            },
            Input::Existing(file_id) => {
                let file = self.files.get(&file_id).ok_or_else(wrong_file)?;
                match (kind, &file.photo_set) {
                    (Kind::Photo, Some(set)) => Ok(set.clone()),
                    (Kind::Document, None) => Ok(json!({
                        "file_id": file.file_id,
                        "file_unique_id": file.unique_id,
                        "file_name": file.file_name,
                        "mime_type": file.mime,
                        "file_size": file.bytes.len(),
                    })),
                    _ => Err(ApiError::bad_request("type of file mismatch")),
                }
            }
            Input::Url(_) => Err(wrong_file()),
        }
    }
}

/// `getFile`.
pub(super) fn get_file(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let file_id = p
        .str("file_id")?
        .ok_or_else(|| ApiError::required("file_id"))?;
    let st = shared.lock();
    let file = st
        .files
        .get(&file_id)
        .ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
    if file.bytes.len() > MAX_DOWNLOAD {
        return Err(ApiError::bad_request("file is too big"));
    }
    Ok(json!({
        "file_id": file.file_id,
        "file_unique_id": file.unique_id,
        "file_size": file.bytes.len(),
        "file_path": file.path,
    }))
}

/// `GET /file/bot{token}/{file_path}`.
pub(super) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return ApiError::new(401, "Unauthorized").into_response();
    }
    let st = shared.lock();
    match st.files.values().find(|f| f.path == path) {
        Some(f) => (
            [(
                header::CONTENT_TYPE,
                f.mime
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
            )],
            f.bytes.clone(),
        )
            .into_response(),
        None => ApiError::not_found().into_response(),
    }
}
