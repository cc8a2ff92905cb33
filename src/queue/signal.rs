//! Waking analysis workers when new jobs arrive, without busy polling: a
//! counter behind a mutex and a condition variable. Workers also wake on a
//! timeout, so a missed signal costs at most that delay.
//!
//! The signal also counts unfinished jobs (pending or analysing), so the
//! store can refuse new instances when the queue is too deep without
//! scanning it for every C-STORE.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct WorkSignal {
    generation: Mutex<u64>,
    changed: Condvar,
    unfinished: AtomicU64,
}

impl WorkSignal {
    /// Sets the count of unfinished jobs (at start-up, from the index).
    pub fn set_unfinished(&self, jobs: u64) {
        self.unfinished.store(jobs, Ordering::SeqCst);
    }

    /// Jobs pending or being analysed.
    pub fn unfinished(&self) -> u64 {
        self.unfinished.load(Ordering::SeqCst)
    }

    /// A job was created: count it and wake a worker.
    pub fn job_created(&self) {
        self.unfinished.fetch_add(1, Ordering::SeqCst);
        self.notify();
    }

    /// A job reached a final state.
    pub fn job_finished(&self) {
        let _ = self
            .unfinished
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }

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
