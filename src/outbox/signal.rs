//! Waking the senders when deliveries become due, without polling.
//!
//! The analysis worker (a plain thread) and the control socket announce new
//! or retried deliveries; the senders (tokio tasks) wait for the
//! announcement. A `watch` channel carries a generation counter, so an
//! announcement made while a sender is busy is not lost: the sender sees
//! the changed generation the next time it waits.

use tokio::sync::watch;

pub struct DeliverySignal {
    generation: watch::Sender<u64>,
}

impl Default for DeliverySignal {
    fn default() -> Self {
        DeliverySignal {
            generation: watch::Sender::new(0),
        }
    }
}

impl DeliverySignal {
    /// Announces that deliveries may be due. Callable from any thread.
    pub fn notify(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A receiver for one sender; `changed().await` returns after the next
    /// announcement not yet seen through it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_announcement_made_while_busy_is_not_lost() {
        let signal = DeliverySignal::default();
        let mut receiver = signal.subscribe();
        receiver.borrow_and_update();
        signal.notify(); // the sender is not waiting yet
        tokio::time::timeout(std::time::Duration::from_secs(1), receiver.changed())
            .await
            .expect("the earlier announcement wakes the waiter")
            .unwrap();
    }
}
