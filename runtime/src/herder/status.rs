//! Connector and task states as the status API reports them.

use serde::Serialize;

/// A lifecycle state, with Kafka Connect's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Known but not (yet) running.
    Unassigned,
    /// Working.
    Running,
    /// Paused by an operator.
    Paused,
    /// Stopped by an operator.
    Stopped,
    /// Failed; see the trace.
    Failed,
    /// Being restarted.
    Restarting,
}

impl State {
    /// The name used in the REST API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassigned => "UNASSIGNED",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Stopped => "STOPPED",
            Self::Failed => "FAILED",
            Self::Restarting => "RESTARTING",
        }
    }

    /// Every state, for metrics that export one series per state.
    pub const ALL: [State; 6] = [
        Self::Unassigned,
        Self::Running,
        Self::Paused,
        Self::Stopped,
        Self::Failed,
        Self::Restarting,
    ];
}

/// A connector's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorStatus {
    /// Its state.
    pub state: State,
    /// The worker running it.
    pub worker_id: String,
    /// Why it failed, if it did; for a RUNNING task, what it is waiting
    /// for while it retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A task's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatus {
    /// Its state.
    pub state: State,
    /// The worker running it.
    pub worker_id: String,
    /// Why it failed, if it did; for a RUNNING task, what it is waiting
    /// for while it retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Progress the task reports (e.g. snapshot rows), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
}

impl TaskStatus {
    /// A status in `state` with no trace.
    pub fn new(state: State, worker_id: &str) -> Self {
        Self {
            state,
            worker_id: worker_id.to_owned(),
            trace: None,
            progress: None,
        }
    }

    /// A FAILED status explaining why.
    pub fn failed(worker_id: &str, trace: String) -> Self {
        Self {
            trace: Some(trace),
            ..Self::new(State::Failed, worker_id)
        }
    }
}
