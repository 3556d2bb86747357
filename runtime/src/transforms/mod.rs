//! Single message transforms and predicates, as Kafka Connect's `transforms`
//! and `predicates` keys configure them: applied in order between a source
//! task and its converter, and between the converter and a sink task.
//!
//! Each transform is one module; [`catalog`] maps Connect's and Debezium's
//! class names (and short aliases) to them, [`chain`] builds and applies the
//! configured list.

pub mod catalog;
pub mod chain;
pub mod date_format;
pub mod fields;
pub mod predicates;
pub mod record;
pub mod schema_cache;
pub mod settings;

mod connect;
mod debezium;

pub use chain::Chain;
pub use record::Record;

use thiserror::Error;

/// Why a transform could not handle one record. Goes through
/// `errors.tolerance` like a conversion failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("transform {alias} ({class}): {message}")]
pub struct TransformError {
    /// The alias in `transforms`.
    pub alias: String,
    /// The transform's class as configured.
    pub class: String,
    /// What was wrong with the record.
    pub message: String,
}

/// A record-level failure inside one transform, before the chain adds
/// which alias it was.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl Failure {
    /// A failure explained by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// One transform: takes a record, returns it changed, or `None` to drop it.
pub trait Transform: Send + Sync {
    /// Transforms one record.
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure>;
}

/// A condition on a record, deciding whether a transform applies to it.
pub trait Predicate: Send + Sync {
    /// Whether `record` matches.
    fn test(&self, record: &Record) -> bool;
}
