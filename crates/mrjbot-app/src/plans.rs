//! Plans: what the shop sells, with one price per currency.
//!
//! Everyone signed in sees the active catalogue; `plans.read` also sees inactive plans.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::util::{clean, max_len};
use crate::{App, ListParams};
use mrjbot_db::plans::{self as repo, PlanFilter, PlanRow};
use mrjbot_domain::{Bytes, Currency, ErrorCode, IpType, Money, Permission, PlanTerms, Timestamp};
use serde::{Deserialize, Serialize};

/// A price in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Currency code.
    pub currency: Currency,
    /// Amount in minor units (cents, kopeks, rials, stars).
    #[schema(minimum = 0)]
    pub amount_minor: i64,
}

/// A plan as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Description for customers.
    pub description: String,
    /// Days of validity per purchase.
    pub duration_days: i64,
    /// Data per purchase in bytes; absent is unlimited.
    pub data_limit_bytes: Option<i64>,
    /// Simultaneous devices; absent is unlimited.
    pub device_limit: Option<i64>,
    /// Constant or dynamic IP.
    pub ip_type: IpType,
    /// Location / region tier.
    pub region: Option<String>,
    /// The clock starts at first use.
    pub start_on_first_use: bool,
    /// On sale.
    pub is_active: bool,
    /// Position in the catalogue.
    pub sort_order: i64,
    /// Prices, one per currency.
    pub prices: Vec<Price>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Input for a new plan.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// Unique name (1-64 characters).
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Description (at most 1000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// Days per purchase (1-3650).
    #[schema(minimum = 1, maximum = 3650)]
    pub duration_days: i64,
    /// Data per purchase in bytes; absent is unlimited.
    #[schema(minimum = 1)]
    pub data_limit_bytes: Option<i64>,
    /// Simultaneous devices (1-1000); absent is unlimited.
    #[schema(minimum = 1, maximum = 1000)]
    pub device_limit: Option<i64>,
    /// Constant or dynamic IP (default dynamic).
    pub ip_type: Option<IpType>,
    /// Location / region tier.
    #[schema(max_length = 64)]
    pub region: Option<String>,
    /// Start the clock at first use.
    #[serde(default)]
    pub start_on_first_use: bool,
    /// On sale (default true).
    pub is_active: Option<bool>,
    /// Position in the catalogue.
    #[serde(default)]
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub sort_order: i64,
    /// Prices, one per currency.
    #[serde(default)]
    pub prices: Vec<Price>,
}

/// Changes to a plan; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    /// New name.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// New days per purchase.
    #[schema(minimum = 1, maximum = 3650)]
    pub duration_days: Option<i64>,
    /// New data per purchase (0 means unlimited).
    #[schema(minimum = 0)]
    pub data_limit_bytes: Option<i64>,
    /// New device limit (0 means unlimited).
    #[schema(minimum = 0, maximum = 1000)]
    pub device_limit: Option<i64>,
    /// New IP type.
    pub ip_type: Option<IpType>,
    /// New region (empty clears).
    #[schema(max_length = 64)]
    pub region: Option<String>,
    /// Start at first use.
    pub start_on_first_use: Option<bool>,
    /// On sale.
    pub is_active: Option<bool>,
    /// Position.
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub sort_order: Option<i64>,
    /// Replaces all prices.
    pub prices: Option<Vec<Price>>,
}

/// Query for listing plans.
#[derive(Debug, Clone, Default)]
pub struct PlanQuery {
    /// Substring of the name.
    pub q: Option<String>,
    /// Active or not (staff only; customers always see active).
    pub is_active: Option<bool>,
    /// Exact region.
    pub region: Option<String>,
}

fn not_found() -> AppError {
    AppError::not_found(ErrorCode::PlanNotFound, "plan")
}

fn check_prices(prices: &[Price]) -> AppResult<Vec<(String, i64)>> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for p in prices {
        Money::new(p.amount_minor, p.currency).map_err(|e| AppError::field("prices", e.message))?;
        if out.iter().any(|(c, _)| c == p.currency.code()) {
            return Err(AppError::field(
                "prices",
                format!("{} is listed twice", p.currency),
            ));
        }
        out.push((p.currency.code().to_owned(), p.amount_minor));
    }
    Ok(out)
}

