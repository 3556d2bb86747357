//! New rows loaded into a MySQL / MariaDB table with `LOAD DATA LOCAL
//! INFILE`, as the PostgreSQL target `COPY`s them (`straight_copy`).
//!
//! The server took 2.8 s to load a million bench rows this way in batches
//! of 5,000, against 4.8 s for the same rows as multi-row `INSERT … ON
//! DUPLICATE KEY UPDATE` statements. But `LOCAL` makes the server treat
//! what a statement refuses as a warning: a key the table holds is
//! skipped, a value too long is cut. So a load counts only when the
//! server took every row and warned of nothing; otherwise it is rolled
//! back to a savepoint and the rows go through the statements, which
//! write or refuse them exactly as before (and the table keeps to the
//! statements for a while, as after a failed `COPY`). Rows with raw bytes
//! for a binary column are never loaded this way.
//!
//! The file the server asks for is never read from this machine: the
//! connection answers every `LOCAL INFILE` request with the rows staged
//! for the statement it sent, whatever name the server gives.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::FutureExt;
use mysql_async::prelude::Queryable;
use mysql_async::{InfileData, Transaction};
use sluice_connector_api::ConnectorError;

use crate::change::Cell;
use crate::config::Dialect;
use crate::copy_text::push_row;
use crate::table::quote;

const D: Dialect = Dialect::MySql;

/// The savepoint a load rolls back to.
const SAVEPOINT: &str = "sluice_load_data";

/// The name the statement gives its file (the server hands it back).
const FILE_NAME: &str = "sluice-rows";

/// Server errors saying `LOCAL INFILE` is switched off (`local_infile=OFF`):
/// MariaDB 10.5+'s "the MariaDB server or client has disabled the local
/// infile capability" (4166), older servers' "The used command is not
/// allowed with this MySQL version" (1148) and MySQL 8's "Loading local
/// data is disabled" (3948, its default).
const LOCAL_INFILE_OFF: [u16; 3] = [4166, 1148, 3948];

/// Chunks the rows are sent in.
const CHUNK: usize = 64 * 1024;

/// The rows of the next `LOAD DATA LOCAL INFILE` this connection sends.
#[derive(Clone, Default)]
pub struct StagedRows(Arc<Mutex<Option<Bytes>>>);

impl StagedRows {
    /// What the connection answers a `LOCAL INFILE` request with: the
    /// staged rows once, and an error for any other request.
    pub fn handler(&self) -> impl mysql_async::prelude::GlobalHandler {
        let staged = self.clone();
        move |_: &[u8]| {
            let rows = staged.take();
            async move {
                let rows = rows.ok_or_else(|| {
                    mysql_async::LocalInfileError::other(std::io::Error::other(
                        "the server asked for a file the sink did not offer",
                    ))
                })?;
                let chunks: Vec<std::io::Result<Bytes>> = (0..rows.len())
                    .step_by(CHUNK)
                    .map(|at| Ok(rows.slice(at..rows.len().min(at + CHUNK))))
                    .collect();
                let data: InfileData = Box::pin(futures_util::stream::iter(chunks));
                Ok(data)
            }
            .boxed()
        }
    }

    fn stage(&self, rows: Vec<u8>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Bytes::from(rows));
    }

    fn take(&self) -> Option<Bytes> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What loading a table's rows came to.
pub enum Load {
    /// The rows are in.
    Loaded,
    /// Some rows hold raw bytes: not tried.
    Binary,
    /// The server skipped or changed some rows (a key the table holds, a
    /// value it had to convert): rolled back, for the statements to write.
    Declined {
        /// Rows taken, of those sent.
        taken: u64,
        /// Warnings the load raised.
        warnings: u16,
    },
    /// The server does not allow `LOCAL INFILE`: rolled back, and not
    /// worth trying again on this connection.
    Disabled(String),
}

/// The `LOAD DATA` text of `rows`; `None` when a row holds raw bytes
/// (never loaded this way).
pub fn rows_text(rows: &[&Vec<Cell<'_>>]) -> Result<Option<Vec<u8>>, ConnectorError> {
    let mut data = Vec::new();
    for row in rows {
        if !push_row(&mut data, row, D)? {
            return Ok(None);
        }
    }
    Ok(Some(data))
}

/// What a connection (or a transaction on one) says of its last
/// statement: rows affected and warnings raised.
pub trait StatementCounts {
    /// Rows the last statement affected, and the warnings it raised.
    fn counts(&self) -> (u64, u16);
}

impl StatementCounts for mysql_async::Conn {
    fn counts(&self) -> (u64, u16) {
        (self.affected_rows(), self.get_warnings())
    }
}

impl StatementCounts for Transaction<'_> {
    fn counts(&self) -> (u64, u16) {
        (self.affected_rows(), self.get_warnings())
    }
}

/// Loads `rows` (of columns `names`, stored names) into `qualified` inside
/// a savepoint of `tx`; anything short of every row taken without a
/// warning is rolled back. Other failures fail the batch, as the
/// statements' would.
pub async fn load(
    tx: &mut Transaction<'_>,
    staged: &StagedRows,
    qualified: &str,
    names: &[String],
    rows: &[&Vec<Cell<'_>>],
) -> Result<Load, ConnectorError> {
    let Some(data) = rows_text(rows)? else {
        return Ok(Load::Binary);
    };
    load_text(tx, staged, qualified, names, data, rows.len() as u64).await
}

/// [`load`] of rows already written as `data` (`expected` of them), on a
/// connection inside a transaction.
pub async fn load_text<Q: Queryable + StatementCounts>(
    tx: &mut Q,
    staged: &StagedRows,
    qualified: &str,
    names: &[String],
    data: Vec<u8>,
    expected: u64,
) -> Result<Load, ConnectorError> {
    let context = format!("loading rows into {qualified}");
    let fail = |e: mysql_async::Error| crate::mysql_target::classify(&context, e);
    tx.query_drop(format!("SAVEPOINT {SAVEPOINT}"))
        .await
        .map_err(fail)?;
    let columns: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
    // The session runs with NO_BACKSLASH_ESCAPES: the tab and newline are
    // written as themselves, and '\' is one backslash.
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{FILE_NAME}' INTO TABLE {qualified} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' ({})",
        columns.join(", ")
    );
    staged.stage(data);
    let outcome = match tx.query_drop(&sql).await {
        Ok(()) => {
            let (taken, warnings) = tx.counts();
            if taken == expected && warnings == 0 {
                return Ok(Load::Loaded);
            }
            Load::Declined { taken, warnings }
        }
        Err(mysql_async::Error::Server(e)) if LOCAL_INFILE_OFF.contains(&e.code) => {
            Load::Disabled(format!("{} ({})", e.message, e.code))
        }
        Err(e) => return Err(fail(e)),
    };
    staged.take();
    tx.query_drop(format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"))
        .await
        .map_err(fail)?;
    Ok(outcome)
}
