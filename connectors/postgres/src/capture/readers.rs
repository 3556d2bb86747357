//! Snapshot readers: connections inside the slot's exported snapshot,
//! each taking work units (a whole table, or a range of a large table's
//! pages) from a shared queue and streaming each with `COPY (SELECT …) TO
//! STDOUT`, handing its rows on `max.batch.size` at a time as they are
//! decoded. The server sends rows as fast as the reader takes them: no
//! round trip per fetch, and tokio-postgres stops reading the socket while
//! a reader waits on the queue, so a unit's rows never pile up in memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sluice_connector_api::snapshot_select::SnapshotSelects;
use sluice_connector_api::{BatchLimit, ConnectorError, Value};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::copy_text;
use super::Progress;
use crate::catalog::Table;
use crate::setup::query_error;
use crate::table_schema::TableSchema;
use crate::types::Mapping;

/// Rows of one work unit; `unit_done` after its last rows.
pub struct Batch {
    /// Index of the table in the snapshot's table list.
    pub table: usize,
    /// Row values in table order.
    pub rows: Vec<Value>,
    /// The work unit has no more rows.
    pub unit_done: bool,
}

/// A piece of the snapshot one reader reads at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Index of the table in the snapshot's table list.
    pub table: usize,
    /// Heap pages `[start, end)` (by `ctid`), `end` open for the last
    /// piece; `None` for the whole table.
    pub pages: Option<(u64, Option<u64>)>,
}

/// Below this many pages (8 KiB each) a table is read whole.
const MIN_CHUNK_PAGES: u64 = 256;

/// Splits the snapshot into units: tables big enough for it are cut into
/// page ranges, so several readers share one large table (PostgreSQL ≥ 14
/// reads a `ctid` range without scanning the rest). Larger tables first,
/// so the tail of the snapshot is short pieces.
pub fn plan(pages: &[u64], readers: usize, tid_range_scans: bool) -> VecDeque<Unit> {
    let mut order: Vec<usize> = (0..pages.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pages[i]));
    let mut units = VecDeque::new();
    for table in order {
        let total = pages[table];
        let pieces = if tid_range_scans && readers > 1 {
            (total / MIN_CHUNK_PAGES).min(readers as u64 * 4)
        } else {
            1
        };
        if pieces <= 1 {
            units.push_back(Unit { table, pages: None });
            continue;
        }
        let step = total.div_ceil(pieces);
        for n in 0..pieces {
            let start = n * step;
            let end = (n + 1 < pieces).then_some((n + 1) * step);
            units.push_back(Unit {
                table,
                pages: Some((start, end)),
            });
        }
    }
    units
}

