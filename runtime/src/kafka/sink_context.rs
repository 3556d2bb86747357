//! The context of a sink task's consumer. Besides answering librdkafka's
//! token refreshes, it notes when the consumer group last settled and how
//! many partitions it gave the task then, so the runner can tell a group
//! that leaves the task short for good (see
//! `herder::sink_runner::assignment_check`).

use std::sync::Mutex;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;

/// The group's last settled assignment of this consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// When the rebalance that gave it ended.
    pub since: Instant,
    /// How many partitions the consumer holds since.
    pub partitions: usize,
}

/// A sink consumer's context: see the module documentation.
#[derive(Debug, Default)]
pub struct SinkContext {
    /// `None` until the first assignment and while a rebalance is under way.
    settled: Mutex<Option<Settled>>,
}

impl SinkContext {
    /// The assignment the group last settled on, if it is not rebalancing.
    pub fn settled(&self) -> Option<Settled> {
        *self.settled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, settled: Option<Settled>) {
        *self.settled.lock().unwrap_or_else(|e| e.into_inner()) = settled;
    }
}

impl ClientContext for SinkContext {
    crate::kafka::answers_token_refresh!();
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            self.set(None);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(given) => {
                // The whole assignment: under a cooperative protocol `given`
                // holds only the partitions added.
                let partitions = consumer
                    .assignment()
                    .map_or_else(|_| given.count(), |all| all.count());
                self.set(Some(Settled {
                    since: Instant::now(),
                    partitions,
                }));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(_) => self.set(None),
        }
    }
}