fn check_plan(p: &PlanRow) -> AppResult<()> {
    if p.name.is_empty() {
        return Err(AppError::field("name", "must not be empty"));
    }
    max_len("name", &p.name, 64)?;
    max_len("description", &p.description, 1000)?;
    if let Some(r) = &p.region {
        max_len("region", r, 64)?;
    }
    PlanTerms::new(p.duration_days, p.data_limit_bytes.map(Bytes::from_i64))
        .map_err(|e| AppError::field("duration_days", e.message))?;
    if p.data_limit_bytes.is_some_and(|b| b <= 0) {
        return Err(AppError::field(
            "data_limit_bytes",
            "must be more than zero",
        ));
    }
    if p.device_limit.is_some_and(|d| !(1..=1000).contains(&d)) {
        return Err(AppError::field(
            "device_limit",
            "must be between 1 and 1000",
        ));
    }
    if !(-1_000_000..=1_000_000).contains(&p.sort_order) {
        return Err(AppError::field(
            "sort_order",
            "must be between -1000000 and 1000000",
        ));
    }
    Ok(())
}

fn to_view(p: PlanRow, mut prices: Vec<Price>) -> PlanView {
    prices.sort_by_key(|x| x.currency.code());
    PlanView {
        prices,
        id: p.id,
        name: p.name,
        description: p.description,
        duration_days: p.duration_days,
        data_limit_bytes: p.data_limit_bytes,
        device_limit: p.device_limit,
        ip_type: IpType::parse(&p.ip_type).unwrap_or(IpType::Dynamic),
        region: p.region,
        start_on_first_use: p.start_on_first_use,
        is_active: p.is_active,
        sort_order: p.sort_order,
        created_at: Timestamp::from_millis(p.created_at),
        updated_at: Timestamp::from_millis(p.updated_at),
    }
}

