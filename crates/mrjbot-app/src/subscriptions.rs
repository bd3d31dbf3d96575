//! Subscriptions: creating them from plans and every change to them afterwards. The rules
//! for how time and data stack live in `mrjbot_domain::subscription`; this module loads
//! the row, applies the rule, and writes it back guarded by the row's version, with an
//! audit entry in the same transaction.
//!
//! Customers see their own subscriptions; everyone else's look like missing ones.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::util::max_len;
use crate::{App, ListParams};
use mrjbot_db::subscriptions::{self as repo, SubscriptionFilter, SubscriptionRow};
use mrjbot_db::{nodes as nodes_repo, plans as plans_repo, users as users_repo};
use mrjbot_domain::subscription::Start;
use mrjbot_domain::{
    Bytes, ErrorCode, IpType, Permission, PlanTerms, SecretToken, SubscriptionState,
    SubscriptionStatus, Timestamp,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A subscription as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Plan it was bought from.
    pub plan_id: Option<i64>,
    /// Status.
    pub status: SubscriptionStatus,
    /// Secret of the subscription link (absent once revoked).
    pub token: Option<String>,
    /// Link path, `/sub/{token}`.
    pub subscription_url: Option<String>,
    /// Expiry (absent while on hold).
    pub expires_at: Option<Timestamp>,
    /// Days waiting to start at first use.
    pub hold_days: i64,
    /// Data limit of the period in bytes (absent: unlimited).
    pub data_limit_bytes: Option<i64>,
    /// Data used in the period.
    pub used_bytes: i64,
    /// Data used over the whole life.
    pub lifetime_used_bytes: i64,
    /// Simultaneous devices (absent: unlimited).
    pub device_limit: Option<i64>,
    /// Constant or dynamic IP.
    pub ip_type: IpType,
    /// Pinned node (constant IP).
    pub node_id: Option<i64>,
    /// Proxy user id (VLESS / VMess UUID).
    pub credential_uuid: String,
    /// Proxy password (Trojan / Shadowsocks / Hysteria 2).
    pub credential_secret: String,
    /// Staff note.
    pub note: Option<String>,
    /// Grows with every change.
    pub version: i64,
    /// Last seen online.
    pub online_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl From<SubscriptionRow> for SubscriptionView {
    fn from(s: SubscriptionRow) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            plan_id: s.plan_id,
            status: SubscriptionStatus::parse(&s.status).unwrap_or(SubscriptionStatus::Disabled),
            subscription_url: s.token.as_ref().map(|t| format!("/sub/{t}")),
            token: s.token,
            expires_at: s.expires_at.map(Timestamp::from_millis),
            hold_days: s.hold_days,
            data_limit_bytes: s.data_limit_bytes,
            used_bytes: s.used_bytes,
            lifetime_used_bytes: s.lifetime_used_bytes,
            device_limit: s.device_limit,
            ip_type: IpType::parse(&s.ip_type).unwrap_or(IpType::Dynamic),
            node_id: s.node_id,
            credential_uuid: s.credential_uuid,
            credential_secret: s.credential_secret,
            note: s.note,
            version: s.version,
            online_at: s.online_at.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(s.created_at),
            updated_at: Timestamp::from_millis(s.updated_at),
        }
    }
}

/// How a new subscription starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// The clock starts now (default, or at first use if the plan says so).
    #[default]
    Now,
    /// The clock starts at first use.
    OnFirstUse,
    /// A temporary preview while a card payment waits for review.
    Temporary,
}

/// Input for a new subscription.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Owner.
    pub user_id: i64,
    /// Plan to take the terms from.
    pub plan_id: i64,
    /// How it starts (default: now, or on first use when the plan says so).
    pub start: Option<StartMode>,
    /// Share of the plan's data for a temporary preview (1-100, default 10).
    #[schema(minimum = 1, maximum = 100)]
    pub temporary_percent: Option<u8>,
    /// Days of a temporary preview (1-30, default 3).
    #[schema(minimum = 1, maximum = 30)]
    pub temporary_days: Option<i64>,
    /// Pin to a node (constant IP).
    pub node_id: Option<i64>,
    /// Staff note (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

/// Renewal input.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewInput {
    /// Plan to renew with (default: the subscription's plan).
    pub plan_id: Option<i64>,
}

/// Extension input.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendInput {
    /// Days to add (1-3650).
    #[schema(minimum = 1, maximum = 3650)]
    pub days: i64,
}

