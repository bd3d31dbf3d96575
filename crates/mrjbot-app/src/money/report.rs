//! The financial report: money received by day, ISO week or month in the seller's time
//! zone, split by method, card or plan, per currency (amounts in different currencies
//! are never added), with refunds and what is still pending; also as CSV.
//!
//! Wallet payments are left out of revenue: the money was counted when it came in as a
//! top-up, and counting the spend again would double it.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use mrjbot_db::money as repo;
use mrjbot_domain::{Permission, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Period length of report lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    #[default]
    Day,
    Week,
    Month,
}

/// What report lines are split by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    #[default]
    Method,
    Card,
    Plan,
}

/// Report parameters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Start (inclusive); default 30 days before `to`.
    pub from: Option<Timestamp>,
    /// End (exclusive); default now.
    pub to: Option<Timestamp>,
    pub group: Option<Group>,
    pub by: Option<By>,
    /// UTC offset in minutes for day boundaries (default: the payment settings').
    pub utc_offset_minutes: Option<i32>,
}

/// One line: a period and a split value in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportLine {
    /// `2026-11-21`, `2026-W47` or `2026-11`.
    pub period: String,
    pub currency: String,
    /// Method name, card id or plan id (`-` when none).
    pub key: String,
    pub count: i64,
    pub gross_minor: i64,
    pub refunded_minor: i64,
    pub net_minor: i64,
}

/// A total in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    pub count: i64,
    pub gross_minor: i64,
    pub refunded_minor: i64,
    pub net_minor: i64,
}

/// Refunds made in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefundTotal {
    pub currency: String,
    /// `gateway` or `wallet`.
    pub destination: String,
    pub amount_minor: i64,
}

/// Payments still open now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PendingTotal {
    pub currency: String,
    pub method: String,
    pub count: i64,
    pub amount_minor: i64,
}

/// The report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevenueReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub group: Group,
    pub by: By,
    pub lines: Vec<ReportLine>,
    pub totals: Vec<CurrencyTotal>,
    pub refunds: Vec<RefundTotal>,
    pub pending: Vec<PendingTotal>,
}

fn period_of(ms: i64, offset_minutes: i32, group: Group) -> String {
    let local = ms.div_euclid(1000) + i64::from(offset_minutes) * 60;
    let date = time::OffsetDateTime::from_unix_timestamp(local)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    match group {
        Group::Day => format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        ),
        Group::Week => {
            let (y, w, _) = date.to_iso_week_date();
            format!("{y:04}-W{w:02}")
        }
        Group::Month => format!("{:04}-{:02}", date.year(), u8::from(date.month())),
    }
}

impl RevenueReport {
    /// The lines as CSV (RFC 4180, header first).
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("period,currency,key,count,gross_minor,refunded_minor,net_minor\r\n");
        for l in &self.lines {
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\r\n",
                l.period,
                l.currency,
                csv_field(&l.key),
                l.count,
                l.gross_minor,
                l.refunded_minor,
                l.net_minor
            ));
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl App {
    /// Builds the financial report (needs `reports.read`).
    pub async fn revenue_report(&self, actor: &Actor, q: ReportQuery) -> AppResult<RevenueReport> {
        actor.require(Permission::ReportsRead)?;
        // The default end includes this very moment (the range is end-exclusive).
        let to =
            q.to.unwrap_or_else(|| Timestamp::from_millis(self.now().millis() + 1));
        let from = q
            .from
            .unwrap_or_else(|| Timestamp::from_millis(to.millis() - 30 * 86_400_000));
        if from.millis() >= to.millis() {
            return Err(AppError::field("from", "must be before `to`"));
        }
        if to.millis() - from.millis() > 3 * 366 * 86_400_000 {
            return Err(AppError::field("from", "at most three years per report"));
        }
        let offset = match q.utc_offset_minutes {
            Some(o) if (-720..=840).contains(&o) => o,
            Some(_) => return Err(AppError::field("utc_offset_minutes", "-720 to 840")),
            None => self.payment_settings().await?.utc_offset_minutes,
        };
        let group = q.group.unwrap_or_default();
        let by = q.by.unwrap_or_default();
        let mut c = self.db().read().await?;
        let rows = repo::revenue_rows(c.conn(), from.millis(), to.millis()).await?;
        let mut lines: BTreeMap<(String, String, String), ReportLine> = BTreeMap::new();
        let mut totals: BTreeMap<String, CurrencyTotal> = BTreeMap::new();
        for r in rows {
            let key = match by {
                By::Method => r.method.clone(),
                By::Card => r.card_id.map_or("-".into(), |c| c.to_string()),
                By::Plan => r.plan_id.map_or_else(
                    || {
                        if r.kind == "topup" {
                            "topup".into()
                        } else {
                            "-".into()
                        }
                    },
                    |p| p.to_string(),
                ),
            };
            let period = period_of(r.approved_at, offset, group);
            let line = lines
                .entry((period.clone(), r.currency.clone(), key.clone()))
                .or_insert_with(|| ReportLine {
                    period,
                    currency: r.currency.clone(),
                    key,
                    count: 0,
                    gross_minor: 0,
                    refunded_minor: 0,
                    net_minor: 0,
                });
            line.count += 1;
            line.gross_minor += r.amount_minor;
            line.refunded_minor += r.refunded_minor;
            line.net_minor += r.amount_minor - r.refunded_minor;
            let t = totals
                .entry(r.currency.clone())
                .or_insert_with(|| CurrencyTotal {
                    currency: r.currency.clone(),
                    count: 0,
                    gross_minor: 0,
                    refunded_minor: 0,
                    net_minor: 0,
                });
            t.count += 1;
            t.gross_minor += r.amount_minor;
            t.refunded_minor += r.refunded_minor;
            t.net_minor += r.amount_minor - r.refunded_minor;
        }
        let refunds = repo::refund_totals(c.conn(), from.millis(), to.millis())
            .await?
            .into_iter()
            .map(|(currency, destination, amount_minor)| RefundTotal {
                currency,
                destination,
                amount_minor,
            })
            .collect();
        let pending = repo::pending_totals(c.conn())
            .await?
            .into_iter()
            .map(|(currency, method, count, amount_minor)| PendingTotal {
                currency,
                method,
                count,
                amount_minor,
            })
            .collect();
        Ok(RevenueReport {
            from,
            to,
            group,
            by,
            lines: lines.into_values().collect(),
            totals: totals.into_values().collect(),
            refunds,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_sellers_zone() {
        // 2026-11-21 22:00 UTC is already 2026-11-22 in Tehran (+03:30).
        let ms = 1_795_298_400_000;
        assert_eq!(period_of(ms, 0, Group::Day), "2026-11-21");
        assert_eq!(period_of(ms, 210, Group::Day), "2026-11-22");
        assert_eq!(period_of(ms, 0, Group::Month), "2026-11");
        assert_eq!(period_of(ms, 0, Group::Week), "2026-W47");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("x\"y"), "\"x\"\"y\"");
    }
}