impl App {
    async fn plan_views(&self, rows: Vec<PlanRow>) -> AppResult<Vec<PlanView>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let prices = repo::prices(self.db().read().await?.conn(), &ids).await?;
        Ok(rows
            .into_iter()
            .map(|p| {
                let mine = prices
                    .iter()
                    .filter(|x| x.plan_id == p.id)
                    .filter_map(|x| {
                        Currency::parse(&x.currency).ok().map(|currency| Price {
                            currency,
                            amount_minor: x.amount_minor,
                        })
                    })
                    .collect();
                to_view(p, mine)
            })
            .collect())
    }

    async fn plan_view(&self, row: PlanRow) -> AppResult<PlanView> {
        self.plan_views(vec![row])
            .await?
            .pop()
            .ok_or_else(not_found)
    }

    /// A page of plans: the active catalogue for everyone, all plans with `plans.read`.
    pub async fn list_plans(
        &self,
        actor: &Actor,
        q: PlanQuery,
        params: &ListParams,
    ) -> AppResult<(Vec<PlanView>, i64)> {
        let page = params.page(
            &["id", "name", "sort_order", "duration_days", "created_at"],
            "sort_order",
        )?;
        let is_active = if actor.can(Permission::PlansRead) {
            q.is_active
        } else {
            Some(true)
        };
        let filter = PlanFilter {
            q: q.q,
            is_active,
            region: q.region,
        };
        let (rows, total) = repo::list(self.db().read().await?.conn(), &filter, page).await?;
        Ok((self.plan_views(rows).await?, total))
    }

    /// One plan (inactive ones only with `plans.read`).
    pub async fn get_plan(&self, actor: &Actor, id: i64) -> AppResult<PlanView> {
        let row = repo::get(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(not_found)?;
        if !row.is_active && !actor.can(Permission::PlansRead) {
            return Err(not_found());
        }
        self.plan_view(row).await
    }

    /// Creates a plan (needs `plans.write`).
    pub async fn create_plan(&self, actor: &Actor, input: NewPlan) -> AppResult<PlanView> {
        actor.require(Permission::PlansWrite)?;
        let now = self.now().millis();
        let mut row = PlanRow {
            id: 0,
            name: input.name.trim().to_owned(),
            description: input.description.trim().to_owned(),
            duration_days: input.duration_days,
            data_limit_bytes: input.data_limit_bytes,
            device_limit: input.device_limit,
            ip_type: input.ip_type.unwrap_or(IpType::Dynamic).as_str().to_owned(),
            region: clean(input.region),
            start_on_first_use: input.start_on_first_use,
            is_active: input.is_active.unwrap_or(true),
            sort_order: input.sort_order,
            created_at: now,
            updated_at: now,
        };
        check_plan(&row)?;
        let prices = check_prices(&input.prices)?;
        let mut tx = self.db().begin().await?;
        row.id = repo::insert(tx.conn(), &row).await?;
        repo::set_prices(tx.conn(), row.id, &prices).await?;
        let after = serde_json::json!({ "plan": &row, "prices": &input.prices });
        self.audit(
            tx.conn(),
            actor,
            "plan.create",
            "plan",
            Some(row.id),
            None::<&()>,
            Some(&after),
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        self.plan_view(row).await
    }

    /// Changes a plan (needs `plans.write`). Existing subscriptions keep the terms they
    /// were sold with; the change applies to purchases and renewals from now on.
    pub async fn update_plan(
        &self,
        actor: &Actor,
        id: i64,
        patch: PlanPatch,
    ) -> AppResult<PlanView> {
        actor.require(Permission::PlansWrite)?;
        let before_row = repo::get(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(not_found)?;
        let before = self.plan_view(before_row.clone()).await?;
        let mut row = before_row;
        if let Some(v) = patch.name {
            row.name = v.trim().to_owned();
        }
        if let Some(v) = patch.description {
            row.description = v.trim().to_owned();
        }
        if let Some(v) = patch.duration_days {
            row.duration_days = v;
        }
        if let Some(v) = patch.data_limit_bytes {
            row.data_limit_bytes = (v != 0).then_some(v);
        }
        if let Some(v) = patch.device_limit {
            row.device_limit = (v != 0).then_some(v);
        }
        if let Some(v) = patch.ip_type {
            row.ip_type = v.as_str().to_owned();
        }
        if let Some(v) = patch.region {
            row.region = clean(Some(v));
        }
        if let Some(v) = patch.start_on_first_use {
            row.start_on_first_use = v;
        }
        if let Some(v) = patch.is_active {
            row.is_active = v;
        }
        if let Some(v) = patch.sort_order {
            row.sort_order = v;
        }
        row.updated_at = self.now().millis();
        check_plan(&row)?;
        let prices = patch.prices.as_deref().map(check_prices).transpose()?;
        let mut tx = self.db().begin().await?;
        if !repo::update(tx.conn(), &row).await? {
            return Err(not_found());
        }
        if let Some(p) = &prices {
            repo::set_prices(tx.conn(), id, p).await?;
        }
        let after = to_view(row, patch.prices.unwrap_or_else(|| before.prices.clone()));
        self.audit(
            tx.conn(),
            actor,
            "plan.update",
            "plan",
            Some(id),
            Some(&before),
            Some(&after),
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(after)
    }

    /// Deletes a plan nobody has ordered (needs `plans.write`); otherwise deactivate it.
    pub async fn delete_plan(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::PlansWrite)?;
        let row = repo::get(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(not_found)?;
        let before = self.plan_view(row).await?;
        let mut tx = self.db().begin().await?;
        repo::delete(tx.conn(), id).await.map_err(|e| match e {
            mrjbot_db::DbError::ForeignKey => AppError::new(
                ErrorCode::InUse,
                "the plan has orders; deactivate it instead of deleting",
            ),
            other => other.into(),
        })?;
        self.audit(
            tx.conn(),
            actor,
            "plan.delete",
            "plan",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        self.commit_changed(tx, Changed::Topology).await?;
        Ok(())
    }
}
