//! Settings every Debezium source shares, parsed once: `snapshot.mode`,
//! `decimal.handling.mode`, `binary.handling.mode` and
//! `event.processing.failure.handling.mode`.

use crate::{Schema, Value};

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

/// How binary columns are emitted (`binary.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryMode {
    /// Raw bytes.
    Bytes,
    /// Base64 text.
    Base64,
    /// Base64url text.
    Base64UrlSafe,
    /// Lower-case hex text.
    Hex,
}

impl BinaryMode {
    /// The values `binary.handling.mode` accepts.
    pub const ALLOWED: &'static [&'static str] = &["bytes", "base64", "base64-url-safe", "hex"];

    /// The mode a validated `binary.handling.mode` value names (`bytes`
    /// otherwise).
    pub fn from_text(text: &str) -> Self {
        match text {
            "base64" => Self::Base64,
            "base64-url-safe" => Self::Base64UrlSafe,
            "hex" => Self::Hex,
            _ => Self::Bytes,
        }
    }

    /// A binary column's schema (required; the caller makes it optional).
    pub fn schema(self) -> Schema {
        match self {
            Self::Bytes => Schema::bytes(),
            _ => Schema::string(),
        }
    }

    /// A binary column's value.
    pub fn value(self, raw: &[u8]) -> Value {
        use base64::Engine as _;
        match self {
            Self::Bytes => Value::Bytes(raw.to_vec()),
            Self::Base64 => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(raw).into())
            }
            Self::Base64UrlSafe => {
                Value::String(base64::engine::general_purpose::URL_SAFE.encode(raw).into())
            }
            Self::Hex => Value::String(raw.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }
}

/// What becomes of a change that cannot be decoded
/// (`event.processing.failure.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureHandling {
    /// The task fails, naming the change (Debezium's default): nothing is
    /// skipped unseen.
    Fail,
    /// The change is skipped and logged as a warning with its position.
    Warn,
    /// The change is skipped; logged at debug level only, as the user asked.
    Skip,
}

impl FailureHandling {
    /// The values the key accepts.
    pub const ALLOWED: &'static [&'static str] = &["fail", "warn", "skip"];

    /// The mode a validated value names (`fail` otherwise).
    pub fn from_text(text: &str) -> Self {
        match text {
            "warn" => Self::Warn,
            "skip" => Self::Skip,
            _ => Self::Fail,
        }
    }

    /// Handles a change that could not be decoded: `Err` (fail) stops the
    /// task with `problem`; `Ok` means skip it.
    pub fn undecodable(
        self,
        problem: String,
        position: &dyn std::fmt::Display,
    ) -> Result<(), crate::ConnectorError> {
        match self {
            Self::Fail => Err(crate::ConnectorError::fatal(format!(
                "{problem} (at {position}); set event.processing.failure.handling.mode=warn to skip such changes"
            ))),
            Self::Warn => {
                tracing::warn!(%position, "{problem}; the change is skipped (event.processing.failure.handling.mode=warn)");
                Ok(())
            }
            Self::Skip => {
                tracing::debug!(%position, "{problem}; the change is skipped (event.processing.failure.handling.mode=skip)");
                Ok(())
            }
        }
    }
}
