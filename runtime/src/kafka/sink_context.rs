//! The context of a sink task's consumer. Besides answering librdkafka's
//! token refreshes, it notes where the task stands in its consumer group:
//! rebalancing since when, or settled since when on how many partitions;
//! and the group timings the consumer was built with.
//! The runner uses it to tell a group that leaves the task short, or never
//! lets it in, for good (see `herder::sink_runner::assignment_check`).

use std::sync::Mutex;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;

use super::GroupTimeouts;

/// Where a sink consumer stands in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Joining, or rebalancing, since the instant given: no assignment.
    Rebalancing {
        /// Since when.
        since: Instant,
    },
    /// The group settled on an assignment.
    Settled {
        /// When the rebalance that gave it ended.
        since: Instant,
        /// How many partitions the consumer holds since.
        partitions: usize,
    },
}

/// A sink consumer's context: see the module documentation.
#[derive(Debug)]
pub struct SinkContext {
    membership: Mutex<Membership>,
    timeouts: GroupTimeouts,
}

impl SinkContext {
    /// The context of a consumer built with `timeouts`, joining its group.
    pub fn new(timeouts: GroupTimeouts) -> Self {
        Self {
            membership: Mutex::new(Membership::Rebalancing {
                since: Instant::now(),
            }),
            timeouts,
        }
    }

    /// The group timings the consumer was built with.
    pub fn timeouts(&self) -> GroupTimeouts {
        self.timeouts
    }

    /// Where the consumer stands in its group now.
    pub fn membership(&self) -> Membership {
        *self.membership.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, membership: Membership) {
        *self.membership.lock().unwrap_or_else(|e| e.into_inner()) = membership;
    }

    /// A rebalance began, unless one is under way already: it counts
    /// from its start, however many errors it meets.
    fn rebalancing(&self) {
        let mut membership = self.membership.lock().unwrap_or_else(|e| e.into_inner());
        if let Membership::Settled { .. } = *membership {
            *membership = Membership::Rebalancing {
                since: Instant::now(),
            };
        }
    }
}

impl ClientContext for SinkContext {
    crate::kafka::answers_token_refresh!();
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            self.rebalancing();
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
                self.set(Membership::Settled {
                    since: Instant::now(),
                    partitions,
                });
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(_) => self.rebalancing(),
        }
    }
}