/// Extra data input.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDataInput {
    /// Bytes to add (more than zero).
    #[schema(minimum = 1)]
    pub bytes: i64,
}

/// Editable fields.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    /// Staff note (empty clears; at most 1000 characters).
    #[schema(max_length = 1000)]
    pub note: Option<String>,
    /// Device limit (0 clears).
    #[schema(minimum = 0, maximum = 1000)]
    pub device_limit: Option<i64>,
    /// Pinned node (0 unpins).
    #[schema(minimum = 0)]
    pub node_id: Option<i64>,
}

/// Query for listing subscriptions.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionQuery {
    /// Owner.
    pub user_id: Option<i64>,
    /// Status.
    pub status: Option<SubscriptionStatus>,
    /// Plan.
    pub plan_id: Option<i64>,
}

fn not_found() -> AppError {
    AppError::not_found(ErrorCode::SubscriptionNotFound, "subscription")
}

/// A new subscription row from a plan with fresh credentials and link token.
pub(crate) fn new_row(
    user_id: i64,
    plan: &mrjbot_db::plans::PlanRow,
    state: SubscriptionState,
    node_id: Option<i64>,
    now: Timestamp,
) -> SubscriptionRow {
    let mut row = fresh_row(user_id, &plan.ip_type, state, node_id, now);
    row.plan_id = Some(plan.id);
    row.device_limit = plan.device_limit;
    row
}

/// A new subscription row without a plan (a free trial), with fresh credentials and
/// link token.
pub(crate) fn fresh_row(
    user_id: i64,
    ip_type: &str,
    state: SubscriptionState,
    node_id: Option<i64>,
    now: Timestamp,
) -> SubscriptionRow {
    let mut row = SubscriptionRow {
        id: 0,
        user_id,
        plan_id: None,
        token: Some(SecretToken::generate().as_str().to_owned()),
        status: String::new(),
        expires_at: None,
        hold_days: 0,
        data_limit_bytes: None,
        used_bytes: 0,
        lifetime_used_bytes: 0,
        device_limit: None,
        ip_type: ip_type.to_owned(),
        node_id,
        credential_uuid: new_uuid(),
        credential_secret: new_secret(),
        note: None,
        version: 1,
        online_at: None,
        created_at: now.millis(),
        updated_at: now.millis(),
    };
    apply_state(&mut row, state);
    row
}

fn new_uuid() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(crate) fn new_secret() -> String {
    // 24 base64url characters = 144 bits, valid as a Trojan / Hysteria 2 password.
    SecretToken::generate().as_str()[..24].to_owned()
}

pub(crate) fn state_of(s: &SubscriptionRow) -> SubscriptionState {
    SubscriptionState {
        status: SubscriptionStatus::parse(&s.status).unwrap_or(SubscriptionStatus::Disabled),
        expires_at: s.expires_at.map(Timestamp::from_millis),
        hold_days: s.hold_days,
        data_limit: s.data_limit_bytes.map(Bytes::from_i64),
        used: Bytes::from_i64(s.used_bytes),
        lifetime_used: Bytes::from_i64(s.lifetime_used_bytes),
    }
}

pub(crate) fn apply_state(s: &mut SubscriptionRow, st: SubscriptionState) {
    s.status = st.status.as_str().to_owned();
    s.expires_at = st.expires_at.map(Timestamp::millis);
    s.hold_days = st.hold_days;
    s.data_limit_bytes = st.data_limit.map(Bytes::as_i64);
    s.used_bytes = st.used.as_i64();
    s.lifetime_used_bytes = st.lifetime_used.as_i64();
}

/// One change to a subscription, as the service applies it.
enum Change {
    Renew(PlanTerms, Option<i64>),
    Extend(i64),
    AddData(Bytes),
    Suspend,
    Activate,
    ResetTraffic,
    RotateToken,
    RevokeToken,
    Edit(SubscriptionPatch),
}

impl App {
    pub(crate) async fn plan_terms(
        &self,
        plan_id: i64,
    ) -> AppResult<(mrjbot_db::plans::PlanRow, PlanTerms)> {
        let plan = plans_repo::get(self.db().read().await?.conn(), plan_id)
            .await?
            .ok_or_else(|| AppError::field("plan_id", "no such plan"))?;
        let terms = PlanTerms::new(
            plan.duration_days,
            plan.data_limit_bytes.map(Bytes::from_i64),
        )?;
        Ok((plan, terms))
    }

