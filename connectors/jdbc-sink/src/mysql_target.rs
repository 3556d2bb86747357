//! Applying steps to MySQL / MariaDB: multi-row `INSERT … ON DUPLICATE
//! KEY UPDATE` for upserts and `DELETE … WHERE (key) IN (…)` for deletes,
//! values written as literals (text quoted, binary as `X'…'`) that the
//! server converts to the column type, statements cut to fit the server's
//! `max_allowed_packet`, all in one transaction. Literals rather than a
//! prepared statement: a 5,000-row statement has 25,000 placeholders,
//! whose metadata the server sends and the driver keeps per statement.
//! DDL runs before the transaction (it would commit it), and truncates are
//! `DELETE FROM` so they stay inside it. New rows are first tried with
//! `LOAD DATA LOCAL INFILE` (`mysql_load`), which the server takes in
//! about half the time, and go through the statements when the server
//! skips or changes any of them. A batch that is only one table's new
//! rows is loaded and committed by a tail (`mysql_tail`) while the next
//! batch is prepared.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, TxOpts};
use sluice_connector_api::ConnectorError;

use crate::change::Cell;
use crate::config::{Dialect, InsertMode, SinkConfig};
use crate::mysql_load::{self, Load, StagedRows};
use crate::mysql_tail::{self, Outcome, Tail};
use crate::plan::{by_columns, ColumnGroup, Step, TableWrites};
use crate::sql_value::{direct, Direct, Param};
use crate::straight_copy::StraightCopy;
use crate::table::{evolution, quote, split_name, stored_name, wanted_columns, TableInfo};

const D: Dialect = Dialect::MySql;
/// Most values in one statement, whatever their size.
const MAX_VALUES: usize = 30_000;
/// Room left in `max_allowed_packet` for the packet's own framing.
const PACKET_HEADROOM: usize = 64 * 1024;
/// Logged when the server skipped or changed rows of a load.
const DECLINED: &str = "the table holds some of these keys already, or a value needed converting: written with statements, as are the table's next batches for a while";
/// Logged when the server refuses `LOCAL INFILE`.
const LOAD_DISABLED: &str = "the target does not allow LOAD DATA LOCAL INFILE: rows are written with statements (SET GLOBAL local_infile = ON on the server lets the sink load new rows in about half the server time)";

/// A MySQL / MariaDB connection with what it learned of its tables.
pub struct MySqlTarget {
    /// The connection; away with the last batch's tail while it runs.
    conn: Option<Conn>,
    /// The last batch's tail (`mysql_tail`), its commit included.
    tail: Option<Tail>,
    tables: HashMap<String, TableInfo>,
    /// Statements are cut at about this many bytes.
    statement_budget: usize,
    /// The rows the connection sends when the server asks for its file.
    staged: StagedRows,
    /// Which tables take new rows with `LOAD DATA` now.
    straight: StraightCopy,
    /// Why the server refuses `LOCAL INFILE`, once it did: statements only.
    load_refused: Option<String>,
}

/// Server error codes that say the target cannot write *now*, not that a
/// record is bad: lock wait timeout (1205), deadlock (1213), read-only
/// (1290 `--read-only`, 1836 read-only mode), shutdown in progress (1053),
/// too many connections (1040), user resource limits (1226), query
/// interrupted or timed out (1317, MariaDB 1969, MySQL 3024), disk or
/// table full (1021, 1114), out of memory or resources (1037, 1038, 1041),
/// connection killed or dropped for idling (MariaDB 1927, MySQL 4031),
/// network errors (1152 to 1161).
const TRANSIENT_CODES: [u16; 24] = [
    1205, 1213, 1290, 1836, 1053, 1040, 1226, 1317, 1969, 3024, 1021, 1114, 1037, 1038, 1041, 1927,
    4031, 1152, 1153, 1154, 1155, 1156, 1158, 1159,
];

/// A server error as a connector error: what the target cannot do now
/// retries with the same records (never dead-lettered); access, schema and
/// data errors do not.
pub(crate) fn classify(context: &str, e: mysql_async::Error) -> ConnectorError {
    let text = format!("{context}: {e}");
    match &e {
        mysql_async::Error::Server(s) if TRANSIENT_CODES.contains(&s.code) => {
            ConnectorError::retriable(text)
        }
        mysql_async::Error::Server(_) => ConnectorError::fatal(text),
        _ => ConnectorError::retriable(text),
    }
}

