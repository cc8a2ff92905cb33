//! Waking analysis workers when new jobs arrive, without busy polling: a
//! counter behind a mutex and a condition variable. Workers also wake on a
//! timeout, so a missed signal costs at most that delay.
//!
//! How many jobs are unfinished (for the store's backlog limit) is one of
//! the ledger's maintained counts, not kept here.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct WorkSignal {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl WorkSignal {
    /// Announces that work may be available.
    pub fn notify(&self) {
        *self.generation.lock().expect("not poisoned") += 1;
        self.changed.notify_all();
    }

    /// Waits until a notification newer than `seen` or the timeout; returns
    /// the generation to pass next time.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let generation = self.generation.lock().expect("not poisoned");
        let (generation, _) = self
            .changed
            .wait_timeout_while(generation, timeout, |g| *g == seen)
            .expect("not poisoned");
        *generation
    }

    pub fn generation(&self) -> u64 {
        *self.generation.lock().expect("not poisoned")
    }
}