    /// Creates a subscription for a user from a plan (needs `subscriptions.write`).
    pub async fn create_subscription(
        &self,
        actor: &Actor,
        input: NewSubscription,
    ) -> AppResult<SubscriptionView> {
        actor.require(Permission::SubscriptionsWrite)?;
        let now = self.now();
        let (plan, terms) = self.plan_terms(input.plan_id).await?;
        let start = match input.start.unwrap_or(if plan.start_on_first_use {
            StartMode::OnFirstUse
        } else {
            StartMode::Now
        }) {
            StartMode::Now => Start::Now,
            StartMode::OnFirstUse => Start::OnFirstUse,
            StartMode::Temporary => Start::Temporary {
                percent: input.temporary_percent.unwrap_or(10),
                days: input.temporary_days.unwrap_or(3),
            },
        };
        let state = SubscriptionState::new(terms, start, now)?;
        if let Some(n) = &input.note {
            max_len("note", n, 1000)?;
        }
        let mut tx = self.db().begin().await?;
        users_repo::get(tx.conn(), input.user_id)
            .await?
            .ok_or_else(|| AppError::field("user_id", "no such user"))?;
        if let Some(n) = input.node_id {
            nodes_repo::get(tx.conn(), n)
                .await?
                .ok_or_else(|| AppError::field("node_id", "no such node"))?;
        }
        let mut row = new_row(input.user_id, &plan, state, input.node_id, now);
        row.note = input
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        row.id = repo::insert(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "subscription.create",
            "subscription",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        self.commit_changed(tx, Changed::Sub(row.id)).await?;
        Ok(row.into())
    }

    /// One subscription: one's own, or any with `subscriptions.read`.
    pub async fn get_subscription(&self, actor: &Actor, id: i64) -> AppResult<SubscriptionView> {
        let row = repo::get(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(not_found)?;
        if !actor.is(row.user_id) && !actor.can(Permission::SubscriptionsRead) {
            return Err(not_found());
        }
        Ok(row.into())
    }

    /// A page of subscriptions: one's own, or all with `subscriptions.read`.
    pub async fn list_subscriptions(
        &self,
        actor: &Actor,
        q: SubscriptionQuery,
        params: &ListParams,
    ) -> AppResult<(Vec<SubscriptionView>, i64)> {
        let page = params.page(&["id", "created_at", "expires_at", "used_bytes"], "id")?;
        let user_id = if actor.can(Permission::SubscriptionsRead) {
            q.user_id
        } else {
            let me = actor.user_id.ok_or_else(AppError::denied)?;
            if q.user_id.is_some_and(|u| u != me) {
                return Ok((Vec::new(), 0));
            }
            Some(me)
        };
        let filter = SubscriptionFilter {
            user_id,
            status: q.status.map(|s| s.as_str().to_owned()),
            plan_id: q.plan_id,
            expires_before: None,
        };
        let (rows, total) = repo::list(self.db().read().await?.conn(), &filter, page).await?;
        Ok((
            rows.into_iter().map(SubscriptionView::from).collect(),
            total,
        ))
    }

    async fn change(
        &self,
        actor: &Actor,
        id: i64,
        action: &str,
        change: Change,
    ) -> AppResult<SubscriptionView> {
        self.change_checked(actor, id, action, change, false).await
    }

    /// Issues a new link for one's own subscription (or any, for staff).
    pub async fn rotate_own_link(&self, actor: &Actor, id: i64) -> AppResult<SubscriptionView> {
        self.change_checked(
            actor,
            id,
            "subscription.rotate_token",
            Change::RotateToken,
            true,
        )
        .await
    }

    /// Pins one's own subscription (or any, for staff) to a node serving its IP type: the
    /// customer's "change location". The node must be enabled and not down.
    pub async fn move_subscription(
        &self,
        actor: &Actor,
        id: i64,
        node_id: i64,
    ) -> AppResult<SubscriptionView> {
        let node = nodes_repo::get(self.db().read().await?.conn(), node_id)
            .await?
            .filter(|n| n.is_enabled && n.status != "down")
            .ok_or_else(|| AppError::field("node_id", "no such location is serving now"))?;
        let sub = self.get_subscription(actor, id).await?;
        if node.ip_type != sub.ip_type.as_str() {
            return Err(AppError::field(
                "node_id",
                "that location serves another IP type",
            ));
        }
        let patch = SubscriptionPatch {
            node_id: Some(node_id),
            ..Default::default()
        };
        self.change_checked(actor, id, "subscription.move", Change::Edit(patch), true)
            .await
    }

    /// Locations a subscription can move to: one serving node per region (the least
    /// loaded), for its IP type. `(region, node id)`, sorted by region.
    pub async fn locations_for(&self, actor: &Actor, id: i64) -> AppResult<Vec<(String, i64)>> {
        let sub = self.get_subscription(actor, id).await?;
        let mut c = self.db().read().await?;
        let (nodes, _) = nodes_repo::all_with_inbounds(c.conn()).await?;
        let mut best: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
        for n in nodes {
            if !n.is_enabled || n.status == "down" || n.ip_type != sub.ip_type.as_str() {
                continue;
            }
            let Some(region) = n.region.clone() else {
                continue;
            };
            let load = repo::count_on_node(c.conn(), n.id).await?;
            let e = best.entry(region).or_insert((n.id, load));
            if load < e.1 {
                *e = (n.id, load);
            }
        }
        Ok(best.into_iter().map(|(r, (n, _))| (r, n)).collect())
    }

    async fn change_checked(
        &self,
        actor: &Actor,
        id: i64,
        action: &str,
        change: Change,
        owner_may: bool,
    ) -> AppResult<SubscriptionView> {
        let staff = actor.can(Permission::SubscriptionsWrite);
        if !staff && !owner_may {
            return Err(AppError::denied());
        }
        let renew_plan = match &change {
            Change::Renew(_, Some(p)) => Some(*p),
            _ => None,
        };
        for _attempt in 0..5 {
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let before = repo::get_for_update(tx.conn(), id)
                .await?
                .ok_or_else(not_found)?;
            if !staff && !actor.is(before.user_id) {
                return Err(not_found());
            }
            let mut row = before.clone();
            let st = state_of(&row);
            match &change {
                Change::Renew(terms, _) => {
                    apply_state(&mut row, st.renew(*terms, now)?);
                    if renew_plan.is_some() {
                        row.plan_id = renew_plan;
                    }
                }
                Change::Extend(days) => apply_state(&mut row, st.extend(*days, now)?),
                Change::AddData(b) => apply_state(&mut row, st.add_data(*b, now)?),
                Change::Suspend => apply_state(&mut row, st.suspend()?),
                Change::Activate => apply_state(&mut row, st.activate(now)?),
                Change::ResetTraffic => apply_state(&mut row, st.reset_traffic(now)),
                Change::RotateToken => {
                    row.token = Some(SecretToken::generate().as_str().to_owned())
                }
                Change::RevokeToken => {
                    if row.token.is_none() {
                        return Err(AppError::new(
                            ErrorCode::InvalidSubscriptionTransition,
                            "the link is already revoked",
                        ));
                    }
                    row.token = None;
                }
                Change::Edit(p) => {
                    if let Some(n) = &p.note {
                        max_len("note", n, 1000)?;
                        row.note = Some(n.trim().to_owned()).filter(|n| !n.is_empty());
                    }
                    if let Some(d) = p.device_limit {
                        if !(0..=1000).contains(&d) {
                            return Err(AppError::field(
                                "device_limit",
                                "must be between 0 and 1000",
                            ));
                        }
                        row.device_limit = (d != 0).then_some(d);
                    }
                    if let Some(n) = p.node_id {
                        if n != 0 {
                            nodes_repo::get(tx.conn(), n)
                                .await?
                                .ok_or_else(|| AppError::field("node_id", "no such node"))?;
                        }
                        row.node_id = (n != 0).then_some(n);
                    }
                }
            }
            row.updated_at = now.millis();
            if !repo::update_guarded(tx.conn(), &row).await? {
                // Changed under us (usage report, another admin): try again on fresh data.
                continue;
            }
            row.version += 1;
            self.audit(
                tx.conn(),
                actor,
                action,
                "subscription",
                Some(id),
                Some(&before),
                Some(&row),
            )
            .await?;
            self.commit_changed(tx, Changed::Sub(id)).await?;
            return Ok(row.into());
        }
        Err(AppError::new(
            ErrorCode::Unavailable,
            "the subscription is changing too fast; try again",
        ))
    }

    /// Renews with a plan (default: its own); see the stacking rules.
    pub async fn renew_subscription(
        &self,
        actor: &Actor,
        id: i64,
        input: RenewInput,
    ) -> AppResult<SubscriptionView> {
        actor.require(Permission::SubscriptionsWrite)?;
        let plan_id = match input.plan_id {
            Some(p) => p,
            None => repo::get(self.db().read().await?.conn(), id)
                .await?
                .ok_or_else(not_found)?
                .plan_id
                .ok_or_else(|| {
                    AppError::field(
                        "plan_id",
                        "the subscription's plan was deleted; name a plan",
                    )
                })?,
        };
        let (_, terms) = self.plan_terms(plan_id).await?;
        self.change(
            actor,
            id,
            "subscription.renew",
            Change::Renew(terms, input.plan_id),
        )
        .await
    }

    /// Adds days.
    pub async fn extend_subscription(
        &self,
        actor: &Actor,
        id: i64,
        input: ExtendInput,
    ) -> AppResult<SubscriptionView> {
        self.change(actor, id, "subscription.extend", Change::Extend(input.days))
            .await
    }

    /// Adds data.
    pub async fn add_data(
        &self,
        actor: &Actor,
        id: i64,
        input: AddDataInput,
    ) -> AppResult<SubscriptionView> {
        if input.bytes <= 0 {
            return Err(AppError::field("bytes", "must be more than zero"));
        }
        self.change(
            actor,
            id,
            "subscription.add_data",
            Change::AddData(Bytes::from_i64(input.bytes)),
        )
        .await
    }

    /// Disables.
    pub async fn suspend_subscription(
        &self,
        actor: &Actor,
        id: i64,
    ) -> AppResult<SubscriptionView> {
        self.change(actor, id, "subscription.suspend", Change::Suspend)
            .await
    }

    /// Re-enables.
    pub async fn activate_subscription(
        &self,
        actor: &Actor,
        id: i64,
    ) -> AppResult<SubscriptionView> {
        self.change(actor, id, "subscription.activate", Change::Activate)
            .await
    }

    /// Zeroes the period's traffic.
    pub async fn reset_traffic(&self, actor: &Actor, id: i64) -> AppResult<SubscriptionView> {
        self.change(
            actor,
            id,
            "subscription.reset_traffic",
            Change::ResetTraffic,
        )
        .await
    }

    /// Issues a new link; the old one stops working.
    pub async fn rotate_token(&self, actor: &Actor, id: i64) -> AppResult<SubscriptionView> {
        self.change(actor, id, "subscription.rotate_token", Change::RotateToken)
            .await
    }

    /// Revokes the link without issuing a new one (rotate to issue one again).
    pub async fn revoke_token(&self, actor: &Actor, id: i64) -> AppResult<SubscriptionView> {
        self.change(actor, id, "subscription.revoke_token", Change::RevokeToken)
            .await
    }

    /// Edits note, device limit and pinned node.
    pub async fn update_subscription(
        &self,
        actor: &Actor,
        id: i64,
        p: SubscriptionPatch,
    ) -> AppResult<SubscriptionView> {
        self.change(actor, id, "subscription.update", Change::Edit(p))
            .await
    }

    /// Deletes a subscription (needs `subscriptions.write`).
    pub async fn delete_subscription(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::SubscriptionsWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get(tx.conn(), id).await?.ok_or_else(not_found)?;
        repo::delete(tx.conn(), id).await?;
        self.audit(
            tx.conn(),
            actor,
            "subscription.delete",
            "subscription",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        self.commit_changed(tx, Changed::Sub(id)).await?;
        Ok(())
    }

    /// Moves subscriptions whose expiry has passed to `expired` (scheduler). Returns how
    /// many changed.
    pub async fn expire_due(&self) -> AppResult<usize> {
        let now = self.now();
        let ids = repo::due_for_expiry(self.db().read().await?.conn(), now.millis(), 500).await?;
        let mut changed = 0;
        for id in ids {
            let mut tx = self.db().begin().await?;
            let Some(mut row) = repo::get(tx.conn(), id).await? else {
                continue;
            };
            let st = state_of(&row);
            let next = st.evaluate(now);
            if next != st.status {
                apply_state(&mut row, SubscriptionState { status: next, ..st });
                row.updated_at = now.millis();
                if repo::update_guarded(tx.conn(), &row).await? {
                    self.commit_changed(tx, Changed::Sub(id)).await?;
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
}