/// Appends `p` as a literal. The session runs with NO_BACKSLASH_ESCAPES,
/// so doubling the quote is the only escape a text literal needs.
fn push_literal(out: &mut String, p: Param) {
    match p {
        Param::Null => out.push_str("NULL"),
        Param::Text(t) => push_text_literal(out, &t),
        Param::Bytes(b) => {
            out.push_str("X'");
            for byte in b {
                out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
                out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
            }
            out.push('\'');
        }
    }
}

/// Appends `text` as a quoted literal.
fn push_text_literal(out: &mut String, text: &str) {
    out.push('\'');
    if text.contains('\'') {
        out.push_str(&text.replace('\'', "''"));
    } else {
        out.push_str(text);
    }
    out.push('\'');
}

/// Appends `(v1, v2, …)` for `cells`.
fn push_tuple<'a>(
    out: &mut String,
    cells: impl IntoIterator<Item = &'a Cell<'a>>,
) -> Result<(), ConnectorError> {
    out.push('(');
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match direct(&cell.schema, &cell.value, D) {
            Some(Direct::Text(text)) => push_text_literal(out, text),
            Some(Direct::Int(n)) => out.push_str(itoa::Buffer::new().format(n)),
            Some(Direct::Decimal(d)) => push_text_literal(out, d.as_str()),
            None => push_literal(out, cell.param(D)?),
        }
    }
    out.push(')');
    Ok(())
}

/// Statements of `head` followed by tuples (`tuple` writes one, comma
/// separated) and `tail`, each ending before the tuple that would take it
/// past `budget` bytes (a tuple larger than that goes alone) or past
/// [`MAX_VALUES`] values.
fn batched<T>(
    head: &str,
    tail: &str,
    items: &[T],
    width: usize,
    budget: usize,
    mut tuple: impl FnMut(&mut String, &T) -> Result<(), ConnectorError>,
) -> Result<Vec<String>, ConnectorError> {
    let mut out = Vec::new();
    let mut sql = String::from(head);
    let mut values = 0;
    let mut capacity = 0;
    for item in items {
        let mark = sql.len();
        if values > 0 {
            sql.push_str(", ");
        }
        tuple(&mut sql, item)?;
        if capacity == 0 {
            // Tuples of one table are about as wide as this one: room for
            // a statement at once (at most the budget), rather than
            // doubling (and copying) each as it grows.
            let each = sql.len() - head.len() + 2;
            capacity =
                (head.len() + each * (items.len() + items.len() / 8) + tail.len()).min(budget);
            sql.reserve(capacity.saturating_sub(sql.len()));
        }
        let full = sql.len() + tail.len() > budget || values + width.max(1) > MAX_VALUES;
        if full && values > 0 {
            // The tuple just written starts the next statement.
            let moved = sql.split_off(mark);
            sql.push_str(tail);
            let mut next = String::with_capacity(capacity);
            next.push_str(head);
            next.push_str(&moved[2..]);
            out.push(std::mem::replace(&mut sql, next));
            values = 0;
        }
        values += width.max(1);
    }
    if values > 0 {
        sql.push_str(tail);
        out.push(sql);
    }
    Ok(out)
}

impl MySqlTarget {
    /// Connects per the sink config; sessions use UTC.
    pub async fn connect(config: &SinkConfig) -> Result<Self, ConnectorError> {
        let t = &config.target;
        let ssl = sluice_connector_api::database_url::mysql_tls(&t.tls)
            .map_err(|e| ConnectorError::fatal(format!("connection.url: {e}")))?;
        let staged = StagedRows::default();
        let opts = OptsBuilder::default()
            .ssl_opts(ssl)
            .local_infile_handler(Some(staged.handler()))
            .ip_or_hostname(t.host.clone())
            .tcp_port(t.port)
            .user(Some(config.user.clone()))
            .pass(Some(config.password.clone()))
            .db_name(Some(t.database.clone()))
            .prefer_socket(false)
            // Writes are plain queries; only the describe query is
            // prepared.
            .stmt_cache_size(2)
            // The literals are written for NO_BACKSLASH_ESCAPES (quotes
            // doubled), whatever the server's own mode says.
            .setup(vec![
                "SET time_zone = '+00:00'",
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_BACKSLASH_ESCAPES')",
            ]);
        let conn = tokio::time::timeout(std::time::Duration::from_secs(30), Conn::new(opts))
            .await
            .map_err(|_| {
                ConnectorError::retriable(format!(
                    "connecting to {}:{} timed out; check connection.url",
                    t.host, t.port
                ))
            })?
            .map_err(|e| {
                let text = format!(
                    "cannot connect to MySQL at {}:{}/{} as {}: {e}; check connection.url, connection.username and connection.password",
                    t.host, t.port, t.database, config.user
                );
                match &e {
                    mysql_async::Error::Server(s) if [1044, 1045, 1049].contains(&s.code) => {
                        ConnectorError::fatal(text)
                    }
                    _ => ConnectorError::retriable(text),
                }
            })?;
        let mut conn = conn;
        let packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(|e| classify("reading max_allowed_packet", e))?;
        let packet = packet
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(4 << 20);
        Ok(Self {
            conn: Some(conn),
            tail: None,
            tables: HashMap::new(),
            statement_budget: packet.saturating_sub(PACKET_HEADROOM).max(1024),
            staged,
            straight: StraightCopy::default(),
            load_refused: None,
        })
    }

