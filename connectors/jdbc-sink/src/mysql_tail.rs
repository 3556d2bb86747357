//! The end of a MySQL / MariaDB batch of new rows, run while the sink
//! prepares the next one: the `LOAD DATA` (`mysql_load`), the statements
//! instead if the server declines it, and the `COMMIT`.
//!
//! Timed per batch in `scripts/bench-sink` (1,000,000 rows, batches of
//! 5,000), a cycle took 26–30 ms: the server's `LOAD DATA` 19–22 ms, and
//! 5–6 ms in which the server sat idle while the sink interpreted,
//! planned and wrote out the next batch and made its round trips
//! (`/proc/<mariadbd>/task/*/schedstat`: on CPU 60–69 % of the phase,
//! against 97–100 % for the native `LOAD DATA`). With the load and the
//! commit in a tail, that work overlaps the server's: in three
//! alternated pairs of runs the MariaDB sink went from 205,000–232,000
//! rows/s (median 226,000) to 214,000–262,000 (median 260,000). Writing
//! out the fallback statements for every batch costs the worker about
//! 0.4 µs a row more CPU (3.1–3.9 µs against 2.7–2.9), off the path the
//! rate depends on.
//!
//! The tail owns everything it may send: the rows' `LOAD DATA` text and
//! the statements that write them if the server skips or changes any row
//! (a key the table holds, a value it had to convert), built in `put`
//! while the records were at hand. A declined load is written exactly as
//! before: rolled back to its savepoint, then the statements. The
//! connection travels with the tail and comes back with its outcome.
//!
//! The offsets of a batch move only once its tail has succeeded: the next
//! `put` and `flush` wait for it first (see `SinkTask`).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_connector_api::ConnectorError;
use tokio::task::JoinHandle;

use crate::mysql_load::{self, Load, StagedRows};
use crate::mysql_target::classify;

/// One table's new rows, ready to send.
pub struct Rows {
    /// The table, quoted.
    pub qualified: String,
    /// Stored column names, in row order.
    pub names: Vec<String>,
    /// The rows as `LOAD DATA` text.
    pub text: Vec<u8>,
    /// How many rows the text holds.
    pub count: u64,
    /// The statements that write the rows if the load is declined.
    pub statements: Vec<String>,
}

/// What a tail that succeeded did with its load (the statements wrote
/// the rows in the last two cases).
#[derive(Debug)]
pub enum Outcome {
    /// Every row loaded.
    Loaded,
    /// The server skipped or changed some rows.
    Declined {
        /// The table, quoted.
        qualified: String,
        /// Rows loaded, of those sent.
        taken: u64,
        /// Warnings the load raised.
        warnings: u16,
        /// Rows sent.
        sent: u64,
    },
    /// The server does not allow `LOCAL INFILE`.
    Disabled(String),
}

/// A batch's tail under way, giving its connection back.
pub type Tail = JoinHandle<(Conn, Result<Outcome, ConnectorError>)>;

/// Starts the tail of a batch: a transaction holding `rows` (and nothing
/// else), committed.
pub fn spawn(mut conn: Conn, staged: StagedRows, rows: Rows) -> Tail {
    tokio::spawn(async move {
        let outcome = run(&mut conn, &staged, rows).await;
        if outcome.is_err() {
            // Nothing of the batch may stay pending on the connection;
            // one that cannot answer is replaced when the task restarts.
            let _ = conn.query_drop("ROLLBACK").await;
        }
        (conn, outcome)
    })
}

async fn run(conn: &mut Conn, staged: &StagedRows, rows: Rows) -> Result<Outcome, ConnectorError> {
    conn.query_drop("START TRANSACTION")
        .await
        .map_err(|e| classify("starting the target transaction", e))?;
    let Rows {
        qualified,
        names,
        text,
        count,
        statements,
    } = rows;
    let load = mysql_load::load_text(conn, staged, &qualified, &names, text, count).await?;
    let outcome = match load {
        Load::Loaded => Outcome::Loaded,
        // `load_text` never says `Binary` (only `rows_text` does, before a
        // tail is built); were it to, the statements write the rows.
        Load::Declined { taken, warnings } => Outcome::Declined {
            qualified: qualified.clone(),
            taken,
            warnings,
            sent: count,
        },
        Load::Binary => Outcome::Declined {
            qualified: qualified.clone(),
            taken: 0,
            warnings: 0,
            sent: count,
        },
        Load::Disabled(why) => Outcome::Disabled(why),
    };
    if !matches!(outcome, Outcome::Loaded) {
        for sql in statements {
            conn.query_drop(sql)
                .await
                .map_err(|e| classify(&format!("writing to {qualified}"), e))?;
        }
    }
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| classify("committing the target transaction", e))?;
    Ok(outcome)
}
