//! Series completion: the sweep that marks a series complete ("stable")
//! once no instance has arrived for `research.series_stable_secs`, the way
//! Orthanc's stable-series event works.
//!
//! DICOM never says a series is over, so time has to. The sweep runs in
//! `serve` beside the other stages; the records are the ledger's
//! ([`crate::ledger::SeriesIndex`]). Research cohorts take only complete
//! series, so a CT still arriving is never exported by halves.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ledger::Ledger;

/// How often the sweep looks: often enough that a series is marked within
/// a quarter of the stable time, never more than once a second.
fn interval(stable_secs: u64) -> Duration {
    Duration::from_secs((stable_secs / 4).clamp(1, 10))
}

/// Sweeps until `shutdown`.
pub(crate) async fn run(ledger: Ledger, stable_secs: u64, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(interval(stable_secs));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let series = ledger.series();
        let now = crate::clock::unix_now();
        let swept = tokio::task::spawn_blocking(move || series.mark_stable(now, stable_secs)).await;
        match swept {
            Ok(Ok(stable)) => {
                for record in stable {
                    tracing::info!(
                        instances = record.instances,
                        "series complete: no new instance for {stable_secs} s"
                    );
                    tracing::debug!(series = %record.series_instance_uid, "series complete");
                }
            }
            Ok(Err(error)) => tracing::warn!("series completion sweep failed: {error:#}"),
            Err(error) => tracing::warn!("series completion sweep panicked: {error}"),
        }
    }
}
