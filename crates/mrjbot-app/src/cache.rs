//! Hot-path caches of the service layer, exact within this process.
//!
//! * Signed-in actors by session id: authenticating a request costs three queries; a
//!   cached actor costs none. Every change that affects an actor (logout, password,
//!   status, roles, role permissions) evicts it here at once; another replica sharing
//!   PostgreSQL notices within [`TTL`].
//! * List totals: `COUNT(*)` over 100,000 users is a full index scan (~1 ms on SQLite).
//!   Totals are kept per filter and dropped by any write to users in this process, and
//!   also expire after [`TTL`] for writes made by other replicas.

use crate::actor::Actor;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long another replica's change may take to show here.
pub const TTL: Duration = Duration::from_secs(2);
const MAX_ENTRIES: usize = 20_000;

#[derive(Default)]
pub(crate) struct Caches {
    actors: Mutex<HashMap<i64, (Actor, Instant)>>,
    totals: Mutex<HashMap<String, (u64, Instant, i64)>>,
    users_generation: AtomicU64,
    actors_generation: AtomicU64,
}

impl Caches {
    pub(crate) fn actor(&self, session_id: i64) -> Option<Actor> {
        let map = self.actors.lock().ok()?;
        let (actor, at) = map.get(&session_id)?;
        (at.elapsed() < TTL).then(|| actor.clone())
    }

    /// The current eviction generation; pass it to [`Caches::put_actor`] so an actor read
    /// before a concurrent eviction is not cached after it.
    pub(crate) fn actors_generation(&self) -> u64 {
        self.actors_generation.load(Ordering::SeqCst)
    }

    pub(crate) fn put_actor(&self, session_id: i64, actor: &Actor, generation: u64) {
        if let Ok(mut map) = self.actors.lock() {
            if self.actors_generation.load(Ordering::SeqCst) != generation {
                return;
            }
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, (_, at)| at.elapsed() < TTL);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(session_id, (actor.clone(), Instant::now()));
        }
    }

    pub(crate) fn forget_session(&self, session_id: i64) {
        self.actors_generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut map) = self.actors.lock() {
            map.remove(&session_id);
        }
    }

    /// Drops everything known about a user (their sessions' actors, list totals).
    pub(crate) fn forget_user(&self, user_id: i64) {
        self.actors_generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut map) = self.actors.lock() {
            map.retain(|_, (a, _)| a.user_id != Some(user_id));
        }
        self.users_changed();
    }

    pub(crate) fn forget_all_actors(&self) {
        self.actors_generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut map) = self.actors.lock() {
            map.clear();
        }
    }

    pub(crate) fn users_changed(&self) {
        self.users_generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn total(&self, key: &str) -> Option<i64> {
        let generation = self.users_generation.load(Ordering::SeqCst);
        let map = self.totals.lock().ok()?;
        let (g, at, total) = map.get(key)?;
        (*g == generation && at.elapsed() < TTL).then_some(*total)
    }

    /// Remembers a total computed while the users generation was `generation`.
    pub(crate) fn put_total(&self, key: String, generation: u64, total: i64) {
        if let Ok(mut map) = self.totals.lock() {
            if map.len() >= 1_000 {
                map.clear();
            }
            map.insert(key, (generation, Instant::now(), total));
        }
    }

    pub(crate) fn users_generation(&self) -> u64 {
        self.users_generation.load(Ordering::SeqCst)
    }
}
