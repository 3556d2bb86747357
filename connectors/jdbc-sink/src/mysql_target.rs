//! Applying steps to MySQL / MariaDB: multi-row `INSERT … ON DUPLICATE
//! KEY UPDATE` for upserts and `DELETE … WHERE (key) IN (…)` for deletes,
//! values bound as text (bytes for binary) that the server converts to the
//! column type, all in one transaction. DDL runs before the transaction
//! (it would commit it), and truncates are `DELETE FROM` so they stay
//! inside it.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, TxOpts, Value as MyValue};
use sluice_connector_api::ConnectorError;

use crate::change::Cell;
use crate::config::{Dialect, InsertMode, SinkConfig};
use crate::plan::{by_columns, Step, TableWrites};
use crate::sql_value::{param, Param};
use crate::table::{evolution, quote, split_name, stored_name, wanted_columns, TableInfo};

const D: Dialect = Dialect::MySql;
/// Most placeholders in one statement (the protocol allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// A MySQL / MariaDB connection with what it learned of its tables.
pub struct MySqlTarget {
    conn: Conn,
    tables: HashMap<String, TableInfo>,
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
fn classify(context: &str, e: mysql_async::Error) -> ConnectorError {
    let text = format!("{context}: {e}");
    match &e {
        mysql_async::Error::Server(s) if TRANSIENT_CODES.contains(&s.code) => {
            ConnectorError::retriable(text)
        }
        mysql_async::Error::Server(_) => ConnectorError::fatal(text),
        _ => ConnectorError::retriable(text),
    }
}

fn to_value(p: Param) -> MyValue {
    match p {
        Param::Null => MyValue::NULL,
        Param::Text(t) => MyValue::Bytes(t.into_bytes()),
        Param::Bytes(b) => MyValue::Bytes(b),
    }
}

fn values_of(cells: &[Cell]) -> Result<Vec<MyValue>, ConnectorError> {
    cells
        .iter()
        .map(|c| {
            param(&c.schema, &c.value, D)
                .map(to_value)
                .map_err(|e| ConnectorError::fatal(format!("column {}: {e}", c.name)))
        })
        .collect()
}

impl MySqlTarget {
    /// Connects per the sink config; sessions use UTC.
    pub async fn connect(config: &SinkConfig) -> Result<Self, ConnectorError> {
        let t = &config.target;
        let ssl = sluice_connector_api::database_url::mysql_tls(&t.tls)
            .map_err(|e| ConnectorError::fatal(format!("connection.url: {e}")))?;
        let opts = OptsBuilder::default()
            .ssl_opts(ssl)
            .ip_or_hostname(t.host.clone())
            .tcp_port(t.port)
            .user(Some(config.user.clone()))
            .pass(Some(config.password.clone()))
            .db_name(Some(t.database.clone()))
            .prefer_socket(false)
            // Each batch size is its own statement of up to MAX_PARAMS
            // parameters, whose metadata the driver keeps while the
            // statement is cached: its default 32 held tens of MiB.
            // Full batches share one statement; two is enough to reuse it.
            .stmt_cache_size(2)
            .setup(vec!["SET time_zone = '+00:00'"]);
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
        Ok(Self {
            conn,
            tables: HashMap::new(),
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
            .conn
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
        })
    }

    async fn prepare(
        &mut self,
        writes: &TableWrites,
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        let qualified = Self::qualified(&writes.table);
        let (wanted, key) = wanted_columns(writes, D, config.quote);
        if let Some(info) = self.tables.get(&writes.table) {
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
            self.conn
                .query_drop(sql)
                .await
                .map_err(|e| classify(&format!("running {sql}"), e))?;
        }
        let info = self.describe(&writes.table).await?;
        self.tables.insert(writes.table.clone(), info);
        Ok(())
    }

