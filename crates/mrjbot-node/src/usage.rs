//! The usage ledger: turns cumulative core counters into numbered delta reports that are
//! neither lost nor counted twice, whatever moment the agent is killed at.
//!
//! The core's counters are read without reset, so they only grow while one core process
//! (an *instance*) lives. The ledger keeps, in one atomically written file:
//! - `baseline`: the counters (per email) already put into a report, and the instance they
//!   belong to. A different instance, or a counter below its baseline, means the counters
//!   restarted: the delta is then the whole current value.
//! - `carry`: deltas not yet reported from counters that are gone (read just before the
//!   agent restarted or reloaded the core) and entries left over when a report was split.
//! - `pending`: the one report sent but not acknowledged yet. It is written before it is
//!   sent and re-sent, unchanged, until the control plane acknowledges it (or says it is a
//!   duplicate: recorded earlier, answer lost). Only then is the next report built.
//!
//! Besides the file, the ledger keeps the *sample*: the latest counters read from the
//! running instance (the agent reads them every `sample_secs`, and every report or fold
//! read replaces the sample too, so it is never older than the baseline). When the core is
//! gone without a final read (crash, OOM kill, an API that stopped answering), or the
//! counters of a different instance show up, [`Ledger::core_gone`] moves the sample's
//! growth over the baseline into the carry and writes the file: a core crash loses at most
//! the bytes of one sampling period, and a SIGKILL of the agent right after it loses
//! nothing more. The sample itself is not written (it changes every few seconds); while
//! the agent is down, the running core keeps its counters, and only a core dying in that
//! window loses what it counted since the last report.
//!
//! The baseline advances in the same write that creates the pending report. That is
//! equivalent to advancing it on acknowledgement because a pending report is never given
//! up: the control plane records each `(node, seq)` once, so re-sending is always safe.

use crate::state::{load_json, save_json};
use mrjbot_node_proto::{MAX_USAGE_ENTRIES, UsageEntry, UsageReport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Bytes of one user.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Client to server.
    pub up: u64,
    /// Server to client.
    pub down: u64,
}

impl Traffic {
    fn is_zero(self) -> bool {
        self.up == 0 && self.down == 0
    }
    fn add(self, o: Traffic) -> Traffic {
        Traffic {
            up: self.up.saturating_add(o.up),
            down: self.down.saturating_add(o.down),
        }
    }
}

/// Cumulative or delta bytes per email.
pub type Counters = BTreeMap<String, Traffic>;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct LedgerData {
    next_seq: u64,
    instance: Option<String>,
    baseline: Counters,
    carry: Counters,
    pending: Option<UsageReport>,
}

/// The persisted ledger. Every mutating method writes the file before it returns.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    data: LedgerData,
    /// Latest counters read from a live instance: (instance, counters).
    sample: Option<(String, Counters)>,
}

fn counter_delta(current: u64, last: u64) -> u64 {
    // Below the baseline: the counter restarted from zero since.
    if current >= last {
        current - last
    } else {
        current
    }
}

impl Ledger {
    /// Loads the ledger at `path` (a fresh one when the file is missing).
    pub fn load(path: PathBuf) -> std::io::Result<Ledger> {
        let mut data: LedgerData = load_json(&path)?.unwrap_or_default();
        data.next_seq = data.next_seq.max(1);
        Ok(Ledger {
            path,
            data,
            sample: None,
        })
    }

    fn save(&self) -> std::io::Result<()> {
        save_json(&self.path, &self.data)
    }

    /// The report waiting for an acknowledgement, if any.
    pub fn pending(&self) -> Option<&UsageReport> {
        self.data.pending.as_ref()
    }

    /// The number the next new report will carry.
    pub fn next_seq(&self) -> u64 {
        self.data.next_seq
    }

    /// Raises the next number above what the control plane recorded (local state lost or
    /// older than the control plane's).
    pub fn continue_after(&mut self, server_last: Option<u64>) -> std::io::Result<()> {
        if let Some(last) = server_last {
            let want = last.saturating_add(1);
            if want > self.data.next_seq {
                self.data.next_seq = want;
                self.save()?;
            }
        }
        Ok(())
    }

