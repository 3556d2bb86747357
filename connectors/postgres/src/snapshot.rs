//! One snapshot reader: a connection inside the slot's exported snapshot
//! reading its share of the tables with a cursor, `snapshot.fetch.size`
//! rows per round trip.

use std::sync::{Arc, Mutex};

use sluice_connector_api::{ConnectorError, Value};
use tokio::sync::mpsc;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::capture::Progress;
use crate::catalog::Table;
use crate::setup::query_error;
use crate::table_schema::TableSchema;
use crate::types::Mapping;

/// Rows of one table; `done` after its last rows.
pub struct Batch {
    /// Index of the table in the snapshot's table list.
    pub table: usize,
    /// Row values in table order.
    pub rows: Vec<Value>,
    /// The table has no more rows.
    pub done: bool,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Reads `tables` (with their indexes) and sends their rows, in order.
pub async fn read_tables(
    reader: Client,
    tables: Vec<(usize, Table)>,
    schemas: Arc<Vec<TableSchema>>,
    fetch_size: usize,
    mapping: Mapping,
    out: mpsc::Sender<Result<Batch, ConnectorError>>,
    progress: Arc<Mutex<Progress>>,
) -> Result<(), ConnectorError> {
    for (index, table) in tables {
        let name = format!("{}.{}", table.schema, table.name);
        let columns = table
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let cursor = format!("sluice_snapshot_{index}");
        reader
            .batch_execute(&format!(
                "DECLARE {cursor} NO SCROLL CURSOR FOR SELECT {columns} FROM {}.{}",
                quote(&table.schema),
                quote(&table.name)
            ))
            .await
            .map_err(|e| query_error(&format!("reading {name}"), e))?;
        loop {
            let messages = reader
                .simple_query(&format!("FETCH {fetch_size} FROM {cursor}"))
                .await
                .map_err(|e| query_error(&format!("reading {name}"), e))?;
            let mut rows = Vec::with_capacity(fetch_size);
            for message in messages {
                let SimpleQueryMessage::Row(row) = message else {
                    continue;
                };
                let values: Vec<Option<&str>> = (0..row.len()).map(|i| row.get(i)).collect();
                rows.push(
                    schemas[index]
                        .row(&values, mapping)
                        .map_err(ConnectorError::fatal)?,
                );
            }
            let done = rows.len() < fetch_size;
            if let Some(entry) = progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tables
                .get_mut(index)
            {
                entry.1 += rows.len() as u64;
            }
            if out
                .send(Ok(Batch {
                    table: index,
                    rows,
                    done,
                }))
                .await
                .is_err()
            {
                return Ok(());
            }
            if done {
                break;
            }
        }
        reader
            .batch_execute(&format!("CLOSE {cursor}"))
            .await
            .map_err(|e| query_error("closing the snapshot cursor", e))?;
    }
    let _ = reader.batch_execute("COMMIT").await;
    Ok(())
}