/// How many units each table was cut into.
pub fn units_per_table(units: &VecDeque<Unit>, tables: usize) -> Vec<usize> {
    let mut counts = vec![0; tables];
    for unit in units {
        counts[unit.table] += 1;
    }
    counts
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Reads units from `queue` until it is empty, sending their rows.
#[allow(clippy::too_many_arguments)]
pub async fn read_units(
    reader: Client,
    queue: Arc<Mutex<VecDeque<Unit>>>,
    tables: Arc<Vec<Table>>,
    schemas: Arc<Vec<TableSchema>>,
    selects: Arc<SnapshotSelects>,
    limit: BatchLimit,
    mapping: Mapping,
    out: mpsc::Sender<Result<Batch, ConnectorError>>,
    progress: Arc<Mutex<Progress>>,
) -> Result<(), ConnectorError> {
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        let Some(unit) = next else { break };
        let index = unit.table;
        let table = &tables[index];
        let name = format!("{}.{}", table.schema, table.name);
        let columns = table
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let range = match unit.pages {
            None => String::new(),
            Some((start, None)) => format!(" WHERE ctid >= '({start},0)'::tid"),
            Some((start, Some(end))) => {
                format!(" WHERE ctid >= '({start},0)'::tid AND ctid < '({end},0)'::tid")
            }
        };
        let (select, what) = match selects.select(&table.schema, &table.name, &columns) {
            Some(select) => (
                select,
                format!("reading {name} with snapshot.select.statement.overrides.{name}"),
            ),
            None => (
                format!(
                    "SELECT {columns} FROM {}.{}{range}",
                    quote(&table.schema),
                    quote(&table.name)
                ),
                format!("reading {name}"),
            ),
        };
        let stream = reader
            .copy_out(copy_of(&select).as_str())
            .await
            .map_err(|e| query_error(&what, e))?;
        futures_util::pin_mut!(stream);
        // Pieces of max.batch.size rows, fewer when they are wide.
        let piece = limit.records;
        let mut rows = Vec::with_capacity(piece);
        let mut bytes = 0;
        while let Some(line) = stream.next().await {
            let line = line.map_err(|e| query_error(&format!("reading {name}"), e))?;
            let row = copy_text::split_row(&line, table.columns.len())
                .and_then(|fields| schemas[index].row(&fields, mapping))
                .map_err(|e| ConnectorError::fatal(format!("reading {name}: {e}")))?;
            bytes += row.footprint();
            rows.push(row);
            if limit.reached(rows.len(), bytes) {
                bytes = 0;
                let full = std::mem::replace(&mut rows, Vec::with_capacity(piece));
                if !hand_on(&out, &progress, index, full, false).await {
                    return Ok(());
                }
            }
        }
        // The unit's last piece says so, even when empty.
        if !hand_on(&out, &progress, index, rows, true).await {
            return Ok(());
        }
    }
    let _ = reader.batch_execute("COMMIT").await;
    Ok(())
}

/// `select` as the query of a `COPY … TO STDOUT`. A statement written to
/// run on its own (an override may end with a semicolon, or a line
/// comment) still reads as one query inside the parentheses.
fn copy_of(select: &str) -> String {
    let query = select.trim_end().trim_end_matches(';').trim_end();
    format!("COPY ({query}\n) TO STDOUT")
}

/// Counts `rows` in the table's progress and sends them on; false once
/// nobody takes them (the snapshot ended early).
async fn hand_on(
    out: &mpsc::Sender<Result<Batch, ConnectorError>>,
    progress: &Mutex<Progress>,
    table: usize,
    rows: Vec<Value>,
    unit_done: bool,
) -> bool {
    if rows.is_empty() && !unit_done {
        return true;
    }
    if let Some(entry) = progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .tables
        .get_mut(table)
    {
        entry.1 += rows.len() as u64;
    }
    out.send(Ok(Batch {
        table,
        rows,
        unit_done,
    }))
    .await
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_tables_are_cut_into_contiguous_page_ranges() {
        let units = plan(&[10, 10_000, 300], 4, true);
        let counts = units_per_table(&units, 3);
        assert_eq!(counts, [1, 16, 1], "{units:?}");
        assert_eq!(units[0].table, 1, "largest first");
        let ranges: Vec<_> = units.iter().filter_map(|u| u.pages).collect();
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges.last().map(|r| r.1), Some(None), "last range open");
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1, Some(pair[1].0), "no gap, no overlap");
        }
    }

    #[test]
    fn a_statement_ending_in_a_semicolon_or_a_comment_is_one_copy_query() {
        assert_eq!(
            copy_of("SELECT a FROM t WHERE a > 7; \n"),
            "COPY (SELECT a FROM t WHERE a > 7\n) TO STDOUT"
        );
        // The closing parenthesis on a line of its own: a trailing line
        // comment cannot swallow it.
        assert_eq!(
            copy_of("SELECT a FROM t -- recent rows only"),
            "COPY (SELECT a FROM t -- recent rows only\n) TO STDOUT"
        );
    }

    #[test]
    fn one_reader_or_old_servers_read_tables_whole() {
        assert!(plan(&[100_000], 1, true).iter().all(|u| u.pages.is_none()));
        assert!(plan(&[100_000], 8, false).iter().all(|u| u.pages.is_none()));
    }
}
