//! The end of a PostgreSQL batch, run while the sink prepares the next
//! one: the server's answer to the batch's last straight `COPY` (and the
//! merge, if the table held some of its keys) and the `COMMIT`.
//!
//! Measured in `scripts/bench-sink` (1,000,000 rows, batches of 5,000),
//! the sink waited 1.6 s of its 2.7 s at the target for the last `COPY`'s
//! answer, the server loading the rows, and 0.5 s for the commits, while
//! it interpreted, planned and encoded the next batch (0.5 s) only after
//! both. With the tail spawned, that work and the runtime's hand-over of
//! the next batch overlap the server's. The tail owns what it needs (the
//! `COPY` text already sent, the statements), not the batch's records,
//! which the runtime frees once `put` returns.
//!
//! The offsets of a batch move only once its tail has succeeded: the next
//! `put` and `flush` wait for it first (see `SinkTask`).

use std::sync::Arc;

use futures_util::SinkExt;
use sluice_connector_api::ConnectorError;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, CopyInSink, Statement};

use crate::postgres_target::{classify, is_unique_violation, FELL_BACK, STRAIGHT};

/// A straight `COPY` whose rows are all sent, awaiting the server's answer.
pub struct SentCopy {
    /// The `COPY`, its data sent, not yet ended.
    pub sink: std::pin::Pin<Box<CopyInSink<bytes::Bytes>>>,
    /// The `COPY` text sent, loaded into the staging table instead if the
    /// table holds some of the keys (its columns are the same).
    pub parts: Vec<bytes::Bytes>,
    /// The target table, quoted.
    pub qualified: String,
    /// The staging table's `COPY`, prepared.
    pub stage_copy: Statement,
    /// The staging table, quoted.
    pub stage: String,
    /// Whether the staging table was loaded earlier in the transaction
    /// and must be emptied first.
    pub stage_loaded: bool,
    /// The statement that merges the staged rows into the table.
    pub merge: String,
}

/// What a batch's tail came to when it succeeded: the table whose
/// straight `COPY` met held keys (merged instead), if any.
pub type TailOutcome = Option<String>;

/// A batch's tail under way on a task of its own.
pub type Tail = JoinHandle<Result<TailOutcome, ConnectorError>>;

/// Starts the tail: ends `copy`, if any, then commits.
pub fn spawn(client: Arc<Client>, copy: Option<SentCopy>) -> Tail {
    tokio::spawn(async move {
        let held = match copy {
            Some(copy) => end_copy(&client, copy).await?,
            None => None,
        };
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| classify("committing the target transaction", e))?;
        Ok(held)
    })
}

/// Ends a straight `COPY`; one that met keys the table holds is rolled
/// back to its savepoint and its text merged through the staging table.
async fn end_copy(client: &Client, mut copy: SentCopy) -> Result<TailOutcome, ConnectorError> {
    let context = format!("loading rows into {}", copy.qualified);
    let refused = match copy.sink.as_mut().finish().await {
        Ok(_) => return Ok(None),
        Err(e) if is_unique_violation(&e) => e,
        Err(e) => return Err(classify(&context, e)),
    };
    tracing::info!(table = %copy.qualified, cause = %refused, "{FELL_BACK}");
    let mut undo = format!("ROLLBACK TO SAVEPOINT {STRAIGHT}");
    if copy.stage_loaded {
        undo.push_str(&format!("; TRUNCATE {}", copy.stage));
    }
    client
        .batch_execute(&undo)
        .await
        .map_err(|e| classify(&context, e))?;
    let context = format!("loading rows for {}", copy.qualified);
    let sink = client
        .copy_in(&copy.stage_copy)
        .await
        .map_err(|e| classify(&context, e))?;
    futures_util::pin_mut!(sink);
    for part in copy.parts {
        sink.send(part).await.map_err(|e| classify(&context, e))?;
    }
    sink.finish().await.map_err(|e| classify(&context, e))?;
    client
        .batch_execute(&copy.merge)
        .await
        .map_err(|e| classify(&format!("writing to {}", copy.qualified), e))?;
    Ok(Some(copy.qualified))
}
