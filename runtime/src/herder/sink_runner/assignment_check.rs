//! Noticing a consumer group that leaves a sink task short of partitions,
//! or never lets it in, for good.
//!
//! A settled group gives each of a connector's `T` tasks at least the sum
//! of ⌊p/T⌋ over its topics (`p` partitions each): the range assignor
//! splits every topic that way, round-robin and the sticky assignors
//! balance the whole. A task that holds fewer two session timeouts after
//! the group last settled is not waiting for a rebalance: the rest went
//! to members that are gone, or to a consumer outside the connector that
//! shares its group. And a rebalance ends within the rebalance timeout
//! (`max.poll.interval.ms`), members that did not rejoin left out; one
//! that lasts a session timeout longer, while the task's topics have
//! partitions to give (librdkafka joins no group while none of them
//! exists), never will.
//!
//! Kafka never leaves a group either way. Tansu 0.6 does both
//! (tansu-broker 0.6.0, src/coordinator/group/administrator.rs): a
//! heartbeat drops a lapsed member of a formed group without a new
//! generation, and the survivors' rejoin is answered with the assignment
//! stored before; and a member that joins a formed group whose leader was
//! dropped that way is told that leader's name for ever. Six kill -9s of
//! a worker in a row left its sink RUNNING with nothing to read and the
//! target behind for good. The runner then restarts the task: its consumer
//! leaves the group, which does start a new generation with no stale
//! leader, and joins it again.

use std::time::{Duration, Instant};

use crate::kafka::{GroupTimeouts, Membership};

/// The fewest partitions a settled, balanced group gives each of `tasks`
/// members, for topics of `partitions` partitions each.
pub(super) fn fewest(partitions: &[usize], tasks: usize) -> usize {
    let tasks = tasks.max(1);
    partitions.iter().map(|p| p / tasks).sum()
}

/// Shortest time between two counts of the topics' partitions.
const RECOUNT_AFTER: Duration = Duration::from_secs(5);
/// Looks further apart than this are not one watch: the runner looks
/// after each empty read (one a second while there is nothing to read),
/// so a longer gap means it was busy or paused, and the consumer perhaps
/// not polled, which makes a group rebalance with no fault of its own.
const WATCH_GAP: Duration = Duration::from_secs(5);

/// What a look at the task's membership calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Nothing to do now.
    Nothing,
    /// Count the topics' partitions and judge the assignment settled
    /// `since` on `partitions` with [`AssignmentCheck::short`].
    Count {
        /// When the group settled.
        since: Instant,
        /// How many partitions it gave the task.
        partitions: usize,
    },
    /// The group has been rebalancing this long, longer than any
    /// rebalance lasts.
    Stuck(Duration),
}

/// When to look at a task's group, and what to make of it.
#[derive(Debug)]
pub(super) struct AssignmentCheck {
    /// How long after the group settled an assignment is taken as final.
    grace: Duration,
    /// How long a rebalance may last.
    longest_rebalance: Duration,
    /// How many tasks the connector runs.
    tasks: usize,
    /// The settled assignment already found in order.
    checked: Option<Instant>,
    /// The last count (which may have failed).
    counted: Option<Instant>,
    /// The last look.
    looked: Option<Instant>,
    /// The rebalance being watched (its start) and when the watch began.
    watching: Option<(Instant, Instant)>,
}

impl AssignmentCheck {
    /// A check for one of `tasks` tasks whose consumer has `timeouts`.
    pub(super) fn new(timeouts: GroupTimeouts, tasks: usize) -> Self {
        Self {
            grace: timeouts.session * 2,
            longest_rebalance: timeouts.rebalance + timeouts.session,
            tasks,
            checked: None,
            counted: None,
            looked: None,
            watching: None,
        }
    }

    /// What `membership` calls for at `now`: a count of the topics'
    /// partitions once the group has settled a grace ago (once per
    /// assignment found in order, not again within [`RECOUNT_AFTER`]), or
    /// a restart after watching one rebalance, look after look, for
    /// longer than any lasts.
    pub(super) fn look(&mut self, membership: Membership, now: Instant) -> Look {
        let gap = self
            .looked
            .replace(now)
            .map(|at| now.saturating_duration_since(at));
        if gap.is_some_and(|gap| gap > WATCH_GAP) {
            // What the consumer learnt meanwhile comes with its next poll.
            self.watching = None;
            return Look::Nothing;
        }
        match membership {
            Membership::Rebalancing { since } => {
                let began = match self.watching {
                    Some((watched, began)) if watched == since => began,
                    _ => self.watching.insert((since, now.max(since))).1,
                };
                let lasted = now.saturating_duration_since(began);
                if lasted > self.longest_rebalance {
                    Look::Stuck(lasted)
                } else {
                    Look::Nothing
                }
            }
            Membership::Settled { since, partitions } => {
                let due = now.saturating_duration_since(since) >= self.grace
                    && self.checked != Some(since)
                    && self
                        .counted
                        .is_none_or(|at| now.saturating_duration_since(at) >= RECOUNT_AFTER);
                if !due {
                    return Look::Nothing;
                }
                self.counted = Some(now);
                Look::Count { since, partitions }
            }
        }
    }

