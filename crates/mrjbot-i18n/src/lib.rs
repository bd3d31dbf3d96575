//! Everything MRJBot shows a person in their own language: Persian (`fa`), English (`en`) and
//! Russian (`ru`).
//!
//! The bot, the dashboard and the subscription page all need the same words, numbers and dates,
//! so they live here once, with no dependency on the rest of the workspace. The crate
//! guarantees that:
//!
//! - every public function is total: it returns a string (or `None` for input that cannot be a
//!   language or a date) and never panics;
//! - Persian output uses Persian digits (`۰`-`۹`) and separators (`٬`, `٫`) and Jalali dates;
//!   Russian output uses the correct plural forms; English is the fallback for any message that
//!   a translation lacks;
//! - the three `.ftl` files define the same set of messages (checked by a test).

mod date;
mod lang;
mod messages;
mod number;

pub use date::{
    IRAN_OFFSET_MINUTES, format_date, format_date_in, from_jalali, is_jalali_leap_year, to_jalali,
};
pub use lang::Lang;
pub use messages::{Arg, format_days_left, status_emoji, t, t_args};
pub use number::{format_bytes, format_decimal, format_int, normalize_digits, persian_digits};
