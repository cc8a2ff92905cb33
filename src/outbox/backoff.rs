//! How long a delivery waits after a transient failure: exponential
//! backoff with jitter.
//!
//! The delay doubles with each failed attempt, from `retry_delay_secs` up to
//! `max_retry_delay_secs`, so a peer that is down for a minute is retried
//! often and one down for a day is not hammered. ±25 % jitter spreads the
//! retries of many items (and of many nodes) so they do not arrive at a
//! recovering peer all at once.

use std::time::Duration;

use crate::config::OutboxConfig;

/// The retry schedule for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

/// The jitter, as a fraction of the delay, either way.
const JITTER: f64 = 0.25;

impl Backoff {
    pub fn from_config(config: &OutboxConfig) -> Backoff {
        Backoff {
            first: Duration::from_secs(config.retry_delay_secs),
            max: Duration::from_secs(config.max_retry_delay_secs.max(config.retry_delay_secs)),
        }
    }

    /// The delay without jitter after `failed_attempts` failures (1 for the
    /// first): `first` × 2^(failed_attempts − 1), at most `max`.
    pub fn nominal(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(32);
        self.first
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay to wait: the nominal delay ±25 %, never over `max`.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let factor = 1.0 - JITTER + 2.0 * JITTER * fastrand::f64();
        self.nominal(failed_attempts).mul_f64(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            first: Duration::from_secs(5),
            max: Duration::from_secs(600),
        }
    }

    #[test]
    fn doubles_from_the_first_delay_up_to_the_maximum() {
        let b = backoff();
        let nominal: Vec<u64> = (1..=10).map(|n| b.nominal(n).as_secs()).collect();
        assert_eq!(nominal, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(b.nominal(0).as_secs(), 5);
        assert_eq!(b.nominal(u32::MAX), b.max);
    }

    #[test]
    fn jitter_stays_within_a_quarter_either_way_and_varies() {
        let b = backoff();
        for attempt in [1, 3, 7] {
            let nominal = b.nominal(attempt).as_secs_f64();
            let delays: Vec<f64> = (0..500).map(|_| b.delay(attempt).as_secs_f64()).collect();
            for &d in &delays {
                assert!(
                    d >= nominal * 0.75 - 1e-9 && d <= nominal * 1.25 + 1e-9,
                    "{d}"
                );
            }
            let (lo, hi) = delays
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)));
            // 500 draws cover most of the ±25 % band.
            assert!(lo < nominal * 0.85 && hi > nominal * 1.15, "{lo}..{hi}");
        }
    }

    #[test]
    fn jitter_never_exceeds_the_maximum() {
        let b = backoff();
        assert!((0..500).all(|_| b.delay(20) <= b.max));
        assert!((0..500).any(|_| b.delay(20) < b.max));
    }
}
