//! How often the replication stream is read while the walsender sends
//! fast: in chunks at most once a millisecond, not as each message lands.
//!
//! The walsender writes every message to the socket on its own. A reader
//! that keeps up wakes for each of them, and the walsender pays for that
//! too (the sender's `send()` wakes the reader, and on two cores the
//! reader's threads preempt it). In `scripts/bench-postgres`'s stream
//! (1,000,000 changes, six runs each way, alternated), PostgreSQL spent
//! 6.2–8.2 µs of CPU a change while sluice drained it (median 7.7;
//! 6.2–7.5 for `pg_recvlogical` in the same runs) and sluice 2.3–4.0 µs
//! (median 3.2); pausing a millisecond before a read whenever the last
//! read was large brought them to 6.1–7.1 (6.6) and 2.3–2.9 µs (2.6),
//! and the rate's median from 121,000 to 127,000 changes a second. The
//! machine's noise is as large as the change in any one pair of runs:
//! the medians carry it. Reading everything waiting after the
//! pause (a loop of reads until none is ready) undid it: PostgreSQL
//! 11.1 µs, sluice 5.0 µs. A quiet stream (a small last read) is read as
//! soon as anything arrives, so single commits wait no longer.

use std::time::Duration;

/// How long a busy stream is left to fill the socket before it is read:
/// the timer's resolution, and a thousandth of a second of changes at the
/// rate a walsender sends (~130,000 a second here) is ~15 KiB.
pub const PAUSE: Duration = Duration::from_millis(1);

/// How much one read of the socket may take. A busy stream is read once
/// per pause, and the capture loop pauses after each batch too (its
/// `BACKLOG_PAUSE`), so this bounds how fast a backlog drains: in
/// `scripts/bench-postgres`'s stream every read came back full, ~117
/// times a second (~15 MB/s), while the walsender's socket held 3–4 MB
/// waiting. Larger reads drained no faster, and PostgreSQL's CPU per
/// change rose, and sluice's with it (three alternated pairs of runs
/// each: 1 MiB 113,000–134,000 changes a second, PostgreSQL 7.0–8.6 µs a
/// change, against 128,000–129,000 and 6.3–6.4 µs at 128 KiB, and 11 MiB
/// more peak RSS; 256 KiB 100,000–128,000 and 7.6–9.6 µs, against
/// 116,000–127,000 and 6.6–7.5 µs).
pub const READ_BUFFER: usize = 128 * 1024;

/// A read of at least this many bytes marks the stream as busy: data was
/// waiting, so the next read may wait for more. Below it (a commit now
/// and then, keepalives) every read happens at once.
pub const BUSY_BYTES: usize = 4 * 1024;

/// Whether the stream is busy, from the last read.
#[derive(Debug, Default)]
pub struct ReadPacing {
    busy: bool,
}

impl ReadPacing {
    /// How long to wait before the next read (`None`: read now).
    pub fn pause(&self) -> Option<Duration> {
        self.busy.then_some(PAUSE)
    }

    /// Notes that a read of the socket took `bytes`.
    pub fn read(&mut self, bytes: usize) {
        self.busy = bytes >= BUSY_BYTES;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_paused_only_after_a_large_read() {
        let mut pacing = ReadPacing::default();
        assert_eq!(pacing.pause(), None, "the first read happens at once");
        pacing.read(BUSY_BYTES);
        assert_eq!(pacing.pause(), Some(PAUSE));
        pacing.read(200);
        assert_eq!(pacing.pause(), None, "a quiet stream is read at once");
    }
}
