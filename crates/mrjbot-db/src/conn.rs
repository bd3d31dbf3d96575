//! Connecting, migrating and handing out connections and transactions.

use crate::error::DbError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine a `Db` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Engine {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// Most connections in the pool (readers on SQLite).
    pub max_connections: u32,
    /// How long to wait for a connection or a lock.
    pub acquire_timeout: Duration,
}

impl DbOptions {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// The SQLite file of `data_dir`.
    pub fn sqlite_in(data_dir: &std::path::Path) -> Self {
        Self::new(format!("sqlite://{}", data_dir.join("mrjbot.db").display()))
    }
}

/// The database handle: cheap to clone, shared by every request.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite: a reader pool and a single-connection writer pool on the same file.
    Sqlite {
        /// Readers.
        reader: SqlitePool,
        /// The one writer.
        writer: SqlitePool,
    },
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A connection borrowed from a pool or a transaction.
pub enum Conn<'a> {
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    Pg(&'a mut PgConnection),
}

impl Conn<'_> {
    /// Borrows it again, for one more call with the same connection.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Pg(c) => Conn::Pg(c),
        }
    }
}

/// A pooled read connection.
pub enum ReadConn {
    /// SQLite.
    Sqlite(PoolConnection<Sqlite>),
    /// PostgreSQL.
    Pg(PoolConnection<Postgres>),
}

impl ReadConn {
    /// Borrows it for one query.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            ReadConn::Sqlite(c) => Conn::Sqlite(c),
            ReadConn::Pg(c) => Conn::Pg(c),
        }
    }
}

/// A write transaction; dropped without `commit` it rolls back.
pub enum Tx {
    /// SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Pg(Transaction<'static, Postgres>),
}

impl Tx {
    /// Borrows it for one query.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Pg(t) => Conn::Pg(t),
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

impl Db {
    /// Connects (creating the SQLite file and its directory if missing). Does not migrate.
    pub async fn connect(opts: &DbOptions) -> Result<Db, DbError> {
        let url = opts.url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let co = PgConnectOptions::from_str(url).map_err(|_| DbError::BadUrl(redact(url)))?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .min_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(co)
                .await?;
            return Ok(Db::Postgres(pool));
        }
        let path = sqlite_path(url).ok_or_else(|| DbError::BadUrl(redact(url)))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
        }
        let co = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(opts.acquire_timeout)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-8000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(co.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .min_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(co.read_only(true))
            .await?;
        Ok(Db::Sqlite { reader, writer })
    }

    /// Applies pending migrations of this engine.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
            Db::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite { .. } => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// A connection for reads.
    pub async fn read(&self) -> Result<ReadConn, DbError> {
        Ok(match self {
            Db::Sqlite { reader, .. } => ReadConn::Sqlite(reader.acquire().await?),
            Db::Postgres(p) => ReadConn::Pg(p.acquire().await?),
        })
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Db::Sqlite { writer, .. } => Tx::Sqlite(writer.begin().await?),
            Db::Postgres(p) => Tx::Pg(p.begin().await?),
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut c = self.read().await?;
        crate::on!(c.conn(), c, _D => { sqlx::query("SELECT 1").execute(&mut *c).await?; });
        Ok(())
    }

    /// Pool figures for metrics: (open connections, idle connections).
    pub fn pool_stats(&self) -> (u32, usize) {
        match self {
            Db::Sqlite { reader, writer } => (
                reader.size() + writer.size(),
                reader.num_idle() + writer.num_idle(),
            ),
            Db::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    /// Closes every connection (checkpointing the SQLite WAL).
    pub async fn close(&self) {
        match self {
            Db::Sqlite { reader, writer } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }

    /// Column names, nullability and normalised type of every table, for comparing the
    /// two engines' schemas. Types normalise to `int`, `text`, `bool`, `float`.
    pub async fn describe_schema(&self) -> Result<Vec<(String, String, String, bool)>, DbError> {
        let mut rc = self.read().await?;
        let rows: Vec<(String, String, String, bool)> = match rc.conn() {
            Conn::Sqlite(c) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
                )
                .fetch_all(&mut *c)
                .await?;
                let mut out = Vec::new();
                for (t,) in tables {
                    let cols: Vec<(String, String, i64, i64)> =
                        sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1) ORDER BY cid")
                            .bind(&t)
                            .fetch_all(&mut *c)
                            .await?;
                    for (name, ty, notnull, pk) in cols {
                        let ty = match ty.to_uppercase().as_str() {
                            "INTEGER" => "int",
                            "REAL" => "float",
                            "BLOB" => "bytes",
                            _ => "text",
                        };
                        out.push((t.clone(), name, ty.to_owned(), notnull == 1 || pk > 0));
                    }
                }
                out
            }
            Conn::Pg(c) => {
                let cols: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY table_name, ordinal_position",
                )
                .fetch_all(&mut *c)
                .await?;
                cols.into_iter()
                    .map(|(t, n, ty, nullable)| {
                        let ty = match ty.as_str() {
                            "bigint" | "integer" | "smallint" => "int",
                            "boolean" => "int",
                            "double precision" | "real" => "float",
                            "bytea" => "bytes",
                            _ => "text",
                        };
                        (t, n, ty.to_owned(), nullable == "NO")
                    })
                    .collect()
            }
        };
        Ok(rows)
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
