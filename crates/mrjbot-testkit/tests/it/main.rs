//! The testkit's own tests: its fakes checked through their real HTTP interfaces (and,
//! for Telegram, through a real teloxide client), so the suites built on them can trust
//! what they emulate. One binary: each file in `tests/` would be another link.

mod telegram;
mod telegram_teloxide;
