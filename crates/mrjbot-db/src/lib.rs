//! The store: one `Db` handle over SQLite (embedded default) and PostgreSQL (production,
//! several replicas), repositories per aggregate, and the migrations of both engines.
//!
//! Both engines run the same `$1`-style SQL wherever their dialects agree. A repository
//! function is written once and compiled for both connection types by the [`on!`] macro,
//! so a query cannot drift between engines. On SQLite all writes go through a single
//! writer connection (WAL lets readers proceed); this removes `SQLITE_BUSY` on lock
//! upgrades, which `busy_timeout` does not cover.

pub mod audit;
pub mod bot;
mod conn;
mod error;
pub mod feed;
pub mod money;
pub mod nodes;
pub mod panels;
pub mod plans;
pub mod roles;
pub mod sessions;
pub mod settings;
pub mod shop;
mod sql;
pub mod stats;
pub mod subscriptions;
pub mod support;
pub mod usage;
pub mod users;

pub use conn::{Conn, Db, DbOptions, Engine, ReadConn, Tx};
pub use error::DbError;
pub use sql::{Order, Page, Sql, Val};

/// Runs `$body` with `$c` bound to the concrete connection (`&mut SqliteConnection` or
/// `&mut PgConnection`) and `$db` to the matching sqlx database type.
#[macro_export]
macro_rules! on {
    ($conn:expr, $c:ident, $db:ident => $body:expr) => {
        match $conn {
            $crate::Conn::Sqlite($c) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::Conn::Pg($c) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}

/// Binds every value of an [`Sql`] builder to a sqlx query, in order.
#[macro_export]
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for v in $args {
            q = match v {
                $crate::Val::I64(x) => q.bind(*x),
                $crate::Val::Text(x) => q.bind(x.clone()),
                $crate::Val::Bool(x) => q.bind(*x),
            };
        }
        q
    }};
}
