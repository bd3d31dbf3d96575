//! Discount codes: percent or fixed, a validity window, overall and per-customer limits
//! and an optional plan restriction. A use is taken when an order is placed (a guarded
//! increment, so concurrent orders never exceed the limit) and given back when the order
//! expires or is cancelled unpaid.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::{App, ListParams};
use mrjbot_db::Conn;
use mrjbot_db::money::{self as repo, DiscountRow};
use mrjbot_domain::payment::Discount;
use mrjbot_domain::{Currency, ErrorCode, Money, Permission, Timestamp};
use serde::{Deserialize, Serialize};

/// A discount code as staff see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiscountView {
    pub id: i64,
    pub code: String,
    /// `percent` or `fixed`.
    pub kind: String,
    /// Percent (1..100) or minor units of `currency`.
    pub value: i64,
    pub currency: Option<Currency>,
    pub starts_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: Option<i64>,
    pub used_count: i64,
    pub is_active: bool,
    /// Plans it applies to (empty: all).
    pub plan_ids: Vec<i64>,
    pub created_at: Timestamp,
}

/// Input for a new code or a full edit.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountInput {
    /// 3-32 letters, digits, `-` or `_` (stored upper-case).
    pub code: String,
    /// `percent` or `fixed`.
    pub kind: String,
    pub value: i64,
    /// Required for `fixed`, absent for `percent`.
    pub currency: Option<Currency>,
    pub starts_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: Option<i64>,
    pub is_active: Option<bool>,
    #[serde(default)]
    pub plan_ids: Vec<i64>,
}

fn discount_not_found() -> AppError {
    AppError::not_found(ErrorCode::DiscountNotFound, "discount code")
}

fn invalid(msg: &str) -> AppError {
    AppError::new(ErrorCode::DiscountInvalid, msg)
}

fn normalize_code(code: &str) -> AppResult<String> {
    let c = code.trim().to_uppercase();
    if !(3..=32).contains(&c.len())
        || !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AppError::field("code", "3 to 32 letters, digits, - or _"));
    }
    Ok(c)
}

impl App {
    async fn discount_view(&self, mut c: Conn<'_>, d: DiscountRow) -> AppResult<DiscountView> {
        let plan_ids = repo::discount_plans(c.reborrow(), d.id).await?;
        Ok(DiscountView {
            id: d.id,
            code: d.code,
            kind: d.kind,
            value: d.value,
            currency: d.currency.as_deref().map(Currency::parse).transpose()?,
            starts_at: d.starts_at.map(Timestamp::from_millis),
            expires_at: d.expires_at.map(Timestamp::from_millis),
            max_uses: d.max_uses,
            max_uses_per_user: d.max_uses_per_user,
            used_count: d.used_count,
            is_active: d.is_active,
            plan_ids,
            created_at: Timestamp::from_millis(d.created_at),
        })
    }

    fn discount_row(
        &self,
        input: &DiscountInput,
        before: Option<&DiscountRow>,
        actor: &Actor,
    ) -> AppResult<DiscountRow> {
        let code = normalize_code(&input.code)?;
        Discount::new(&input.kind, input.value, input.currency)
            .map_err(|e| AppError::field("value", e.message))?;
        if let (Some(s), Some(e)) = (input.starts_at, input.expires_at)
            && s.millis() >= e.millis()
        {
            return Err(AppError::field("expires_at", "must be after starts_at"));
        }
        for (f, v) in [
            ("max_uses", input.max_uses),
            ("max_uses_per_user", input.max_uses_per_user),
        ] {
            if v.is_some_and(|v| !(1..=10_000_000).contains(&v)) {
                return Err(AppError::field(f, "1 to 10000000"));
            }
        }
        let now = self.now().millis();
        Ok(DiscountRow {
            id: before.map_or(0, |b| b.id),
            code,
            kind: input.kind.clone(),
            value: input.value,
            currency: input.currency.map(|c| c.code().to_owned()),
            starts_at: input.starts_at.map(Timestamp::millis),
            expires_at: input.expires_at.map(Timestamp::millis),
            max_uses: input.max_uses,
            max_uses_per_user: input.max_uses_per_user,
            used_count: before.map_or(0, |b| b.used_count),
            is_active: input.is_active.unwrap_or(true),
            created_by: before.map_or(actor.user_id, |b| b.created_by),
            created_at: before.map_or(now, |b| b.created_at),
            updated_at: now,
        })
    }

    async fn check_plans(&self, mut c: Conn<'_>, plans: &[i64]) -> AppResult<()> {
        if plans.len() > 1000 {
            return Err(AppError::field("plan_ids", "at most 1000 plans"));
        }
        for p in plans {
            mrjbot_db::plans::get(c.reborrow(), *p)
                .await?
                .ok_or_else(|| AppError::field("plan_ids", format!("no plan {p}")))?;
        }
        Ok(())
    }

