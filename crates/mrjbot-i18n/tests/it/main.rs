//! The one integration-test binary of `mrjbot-i18n` (one binary per crate keeps link time down).

mod bytes;
mod dates;
mod ftl;
mod lang;
mod messages;
mod numbers;
