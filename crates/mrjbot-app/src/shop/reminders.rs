//! Expiry and data reminders. A scan every minute queues a notice for each reminder
//! that is due; the outbox delivers it. Each reminder goes out once because its outbox
//! dedupe key names what it is about:
//!
//! - `remind:expiry:{sub}:{expires_at}:{days}`: a renewal moves `expires_at`, so the
//!   next period is reminded again;
//! - `remind:data:{sub}:{data_limit}:{percent}`: extra data moves the cap, so the new
//!   cap is warned about again.
//!
//! When several thresholds are reached at once (first seen with 12 hours left, or at
//! 95% of the cap), only the tightest one is sent. Restarts and several replicas are
//! harmless: the keys make a repeated scan queue nothing.

use crate::App;
use crate::error::AppResult;
use crate::money::outbox::enqueue_notice;
use crate::notify::{Notice, NoticeTarget};
use crate::shop::settings::ReminderSettings;
use mrjbot_db::shop::{self as repo, ReminderRow};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
const BATCH: i64 = 500;
/// How often [`App::run_reminders`] scans.
pub const SCAN_EVERY: Duration = Duration::from_secs(60);

/// The reminders due for one subscription at `now`: (dedupe key, notice).
fn due(row: &ReminderRow, rules: &ReminderSettings, now: i64) -> Vec<(String, Notice)> {
    let mut out = Vec::new();
    if row.status == "active"
        && let Some(exp) = row.expires_at.filter(|e| *e > now)
        && let Some(days) = rules
            .expiry_days
            .iter()
            .copied()
            .filter(|d| exp - now <= i64::from(*d) * DAY_MS)
            .min()
    {
        out.push((
            format!("remind:expiry:{}:{exp}:{days}", row.id),
            Notice::ExpiryReminder {
                subscription_id: row.id,
                days_left: (exp - now) / DAY_MS,
            },
        ));
    }
    if let Some(limit) = row.data_limit_bytes.filter(|l| *l > 0)
        && let Some(percent) = rules
            .data_percents
            .iter()
            .copied()
            .filter(|p| i128::from(row.used_bytes) * 100 >= i128::from(*p) * i128::from(limit))
            .max()
    {
        out.push((
            format!("remind:data:{}:{limit}:{percent}", row.id),
            Notice::DataWarning {
                subscription_id: row.id,
                percent,
            },
        ));
    }
    out
}

impl App {
    /// Scans for due reminders every minute, until the task is dropped.
    pub async fn run_reminders(self) {
        let mut tick = tokio::time::interval(SCAN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.scan_reminders().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "reminders queued"),
                Err(e) => tracing::warn!(error = %e, "reminder scan failed"),
            }
        }
    }

    /// Queues every reminder due now that was not queued before; returns how many.
    pub async fn scan_reminders(&self) -> AppResult<usize> {
        let rules = self.shop_settings().await?.reminders;
        let max_days = rules.expiry_days.iter().copied().max().unwrap_or(0);
        // 101%: no subscription qualifies for data warnings when there are none.
        let min_percent = rules.data_percents.iter().copied().min().unwrap_or(101);
        if max_days == 0 && min_percent > 100 {
            return Ok(0);
        }
        let now = self.now().millis();
        let mut queued = 0;
        let mut after = 0;
        loop {
            let rows = repo::reminder_candidates(
                self.db().read().await?.conn(),
                now,
                now + i64::from(max_days) * DAY_MS,
                i64::from(min_percent),
                after,
                BATCH,
            )
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let items: Vec<(i64, String, Notice)> = rows
                .iter()
                .flat_map(|r| {
                    due(r, &rules, now)
                        .into_iter()
                        .map(move |(k, n)| (r.user_id, k, n))
                })
                .collect();
            if !items.is_empty() {
                let mut tx = self.db().begin().await?;
                for (user_id, key, notice) in &items {
                    if enqueue_notice(
                        tx.conn(),
                        NoticeTarget::Customer { user_id: *user_id },
                        notice,
                        key,
                        now,
                    )
                    .await?
                    {
                        queued += 1;
                    }
                }
                tx.commit().await?;
            }
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        if queued > 0 {
            self.wake_outbox();
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, expires_in: Option<i64>, limit: Option<i64>, used: i64) -> ReminderRow {
        ReminderRow {
            id: 7,
            user_id: 1,
            status: status.into(),
            expires_at: expires_in.map(|d| 1_000_000_000_000 + d),
            data_limit_bytes: limit,
            used_bytes: used,
        }
    }

    const NOW: i64 = 1_000_000_000_000;

    #[test]
    fn the_tightest_expiry_window_only() {
        let rules = ReminderSettings::default();
        let r = row("active", Some(3 * DAY_MS - 5), None, 0);
        let d = due(&r, &rules, NOW);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].0,
            format!("remind:expiry:7:{}:3", NOW + 3 * DAY_MS - 5)
        );
        assert_eq!(
            d[0].1,
            Notice::ExpiryReminder {
                subscription_id: 7,
                days_left: 2
            }
        );
        // First seen with hours left: only the one-day reminder.
        let d = due(&row("active", Some(DAY_MS / 2), None, 0), &rules, NOW);
        assert_eq!(d.len(), 1);
        assert!(d[0].0.ends_with(":1"), "{}", d[0].0);
        // Not yet, already over, or not active: nothing.
        assert!(due(&row("active", Some(4 * DAY_MS), None, 0), &rules, NOW).is_empty());
        assert!(due(&row("active", Some(-1), None, 0), &rules, NOW).is_empty());
        assert!(due(&row("disabled", Some(DAY_MS), None, 0), &rules, NOW).is_empty());
    }

    #[test]
    fn the_highest_data_threshold_only() {
        let rules = ReminderSettings::default();
        assert!(due(&row("active", None, Some(1000), 799), &rules, NOW).is_empty());
        let d = due(&row("active", None, Some(1000), 800), &rules, NOW);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, "remind:data:7:1000:80");
        let d = due(&row("limited", None, Some(1000), 1000), &rules, NOW);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].1,
            Notice::DataWarning {
                subscription_id: 7,
                percent: 100
            }
        );
        // Unlimited data: never.
        assert!(due(&row("active", None, None, i64::MAX), &rules, NOW).is_empty());
        // Huge numbers do not overflow.
        let big = due(&row("active", None, Some(i64::MAX), i64::MAX), &rules, NOW);
        assert_eq!(big.len(), 1);
    }
}
