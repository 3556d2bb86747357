//! What can go wrong with a herder request, each mapping to one HTTP status.

use thiserror::Error;

use crate::store::StoreError;

/// A herder request failed.
#[derive(Debug, Error)]
pub enum HerderError {
    /// No connector by that name (404).
    #[error("Connector {0} not found")]
    NotFound(String),
    /// No such task (404).
    #[error("Task {1} of connector {0} not found")]
    TaskNotFound(String, u32),
    /// The name is taken (409).
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The config has errors (400), every one listed.
    #[error("Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{class}/config/validate`", errors.len(), errors.join("\n"))]
    InvalidConfig {
        /// The connector class.
        class: String,
        /// One line per problem, naming the key.
        errors: Vec<String>,
    },
    /// Offsets can only change on a stopped connector (400).
    #[error("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{0}/stop' endpoint")]
    NotStopped(String),
    /// The state directory failed (500).
    /// The connector runs on another worker of the group, which must act.
    #[error("Connector {connector} runs on worker {worker}")]
    RunsElsewhere {
        /// The connector.
        connector: String,
        /// The worker running it (its advertised REST address).
        worker: String,
    },
    /// The group is moving the connector; nobody runs it this moment.
    #[error("Cannot complete request because of a conflicting operation (e.g. worker rebalance)")]
    Rebalancing,
    /// Offsets set through the API could not be written in a transaction
    /// (exactly-once source support); nothing of them was written (500).
    #[error("the offsets of connector {connector} were not written: {reason}")]
    OffsetTransaction {
        /// The connector.
        connector: String,
        /// Why, with the fix when there is one.
        reason: String,
    },
    /// The configs, offsets or statuses could not be read or written.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
}