    fn qualified(name: &str) -> String {
        match split_name(name) {
            (Some(db), table) => format!("{}.{}", quote(D, db), quote(D, table)),
            (None, table) => quote(D, table),
        }
    }

    async fn describe(&mut self, name: &str) -> Result<TableInfo, ConnectorError> {
        let (db, table) = split_name(name);
        let rows: Vec<(String, String)> = self
            .conn()?
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
                (db, table),
            )
            .await
            .map_err(|e| classify("reading the target table's columns", e))?;
        Ok(TableInfo {
            exists: !rows.is_empty(),
            columns: rows.into_iter().collect(),
            unique_keys: Vec::new(),
        })
    }

    async fn prepare(
        &mut self,
        writes: &TableWrites<'_>,
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        let qualified = Self::qualified(&writes.table);
        let (wanted, key) = wanted_columns(writes, D, config.quote);
        if let Some(info) = self.tables.get(&*writes.table) {
            if wanted.iter().all(|(n, _)| info.columns.contains_key(n)) {
                return Ok(());
            }
        }
        let known = self.describe(&writes.table).await?;
        let statements = evolution(
            D,
            config.quote,
            config.evolve,
            &qualified,
            &known,
            &wanted,
            &key,
        )
        .map_err(ConnectorError::fatal)?;
        for sql in &statements {
            tracing::info!(table = %qualified, %sql, "evolving the target table");
            self.conn()?
                .query_drop(sql)
                .await
                .map_err(|e| classify(&format!("running {sql}"), e))?;
        }
        let info = self.describe(&writes.table).await?;
        self.tables.insert(writes.table.to_string(), info);
        Ok(())
    }

    /// The connection, once the last tail has given it back ([`Self::settle`]).
    fn conn(&mut self) -> Result<&mut Conn, ConnectorError> {
        self.conn.as_mut().ok_or_else(|| {
            ConnectorError::retriable(
                "the target connection was lost with the end of the last batch",
            )
        })
    }

    /// Waits for the last batch's tail: once this returns `Ok`, every
    /// batch applied is committed. Cancel-safe (the runner drops it when
    /// the next batch comes first): the tail is awaited in place.
    pub async fn settle(&mut self) -> Result<(), ConnectorError> {
        let Some(tail) = self.tail.as_mut() else {
            return Ok(());
        };
        let ended = tail.await;
        self.tail = None;
        let (conn, outcome) = ended.map_err(|e| {
            ConnectorError::retriable(format!("the end of the last batch did not finish: {e}"))
        })?;
        self.conn = Some(conn);
        match outcome? {
            Outcome::Loaded => {}
            Outcome::Declined {
                qualified,
                taken,
                warnings,
                sent,
            } => {
                tracing::info!(table = %qualified, rows = sent, taken, warnings, "{DECLINED}");
                self.straight.failed(&qualified);
            }
            Outcome::Disabled(why) => {
                tracing::warn!(cause = %why, "{LOAD_DISABLED}");
                self.load_refused = Some(why);
            }
        }
        Ok(())
    }

    /// A batch that is one table's new rows (or upserts), of columns the
    /// table has, ready for a tail: its `LOAD DATA` text and the
    /// statements written instead if the load is declined. `None` for any
    /// other batch, which `apply` writes in place.
    fn tail_rows(
        &self,
        steps: &[Step<'_>],
        config: &SinkConfig,
    ) -> Result<Option<mysql_tail::Rows>, ConnectorError> {
        let [Step::Write(writes)] = steps else {
            return Ok(None);
        };
        let qualified = Self::qualified(&writes.table);
        let known = self.tables.get(&*writes.table).is_some_and(|info| {
            let (wanted, _) = wanted_columns(writes, D, config.quote);
            wanted.iter().all(|(n, _)| info.columns.contains_key(n))
        });
        if !known
            || !writes.deletes.is_empty()
            || config.insert_mode == InsertMode::Update
            || self.load_refused.is_some()
            || !self.straight.may_try(&qualified)
        {
            return Ok(None);
        }
        let mut groups = by_columns(writes, |n| stored_name(D, config.quote, n));
        if groups.len() != 1 {
            return Ok(None);
        }
        let group = groups.remove(0);
        let rows: Vec<&Vec<Cell<'_>>> = group.rows.iter().map(|(_, row)| row).collect();
        let Some(text) = mysql_load::rows_text(&rows)? else {
            return Ok(None);
        };
        let count = rows.len() as u64;
        let names = group.names.clone();
        let statements = group_statements(&qualified, group, config, self.statement_budget)?;
        Ok(Some(mysql_tail::Rows {
            qualified,
            names,
            text,
            count,
            statements,
        }))
    }

    /// Applies `steps` in one transaction, once the last batch is
    /// committed. A batch of one table's new rows returns with its load
    /// and commit under way (`mysql_tail`), for [`Self::settle`] or the
    /// next batch to wait for; any other is committed before this returns.
    pub async fn apply(
        &mut self,
        steps: &[Step<'_>],
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        // Written out while the last batch's tail is still at the server.
        let tail_rows = self.tail_rows(steps, config)?;
        self.settle().await?;
        // What that tail found may keep the table to statements now.
        let tail_rows = tail_rows
            .filter(|rows| self.load_refused.is_none() && self.straight.may_try(&rows.qualified));
        if let Some(rows) = tail_rows {
            // Its table was known before the last tail ended; a tail never
            // changes a table's columns, so it still is.
            self.straight.next_batch();
            let conn = self.conn.take().ok_or_else(|| {
                ConnectorError::retriable(
                    "the target connection was lost with the end of the last batch",
                )
            })?;
            self.tail = Some(mysql_tail::spawn(conn, self.staged.clone(), rows));
            return Ok(());
        }
        for step in steps {
            if let Step::Write(writes) = step {
                self.prepare(writes, config).await?;
            }
        }
        let Self {
            conn: Some(conn),
            statement_budget,
            staged,
            straight,
            load_refused,
            ..
        } = self
        else {
            return Err(ConnectorError::retriable(
                "the target connection was lost with the end of the last batch",
            ));
        };
        let budget = *statement_budget;
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| classify("starting the target transaction", e))?;
        straight.next_batch();
        for step in steps {
            match step {
                Step::Truncate(table) => {
                    let sql = format!("DELETE FROM {}", Self::qualified(table));
                    tx.query_drop(&sql).await.map_err(|e| classify(&sql, e))?;
                }
                Step::Write(writes) => {
                    let qualified = Self::qualified(&writes.table);
                    for sql in delete_statements(&qualified, &writes.deletes, config, budget)? {
                        tx.query_drop(sql)
                            .await
                            .map_err(|e| classify(&format!("deleting from {qualified}"), e))?;
                    }
                    for group in by_columns(writes, |n| stored_name(D, config.quote, n)) {
                        // Only where the statements would insert (or
                        // upsert) these rows; update mode never inserts.
                        if config.insert_mode != InsertMode::Update
                            && load_refused.is_none()
                            && straight.may_try(&qualified)
                        {
                            let rows: Vec<&Vec<Cell<'_>>> =
                                group.rows.iter().map(|(_, row)| row).collect();
                            match mysql_load::load(&mut tx, staged, &qualified, &group.names, &rows)
                                .await?
                            {
                                Load::Loaded => continue,
                                Load::Binary => {}
                                Load::Declined { taken, warnings } => {
                                    tracing::info!(table = %qualified, rows = rows.len(), taken, warnings, "{DECLINED}");
                                    straight.failed(&qualified);
                                }
                                Load::Disabled(why) => {
                                    tracing::warn!(table = %qualified, cause = %why, "{LOAD_DISABLED}");
                                    *load_refused = Some(why);
                                }
                            }
                        }
                        for sql in group_statements(&qualified, group, config, budget)? {
                            tx.query_drop(sql)
                                .await
                                .map_err(|e| classify(&format!("writing to {qualified}"), e))?;
                        }
                    }
                }
            }
        }
        tx.commit()
            .await
            .map_err(|e| classify("committing the target transaction", e))
    }
}