    /// Everything not yet reported: carry plus the growth of `current` over the baseline.
    fn unreported(&self, instance: &str, current: &Counters) -> Counters {
        let same = self.data.instance.as_deref() == Some(instance);
        let mut out = self.data.carry.clone();
        for (email, now) in current {
            let last = if same {
                self.data.baseline.get(email).copied().unwrap_or_default()
            } else {
                Traffic::default()
            };
            let d = Traffic {
                up: counter_delta(now.up, last.up),
                down: counter_delta(now.down, last.down),
            };
            let e = out.entry(email.clone()).or_default();
            *e = e.add(d);
        }
        out.retain(|_, t| !t.is_zero());
        out
    }

    /// Before the agent resets the counters itself (core restart or reload): moves what
    /// the current instance counted since the baseline into the carry. `current` is the
    /// final read of `instance`, so it supersedes the sample.
    pub fn fold(&mut self, instance: &str, current: &Counters) -> std::io::Result<()> {
        self.core_gone(Some(instance))?;
        self.data.carry = self.unreported(instance, current);
        self.data.baseline.clear();
        self.data.instance = None;
        self.sample = None;
        self.save()
    }

    /// Records `current`, just read from `instance`, as the latest sample. The sample of
    /// an earlier instance is folded into the carry first (that core is gone).
    pub fn observe(&mut self, instance: &str, current: Counters) -> std::io::Result<()> {
        self.core_gone(Some(instance))?;
        self.sample = Some((instance.to_string(), current));
        Ok(())
    }

    /// The instance of the latest sample, if any.
    pub fn sampled_instance(&self) -> Option<&str> {
        self.sample.as_ref().map(|(i, _)| i.as_str())
    }

    /// The core process now running is `running` (`None`: none). When the latest sample
    /// belongs to another instance, that core is gone: its growth over the baseline moves
    /// into the carry and the file is written. Returns true when it folded a sample.
    pub fn core_gone(&mut self, running: Option<&str>) -> std::io::Result<bool> {
        let Some((instance, sampled)) = self.sample.take_if(|(i, _)| Some(i.as_str()) != running)
        else {
            return Ok(false);
        };
        self.data.carry = self.unreported(&instance, &sampled);
        if self.data.instance.as_deref() == Some(instance.as_str()) {
            self.data.baseline.clear();
            self.data.instance = None;
        }
        self.save()?;
        Ok(true)
    }

