//! Flood control like Telegram's (off until a test switches it on): at most N messages a
//! second overall, about one a second to one private chat (a burst of three is allowed),
//! 20 a minute to one group or channel. Only methods that post a message count.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Messages one private chat may take at once before the one-a-second rate applies.
const PRIVATE_BURST: f64 = 3.0;
/// Messages one group may take in a minute.
const GROUP_PER_MINUTE: usize = 20;

#[derive(Debug, Default)]
pub(super) struct Flood {
    per_second: u32,
    recent: VecDeque<Instant>,
    /// Token bucket per private chat: tokens left and when they were counted.
    private: HashMap<i64, (f64, Instant)>,
    groups: HashMap<i64, VecDeque<Instant>>,
}

/// Whole seconds to wait, at least one (what `retry_after` says).
fn secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Drops instants older than `window` and returns how long until the oldest leaves it.
fn prune(times: &mut VecDeque<Instant>, window: Duration, now: Instant) -> Duration {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
    times.front().map_or(Duration::ZERO, |t| {
        window.saturating_sub(now.saturating_duration_since(*t))
    })
}

impl Flood {
    /// Switches flood control on with `per_second` overall (0 = off) and forgets history.
    pub(super) fn set(&mut self, per_second: u32) {
        *self = Flood {
            per_second,
            ..Flood::default()
        };
    }

    /// Counts one message to `chat_id`, or says how many seconds to wait.
    pub(super) fn admit(&mut self, chat_id: i64, private: bool, now: Instant) -> Result<(), u64> {
        if self.per_second == 0 {
            return Ok(());
        }
        let second = Duration::from_secs(1);
        let wait = prune(&mut self.recent, second, now);
        if self.recent.len() >= usize::try_from(self.per_second).unwrap_or(usize::MAX) {
            return Err(secs(wait));
        }
        if private {
            let (tokens, last) = self
                .private
                .get(&chat_id)
                .copied()
                .unwrap_or((PRIVATE_BURST, now));
            let tokens =
                (tokens + now.saturating_duration_since(last).as_secs_f64()).min(PRIVATE_BURST);
            if tokens < 1.0 {
                return Err(secs(Duration::from_secs_f64(1.0 - tokens)));
            }
            self.private.insert(chat_id, (tokens - 1.0, now));
        } else {
            let window = self.groups.entry(chat_id).or_default();
            let wait = prune(window, Duration::from_secs(60), now);
            if window.len() >= GROUP_PER_MINUTE {
                return Err(secs(wait));
            }
            window.push_back(now);
        }
        self.recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_overall_private_and_group() {
        let t0 = Instant::now();
        let mut f = Flood::default();
        assert!(
            (0..100).all(|_| f.admit(1, true, t0).is_ok()),
            "off by default"
        );

        f.set(30);
        assert_eq!(
            (0..3).map(|_| f.admit(1, true, t0)).collect::<Vec<_>>(),
            vec![Ok(()); 3]
        );
        assert_eq!(
            f.admit(1, true, t0),
            Err(1),
            "a burst of three, then one a second"
        );
        assert_eq!(f.admit(1, true, t0 + Duration::from_millis(1000)), Ok(()));
        assert_eq!(f.admit(1, true, t0 + Duration::from_millis(1100)), Err(1));

        f.set(30);
        for i in 0..20 {
            assert_eq!(
                f.admit(-5, false, t0 + Duration::from_millis(i * 100)),
                Ok(()),
                "{i}"
            );
        }
        assert_eq!(f.admit(-5, false, t0 + Duration::from_secs(10)), Err(50));
        assert_eq!(f.admit(-5, false, t0 + Duration::from_secs(60)), Ok(()));

        f.set(5);
        for chat in 0..5 {
            assert_eq!(f.admit(100 + chat, true, t0), Ok(()));
        }
        assert_eq!(f.admit(200, true, t0), Err(1), "over the overall rate");
        assert_eq!(f.admit(200, true, t0 + Duration::from_secs(1)), Ok(()));
    }
}
