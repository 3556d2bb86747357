//! Applying steps to PostgreSQL: every value bound as text and cast to
//! the column's own type inside `unnest`, so one statement writes a whole
//! table's rows (`INSERT … ON CONFLICT DO UPDATE` for upserts), all in one
//! transaction.

use std::collections::HashMap;

use sluice_connector_api::ConnectorError;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::change::Cell;
use crate::config::{Dialect, InsertMode, SinkConfig};
use crate::plan::{by_columns, ColumnGroup, Step, TableWrites};
use crate::sql_value::param;
use crate::table::{evolution, quote, split_name, stored_name, wanted_columns, TableInfo};

const D: Dialect = Dialect::Postgres;

/// A statement and its parameters: one text array per column.
type Statement = (String, Vec<Vec<Option<String>>>);

/// A PostgreSQL connection with what it learned of its tables.
pub struct PostgresTarget {
    client: Client,
    tables: HashMap<String, TableInfo>,
}

/// SQLSTATEs that say the target cannot write *now* (not that a record is
/// bad): a transaction in read-only mode (a standby, a failover under way),
/// a session ended for idling in a transaction, a lock not granted in time,
/// an object in use. Whole classes are in [`TRANSIENT_CLASSES`].
const TRANSIENT_CODES: [&str; 4] = ["25006", "25P03", "55P03", "55006"];

/// SQLSTATE classes that are never the record's fault: connection
/// exceptions (08), transaction rollbacks such as deadlocks (40),
/// insufficient resources such as a full disk (53), operator intervention
/// such as a statement timeout or a shutdown (57), system and I/O errors
/// (58).
const TRANSIENT_CLASSES: [&str; 5] = ["08", "40", "53", "57", "58"];

/// A PostgreSQL error as a connector error: what the target cannot do now
/// retries with the same records (never dead-lettered); data and schema
/// errors do not.
fn classify(context: &str, e: tokio_postgres::Error) -> ConnectorError {
    let retriable = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            TRANSIENT_CODES.contains(&c) || TRANSIENT_CLASSES.iter().any(|k| c.starts_with(k))
        }
    };
    let text = match e.as_db_error() {
        Some(db) => format!("{context}: {} ({})", db.message(), db.code().code()),
        None => format!("{context}: {e}"),
    };
    if retriable {
        ConnectorError::retriable(text)
    } else {
        ConnectorError::fatal(text)
    }
}

