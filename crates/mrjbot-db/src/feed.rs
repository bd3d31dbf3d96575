//! The feed of the in-memory subscription read path: the rows it is built from and
//! the change notifications that keep every replica's copy exact.
//!
//! A change is announced inside the transaction that makes it (`pg_notify` is
//! transactional on PostgreSQL: delivered on commit, dropped on rollback), so a replica
//! can never miss a committed change while its listener is connected; after a reconnect
//! it reloads everything. SQLite is a single process: the service layer applies its own
//! changes directly and [`announce`] does nothing.

use crate::nodes::{InboundRow, NodeRow};
use crate::{Conn, Db, DbError, on};
use sqlx::postgres::PgListener;

/// The channel every replica listens on.
pub const CHANNEL: &str = "mrjbot_changes";

/// What a subscription document needs of a subscription (and its owner).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FeedSub {
    pub id: i64,
    pub user_id: i64,
    pub plan_id: Option<i64>,
    pub token: String,
    pub status: String,
    pub expires_at: Option<i64>,
    pub hold_days: i64,
    pub data_limit_bytes: Option<i64>,
    pub used_bytes: i64,
    pub ip_type: String,
    pub node_id: Option<i64>,
    pub credential_uuid: String,
    pub credential_secret: String,
    pub version: i64,
    pub username: Option<String>,
}

const SUB_SELECT: &str = "SELECT s.id, s.user_id, s.plan_id, s.token, s.status, s.expires_at, s.hold_days, \
    s.data_limit_bytes, s.used_bytes, s.ip_type, s.node_id, s.credential_uuid, s.credential_secret, s.version, \
    u.username FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE s.token IS NOT NULL";

/// Every subscription that has a link, handed to `f` one row at a time (100,000 rows
/// never sit in memory twice).
pub async fn for_each_sub(c: Conn<'_>, mut f: impl FnMut(FeedSub)) -> Result<usize, DbError> {
    use futures_util::TryStreamExt as _;
    let mut n = 0;
    on!(c, c, D => {
        let mut rows = sqlx::query_as::<D, FeedSub>(SUB_SELECT).fetch(&mut *c);
        while let Some(row) = rows.try_next().await? {
            f(row);
            n += 1;
        }
    });
    Ok(n)
}

/// The subscriptions among `ids` that have a link (absent ids were deleted or revoked).
pub async fn subs_by_ids(c: Conn<'_>, ids: &[i64]) -> Result<Vec<FeedSub>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    on!(c, c, D => {
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!("{SUB_SELECT} AND s.id IN ({list})");
            out.extend(sqlx::query_as::<D, FeedSub>(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *c).await?);
        }
    });
    Ok(out)
}

/// Data used by subscriptions changed at or after `since` (epoch ms): how replicas keep
/// the totals other replicas counted.
pub async fn used_since(c: Conn<'_>, since: i64) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(on!(c, c, D => sqlx::query_as::<D, (i64, i64)>(
        "SELECT id, used_bytes FROM subscriptions WHERE updated_at >= $1 AND token IS NOT NULL")
        .bind(since).fetch_all(&mut *c).await?))
}

/// Ids of a user's subscriptions (to refresh them when the owner changes).
pub async fn sub_ids_of_user(c: Conn<'_>, user_id: i64) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT id FROM subscriptions WHERE user_id = $1")
        .bind(user_id).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Everything but the subscriptions: nodes, inbounds, plan regions and the settings.
#[derive(Debug, Clone, Default)]
pub struct FeedTopology {
    pub nodes: Vec<NodeRow>,
    pub inbounds: Vec<InboundRow>,
    /// `(plan id, region)` of plans restricted to a region.
    pub plan_regions: Vec<(i64, String)>,
    /// The `subscription` settings document (JSON), if set.
    pub settings: Option<String>,
}

/// Loads the topology.
pub async fn topology(mut c: Conn<'_>) -> Result<FeedTopology, DbError> {
    let (nodes, inbounds) = crate::nodes::all_with_inbounds(c.reborrow()).await?;
    on!(c, c, D => {
        let plan_regions = sqlx::query_as::<D, (i64, String)>(
            "SELECT id, region FROM plans WHERE region IS NOT NULL")
            .fetch_all(&mut *c).await?;
        let settings = sqlx::query_as::<D, (String,)>("SELECT value FROM settings WHERE key = 'subscription'")
            .fetch_optional(&mut *c).await?.map(|r| r.0);
        Ok(FeedTopology { nodes, inbounds, plan_regions, settings })
    })
}

/// Announces a change to every replica when the transaction holding `c` commits
/// (PostgreSQL); does nothing on SQLite. Payloads: `s:<id>` a subscription,
/// `u:<id>` a user's subscriptions, `t` the topology, `a` signed-in actors.
pub async fn announce(c: Conn<'_>, payload: &str) -> Result<(), DbError> {
    if let Conn::Pg(c) = c {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// A connected listener on [`CHANNEL`] (PostgreSQL only).
pub struct Listener(PgListener);

impl Listener {
    /// Connects and listens; `None` on SQLite.
    pub async fn connect(db: &Db) -> Result<Option<Listener>, DbError> {
        let Db::Postgres(pool) = db else {
            return Ok(None);
        };
        let mut l = PgListener::connect_with(pool).await?;
        l.listen(CHANNEL).await?;
        Ok(Some(Listener(l)))
    }

    /// The next payload; `Ok(None)` when the connection was lost and re-established,
    /// so notifications may have been missed.
    pub async fn recv(&mut self) -> Result<Option<String>, DbError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}

/// Announces `payload` outside any transaction (best effort, PostgreSQL only).
pub async fn announce_now(db: &Db, payload: &str) -> Result<(), DbError> {
    if let Db::Postgres(pool) = db {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(pool)
            .await?;
    }
    Ok(())
}
