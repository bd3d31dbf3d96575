//! Plans (what is sold) and their prices, one per currency.

use crate::{Conn, DbError, Page, Sql, bind_all, on};
use serde::Serialize;

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct PlanRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub duration_days: i64,
    pub data_limit_bytes: Option<i64>,
    pub device_limit: Option<i64>,
    pub ip_type: String,
    pub region: Option<String>,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub start_on_first_use: bool,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub is_active: bool,
    pub sort_order: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A price of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct PriceRow {
    pub plan_id: i64,
    pub currency: String,
    pub amount_minor: i64,
}

const COLS: &str = "id, name, description, duration_days, data_limit_bytes, device_limit, ip_type, region, \
                    start_on_first_use, is_active, sort_order, created_at, updated_at";

/// Filters for listing plans.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    /// Substring of the name.
    pub q: Option<String>,
    /// Only active (or only inactive) plans.
    pub is_active: Option<bool>,
    /// Exact region.
    pub region: Option<String>,
}

/// Inserts a plan and returns its id.
pub async fn insert(c: Conn<'_>, p: &PlanRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO plans (name, description, duration_days, data_limit_bytes, device_limit, ip_type, region, \
               start_on_first_use, is_active, sort_order, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(&p.name).bind(&p.description).bind(p.duration_days).bind(p.data_limit_bytes).bind(p.device_limit)
        .bind(&p.ip_type).bind(&p.region).bind(p.start_on_first_use).bind(p.is_active).bind(p.sort_order)
        .bind(p.created_at).bind(p.updated_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes every editable column (by id).
pub async fn update(c: Conn<'_>, p: &PlanRow) -> Result<bool, DbError> {
    let sql = "UPDATE plans SET name = $1, description = $2, duration_days = $3, data_limit_bytes = $4, device_limit = $5, \
               ip_type = $6, region = $7, start_on_first_use = $8, is_active = $9, sort_order = $10, updated_at = $11 \
               WHERE id = $12";
    let n = on!(c, c, D => sqlx::query::<D>(sql)
        .bind(&p.name).bind(&p.description).bind(p.duration_days).bind(p.data_limit_bytes).bind(p.device_limit)
        .bind(&p.ip_type).bind(&p.region).bind(p.start_on_first_use).bind(p.is_active).bind(p.sort_order)
        .bind(p.updated_at).bind(p.id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// One plan.
pub async fn get(c: Conn<'_>, id: i64) -> Result<Option<PlanRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM plans WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, PlanRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// A page of plans and the total.
pub async fn list(c: Conn<'_>, f: &PlanFilter, page: Page) -> Result<(Vec<PlanRow>, i64), DbError> {
    let mut w = Sql::new(" FROM plans WHERE 1 = 1");
    if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
        w.and_search(&["name"], q);
    }
    if let Some(a) = f.is_active {
        w.and("is_active = ?", a);
    }
    if let Some(r) = &f.region {
        w.and("region = ?", r.as_str());
    }
    crate::sql::fetch_page::<PlanRow>(c, COLS, &w, page, None).await
}

/// Deletes a plan (prices go with it; subscriptions keep their terms).
pub async fn delete(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM plans WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Prices of the given plans.
pub async fn prices(c: Conn<'_>, plan_ids: &[i64]) -> Result<Vec<PriceRow>, DbError> {
    if plan_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut s =
        Sql::new("SELECT plan_id, currency, amount_minor FROM plan_prices WHERE plan_id IN (");
    for (i, id) in plan_ids.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.bind(*id);
    }
    s.push(") ORDER BY plan_id, currency");
    Ok(
        on!(c, c, D => bind_all!(sqlx::query_as::<D, PriceRow>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args).fetch_all(&mut *c).await?),
    )
}

/// Replaces the prices of a plan.
pub async fn set_prices(
    c: Conn<'_>,
    plan_id: i64,
    prices: &[(String, i64)],
) -> Result<(), DbError> {
    on!(c, c, D => {
        sqlx::query::<D>("DELETE FROM plan_prices WHERE plan_id = $1").bind(plan_id).execute(&mut *c).await?;
        for (cur, amount) in prices {
            sqlx::query::<D>("INSERT INTO plan_prices (plan_id, currency, amount_minor) VALUES ($1, $2, $3)")
                .bind(plan_id).bind(cur).bind(*amount).execute(&mut *c).await?;
        }
    });
    Ok(())
}
