//! The keys every Debezium source connector shares — how events are
//! shaped and batched, heartbeats, the snapshot's readers — declared once
//! with their defaults, and read into [`SourceSettings`], which each source
//! connector's settings embed.

use std::time::Duration;

use crate::batch::BatchLimit;
use crate::config::{bounds, Settings};
use crate::modes::{BinaryMode, DecimalMode, FailureHandling};
use crate::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

/// Where a key is listed in the reference and in UIs: how to reach the
/// database.
pub const GROUP_CONNECTION: &str = "Connection";
/// Which tables, columns and changes are captured.
pub const GROUP_CAPTURE: &str = "Capture";
/// How the initial snapshot is taken.
pub const GROUP_SNAPSHOT: &str = "Snapshot";
/// What the events look like and how they are handed over.
pub const GROUP_EVENTS: &str = "Events";

/// The keys every source connector understands alike.
pub fn definition() -> ConfigDef {
    let key = |name, ty, doc, group| ConfigKey::new(name, ty, doc).group(group);
    ConfigDef::new()
        .define(key("database.password", ConfigType::Password, "The user's password.", GROUP_CONNECTION).default(""))
        .define(key("column.include.list", ConfigType::List, "Regular expressions of <schema or database>.<table>.<column> to emit.", GROUP_CAPTURE))
        .define(key("column.exclude.list", ConfigType::List, "Regular expressions of <schema or database>.<table>.<column> not to emit.", GROUP_CAPTURE))
        .define(key("snapshot.include.collection.list", ConfigType::List, "Regular expressions of the captured tables the snapshot reads (all when unset); the others are streamed only.", GROUP_SNAPSHOT))
        .define(key("snapshot.max.threads", ConfigType::Int, "Readers sharing the snapshot (tables, and ranges of a large table, in parallel).", GROUP_SNAPSHOT).default("1").validator(bounds::threads))
        .define(key("snapshot.fetch.size", ConfigType::Int, "Rows read per round trip while snapshotting MySQL/MariaDB (a PostgreSQL snapshot streams each table with COPY: no round trips to size).", GROUP_SNAPSHOT).default("10240").validator(bounds::batch))
        .define(key("tombstones.on.delete", ConfigType::Boolean, "Follow each delete with a tombstone (null value) for compaction.", GROUP_EVENTS).default("true"))
        .define(key("heartbeat.interval.ms", ConfigType::Long, "Heartbeat records to __debezium-heartbeat.<prefix> (see topic.heartbeat.prefix); 0 disables.", GROUP_EVENTS).default("0"))
        .define(key("heartbeat.action.query", ConfigType::String, "SQL run at each heartbeat (e.g. an INSERT into a heartbeat table), so an idle database's position advances.", GROUP_EVENTS))
        .define(key("decimal.handling.mode", ConfigType::String, "precise, double or string.", GROUP_EVENTS).default("precise").allowed(&["precise", "double", "string"]))
        .define(key("binary.handling.mode", ConfigType::String, "Binary columns as bytes, or as base64, base64-url-safe or hex text.", GROUP_EVENTS).default("bytes").allowed(BinaryMode::ALLOWED))
        .define(key("skip.messages.without.change", ConfigType::Boolean, "Leave out updates that change none of the emitted columns (column.include.list / column.exclude.list); PostgreSQL needs REPLICA IDENTITY FULL to see the old values.", GROUP_EVENTS).default("false"))
        .define(key("event.processing.failure.handling.mode", ConfigType::String, "A change whose values cannot be read: fail (the task stops, naming it), warn (skipped and logged) or skip.", GROUP_EVENTS).default("fail").allowed(FailureHandling::ALLOWED))
        .define(key("provide.transaction.metadata", ConfigType::Boolean, "Fill each event's transaction block and write BEGIN / END events (with event counts per table) to <topic.prefix>.transaction (see topic.transaction).", GROUP_EVENTS).default("false"))
        .define(key("max.batch.size", ConfigType::Int, "Most events per poll.", GROUP_EVENTS).default("2048").validator(bounds::batch))
        .define(key("max.queue.size", ConfigType::Int, "Most events buffered ahead of the runtime (in batches of max.batch.size).", GROUP_EVENTS).default("8192").validator(bounds::batch))
        .define(key("max.queue.size.in.bytes", ConfigType::Long, "Most bytes of events buffered ahead of the runtime, as well as max.queue.size; 0 for no byte bound. Batches of wide rows close at 8 MiB (or at this bound, when smaller) whatever max.batch.size allows.", GROUP_EVENTS).default("0").validator(bounds::bytes))
        .define(key("skipped.operations", ConfigType::List, "Operations not emitted: c, u, d, t; none emits all. Default t (truncates), as Debezium.", GROUP_EVENTS).default("t"))
}

/// How many batches may wait between a source task and the runtime:
/// `max.queue.size` events in batches of `max.batch.size` (Debezium's
/// queue), counting the batch the task is handing over while it waits for
/// room — so the default holds 8,192 events as Debezium's queue does, not
/// 8,192 plus a batch (2,048 events, ~5 MiB of decoded rows at the peak
/// of scripts/bench-mysql's snapshot). At least one. A config that does
/// not parse gets the defaults' three; its connector refuses it when it
/// starts anyway.
pub fn queued_batches(config: &ConnectorConfig) -> usize {
    let definition = definition();
    let settings = definition.read(config);
    match (
        settings.count("max.queue.size"),
        settings.count("max.batch.size"),
    ) {
        (Ok(queue), Ok(batch)) => queue.div_ceil(batch).saturating_sub(1).max(1),
        _ => 3,
    }
}