    /// Creates a code (needs `settings.write`).
    pub async fn create_discount(
        &self,
        actor: &Actor,
        input: DiscountInput,
    ) -> AppResult<DiscountView> {
        actor.require(Permission::SettingsWrite)?;
        let mut row = self.discount_row(&input, None, actor)?;
        let mut tx = self.db().begin().await?;
        self.check_plans(tx.conn(), &input.plan_ids).await?;
        row.id = repo::insert_discount(tx.conn(), &row).await?;
        repo::set_discount_plans(tx.conn(), row.id, &input.plan_ids).await?;
        self.audit(
            tx.conn(),
            actor,
            "discount.create",
            "discount_code",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        let view = self.discount_view(tx.conn(), row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Replaces a code's terms (needs `settings.write`); its use count stays.
    pub async fn update_discount(
        &self,
        actor: &Actor,
        id: i64,
        input: DiscountInput,
    ) -> AppResult<DiscountView> {
        actor.require(Permission::SettingsWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get_discount(tx.conn(), id)
            .await?
            .ok_or_else(discount_not_found)?;
        let row = self.discount_row(&input, Some(&before), actor)?;
        self.check_plans(tx.conn(), &input.plan_ids).await?;
        repo::update_discount(tx.conn(), &row).await?;
        repo::set_discount_plans(tx.conn(), id, &input.plan_ids).await?;
        self.audit(
            tx.conn(),
            actor,
            "discount.update",
            "discount_code",
            Some(id),
            Some(&before),
            Some(&row),
        )
        .await?;
        let view = self.discount_view(tx.conn(), row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// One code (needs `payments.read`).
    pub async fn get_discount(&self, actor: &Actor, id: i64) -> AppResult<DiscountView> {
        actor.require(Permission::PaymentsRead)?;
        let mut c = self.db().read().await?;
        let row = repo::get_discount(c.conn(), id)
            .await?
            .ok_or_else(discount_not_found)?;
        self.discount_view(c.conn(), row).await
    }

    /// A page of codes (needs `payments.read`).
    pub async fn list_discounts(
        &self,
        actor: &Actor,
        q: Option<String>,
        page: ListParams,
    ) -> AppResult<(Vec<DiscountView>, i64)> {
        actor.require(Permission::PaymentsRead)?;
        let page = page.page(&["id", "code", "created_at", "used_count"], "id")?;
        let mut c = self.db().read().await?;
        let (rows, total) = repo::list_discounts(c.conn(), q.as_deref(), page).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.discount_view(c.conn(), r).await?);
        }
        Ok((out, total))
    }

    /// Deletes a code that no order used (else deactivate it).
    pub async fn delete_discount(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::SettingsWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get_discount(tx.conn(), id)
            .await?
            .ok_or_else(discount_not_found)?;
        match repo::delete_discount(tx.conn(), id).await {
            Ok(_) => {}
            Err(mrjbot_db::DbError::ForeignKey) => {
                return Err(AppError::new(
                    ErrorCode::InUse,
                    "orders used this code; deactivate it instead",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            tx.conn(),
            actor,
            "discount.delete",
            "discount_code",
            Some(id),
            Some(&before),
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What a code would take off `price` for the caller on a plan, without taking a use
    /// (the check runs in a transaction that is rolled back): the bot shows the price
    /// after the discount before the customer picks how to pay.
    pub async fn quote_discount(
        &self,
        actor: &Actor,
        code: &str,
        plan_id: Option<i64>,
        price: Money,
    ) -> AppResult<Money> {
        let user_id = actor.user_id.ok_or_else(AppError::denied)?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let (_, off) = self
            .apply_discount(tx.conn(), code, user_id, plan_id, price, now)
            .await?;
        drop(tx);
        Ok(Money::new(off, price.currency)?)
    }

    /// Checks a code for an order and takes one use; returns (code id, amount off).
    pub(crate) async fn apply_discount(
        &self,
        mut c: Conn<'_>,
        code: &str,
        user_id: i64,
        plan_id: Option<i64>,
        price: Money,
        now: Timestamp,
    ) -> AppResult<(i64, i64)> {
        let code = normalize_code(code).map_err(|_| invalid("no such discount code"))?;
        let d = repo::discount_by_code(c.reborrow(), &code)
            .await?
            .ok_or_else(|| invalid("no such discount code"))?;
        let t = now.millis();
        if !d.is_active
            || d.starts_at.is_some_and(|s| t < s)
            || d.expires_at.is_some_and(|e| t >= e)
        {
            return Err(invalid("this discount code is not valid now"));
        }
        let plans = repo::discount_plans(c.reborrow(), d.id).await?;
        if !plans.is_empty() && !plan_id.is_some_and(|p| plans.contains(&p)) {
            return Err(invalid("this discount code is not valid for this plan"));
        }
        if let Some(max) = d.max_uses_per_user
            && repo::discount_uses_by(c.reborrow(), d.id, user_id).await? >= max
        {
            return Err(invalid("you have already used this discount code"));
        }
        let discount = Discount::new(
            &d.kind,
            d.value,
            d.currency.as_deref().map(Currency::parse).transpose()?,
        )?;
        let off = discount.off(price).map_err(|e| invalid(&e.message))?;
        if !repo::take_discount_use(c, d.id, t).await? {
            return Err(invalid("this discount code is used up"));
        }
        Ok((d.id, off.amount_minor))
    }
}
