//! Free trials: one per customer, ever. The `trials` row (primary key: the user) is
//! written in the same transaction as the trial subscription, so a second claim, even
//! one racing the first, finds the row and fails with `trial_used`; a claim that fails
//! for another reason (no node) rolls back and leaves the trial unused.
//!
//! A trial has no plan, so the plan's region cannot say which nodes serve it. Without a
//! trial region it is served like a plan without a region (every node of its IP type);
//! with one it is pinned to the least loaded serving node of that region.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::subscriptions::{SubscriptionView, fresh_row};
use mrjbot_db::shop as repo;
use mrjbot_db::{nodes as nodes_repo, subscriptions as subs_repo};
use mrjbot_domain::{Bytes, ErrorCode, SubscriptionState, SubscriptionStatus, Timestamp};
use serde::Serialize;

/// What the caller may get as a free trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrialOffer {
    /// Whether the seller gives trials.
    pub enabled: bool,
    /// Whether the caller took theirs.
    pub used: bool,
    /// Data cap in bytes.
    pub data_bytes: i64,
    /// Length in hours.
    pub hours: i64,
}

fn no_node(region: Option<&str>) -> AppError {
    AppError::new(
        ErrorCode::NoServingNode,
        match region {
            Some(r) => format!("no node of region {r} can take a new subscription now"),
            None => "no node can take a new subscription now".to_owned(),
        },
    )
}

impl App {
    /// The free trial the caller may take.
    pub async fn trial_offer(&self, actor: &Actor) -> AppResult<TrialOffer> {
        let uid = actor.user_id.ok_or_else(AppError::denied)?;
        let t = self.shop_settings().await?.trial;
        let used = repo::trial_of(self.db().read().await?.conn(), uid)
            .await?
            .is_some();
        Ok(TrialOffer {
            enabled: t.enabled,
            used,
            data_bytes: t.data_bytes,
            hours: t.hours,
        })
    }

    /// Gives the caller their one free trial: an active subscription with the seller's
    /// data cap and length, starting now.
    pub async fn claim_trial(&self, actor: &Actor) -> AppResult<SubscriptionView> {
        let uid = actor.user_id.ok_or_else(AppError::denied)?;
        let t = self.shop_settings().await?.trial;
        if !t.enabled {
            return Err(AppError::new(
                ErrorCode::TrialDisabled,
                "the shop gives no free trials now",
            ));
        }
        let now = self.now();
        let mut tx = self.db().begin().await?;
        if !repo::insert_trial(tx.conn(), uid, now.millis()).await? {
            return Err(AppError::new(
                ErrorCode::TrialUsed,
                "the free trial was already taken",
            ));
        }
        let (node_id, ip_type) = match t.region.as_deref() {
            Some(region) => {
                let (id, ip) = repo::least_loaded_node(tx.conn(), region)
                    .await?
                    .ok_or_else(|| no_node(Some(region)))?;
                (Some(id), ip)
            }
            None => {
                if nodes_repo::serving_count(tx.conn(), None).await? == 0 {
                    return Err(no_node(None));
                }
                (None, "dynamic".to_owned())
            }
        };
        let state = SubscriptionState {
            status: SubscriptionStatus::Active,
            expires_at: Some(Timestamp::from_millis(
                now.millis()
                    .saturating_add(t.hours.saturating_mul(3_600_000)),
            )),
            hold_days: 0,
            data_limit: Some(Bytes::from_i64(t.data_bytes)),
            used: Bytes(0),
            lifetime_used: Bytes(0),
        };
        let mut row = fresh_row(uid, &ip_type, state, node_id, now);
        row.note = Some("free trial".into());
        row.id = subs_repo::insert(tx.conn(), &row).await?;
        repo::set_trial_subscription(tx.conn(), uid, row.id).await?;
        self.audit(
            tx.conn(),
            actor,
            "trial.claim",
            "subscription",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::Sub(row.id)).await?;
        tracing::info!(user = uid, subscription = row.id, "free trial given");
        Ok(row.into())
    }
}