    /// Builds and persists the next report from `current` (counters of `instance`), unless
    /// one is pending already. Returns the report to send (the pending one or the new one);
    /// `None` when there is nothing to report.
    pub fn prepare(
        &mut self,
        instance: &str,
        current: &Counters,
        collected_at_ms: i64,
    ) -> std::io::Result<Option<UsageReport>> {
        self.observe(instance, current.clone())?;
        if let Some(p) = &self.data.pending {
            return Ok(Some(p.clone()));
        }
        let all = self.unreported(instance, current);
        let changed_base =
            self.data.instance.as_deref() != Some(instance) || &self.data.baseline != current;
        if all.is_empty() {
            if changed_base {
                self.data.instance = Some(instance.to_string());
                self.data.baseline = current.clone();
                self.save()?;
            }
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(all.len().min(MAX_USAGE_ENTRIES));
        let mut carry = Counters::new();
        for (email, t) in all {
            if entries.len() < MAX_USAGE_ENTRIES {
                entries.push(UsageEntry {
                    email,
                    up: t.up,
                    down: t.down,
                });
            } else {
                carry.insert(email, t);
            }
        }
        let report = UsageReport {
            seq: self.data.next_seq,
            collected_at_ms,
            entries,
        };
        self.data.instance = Some(instance.to_string());
        self.data.baseline = current.clone();
        self.data.carry = carry;
        self.data.pending = Some(report.clone());
        self.save()?;
        Ok(Some(report))
    }

    /// True when entries are waiting in the carry (a split report): report again soon.
    pub fn has_carry(&self) -> bool {
        !self.data.carry.is_empty()
    }

    /// The control plane acknowledged report `seq` (counted or duplicate).
    pub fn acked(&mut self, seq: u64) -> std::io::Result<()> {
        if self.data.pending.as_ref().map(|p| p.seq) == Some(seq) {
            self.data.pending = None;
            self.data.next_seq = self.data.next_seq.max(seq.saturating_add(1));
            self.save()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(&str, u64, u64)]) -> Counters {
        pairs
            .iter()
            .map(|(e, u, d)| (e.to_string(), Traffic { up: *u, down: *d }))
            .collect()
    }

    fn ledger(dir: &tempfile::TempDir) -> Ledger {
        Ledger::load(dir.path().join("usage.json")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn entries(r: &Option<UsageReport>) -> Vec<(String, u64, u64)> {
        r.as_ref()
            .map(|r| {
                r.entries
                    .iter()
                    .map(|e| (e.email.clone(), e.up, e.down))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn deltas_pending_resend_and_restarted_counters() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut l = ledger(&dir);
        let r1 = l
            .prepare("p1", &c(&[("a", 10, 100), ("b", 0, 0)]), 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r1), vec![("a".into(), 10, 100)]);
        assert_eq!(r1.as_ref().map(|r| r.seq), Some(1));
        // Not acknowledged: the same report again, even though counters grew.
        let again = l
            .prepare("p1", &c(&[("a", 20, 200)]), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, r1);
        // A crash here: the reloaded ledger still has it.
        let mut l = ledger(&dir);
        assert_eq!(l.pending().map(|p| p.seq), Some(1));
        l.acked(1).unwrap_or_else(|e| panic!("{e}"));
        let r2 = l
            .prepare("p1", &c(&[("a", 20, 200)]), 3)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r2), vec![("a".into(), 10, 100)]);
        assert_eq!(r2.as_ref().map(|r| r.seq), Some(2));
        l.acked(2).unwrap_or_else(|e| panic!("{e}"));
        // A new core process: its counters are all new.
        let r3 = l
            .prepare("p2", &c(&[("a", 5, 7)]), 4)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r3), vec![("a".into(), 5, 7)]);
        l.acked(3).unwrap_or_else(|e| panic!("{e}"));
        // Same process but a counter went down (reset behind our back).
        let r4 = l
            .prepare("p2", &c(&[("a", 6, 3)]), 5)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r4), vec![("a".into(), 1, 3)]);
    }

    #[test]
    fn fold_keeps_bytes_across_a_core_restart_and_seq_continues_after_server() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut l = ledger(&dir);
        l.continue_after(Some(41)).unwrap_or_else(|e| panic!("{e}"));
        let r = l
            .prepare("p1", &c(&[("a", 1, 1)]), 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.as_ref().map(|r| r.seq), Some(42));
        // Pending, then the agent restarts the core after reading 3/3.
        l.fold("p1", &c(&[("a", 3, 3)]))
            .unwrap_or_else(|e| panic!("{e}"));
        l.acked(42).unwrap_or_else(|e| panic!("{e}"));
        let r = l
            .prepare("p9", &c(&[("a", 4, 0)]), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 6, 2)]);
        assert_eq!(r.as_ref().map(|r| r.seq), Some(43));
        // A stale ack changes nothing.
        l.acked(7).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.pending().is_some());
    }

    #[test]
    fn a_crashed_core_keeps_its_last_sample_and_nothing_counts_twice() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut l = ledger(&dir);
        let ok = |r: std::io::Result<bool>| r.unwrap_or_else(|e| panic!("{e}"));
        let r = l
            .prepare("p1", &c(&[("a", 10, 100)]), 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 10, 100)]);
        l.acked(1).unwrap_or_else(|e| panic!("{e}"));
        // Samples between reports; the running instance is not gone.
        l.observe("p1", c(&[("a", 12, 150)]))
            .unwrap_or_else(|e| panic!("{e}"));
        l.observe("p1", c(&[("a", 15, 250), ("b", 0, 9)]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!ok(l.core_gone(Some("p1"))));
        // The core crashes: the growth up to the last sample is journaled at once...
        assert!(ok(l.core_gone(None)));
        assert!(!ok(l.core_gone(None)), "folded once");
        // ...so a SIGKILLed agent finds it in the file.
        let mut l = ledger(&dir);
        let r = l
            .prepare("p2", &c(&[("a", 1, 1)]), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 6, 151), ("b".into(), 0, 9)]);
        l.acked(2).unwrap_or_else(|e| panic!("{e}"));

        // A sample followed by a report read of the same process: the report's read is
        // the sample now, a crash after it adds nothing on top.
        l.observe("p2", c(&[("a", 5, 5)]))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = l
            .prepare("p2", &c(&[("a", 7, 7)]), 3)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 6, 6)]);
        l.acked(3).unwrap_or_else(|e| panic!("{e}"));
        ok(l.core_gone(None));
        let r = l
            .prepare("p3", &c(&[("a", 2, 0)]), 4)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 2, 0)]);
        l.acked(4).unwrap_or_else(|e| panic!("{e}"));

        // The counters of a different process show up before the crash was noticed: the
        // old sample is folded first, then the new process counts from zero.
        l.observe("p3", c(&[("a", 4, 0)]))
            .unwrap_or_else(|e| panic!("{e}"));
        l.observe("p4", c(&[("a", 1, 0)]))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = l
            .prepare("p4", &c(&[("a", 3, 0)]), 5)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 5, 0)]);
        l.acked(5).unwrap_or_else(|e| panic!("{e}"));

        // A planned restart's final read supersedes the sample.
        l.observe("p4", c(&[("a", 4, 0)]))
            .unwrap_or_else(|e| panic!("{e}"));
        l.fold("p4", &c(&[("a", 6, 0)]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!ok(l.core_gone(None)));
        let r = l
            .prepare("p5", &c(&[]), 6)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r), vec![("a".into(), 3, 0)]);
    }

    #[test]
    fn a_crash_while_a_report_is_pending_keeps_both() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut l = ledger(&dir);
        let r1 = l
            .prepare("p1", &c(&[("a", 0, 10)]), 1)
            .unwrap_or_else(|e| panic!("{e}"));
        l.observe("p1", c(&[("a", 0, 30)]))
            .unwrap_or_else(|e| panic!("{e}"));
        l.core_gone(None).unwrap_or_else(|e| panic!("{e}"));
        // Still the same pending report until it is acknowledged.
        assert_eq!(
            l.prepare("p2", &c(&[("a", 0, 1)]), 2)
                .unwrap_or_else(|e| panic!("{e}")),
            r1
        );
        l.acked(1).unwrap_or_else(|e| panic!("{e}"));
        let r2 = l
            .prepare("p2", &c(&[("a", 0, 1)]), 3)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entries(&r2), vec![("a".into(), 0, 21)]);
    }

    #[test]
    fn large_reports_are_split() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut l = ledger(&dir);
        let n = MAX_USAGE_ENTRIES + 5;
        let cur: Counters = (0..n)
            .map(|i| (format!("u{i:06}"), Traffic { up: 1, down: 2 }))
            .collect();
        let r = l
            .prepare("p", &cur, 1)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no report"));
        assert_eq!(r.entries.len(), MAX_USAGE_ENTRIES);
        assert!(l.has_carry());
        l.acked(r.seq).unwrap_or_else(|e| panic!("{e}"));
        let r2 = l
            .prepare("p", &cur, 2)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no report"));
        assert_eq!(r2.entries.len(), 5);
        l.acked(r2.seq).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            l.prepare("p", &cur, 3).unwrap_or_else(|e| panic!("{e}")),
            None
        );
    }
}