impl PostgresTarget {
    /// Connects per the sink config.
    pub async fn connect(config: &SinkConfig) -> Result<Self, ConnectorError> {
        let t = &config.target;
        let tls = sluice_connector_api::database_url::postgres_tls(&t.tls)
            .map_err(|e| ConnectorError::fatal(format!("connection.url: {e}")))?;
        let mut pg = tokio_postgres::Config::new();
        pg.ssl_mode(tls.postgres_mode());
        pg.host(&t.host)
            .port(t.port)
            .user(&config.user)
            .password(&config.password)
            .dbname(&t.database)
            .application_name("sluice-jdbc-sink")
            .connect_timeout(std::time::Duration::from_secs(30));
        let (client, connection) = pg.connect(tls.make_connect()).await.map_err(|e| {
            // The TLS cause (an unknown issuer, a name the certificate does
            // not carry) is in the error's sources.
            let mut cause = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                cause = format!("{cause}: {inner}");
                source = inner.source();
            }
            let hint = if cause.contains("TLS") || cause.contains("certificate") {
                "; check sslrootcert (the CA that signed the server's certificate) and that the URL's host is a name the certificate carries"
            } else {
                "; check connection.url, connection.username and connection.password"
            };
            let text = format!(
                "cannot connect to PostgreSQL at {}:{}/{} as {}: {cause}{hint}",
                t.host, t.port, t.database, config.user
            );
            match e.code() {
                Some(c) if c.code() == "28P01" || c.code() == "28000" || c.code() == "3D000" => {
                    ConnectorError::fatal(text)
                }
                _ => ConnectorError::retriable(text),
            }
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "target connection ended");
            }
        });
        Ok(Self {
            client,
            tables: HashMap::new(),
        })
    }

    fn qualified(name: &str, config: &SinkConfig) -> String {
        let (schema, table) = split_name(name);
        let table = quote(D, &stored_name(D, config.quote, table));
        match schema {
            Some(s) => format!("{}.{table}", quote(D, &stored_name(D, config.quote, s))),
            None => table,
        }
    }

    async fn describe(&self, qualified: &str) -> Result<TableInfo, ConnectorError> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&qualified],
            )
            .await
            .map_err(|e| classify("reading the target table's columns", e))?;
        let exists = !rows.is_empty();
        Ok(TableInfo {
            exists,
            columns: rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect(),
        })
    }

    /// Makes sure the table and every column the writes need exist.
    async fn prepare(
        &mut self,
        writes: &TableWrites,
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        let qualified = Self::qualified(&writes.table, config);
        let (wanted, key) = wanted_columns(writes, D, config.quote);
        let known = match self.tables.get(&qualified) {
            Some(info) if wanted.iter().all(|(n, _)| info.columns.contains_key(n)) => return Ok(()),
            _ => self.describe(&qualified).await?,
        };
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
            self.client
                .batch_execute(sql)
                .await
                .map_err(|e| classify(&format!("running {sql}"), e))?;
        }
        let info = self.describe(&qualified).await?;
        self.tables.insert(qualified, info);
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
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| classify("starting the target transaction", e))?;
        for step in steps {
            match step {
                Step::Truncate(table) => {
                    let sql = format!("TRUNCATE TABLE {}", Self::qualified(table, config));
                    tx.batch_execute(&sql)
                        .await
                        .map_err(|e| classify(&sql, e))?;
                }
                Step::Write(writes) => {
                    let qualified = Self::qualified(&writes.table, config);
                    let info = self.tables.get(&qualified).cloned().unwrap_or_default();
                    if !writes.deletes.is_empty() {
                        let (sql, params) = delete_sql(&qualified, &writes.deletes, &info, config)?;
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|p| p as _).collect();
                        tx.execute(&sql, &refs)
                            .await
                            .map_err(|e| classify(&format!("deleting from {qualified}"), e))?;
                    }
                    for group in by_columns(writes, |n| stored_name(D, config.quote, n)) {
                        let (sql, params) = write_sql(&qualified, &group, &info, config)?;
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|p| p as _).collect();
                        tx.execute(&sql, &refs)
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

/// Column arrays of text, one per column, for `unnest`.
fn columns_of(rows: &[&[Cell]], width: usize) -> Result<Vec<Vec<Option<String>>>, ConnectorError> {
    let mut columns = vec![Vec::with_capacity(rows.len()); width];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(width) {
            let p = param(&cell.schema, &cell.value, D)
                .map_err(|e| ConnectorError::fatal(format!("column {}: {e}", cell.name)))?;
            columns[i].push(p.into_text());
        }
    }
    Ok(columns)
}

fn cast(info: &TableInfo, name: &str) -> String {
    info.columns
        .get(name)
        .cloned()
        .unwrap_or_else(|| "text".into())
}

fn delete_sql(
    qualified: &str,
    keys: &[Vec<Cell>],
    info: &TableInfo,
    config: &SinkConfig,
) -> Result<Statement, ConnectorError> {
    let names: Vec<String> = keys[0]
        .iter()
        .map(|c| stored_name(D, config.quote, &c.name))
        .collect();
    let rows: Vec<&[Cell]> = keys.iter().map(Vec::as_slice).collect();
    let params = columns_of(&rows, names.len())?;
    let targets: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
    let (sources, from) = unnest_columns(&names, info);
    Ok((
        format!(
            "DELETE FROM {qualified} WHERE ({}) IN (SELECT {} FROM {from})",
            targets.join(", "),
            sources.join(", "),
        ),
        params,
    ))
}

/// The rows bound as one text array per column (`$1::text[]`, …) become
/// `unnest(…) AS u(c0, c1, …)`; each `u.cN` is cast to its column's real
/// type. Returns the cast column expressions and the FROM item.
fn unnest_columns(names: &[String], info: &TableInfo) -> (Vec<String>, String) {
    let sources = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("u.c{i}::{}", cast(info, n)))
        .collect();
    let arrays: Vec<String> = (1..=names.len()).map(|i| format!("${i}::text[]")).collect();
    let aliases: Vec<String> = (0..names.len()).map(|i| format!("c{i}")).collect();
    let from = format!("unnest({}) AS u({})", arrays.join(", "), aliases.join(", "));
    (sources, from)
}

fn write_sql(
    qualified: &str,
    group: &ColumnGroup<'_>,
    info: &TableInfo,
    config: &SinkConfig,
) -> Result<Statement, ConnectorError> {
    let (names, key) = (&group.names, &group.key);
    let cells: Vec<&[Cell]> = group.rows.iter().map(|(_, row)| row.as_slice()).collect();
    let params = columns_of(&cells, names.len())?;
    let quoted: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
    let (sources, from) = unnest_columns(names, info);
    let sql = match config.insert_mode {
        InsertMode::Update if !key.is_empty() => {
            let sets: Vec<String> = names
                .iter()
                .zip(&sources)
                .filter(|(n, _)| !key.contains(n))
                .map(|(n, s)| format!("{} = {s}", quote(D, n)))
                .collect();
            let matches: Vec<String> = names
                .iter()
                .zip(&sources)
                .filter(|(n, _)| key.contains(n))
                .map(|(n, s)| format!("t.{} = {s}", quote(D, n)))
                .collect();
            if sets.is_empty() {
                return Ok(("SELECT 1 WHERE false".into(), Vec::new()));
            }
            format!(
                "UPDATE {qualified} AS t SET {} FROM {from} WHERE {}",
                sets.join(", "),
                matches.join(" AND ")
            )
        }
        InsertMode::Upsert if !key.is_empty() => {
            let updates: Vec<String> = names
                .iter()
                .filter(|n| !key.contains(n))
                .map(|n| format!("{0} = EXCLUDED.{0}", quote(D, n)))
                .collect();
            let action = if updates.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            let conflict: Vec<String> = key.iter().map(|k| quote(D, k)).collect();
            format!(
                "INSERT INTO {qualified} ({}) SELECT {} FROM {from} ON CONFLICT ({}) {action}",
                quoted.join(", "),
                sources.join(", "),
                conflict.join(", ")
            )
        }
        _ => format!(
            "INSERT INTO {qualified} ({}) SELECT {} FROM {from}",
            quoted.join(", "),
            sources.join(", ")
        ),
    };
    Ok((sql, params))
}
