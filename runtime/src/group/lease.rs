//! A worker's lease on its share of the group: renewed each time the group
//! coordinator accepts this member's offset commit, lost when that has not
//! happened for a lease period. The lease is shorter than the group's
//! session timeout, so a worker cut off from the broker (or frozen, then
//! woken) stops its tasks before the coordinator can give them to another
//! worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The time of the last renewal and how long it lasts.
pub struct Lease {
    base: Instant,
    /// Milliseconds after `base` of the last renewal, plus one (0: never).
    renewed_at: AtomicU64,
    period: Duration,
}

impl Lease {
    /// A lease lasting `period` after each renewal; not held until renewed.
    pub fn new(period: Duration) -> Self {
        Self {
            base: Instant::now(),
            renewed_at: AtomicU64::new(0),
            period,
        }
    }

    /// Records a renewal that was asked for at `asked`: the lease counts
    /// from when the request left, never from when the answer came. A
    /// lease that lapsed stays lapsed: the group may have moved on, so only
    /// a new assignment ([`Lease::reset`]) makes it renewable again.
    pub fn renewed(&self, asked: Instant) {
        let at = asked.saturating_duration_since(self.base).as_millis() as u64 + 1;
        let _ = self
            .renewed_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                if current != 0 && !self.valid(current) {
                    None
                } else {
                    Some(current.max(at))
                }
            });
    }

    /// Starts over, not held until renewed: for a new assignment, or when
    /// the assignment is given up.
    pub fn reset(&self) {
        self.renewed_at.store(0, Ordering::Release);
    }

    /// Whether the lease holds now.
    pub fn holds(&self) -> bool {
        match self.renewed_at.load(Ordering::Acquire) {
            0 => false,
            at => self.valid(at),
        }
    }

    fn valid(&self, at: u64) -> bool {
        let renewed = self.base + Duration::from_millis(at - 1);
        renewed.elapsed() < self.period
    }

    /// How long the lease lasts after a renewal.
    pub fn period(&self) -> Duration {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_for_its_period_from_the_request() {
        let lease = Lease::new(Duration::from_millis(200));
        assert!(!lease.holds());
        lease.renewed(Instant::now());
        assert!(lease.holds());
        std::thread::sleep(Duration::from_millis(250));
        assert!(!lease.holds(), "expired");
        // Once lapsed, no answer renews it: only a new assignment does.
        lease.renewed(Instant::now());
        assert!(!lease.holds(), "a lapsed lease is not revived");
        lease.reset();
        // An answer to an old request does not extend past its period.
        lease.renewed(Instant::now() - Duration::from_millis(300));
        assert!(!lease.holds());
        lease.reset();
        lease.renewed(Instant::now());
        assert!(lease.holds());
        lease.reset();
        assert!(!lease.holds());
    }
}
