//! The embedded registry shared by a group of workers: its log is a
//! compacted Kafka topic in the format of Confluent's `_schemas`, every
//! worker serves reads from it (caught up before each request), and one
//! worker at a time writes — the one the group assigns the registry's unit
//! to, as it assigns connectors. The others forward writes to it, as
//! Confluent's followers forward to their leader, so ids are given out by
//! one writer that has read the whole log first: the same everywhere.

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

use super::log::{LogRecord, SchemaLog};
use super::Registry;
use crate::herder::{Placement, Unit};
use crate::store::kafka::{KafkaLog, KafkaStatusStore};

/// The name the group places the registry's writer by.
pub const REGISTRY_UNIT: &str = "_schemas";
/// Confluent's default topic (`kafkastore.topic`).
pub const DEFAULT_TOPIC: &str = "_schemas";
/// The status-topic key under which the writer announces its URL.
const WRITER_KEY: &str = "sluice-registry-writer";
/// Largest request body forwarded (a schema).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A [`SchemaLog`] on a Kafka topic.
pub struct KafkaSchemaLog {
    log: KafkaLog,
}

impl KafkaSchemaLog {
    /// The log on `log`'s topic.
    pub fn new(log: KafkaLog) -> Self {
        Self { log }
    }

    fn read(&self) -> std::io::Result<Vec<LogRecord>> {
        let records = self.log.read_to_end().map_err(std::io::Error::other)?;
        Ok(records
            .into_iter()
            .filter_map(|(key, value)| {
                let key: Json = serde_json::from_slice(&key).ok()?;
                let value = match value {
                    Some(v) => Some(serde_json::from_slice(&v).ok()?),
                    None => None,
                };
                Some((key, value))
            })
            .collect())
    }
}

impl SchemaLog for KafkaSchemaLog {
    fn replay(&self) -> std::io::Result<Vec<LogRecord>> {
        self.read()
    }

    fn append(&self, records: &[LogRecord]) -> std::io::Result<()> {
        for (key, value) in records {
            let value = value.as_ref().map(|v| v.to_string().into_bytes());
            self.log
                .append(key.to_string().as_bytes(), value.as_deref())
                .map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    fn tail(&self) -> std::io::Result<Vec<LogRecord>> {
        self.read()
    }
}

/// Who may write the registry now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// This worker.
    Here,
    /// The worker at this registry URL.
    At(String),
    /// Nobody known: the group is moving the writer.
    Unknown,
}

/// Decides who writes.
pub trait WriterRole: Send + Sync {
    /// The writer now.
    fn writer(&self) -> Writer;
}

/// A registry of its own writes everything itself.
pub struct Alone;

impl WriterRole for Alone {
    fn writer(&self) -> Writer {
        Writer::Here
    }
}

/// The writer chosen by the group's placement, announced on the status
/// topic so the other workers find it.
pub struct GroupWriter {
    placement: Arc<dyn Placement>,
    status: Arc<KafkaStatusStore>,
    url: String,
}

impl GroupWriter {
    /// This worker's role, with `url` where its registry is reached.
    pub fn new(placement: Arc<dyn Placement>, status: Arc<KafkaStatusStore>, url: String) -> Self {
        Self {
            placement,
            status,
            url,
        }
    }

    /// Announces this worker as the writer if the group made it so; call
    /// after each change of assignment.
    pub fn announce(&self) {
        if self.placement.owns(Unit::connector(REGISTRY_UNIT)) {
            tracing::info!(url = %self.url, "this worker writes the group's schema registry");
            self.status
                .publish_raw(WRITER_KEY, Some(json!({ "url": self.url })));
        }
    }
}

impl WriterRole for GroupWriter {
    fn writer(&self) -> Writer {
        if self.placement.owns(Unit::connector(REGISTRY_UNIT)) {
            return Writer::Here;
        }
        match self
            .status
            .published_raw(WRITER_KEY)
            .and_then(|v| v.get("url").and_then(Json::as_str).map(str::to_owned))
        {
            Some(url) if url != self.url => Writer::At(url),
            _ => Writer::Unknown,
        }
    }
}

/// What a request needs from the registry layer.
#[derive(Clone)]
pub struct Shared {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Who writes.
    pub role: Arc<dyn WriterRole>,
    /// How writes reach the writer.
    pub forwarder: crate::rest::forward::Forwarder,
}

/// Whether a request changes the registry (a lookup or a compatibility
/// check is a POST that only reads).
fn is_write(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => false,
        Method::POST => !matches!(segments.as_slice(), ["subjects", _] | ["compatibility", ..]),
        _ => true,
    }
}

fn unavailable(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error_code": 50003, "message": message})),
    )
        .into_response()
}

/// Middleware: writes go to the writer; every request is answered from
/// the log read to its end.
pub async fn route(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    if is_write(request.method(), request.uri().path()) {
        let role = Arc::clone(&shared.role);
        let writer = tokio::task::spawn_blocking(move || role.writer())
            .await
            .unwrap_or(Writer::Unknown);
        match writer {
            Writer::Here => {}
            Writer::At(url) if !crate::rest::forward::was_forwarded(request.headers()) => {
                return forward(&shared.forwarder, url, request).await;
            }
            _ => {
                return unavailable(
                    "Error while forwarding the request to the registry's writer: the group of workers is moving it; retry".into(),
                )
            }
        }
    }
    let registry = Arc::clone(&shared.registry);
    match tokio::task::spawn_blocking(move || registry.refresh()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unavailable(format!("reading the schema log failed: {e}; retry")),
        Err(e) => return unavailable(format!("reading the schema log was interrupted: {e}")),
    }
    next.run(request).await
}

/// Sends `request` to the writer at `url` and answers with its answer.
async fn forward(
    forwarder: &crate::rest::forward::Forwarder,
    url: String,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => return unavailable(format!("reading the request failed: {e}")),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    match crate::rest::forward::forward(
        forwarder,
        &url,
        parts.method.clone(),
        path,
        &parts.headers,
        body.to_vec(),
    )
    .await
    {
        Ok(response) => response,
        Err(message) => unavailable(format!(
            "Error while forwarding the request to the registry's writer: {message}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_compatibility_checks_are_reads() {
        assert!(is_write(&Method::POST, "/subjects/s/versions"));
        assert!(!is_write(&Method::POST, "/subjects/s"));
        assert!(!is_write(
            &Method::POST,
            "/compatibility/subjects/s/versions/latest"
        ));
        assert!(is_write(&Method::PUT, "/config"));
        assert!(is_write(&Method::DELETE, "/subjects/s"));
        assert!(!is_write(&Method::GET, "/schemas/ids/1"));
    }
}