    /// Applies `steps` in one transaction.
    pub async fn apply(
        &mut self,
        steps: &[Step],
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        for step in steps {
            if let Step::Write(writes) = step {
                self.prepare(writes, config).await?;
            }
        }
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| classify("starting the target transaction", e))?;
        for step in steps {
            match step {
                Step::Truncate(table) => {
                    let sql = format!("DELETE FROM {}", Self::qualified(table));
                    tx.query_drop(&sql).await.map_err(|e| classify(&sql, e))?;
                }
                Step::Write(writes) => {
                    let qualified = Self::qualified(&writes.table);
                    for (sql, params) in delete_statements(&qualified, &writes.deletes, config)? {
                        tx.exec_drop(&sql, Params::Positional(params))
                            .await
                            .map_err(|e| classify(&format!("deleting from {qualified}"), e))?;
                    }
                    for (sql, params) in write_statements(&qualified, writes, config)? {
                        tx.exec_drop(&sql, Params::Positional(params))
                            .await
                            .map_err(|e| classify(&format!("writing to {qualified}"), e))?;
                    }
                }
            }
        }
        tx.commit()
            .await
            .map_err(|e| classify("committing the target transaction", e))
    }
}

type Statements = Vec<(String, Vec<MyValue>)>;

fn delete_statements(
    qualified: &str,
    keys: &[Vec<Cell>],
    config: &SinkConfig,
) -> Result<Statements, ConnectorError> {
    let Some(first) = keys.first() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = first
        .iter()
        .map(|c| quote(D, &stored_name(D, config.quote, &c.name)))
        .collect();
    let tuple = format!("({})", vec!["?"; names.len()].join(", "));
    let mut out = Vec::new();
    for chunk in keys.chunks((MAX_PARAMS / names.len().max(1)).max(1)) {
        let mut params = Vec::with_capacity(chunk.len() * names.len());
        for key in chunk {
            params.extend(values_of(key)?);
        }
        out.push((
            format!(
                "DELETE FROM {qualified} WHERE ({}) IN ({})",
                names.join(", "),
                vec![tuple.as_str(); chunk.len()].join(", ")
            ),
            params,
        ));
    }
    Ok(out)
}

fn write_statements(
    qualified: &str,
    writes: &TableWrites,
    config: &SinkConfig,
) -> Result<Statements, ConnectorError> {
    let mut out = Vec::new();
    for group in by_columns(writes, |n| stored_name(D, config.quote, n)) {
        let (names, key, rows) = (group.names, group.key, group.rows);
        let quoted: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
        if config.insert_mode == InsertMode::Update && !key.is_empty() {
            let sets: Vec<String> = names
                .iter()
                .filter(|n| !key.contains(n))
                .map(|n| format!("{} = ?", quote(D, n)))
                .collect();
            if sets.is_empty() {
                continue;
            }
            let matches: Vec<String> = key.iter().map(|k| format!("{} = ?", quote(D, k))).collect();
            let sql = format!(
                "UPDATE {qualified} SET {} WHERE {}",
                sets.join(", "),
                matches.join(" AND ")
            );
            for (k, row) in rows {
                let mut params: Vec<MyValue> = Vec::new();
                for (cell, value) in row.iter().zip(values_of(row)?) {
                    if !key.contains(&stored_name(D, config.quote, &cell.name)) {
                        params.push(value);
                    }
                }
                params.extend(values_of(k)?);
                out.push((sql.clone(), params));
            }
            continue;
        }
        let tuple = format!("({})", vec!["?"; names.len()].join(", "));
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
        for chunk in rows.chunks((MAX_PARAMS / names.len().max(1)).max(1)) {
            let mut params = Vec::with_capacity(chunk.len() * names.len());
            for (_, row) in chunk {
                params.extend(values_of(row)?);
            }
            out.push((
                format!(
                    "INSERT INTO {qualified} ({}) VALUES {}{suffix}",
                    quoted.join(", "),
                    vec![tuple.as_str(); chunk.len()].join(", ")
                ),
                params,
            ));
        }
    }
    Ok(out)
}
