//! The vocabulary of MRJBot: values that parse (money, bytes, identifiers, tokens),
//! the subscription state machine with its stacking rules, permissions and the flat
//! list of error codes every front door renders.
//!
//! Everything here is pure: no I/O, no async runtime, no database. A value of one of
//! these types that exists is valid, so the layers above never re-check it.

pub mod bytes;
pub mod document;
pub mod error;
pub mod ids;
pub mod money;
pub mod permission;
pub mod proxy;
pub mod receipt;
pub mod share;
pub mod subscription;
pub mod time;

pub use bytes::Bytes;
pub use error::{DomainError, ErrorCode};
pub use ids::{Email, SecretToken, TelegramId, Username};
pub use money::{Currency, Money};
pub use permission::{BuiltinRole, Permission};
pub use proxy::{
    Credentials, InboundSettings, Network, Protocol, Proxy, Security, ShareLink, Tls, Transport,
};
pub use subscription::{IpType, PlanTerms, SubscriptionState, SubscriptionStatus};
pub use time::Timestamp;
