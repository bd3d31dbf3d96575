//! Screens: a text and an inline keyboard, shown by editing the message a button sits on
//! (so the chat does not fill with menus) or, where that is impossible, as a new message.

use crate::ShopBot;
use crate::cb::Cb;
use crate::runtime::{Ctx, no_preview};
use crate::text::tr;
use mrjbot_i18n::Lang;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ParseMode};
use teloxide::{ApiError, RequestError};

/// A keyboard under construction.
#[derive(Debug, Default, Clone)]
pub struct Kb {
    rows: Vec<Vec<InlineKeyboardButton>>,
}

impl Kb {
    /// An empty keyboard.
    pub fn new() -> Kb {
        Kb::default()
    }

    /// A row of buttons.
    pub fn row(mut self, buttons: Vec<(String, Cb)>) -> Kb {
        let row: Vec<_> = buttons
            .into_iter()
            .map(|(t, cb)| InlineKeyboardButton::callback(t, cb.encode()))
            .collect();
        if !row.is_empty() {
            self.rows.push(row);
        }
        self
    }

    /// A row of ready-made buttons.
    pub fn raw_row(mut self, row: Vec<InlineKeyboardButton>) -> Kb {
        if !row.is_empty() {
            self.rows.push(row);
        }
        self
    }

    /// A row with one button.
    pub fn button(self, text: String, cb: Cb) -> Kb {
        self.row(vec![(text, cb)])
    }

    /// A row with one link button (ignored when the URL does not parse).
    pub fn url(mut self, text: String, url: &str) -> Kb {
        if let Ok(u) = url.parse() {
            self.rows.push(vec![InlineKeyboardButton::url(text, u)]);
        }
        self
    }

    /// Buttons laid out `per_row` to a row.
    pub fn grid(mut self, buttons: Vec<(String, Cb)>, per_row: usize) -> Kb {
        for chunk in buttons.chunks(per_row.max(1)) {
            self = self.row(chunk.to_vec());
        }
        self
    }

    /// "Back" to `cb` and "Main menu" (when back is not the menu).
    pub fn back(self, lang: Lang, cb: Cb) -> Kb {
        if cb == Cb::Menu {
            self.button(tr(lang, "bot-btn-menu"), Cb::Menu)
        } else {
            self.row(vec![
                (tr(lang, "bot-btn-back"), cb),
                (tr(lang, "bot-btn-menu"), Cb::Menu),
            ])
        }
    }

    /// The Telegram markup.
    pub fn markup(self) -> InlineKeyboardMarkup {
        InlineKeyboardMarkup::new(self.rows)
    }
}

/// A screen.
pub struct Screen {
    /// HTML text.
    pub text: String,
    /// Its keyboard.
    pub kb: Kb,
}

impl Screen {
    /// A screen.
    pub fn new(text: String, kb: Kb) -> Screen {
        Screen { text, kb }
    }
}

impl ShopBot {
    /// Shows a screen: edits the message the pressed button sits on when it is a text
    /// message, else sends a new one. "Not modified" counts as shown.
    pub(crate) async fn show(&self, ctx: &Ctx, s: Screen) {
        if let (Some(mid), true) = (ctx.edit, ctx.edit_is_text) {
            let r = self
                .bot()
                .edit_message_text(ChatId(ctx.chat), mid, s.text.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_preview())
                .reply_markup(s.kb.clone().markup())
                .await;
            match r {
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => return,
                Err(e) => tracing::debug!(error = %e, "bot: edit failed; sending anew"),
            }
        }
        self.say(ctx.chat, &s.text, Some(s.kb.markup())).await;
    }

    /// Sends a screen as a new message (the answer to something typed).
    pub(crate) async fn send(&self, ctx: &Ctx, s: Screen) {
        self.say(ctx.chat, &s.text, Some(s.kb.markup())).await;
    }

    /// Sends a picture with a caption and keyboard.
    pub(crate) async fn photo(
        &self,
        chat: i64,
        png: Vec<u8>,
        caption: &str,
        kb: Kb,
    ) -> Result<Message, RequestError> {
        let mut last = None;
        for _ in 0..3 {
            let r = self
                .bot()
                .send_photo(
                    ChatId(chat),
                    InputFile::memory(png.clone()).file_name("qr.png"),
                )
                .caption(caption.to_owned())
                .parse_mode(ParseMode::Html)
                .reply_markup(kb.clone().markup())
                .await;
            match r {
                Err(RequestError::RetryAfter(s)) => {
                    tokio::time::sleep(s.duration()).await;
                    last = Some(RequestError::RetryAfter(s));
                }
                other => return other,
            }
        }
        Err(last.unwrap_or(RequestError::Api(ApiError::Unknown("retry".into()))))
    }
}

/// A QR code of `text` as a PNG (8 px per module, 4-module quiet zone).
pub fn qr_png(text: &str) -> Option<Vec<u8>> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let scale = 8usize;
    let quiet = 4usize;
    let side = (width + 2 * quiet) * scale;
    let side32 = u32::try_from(side).ok()?;
    let mut img = image::GrayImage::from_pixel(side32, side32, image::Luma([255u8]));
    for (i, c) in colors.iter().enumerate() {
        if *c != qrcode::Color::Dark {
            continue;
        }
        let (x, y) = (i % width + quiet, i / width + quiet);
        for dy in 0..scale {
            for dx in 0..scale {
                let px = u32::try_from(x * scale + dx).ok()?;
                let py = u32::try_from(y * scale + dy).ok()?;
                img.put_pixel(px, py, image::Luma([0u8]));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn qr_codes_are_png() {
        let png = super::qr_png("https://shop.example/sub/abc").unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"));
        let img = image::load_from_memory(&png).unwrap_or_else(|e| panic!("{e}"));
        assert!(img.width() >= 200);
    }
}
