//! Settings every Debezium source shares, parsed once: `snapshot.mode`
//! and `decimal.handling.mode`.

/// How the initial snapshot is taken (`snapshot.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Snapshot once when there is no offset, then stream.
    Initial,
    /// Never snapshot: stream from the current position (`no_data`,
    /// `never`, and MySQL's `schema_only`).
    NoData,
    /// Snapshot once, then stop without streaming.
    InitialOnly,
    /// Snapshot at every start, then stream.
    Always,
    /// Snapshot when there is no offset or the source lost the offset's
    /// position (purged binlog, lost WAL).
    WhenNeeded,
}

impl SnapshotMode {
    /// The mode a validated `snapshot.mode` value names (`initial` otherwise).
    pub fn from_text(text: &str) -> Self {
        match text {
            "no_data" | "never" | "schema_only" => Self::NoData,
            "initial_only" => Self::InitialOnly,
            "always" => Self::Always,
            "when_needed" => Self::WhenNeeded,
            _ => Self::Initial,
        }
    }
}

/// How exact numerics are emitted (`decimal.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalMode {
    /// Connect Decimal (bytes), exact.
    Precise,
    /// 64-bit float.
    Double,
    /// Text.
    String,
}

impl DecimalMode {
    /// The mode a validated `decimal.handling.mode` value names (`precise`
    /// otherwise).
    pub fn from_text(text: &str) -> Self {
        match text {
            "double" => Self::Double,
            "string" => Self::String,
            _ => Self::Precise,
        }
    }
}