/// `max.queue.size.in.bytes`: the most bytes of events waiting between a
/// source task and the runtime, 0 for no byte bound (a config that does
/// not parse gets none; its connector refuses it when it starts anyway).
pub fn queue_bytes(config: &ConnectorConfig) -> usize {
    definition()
        .read(config)
        .long("max.queue.size.in.bytes")
        .ok()
        .and_then(|bytes| usize::try_from(bytes).ok())
        .unwrap_or(0)
}

/// The shared keys, read.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// `database.password`
    pub password: String,
    /// `snapshot.max.threads`
    pub snapshot_threads: usize,
    /// `snapshot.fetch.size`
    pub snapshot_fetch_size: usize,
    /// `tombstones.on.delete`
    pub tombstones_on_delete: bool,
    /// `heartbeat.interval.ms`; zero disables heartbeats.
    pub heartbeat_interval: Duration,
    /// `heartbeat.action.query`
    pub heartbeat_action_query: Option<String>,
    /// `decimal.handling.mode`
    pub decimal_mode: DecimalMode,
    /// `binary.handling.mode`
    pub binary_mode: BinaryMode,
    /// `skip.messages.without.change`
    pub skip_unchanged: bool,
    /// `event.processing.failure.handling.mode`
    pub failure_handling: FailureHandling,
    /// `provide.transaction.metadata`
    pub transaction_metadata: bool,
    /// `max.batch.size`
    pub max_batch_size: usize,
    /// `max.queue.size.in.bytes`; 0 for no byte bound.
    pub max_queue_bytes: usize,
    /// `skipped.operations` as operation letters (`c`, `u`, `d`, `t`).
    pub skipped_operations: Vec<char>,
}

impl SourceSettings {
    /// The shared keys of a connector's config, read through its
    /// definition (which merges [`definition`]).
    pub fn read(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            password: settings.text("database.password")?,
            snapshot_threads: settings.count("snapshot.max.threads")?,
            snapshot_fetch_size: settings.count("snapshot.fetch.size")?,
            tombstones_on_delete: settings.boolean("tombstones.on.delete")?,
            heartbeat_interval: settings.millis("heartbeat.interval.ms")?,
            heartbeat_action_query: settings.optional("heartbeat.action.query")?,
            decimal_mode: DecimalMode::from_text(&settings.text("decimal.handling.mode")?),
            binary_mode: BinaryMode::from_text(&settings.text("binary.handling.mode")?),
            skip_unchanged: settings.boolean("skip.messages.without.change")?,
            failure_handling: FailureHandling::from_text(
                &settings.text("event.processing.failure.handling.mode")?,
            ),
            transaction_metadata: settings.boolean("provide.transaction.metadata")?,
            max_batch_size: settings.count("max.batch.size")?,
            max_queue_bytes: usize::try_from(settings.long("max.queue.size.in.bytes")?)
                .unwrap_or(0),
            skipped_operations: settings
                .list("skipped.operations")?
                .iter()
                .filter(|op| op.as_str() != "none")
                .filter_map(|op| op.chars().next())
                .collect(),
        })
    }
}

impl SourceSettings {
    /// When a batch of events is handed over: at `max.batch.size` events
    /// or at a byte bound (see [`BatchLimit`]).
    pub fn batch_limit(&self) -> BatchLimit {
        BatchLimit::new(self.max_batch_size, self.max_queue_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_max_queue_size_events_in_batches() {
        let batches = |pairs: &[(&str, &str)]| queued_batches(&ConnectorConfig::from_pairs(pairs));
        assert_eq!(
            batches(&[]),
            3,
            "Debezium's 8192 events in batches of 2048, one of them being handed over"
        );
        assert_eq!(
            batches(&[("max.queue.size", "30000"), ("max.batch.size", "10000")]),
            2
        );
        assert_eq!(
            batches(&[("max.queue.size", "100"), ("max.batch.size", "2048")]),
            1
        );
        assert_eq!(batches(&[("max.queue.size", "x")]), 3);
    }

    #[test]
    fn unset_keys_read_as_debeziums_defaults() {
        let def = definition();
        let empty = ConnectorConfig::default();
        let read = SourceSettings::read(&def.read(&empty)).expect("defaults are valid");
        assert!(read.tombstones_on_delete);
        assert_eq!(read.heartbeat_interval, Duration::ZERO);
        assert_eq!(read.heartbeat_action_query, None);
        assert_eq!(read.skipped_operations, ['t']);
        assert_eq!(read.max_batch_size, 2048);
        assert_eq!(
            (read.snapshot_threads, read.snapshot_fetch_size),
            (1, 10240)
        );
        assert_eq!(read.failure_handling, FailureHandling::Fail);
    }

    #[test]
    fn set_keys_are_read_and_bad_ones_named() {
        let def = definition();
        let config = ConnectorConfig::from_pairs(&[
            ("skipped.operations", "none"),
            ("heartbeat.interval.ms", "1500"),
            ("heartbeat.action.query", "  "),
            ("max.batch.size", "0"),
        ]);
        let read = SourceSettings::read(&def.read(&config)).expect("valid");
        assert!(read.skipped_operations.is_empty());
        assert_eq!(read.heartbeat_interval, Duration::from_millis(1500));
        assert_eq!(read.heartbeat_action_query, None, "blank is unset");
        assert_eq!(read.max_batch_size, 1, "a count is at least one");
        let bad = ConnectorConfig::from_pairs(&[("tombstones.on.delete", "maybe")]);
        let error = SourceSettings::read(&def.read(&bad)).expect_err("not a boolean");
        assert_eq!(error.key, "tombstones.on.delete");
    }
}