fn delete_statements(
    qualified: &str,
    keys: &[Vec<Cell<'_>>],
    config: &SinkConfig,
    budget: usize,
) -> Result<Vec<String>, ConnectorError> {
    let Some(first) = keys.first() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = first
        .iter()
        .map(|c| quote(D, &stored_name(D, config.quote, &c.name)))
        .collect();
    let head = format!("DELETE FROM {qualified} WHERE ({}) IN (", names.join(", "));
    batched(&head, ")", keys, names.len(), budget, |sql, key| {
        push_tuple(sql, key)
    })
}

/// The statements writing one group of rows of a table.
fn group_statements(
    qualified: &str,
    group: ColumnGroup<'_, '_>,
    config: &SinkConfig,
    budget: usize,
) -> Result<Vec<String>, ConnectorError> {
    let mut out = Vec::new();
    let (names, key, rows) = (group.names, group.key, group.rows);
    let quoted: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
    if config.insert_mode == InsertMode::Update && !key.is_empty() {
        if names.iter().all(|n| key.contains(n)) {
            return Ok(out);
        }
        for (k, row) in rows {
            let mut sql = format!("UPDATE {qualified} SET ");
            let mut first = true;
            for (cell, name) in row.iter().zip(&names) {
                if key.contains(name) {
                    continue;
                }
                if !first {
                    sql.push_str(", ");
                }
                first = false;
                sql.push_str(&quote(D, name));
                sql.push_str(" = ");
                push_tuple(&mut sql, [cell])?;
            }
            sql.push_str(" WHERE ");
            for (i, cell) in k.iter().enumerate() {
                if i > 0 {
                    sql.push_str(" AND ");
                }
                sql.push_str(&quote(D, &stored_name(D, config.quote, &cell.name)));
                sql.push_str(" = ");
                push_tuple(&mut sql, [cell])?;
            }
            out.push(sql);
        }
        return Ok(out);
    }
    let suffix = if config.insert_mode == InsertMode::Upsert && !key.is_empty() {
        let updates: Vec<String> = names
            .iter()
            .filter(|n| !key.contains(n))
            .map(|n| format!("{0} = VALUES({0})", quote(D, n)))
            .collect();
        if updates.is_empty() {
            // Only key columns: a duplicate is already the wanted row.
            let k = quote(D, &key[0]);
            format!(" ON DUPLICATE KEY UPDATE {k} = {k}")
        } else {
            format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "))
        }
    } else {
        String::new()
    };
    let head = format!("INSERT INTO {qualified} ({}) VALUES ", quoted.join(", "));
    out.extend(batched(
        &head,
        &suffix,
        &rows,
        names.len(),
        budget,
        |sql, (_, row)| push_tuple(sql, row.iter()),
    )?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes_and_write_bytes_in_hex() {
        let mut out = String::new();
        for p in [
            Param::Text("it's \\ fine".into()),
            Param::Null,
            Param::Bytes(vec![0, 0x5c, 0xff]),
            Param::Bytes(Vec::new()),
        ] {
            push_literal(&mut out, p);
            out.push(' ');
        }
        assert_eq!(out, "'it''s \\ fine' NULL X'005cff' X'' ");
    }

    #[test]
    fn statements_are_cut_at_the_byte_budget() {
        let rows: Vec<u32> = (0..10).collect();
        let write = |sql: &mut String, n: &u32| {
            sql.push_str(&format!("({n})"));
            Ok(())
        };
        let one = batched("I ", ";", &rows, 1, 1 << 20, write).unwrap();
        assert_eq!(one, ["I (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);"]);
        // 16 bytes: "I (0), (1), (2);" fits exactly, one more would not.
        let cut = batched("I ", ";", &rows, 1, 16, write).unwrap();
        assert_eq!(
            cut,
            [
                "I (0), (1), (2);",
                "I (3), (4), (5);",
                "I (6), (7), (8);",
                "I (9);"
            ]
        );
        assert!(cut.iter().all(|s| s.len() <= 16));
        // A tuple larger than the budget goes alone.
        let alone = batched("I ", ";", &rows[..2], 1, 3, write).unwrap();
        assert_eq!(alone, ["I (0);", "I (1);"]);
        // The value cap: three 10,000-value rows per statement at most.
        let capped = batched("I ", ";", &rows[..4], 10_000, 1 << 20, write).unwrap();
        assert_eq!(capped, ["I (0), (1), (2);", "I (3);"]);
    }
}
