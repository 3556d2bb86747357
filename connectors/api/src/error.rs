//! Errors a connector reports to the runtime.

use thiserror::Error;

/// A single configuration problem, naming the key so the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The offending configuration key, e.g. `database.port`.
    pub key: String,
    /// What is wrong with it and, where possible, what to write instead.
    pub message: String,
}

impl ConfigError {
    /// A problem with `key`, explained by `message`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Why a connector or task could not do its work.
///
/// The runtime uses the variant to decide what happens next: a retriable
/// error restarts the task with backoff, anything else leaves it FAILED
/// until an operator acts (its offsets never move past unsent data).
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// The configuration is invalid; retrying cannot help.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A transient failure (network, server restart); the task is retried.
    #[error("{message}")]
    Retriable {
        /// What failed, with the cause and what the runtime will do.
        message: String,
    },
    /// A failure an operator must resolve (missing privilege, wrong server
    /// setting, incompatible schema); the task stays FAILED.
    #[error("{message}")]
    Fatal {
        /// What failed and how to fix it.
        message: String,
    },
}

impl ConnectorError {
    /// A transient failure that the runtime retries with backoff.
    pub fn retriable(message: impl Into<String>) -> Self {
        Self::Retriable {
            message: message.into(),
        }
    }

    /// A failure that needs an operator; the task stays FAILED.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal {
            message: message.into(),
        }
    }

    /// Whether restarting the task may succeed without anyone changing anything.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Retriable { .. })
    }
}
