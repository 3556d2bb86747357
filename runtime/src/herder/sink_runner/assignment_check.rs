//! Noticing a consumer group that leaves a sink task short of partitions
//! for good.
//!
//! A settled group gives each of a connector's `T` tasks at least the sum
//! of ⌊p/T⌋ over its topics (`p` partitions each): the range assignor
//! splits every topic that way, round-robin and the sticky assignors
//! balance the whole. A task that holds fewer two session timeouts after
//! the group last settled is not waiting for a rebalance: the rest went
//! to members that are gone, or to a consumer outside the connector that
//! shares its group.
//!
//! Kafka never leaves a group that way. Tansu 0.6 does: it drops a member
//! whose session lapsed without starting a new generation, and answers
//! the survivors' rejoin with the assignment it stored before
//! (tansu-broker 0.6.0, src/coordinator/group/administrator.rs:
//! `missed_heartbeat` and `sync` of a formed group). Six kill -9s of a
//! worker in a row left its sink RUNNING with nothing to read and the
//! target behind for good. The runner then restarts the task: its
//! consumer leaves the group, which does start a new generation, and
//! joins it again.

use std::time::{Duration, Instant};

use crate::kafka::Settled;

/// The fewest partitions a settled, balanced group gives each of `tasks`
/// members, for topics of `partitions` partitions each.
pub(super) fn fewest(partitions: &[usize], tasks: usize) -> usize {
    let tasks = tasks.max(1);
    partitions.iter().map(|p| p / tasks).sum()
}

/// Shortest time between two counts of the topics' partitions.
const RECOUNT_AFTER: Duration = Duration::from_secs(5);

/// When to count a task's topics' partitions, and what the count says.
#[derive(Debug)]
pub(super) struct AssignmentCheck {
    /// How long after the group settled an assignment is taken as final.
    grace: Duration,
    /// How many tasks the connector runs.
    tasks: usize,
    /// The settled assignment already found in order.
    checked: Option<Instant>,
    /// The last count (which may have failed).
    counted: Option<Instant>,
}

impl AssignmentCheck {
    /// A check for one of `tasks` tasks whose consumer has
    /// `session_timeout`.
    pub(super) fn new(session_timeout: Duration, tasks: usize) -> Self {
        Self {
            grace: session_timeout * 2,
            tasks,
            checked: None,
            counted: None,
        }
    }

    /// Whether the topics' partitions should be counted now: the group
    /// settled on `settled` a grace ago, nobody checked that assignment
    /// yet, and no count was made a moment ago.
    pub(super) fn due(&mut self, settled: Settled, now: Instant) -> bool {
        let due = now.saturating_duration_since(settled.since) >= self.grace
            && self.checked != Some(settled.since)
            && self
                .counted
                .is_none_or(|at| now.saturating_duration_since(at) >= RECOUNT_AFTER);
        if due {
            self.counted = Some(now);
        }
        due
    }

    /// Given the count of each topic's partitions, how many `settled`
    /// should hold at least, if it holds fewer. An assignment in order is
    /// not checked again.
    pub(super) fn short(&mut self, settled: Settled, partitions: &[usize]) -> Option<usize> {
        let expected = fewest(partitions, self.tasks);
        if settled.partitions >= expected {
            self.checked = Some(settled.since);
            return None;
        }
        Some(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(10);

    fn settled(since: Instant, partitions: usize) -> Settled {
        Settled { since, partitions }
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
        let mut check = AssignmentCheck::new(SESSION, 1);
        let empty = settled(start, 0);
        assert!(!check.due(empty, start + Duration::from_secs(19)));
        assert!(check.due(empty, start + Duration::from_secs(20)));
        assert_eq!(check.short(empty, &[1]), Some(1));
    }

    #[test]
    fn a_short_assignment_is_counted_again_after_a_pause_not_at_every_look() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(SESSION, 1);
        let empty = settled(start, 0);
        let first = start + Duration::from_secs(20);
        assert!(check.due(empty, first));
        // The count failed (no answer from the broker): not straight again.
        assert!(!check.due(empty, first + Duration::from_secs(1)));
        assert!(check.due(empty, first + RECOUNT_AFTER));
    }

    #[test]
    fn an_assignment_in_order_is_not_counted_again_until_the_next_rebalance() {
        let start = Instant::now();
        let mut check = AssignmentCheck::new(SESSION, 2);
        let fair = settled(start, 2);
        let later = start + Duration::from_secs(30);
        assert!(check.due(fair, later));
        assert_eq!(check.short(fair, &[4]), None);
        assert!(!check.due(fair, later + Duration::from_secs(600)));
        // The next rebalance gives this task one of the four.
        let next = settled(later, 1);
        let judged = later + Duration::from_secs(20);
        assert!(check.due(next, judged));
        assert_eq!(check.short(next, &[4]), Some(2));
    }
}