    /// Watches the rebalance under way afresh: a [`Look::Stuck`] that
    /// turned out to have nothing to join (its topics have no partition
    /// yet, and librdkafka joins no group for none).
    pub(super) fn watch_again(&mut self) {
        self.watching = None;
    }

    /// Given the count of each topic's partitions, how many the
    /// assignment settled `since` on `held` partitions should have at
    /// least, if it has fewer. One in order is not counted again.
    pub(super) fn short(
        &mut self,
        since: Instant,
        held: usize,
        partitions: &[usize],
    ) -> Option<usize> {
        let expected = fewest(partitions, self.tasks);
        if held >= expected {
            self.checked = Some(since);
            return None;
        }
        Some(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: GroupTimeouts = GroupTimeouts {
        session: Duration::from_secs(10),
        rebalance: Duration::from_secs(60),
    };

    fn settled(since: Instant, partitions: usize) -> Membership {
        Membership::Settled { since, partitions }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn each_task_should_hold_its_share_of_every_topic() {
        assert_eq!(fewest(&[1], 1), 1);
        assert_eq!(fewest(&[3, 2], 1), 5);
        assert_eq!(fewest(&[6], 3), 2);
        assert_eq!(fewest(&[7], 3), 2);
        // Fewer partitions than tasks: some tasks rightly hold none.
        assert_eq!(fewest(&[1, 1], 2), 0);
        assert_eq!(fewest(&[], 1), 0);
        assert_eq!(fewest(&[4], 0), 4);
    }

    #[test]
    fn an_assignment_is_judged_only_after_two_session_timeouts() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(TIMEOUTS, 1);
        assert_eq!(
            check.look(settled(start, 0), start + secs(19)),
            Look::Nothing
        );
        assert_eq!(
            check.look(settled(start, 0), start + secs(20)),
            Look::Count {
                since: start,
                partitions: 0
            }
        );
        assert_eq!(check.short(start, 0, &[1]), Some(1));
    }

    #[test]
    fn a_short_assignment_is_counted_again_after_a_pause_not_at_every_look() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(TIMEOUTS, 1);
        let first = start + secs(20);
        assert_eq!(
            check.look(settled(start, 0), first - secs(1)),
            Look::Nothing
        );
        assert_ne!(check.look(settled(start, 0), first), Look::Nothing);
        // The count failed (no answer from the broker): not straight again.
        assert_eq!(
            check.look(settled(start, 0), first + secs(1)),
            Look::Nothing
        );
        assert_ne!(
            check.look(settled(start, 0), first + RECOUNT_AFTER),
            Look::Nothing
        );
    }

    #[test]
    fn an_assignment_in_order_is_not_counted_again_until_the_next_rebalance() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(TIMEOUTS, 2);
        let later = start + secs(30);
        assert_ne!(check.look(settled(start, 2), later), Look::Nothing);
        assert_eq!(check.short(start, 2, &[4]), None);
        quiet(&mut check, settled(start, 2), later, 1..=600);
        // The next rebalance gives this task one of the four.
        let later = later + secs(600);
        quiet(&mut check, settled(later, 1), later, 1..=19);
        let judged = later + secs(20);
        assert_ne!(check.look(settled(later, 1), judged), Look::Nothing);
        assert_eq!(check.short(later, 1, &[4]), Some(2));
    }

    /// Looks once a second at `start` plus each of `seconds`, each
    /// calling for nothing.
    fn quiet(
        check: &mut AssignmentCheck,
        membership: Membership,
        start: Instant,
        seconds: std::ops::RangeInclusive<u64>,
    ) {
        for second in seconds {
            assert_eq!(
                check.look(membership, start + secs(second)),
                Look::Nothing,
                "at {second} s"
            );
        }
    }

    #[test]
    fn a_rebalance_watched_past_the_limit_is_stuck_unless_there_was_nothing_to_join() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(TIMEOUTS, 1);
        let waiting = Membership::Rebalancing { since: start };
        // The rebalance timeout and a session: 70 s.
        quiet(&mut check, waiting, start, 0..=70);
        assert_eq!(check.look(waiting, start + secs(71)), Look::Stuck(secs(71)));
        // The topic does not exist yet: not stuck, and not asked again at
        // every look.
        check.watch_again();
        quiet(&mut check, waiting, start, 72..=142);
        assert_eq!(
            check.look(waiting, start + secs(143)),
            Look::Stuck(secs(71))
        );
    }

    #[test]
    fn a_rebalance_is_timed_from_the_first_look_of_an_unbroken_watch() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(TIMEOUTS, 1);
        // The consumer was not polled for two minutes (a pause, a long
        // write): the group rebalanced meanwhile without its fault.
        let rebalancing = Membership::Rebalancing { since: start };
        assert_eq!(check.look(rebalancing, start), Look::Nothing);
        let resumed = start + secs(120);
        assert_eq!(check.look(rebalancing, resumed), Look::Nothing);
        assert_eq!(check.look(rebalancing, resumed + secs(1)), Look::Nothing);
        // Another gap starts the watch again, from the look after it.
        let later = resumed + secs(60);
        quiet(&mut check, rebalancing, later, 0..=71);
        assert_eq!(
            check.look(rebalancing, later + secs(72)),
            Look::Stuck(secs(71))
        );
    }
}
