//! Snapshot or stream: what a starting task does, from `snapshot.mode`,
//! its stored offset and whether the replication slot exists — then the
//! snapshot, the stream, or both in turn.

use sluice_connector_api::ConnectorError;

use super::{wire, Capture};
use crate::catalog::{self, TypeCache};
use crate::config::SnapshotMode;
use crate::offset::Resume;
use crate::replication::ReplicationConnection;
use crate::setup::{self, query_error, SESSION_OPTIONS};

/// A slot of this connector's `slot.name` exists but the connector has
/// no offsets, so it was not created for this connector: taking a
/// snapshot would mean dropping it, and it may be another connector's
/// (`slot.name` defaults to `debezium` for every database of a cluster).
fn foreign_slot(slot: &str, database: &str, active: bool) -> ConnectorError {
    let user = if active {
        "a client is streaming from it right now"
    } else {
        "no client is streaming from it now"
    };
    ConnectorError::fatal(format!(
        "replication slot {slot} already exists (database {database}; {user}), but this connector has no stored offsets, so sluice did not create it for this connector and will not drop it. Give this connector a slot of its own with slot.name; or, if the slot is a leftover no one uses (a deleted connector's, or this one's before its offsets were reset), drop it with SELECT pg_drop_replication_slot('{slot}') and restart the task"
    ))
}

/// What a starting task does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Take a snapshot (then stream, unless `initial_only`).
    Snapshot,
    /// Stream from the stored offset (or, with no slot yet under
    /// `no_data`, from a new slot's start).
    Stream,
    /// Nothing: `initial_only` and the snapshot was taken.
    Nothing,
    /// A slot of this name exists, but the connector has no offsets.
    RefuseForeignSlot,
    /// The connector has offsets but its slot is gone, and with it the
    /// changes since.
    RefuseLostSlot,
}

/// The first phase, from `snapshot.mode`, where the stored offset says to
/// resume, and whether the replication slot exists.
fn first_phase(mode: SnapshotMode, resume: Resume, slot_exists: bool) -> Phase {
    if slot_exists && resume == Resume::Fresh && mode != SnapshotMode::NoData {
        return Phase::RefuseForeignSlot;
    }
    match (mode, resume) {
        (SnapshotMode::NoData, _) => Phase::Stream,
        (SnapshotMode::Always, _) => Phase::Snapshot,
        (_, Resume::Fresh | Resume::SnapshotIncomplete) => Phase::Snapshot,
        (SnapshotMode::WhenNeeded, _) if !slot_exists => Phase::Snapshot,
        (_, _) if !slot_exists => Phase::RefuseLostSlot,
        (SnapshotMode::InitialOnly, _) => Phase::Nothing,
        _ => Phase::Stream,
    }
}

impl Capture {
    /// Snapshot, stream, or both, as the start calls for.
    pub(super) async fn coordinate(self) -> Result<(), ConnectorError> {
        let client = setup::connect(&self.config).await?;
        let tables = catalog::tables(&client, &self.config.filters)
            .await
            .map_err(|e| ConnectorError::retriable(e.to_string()))?;
        setup::preflight(&client, &self.config, &tables).await?;
        setup::ensure_publication(&client, &self.config, &tables).await?;
        let mut types = TypeCache::default();
        let existing_slot = client
            .query_opt(
                "SELECT coalesce(database, ''), active FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.config.slot_name],
            )
            .await
            .map_err(|e| query_error("reading replication slots", e))?;
        let slot_exists = existing_slot.is_some();
        let snapshot = match first_phase(self.config.snapshot_mode, self.resume, slot_exists) {
            Phase::Snapshot => true,
            Phase::Stream => false,
            Phase::Nothing => {
                tracing::info!("snapshot already taken and snapshot.mode=initial_only: nothing to do");
                return Ok(());
            }
            Phase::RefuseForeignSlot => {
                let (database, active) = existing_slot
                    .map(|row| (row.get::<_, String>(0), row.get(1)))
                    .unwrap_or_default();
                return Err(foreign_slot(&self.config.slot_name, &database, active));
            }
            Phase::RefuseLostSlot => {
                return Err(ConnectorError::fatal(format!(
                    "replication slot {} is gone but the connector has stored offsets: the changes since were lost with it. Set snapshot.mode=when_needed to take a new snapshot, or reset the offsets (DELETE /connectors/<name>/offsets)",
                    self.config.slot_name
                )))
            }
        };
        let params = setup::replication_params(&self.config);
        let start = if snapshot {
            let consistent = self
                .snapshot(&client, &mut types, &tables, slot_exists, &params)
                .await?;
            if self.config.snapshot_mode == SnapshotMode::InitialOnly {
                tracing::info!("snapshot done and snapshot.mode=initial_only: not streaming");
                return Ok(());
            }
            Resume::AfterSnapshot(consistent)
        } else {
            if !slot_exists {
                let mut conn = ReplicationConnection::connect(&params, SESSION_OPTIONS)
                    .await
                    .map_err(|e| wire("connecting for replication", e))?;
                conn.simple_query(&format!(
                    "CREATE_REPLICATION_SLOT \"{}\" LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                    self.config.slot_name
                ))
                .await
                .map_err(|e| wire("creating the replication slot", e))?;
                conn.close().await;
            }
            self.resume
        };
        self.stream(&client, &mut types, &params, start).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::Lsn;

    const STREAMING: Resume = Resume::Stream {
        commit_lsn: Lsn(42),
        tx_seq: Some(0),
    };

    #[test]
    fn a_first_start_snapshots_unless_told_not_to() {
        for mode in [
            SnapshotMode::Initial,
            SnapshotMode::InitialOnly,
            SnapshotMode::Always,
            SnapshotMode::WhenNeeded,
        ] {
            assert_eq!(first_phase(mode, Resume::Fresh, false), Phase::Snapshot);
        }
        assert_eq!(
            first_phase(SnapshotMode::NoData, Resume::Fresh, false),
            Phase::Stream
        );
    }

    #[test]
    fn a_snapshot_cut_short_is_taken_again() {
        assert_eq!(
            first_phase(SnapshotMode::Initial, Resume::SnapshotIncomplete, true),
            Phase::Snapshot
        );
    }

    #[test]
    fn a_restart_streams_from_its_offset() {
        for resume in [STREAMING, Resume::AfterSnapshot(Lsn(7))] {
            assert_eq!(
                first_phase(SnapshotMode::Initial, resume, true),
                Phase::Stream
            );
            assert_eq!(
                first_phase(SnapshotMode::InitialOnly, resume, true),
                Phase::Nothing
            );
            assert_eq!(
                first_phase(SnapshotMode::Always, resume, true),
                Phase::Snapshot
            );
        }
    }

    #[test]
    fn a_slot_that_is_not_ours_or_is_gone_is_refused_not_papered_over() {
        assert_eq!(
            first_phase(SnapshotMode::Initial, Resume::Fresh, true),
            Phase::RefuseForeignSlot
        );
        assert_eq!(
            first_phase(SnapshotMode::Initial, STREAMING, false),
            Phase::RefuseLostSlot
        );
        // when_needed takes a new snapshot instead.
        assert_eq!(
            first_phase(SnapshotMode::WhenNeeded, STREAMING, false),
            Phase::Snapshot
        );
        // no_data streams from wherever it is: a slot of that name is used.
        assert_eq!(
            first_phase(SnapshotMode::NoData, Resume::Fresh, true),
            Phase::Stream
        );
    }
}
