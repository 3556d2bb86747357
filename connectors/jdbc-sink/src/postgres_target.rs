//! Applying steps to PostgreSQL, all in one transaction: each group of
//! rows is loaded with `COPY` into a temporary staging table of the
//! session (typed as the target's columns, so the server parses each value
//! as its column's type) and merged with one statement — `INSERT … ON
//! CONFLICT DO UPDATE` for upserts, `UPDATE … FROM` for updates, `DELETE …
//! WHERE (key) IN` for deletes. COPY is the server's fastest way in; the
//! earlier text arrays cast inside `unnest` took ~35% longer server-side
//! for the same rows. Rows to insert or upsert are first tried with a
//! `COPY` straight into their table, inside a savepoint: new rows (a
//! snapshot, an append-only table) skip the staging table and the merge,
//! and a key the table already holds rolls that back to the merge
//! (`straight_copy`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::SinkExt;
use sluice_connector_api::ConnectorError;
use tokio_postgres::{Client, CopyInSink, Statement};

use crate::batch_tail::{self, SentCopy, Tail};
use crate::change::Cell;
use crate::config::{Dialect, InsertMode, SinkConfig};
use crate::copy_text::push_row;
use crate::pipelined_transaction::PipelinedTransaction;
use crate::plan::{by_columns, Step, TableWrites};
use crate::straight_copy::{StraightCopy, MOST_PER_TRANSACTION};
use crate::table::{evolution, quote, split_name, stored_name, wanted_columns, TableInfo};

const D: Dialect = Dialect::Postgres;

/// A target table and a set of its columns: what a staging table holds.
type StageKey = (String, Vec<String>);

/// A PostgreSQL connection with what it learned of its tables.
pub struct PostgresTarget {
    /// Shared with the tail of the last batch (`batch_tail`).
    client: Arc<Client>,
    tables: HashMap<String, TableInfo>,
    /// The session's staging tables (temporary, emptied at each commit),
    /// by the target table and columns they stage.
    stages: HashMap<StageKey, String>,
    /// Which tables take new rows with a `COPY` straight into them.
    straight: StraightCopy,
    /// The session's `COPY` statements, prepared once by their text: a
    /// `COPY` named by its text is prepared again each time, a round trip
    /// of its own in every batch.
    copies: HashMap<String, Statement>,
    /// Whether a batch's transaction may still be open: one that failed,
    /// or was dropped unfinished, is rolled back before anything else is
    /// sent (its `BEGIN` travelled with its first statement, and nothing
    /// rolls it back on drop; see `pipelined_transaction`).
    unfinished: bool,
    /// The last batch's tail, its commit included, under way.
    tail: Option<Tail>,
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
pub(crate) fn classify(context: &str, e: tokio_postgres::Error) -> ConnectorError {
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
            client: Arc::new(client),
            tables: HashMap::new(),
            stages: HashMap::new(),
            straight: StraightCopy::default(),
            copies: HashMap::new(),
            unfinished: false,
            tail: None,
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
        // Unique indexes a duplicate is refused by at once: not deferred,
        // not partial, on plain columns (what `ON CONFLICT` can use too).
        let unique = self
            .client
            .query(
                "SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indimmediate \
                 AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid",
                &[&qualified],
            )
            .await
            .map_err(|e| classify("reading the target table's unique indexes", e))?;
        Ok(TableInfo {
            exists,
            columns: rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect(),
            unique_keys: unique.iter().map(|r| r.get::<_, Vec<String>>(0)).collect(),
        })
    }

    /// Makes sure the table and every column the writes need exist.
    async fn prepare(
        &mut self,
        writes: &TableWrites<'_>,
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

    /// The staging table for `names` of `qualified`, created (outside any
    /// transaction, so a rolled-back batch cannot take it away) the first
    /// time the session needs it.
    async fn stage(&mut self, qualified: &str, names: &[String]) -> Result<(), ConnectorError> {
        let key = (qualified.to_owned(), names.to_vec());
        if self.stages.contains_key(&key) {
            return Ok(());
        }
        let name = format!("sluice_stage_{}", self.stages.len());
        let info = self.tables.get(qualified).cloned().unwrap_or_default();
        let columns: Vec<String> = names
            .iter()
            .map(|n| format!("{} {}", quote(D, n), column_type(&info, n)))
            .collect();
        let sql = format!(
            "CREATE TEMPORARY TABLE IF NOT EXISTS pg_temp.{} ({}) ON COMMIT DELETE ROWS",
            quote(D, &name),
            columns.join(", ")
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| classify(&format!("creating a staging table for {qualified}"), e))?;
        self.stages.insert(key, name);
        Ok(())
    }

    /// Prepares `copy` once for the session (a prepared statement lasts
    /// as long as the connection), before a batch's transaction begins.
    async fn prepare_copy(&mut self, copy: String) -> Result<(), ConnectorError> {
        if self.copies.contains_key(&copy) {
            return Ok(());
        }
        let statement = self
            .client
            .prepare(&copy)
            .await
            .map_err(|e| classify(&format!("preparing {copy}"), e))?;
        self.copies.insert(copy, statement);
        Ok(())
    }

    /// Waits for the last batch's tail: once this returns `Ok`, every
    /// batch applied is committed. Cancel-safe.
    pub async fn settle(&mut self) -> Result<(), ConnectorError> {
        let Some(tail) = self.tail.as_mut() else {
            return Ok(());
        };
        let ended = tail.await;
        self.tail = None;
        let held = ended.map_err(|e| {
            ConnectorError::retriable(format!("the end of the last batch did not finish: {e}"))
        })??;
        if let Some(table) = held {
            self.straight.failed(&table);
        }
        self.unfinished = false;
        Ok(())
    }

    /// Applies `steps` in one transaction, once the last batch is
    /// committed; returns with the transaction's end (the last straight
    /// `COPY`'s answer and the commit) under way, for [`Self::settle`] or
    /// the next batch to wait for.
    pub async fn apply(
        &mut self,
        steps: Vec<Step<'_>>,
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        self.settle().await?;
        if self.unfinished {
            // No transaction open only draws a warning.
            self.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(|e| classify("rolling back an unfinished batch", e))?;
            self.unfinished = false;
        }
        for step in &steps {
            if let Step::Write(writes) = step {
                self.prepare(writes, config).await?;
                let qualified = Self::qualified(&writes.table, config);
                if let Some(first) = writes.deletes.first() {
                    let names = names_of(first, config);
                    self.stage(&qualified, &names).await?;
                    self.prepare_copy(stage_copy(&self.stages, &qualified, &names)?)
                        .await?;
                }
                for group in by_columns(writes, |n| stored_name(D, config.quote, n)) {
                    self.stage(&qualified, &group.names).await?;
                    self.prepare_copy(stage_copy(&self.stages, &qualified, &group.names)?)
                        .await?;
                    if straight_is_merge(&self.tables, &qualified, &group.key, config) {
                        self.prepare_copy(straight_copy(&qualified, &group.names))
                            .await?;
                    }
                }
            }
        }
        self.unfinished = true;
        let tx = PipelinedTransaction::new(&self.client);
        // A staging table used twice in one transaction (its table written
        // on both sides of a truncate) is emptied before its second load.
        let mut loaded = HashSet::new();
        self.straight.next_batch();
        let mut straight_tries = 0;
        // The batch's last straight `COPY`, ended by its tail.
        let mut last_copy = None;
        let last_step = steps.len().saturating_sub(1);
        for (index, step) in steps.iter().enumerate() {
            match step {
                Step::Truncate(table) => {
                    let sql = format!("TRUNCATE TABLE {}", Self::qualified(table, config));
                    tx.batch_execute(&sql)
                        .await
                        .map_err(|e| classify(&sql, e))?;
                }
                Step::Write(writes) => {
                    let qualified = Self::qualified(&writes.table, config);
                    if let Some(first) = writes.deletes.first() {
                        let key = (qualified.clone(), names_of(first, config));
                        let stage = load(
                            &self.stages,
                            &self.copies,
                            &tx,
                            &key,
                            &writes.deletes,
                            &mut loaded,
                        )
                        .await?;
                        let sql = delete_sql(&qualified, &key.1, &stage);
                        tx.batch_execute(&sql)
                            .await
                            .map_err(|e| classify(&format!("deleting from {qualified}"), e))?;
                    }
                    let groups = by_columns(writes, |n| stored_name(D, config.quote, n));
                    let last_group = groups.len().saturating_sub(1);
                    for (number, group) in groups.into_iter().enumerate() {
                        let Some(sql) = merge_sql(
                            &qualified,
                            &group.names,
                            &group.key,
                            config.insert_mode,
                            &stage_name(&self.stages, &qualified, &group.names)?,
                        ) else {
                            continue;
                        };
                        let rows: Vec<&Vec<Cell<'_>>> =
                            group.rows.iter().map(|(_, row)| row).collect();
                        if straight_is_merge(&self.tables, &qualified, &group.key, config)
                            && straight_tries < MOST_PER_TRANSACTION
                            && self.straight.may_try(&qualified)
                        {
                            straight_tries += 1;
                            let copy =
                                prepared(&self.copies, &straight_copy(&qualified, &group.names))?;
                            match send_straight(&tx, &qualified, copy, &rows).await? {
                                Straight::KeysHeld => self.straight.failed(&qualified),
                                Straight::Sent((sink, parts)) => {
                                    if index == last_step && number == last_group {
                                        let stage =
                                            stage_name(&self.stages, &qualified, &group.names)?;
                                        let stage_copy = prepared(
                                            &self.copies,
                                            &stage_copy(&self.stages, &qualified, &group.names)?,
                                        )?
                                        .clone();
                                        last_copy = Some(SentCopy {
                                            sink,
                                            parts,
                                            stage_loaded: loaded.contains(&stage),
                                            stage,
                                            stage_copy,
                                            merge: sql,
                                            qualified,
                                        });
                                        break;
                                    }
                                    match end_straight(&tx, &qualified, sink).await? {
                                        Straight::Sent(()) => continue,
                                        Straight::KeysHeld => self.straight.failed(&qualified),
                                    }
                                }
                            }
                        }
                        let key = (qualified.clone(), group.names);
                        load(&self.stages, &self.copies, &tx, &key, &rows, &mut loaded).await?;
                        tx.batch_execute(&sql)
                            .await
                            .map_err(|e| classify(&format!("writing to {qualified}"), e))?;
                    }
                }
            }
        }
        if tx.has_begun() {
            self.tail = Some(batch_tail::spawn(Arc::clone(&self.client), last_copy));
        } else {
            self.unfinished = false;
        }
        Ok(())
    }
}

/// Whether a `COPY` straight into `qualified` writes what the merge
/// would: a plain insert, or an upsert whose key the table refuses to
/// repeat (without such an index the merge fails naming it, and a `COPY`
/// would add a second row for the key instead).
fn straight_is_merge(
    tables: &HashMap<String, TableInfo>,
    qualified: &str,
    key: &[String],
    config: &SinkConfig,
) -> bool {
    match config.insert_mode {
        InsertMode::Insert => true,
        InsertMode::Upsert => {
            key.is_empty()
                || tables
                    .get(qualified)
                    .is_some_and(|info| info.refuses_repeated(key))
        }
        InsertMode::Update => false,
    }
}

/// The savepoint a straight `COPY` rolls back to.
pub(crate) const STRAIGHT: &str = "sluice_straight_copy";

/// What a `COPY` straight into a table came to.
enum Straight<T> {
    /// The rows went, with what is left to end it.
    Sent(T),
    /// The table holds some of their keys already: rolled back, for the
    /// merge to write.
    KeysHeld,
}

/// SQLSTATE unique_violation: a key the table holds.
const UNIQUE_VIOLATION: &str = "23505";

/// Whether `e` is a key the table holds already.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code().map(|c| c.code()) == Some(UNIQUE_VIOLATION)
}

/// What the sink logs when a straight `COPY` met keys the table holds.
pub(crate) const FELL_BACK: &str = "the table holds some of these keys already: they are merged through a staging table, and so are the table's next batches for a while";

/// A straight `COPY`, its rows sent, and their text.
type SentStraight = (
    std::pin::Pin<Box<CopyInSink<bytes::Bytes>>>,
    Vec<bytes::Bytes>,
);

/// Sends `rows` with `copy` (a `COPY` straight into `qualified`), inside a
/// savepoint to roll back to if the table holds some of their keys. Any
/// other failure fails the batch, as the merge's would.
async fn send_straight(
    tx: &PipelinedTransaction<'_>,
    qualified: &str,
    copy: &Statement,
    rows: &[&Vec<Cell<'_>>],
) -> Result<Straight<SentStraight>, ConnectorError> {
    let context = format!("loading rows into {qualified}");
    // The savepoint and the `COPY` go out together, one round trip for
    // both: `join` polls the savepoint first, so it is sent first.
    let savepoint = format!("SAVEPOINT {STRAIGHT}");
    let (saved, started) =
        futures_util::future::join(tx.batch_execute(&savepoint), tx.copy_in(copy)).await;
    saved.map_err(|e| classify(&context, e))?;
    let sent = match started {
        Ok(sink) => {
            let mut sink = Box::pin(sink);
            send_copy(&mut sink, rows).await.map(|parts| (sink, parts))
        }
        Err(e) => Err(Sent::Refused(e)),
    };
    match sent {
        Ok(sent) => Ok(Straight::Sent(sent)),
        Err(Sent::Refused(e)) if is_unique_violation(&e) => {
            roll_back_straight(tx, qualified, &e).await?;
            Ok(Straight::KeysHeld)
        }
        Err(e) => Err(e.into_connector_error(&context)),
    }
}

/// Ends a straight `COPY` whose rows are sent, rolling it back to its
/// savepoint if the table holds some of their keys.
async fn end_straight(
    tx: &PipelinedTransaction<'_>,
    qualified: &str,
    mut sink: std::pin::Pin<Box<CopyInSink<bytes::Bytes>>>,
) -> Result<Straight<()>, ConnectorError> {
    match sink.as_mut().finish().await {
        Ok(_) => Ok(Straight::Sent(())),
        Err(e) if is_unique_violation(&e) => {
            roll_back_straight(tx, qualified, &e).await?;
            Ok(Straight::KeysHeld)
        }
        Err(e) => Err(classify(&format!("loading rows into {qualified}"), e)),
    }
}

/// Rolls a straight `COPY` that met held keys back to its savepoint.
async fn roll_back_straight(
    tx: &PipelinedTransaction<'_>,
    qualified: &str,
    cause: &tokio_postgres::Error,
) -> Result<(), ConnectorError> {
    tracing::info!(table = %qualified, cause = %cause, "{FELL_BACK}");
    tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {STRAIGHT}"))
        .await
        .map_err(|e| classify(&format!("loading rows into {qualified}"), e))
}

/// Why a `COPY` did not go through.
enum Sent {
    /// A value could not be written as COPY text.
    Row(ConnectorError),
    /// The server refused it, or the connection failed.
    Refused(tokio_postgres::Error),
}

impl Sent {
    fn into_connector_error(self, context: &str) -> ConnectorError {
        match self {
            Self::Row(e) => e,
            Self::Refused(e) => classify(context, e),
        }
    }
}

/// How much COPY text is written before it is handed to the server. The
/// server loads one part while the next is written (text written whole
/// before the `COPY` began left the server idle meanwhile), and a batch
/// of wide rows is never held as text all at once.
const COPY_PART: usize = 64 * 1024;

/// Writes `rows` as the data of a started `COPY … FROM STDIN`, in parts of
/// about [`COPY_PART`] bytes, and ends it. A row that cannot be written
/// drops the `COPY` unfinished, which fails it on the server, and the
/// batch with it.
async fn write_copy<'r, R: AsRef<[Cell<'r>]>>(
    sink: CopyInSink<bytes::Bytes>,
    rows: &[R],
) -> Result<(), Sent> {
    let mut sink = Box::pin(sink);
    send_copy(&mut sink, rows).await?;
    sink.as_mut().finish().await.map_err(Sent::Refused)?;
    Ok(())
}

/// Sends `rows` as the data of a started `COPY … FROM STDIN`, in parts of
/// about [`COPY_PART`] bytes, without ending it; returns the parts sent.
async fn send_copy<'r, R: AsRef<[Cell<'r>]>>(
    sink: &mut std::pin::Pin<Box<CopyInSink<bytes::Bytes>>>,
    rows: &[R],
) -> Result<Vec<bytes::Bytes>, Sent> {
    // Room for the row that crosses the part's end.
    let new_part = || Vec::with_capacity(COPY_PART + COPY_PART / 4);
    let mut part = new_part();
    let mut parts = Vec::new();
    for row in rows {
        push_row(&mut part, row.as_ref(), D).map_err(Sent::Row)?;
        if part.len() >= COPY_PART {
            let full = bytes::Bytes::from(std::mem::replace(&mut part, new_part()));
            parts.push(full.clone());
            sink.send(full).await.map_err(Sent::Refused)?;
        }
    }
    if !part.is_empty() {
        let last = bytes::Bytes::from(part);
        parts.push(last.clone());
        sink.send(last).await.map_err(Sent::Refused)?;
    }
    Ok(parts)
}

/// Loads `rows` into the staging table for `key` with one COPY and
/// returns its quoted name.
async fn load<'r, R: AsRef<[Cell<'r>]>>(
    stages: &HashMap<StageKey, String>,
    copies: &HashMap<String, Statement>,
    tx: &PipelinedTransaction<'_>,
    key: &StageKey,
    rows: &[R],
    loaded: &mut HashSet<String>,
) -> Result<String, ConnectorError> {
    let stage = stage_name(stages, &key.0, &key.1)?;
    if !loaded.insert(stage.clone()) {
        tx.batch_execute(&format!("TRUNCATE {stage}"))
            .await
            .map_err(|e| classify(&format!("emptying {stage}"), e))?;
    }
    let context = format!("loading rows for {}", key.0);
    let copy = prepared(copies, &stage_copy(stages, &key.0, &key.1)?)?;
    let sink = tx.copy_in(copy).await.map_err(|e| classify(&context, e))?;
    write_copy(sink, rows)
        .await
        .map_err(|e| e.into_connector_error(&context))?;
    Ok(stage)
}

/// The `COPY` that loads the staging table for `names` of `qualified`.
fn stage_copy(
    stages: &HashMap<StageKey, String>,
    qualified: &str,
    names: &[String],
) -> Result<String, ConnectorError> {
    Ok(format!(
        "COPY {} FROM STDIN",
        stage_name(stages, qualified, names)?
    ))
}

/// The `COPY` that loads `names` of `qualified` straight into it.
fn straight_copy(qualified: &str, names: &[String]) -> String {
    let columns: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
    format!("COPY {qualified} ({}) FROM STDIN", columns.join(", "))
}

/// The prepared statement of `copy`, which [`PostgresTarget::prepare_copy`]
/// made before the batch's transaction began.
fn prepared<'c>(
    copies: &'c HashMap<String, Statement>,
    copy: &str,
) -> Result<&'c Statement, ConnectorError> {
    copies.get(copy).ok_or_else(|| {
        ConnectorError::retriable(format!(
            "{copy} was not prepared; the batch is applied again"
        ))
    })
}

/// The stored names of a key's columns.
fn names_of(key: &[Cell<'_>], config: &SinkConfig) -> Vec<String> {
    key.iter()
        .map(|c| stored_name(D, config.quote, &c.name))
        .collect()
}

/// The quoted name of the staging table made for `names` of `qualified`.
fn stage_name(
    stages: &HashMap<StageKey, String>,
    qualified: &str,
    names: &[String],
) -> Result<String, ConnectorError> {
    stages
        .get(&(qualified.to_owned(), names.to_vec()))
        .map(|name| format!("pg_temp.{}", quote(D, name)))
        .ok_or_else(|| {
            ConnectorError::retriable(format!(
                "no staging table was made for {qualified} ({}); the batch is applied again",
                names.join(", ")
            ))
        })
}

/// A column's type as the target table has it (text for one it lacks,
/// which only a table without `schema.evolution` can).
fn column_type(info: &TableInfo, name: &str) -> String {
    info.columns
        .get(name)
        .cloned()
        .unwrap_or_else(|| "text".into())
}

fn delete_sql(qualified: &str, key: &[String], stage: &str) -> String {
    let key: Vec<String> = key.iter().map(|n| quote(D, n)).collect();
    let key = key.join(", ");
    format!("DELETE FROM {qualified} WHERE ({key}) IN (SELECT {key} FROM {stage})")
}

/// The statement that writes the staged rows into the target per
/// `insert.mode`; `None` when there is nothing to write (an update of a
/// table whose every column is key).
fn merge_sql(
    qualified: &str,
    names: &[String],
    key: &[String],
    mode: InsertMode,
    stage: &str,
) -> Option<String> {
    let quoted: Vec<String> = names.iter().map(|n| quote(D, n)).collect();
    let columns = quoted.join(", ");
    let values: Vec<&String> = names
        .iter()
        .zip(&quoted)
        .filter(|(n, _)| !key.contains(n))
        .map(|(_, q)| q)
        .collect();
    Some(match mode {
        InsertMode::Update if !key.is_empty() => {
            if values.is_empty() {
                return None;
            }
            let sets: Vec<String> = values.iter().map(|q| format!("{q} = s.{q}")).collect();
            let matches: Vec<String> = key
                .iter()
                .map(|k| format!("t.{0} = s.{0}", quote(D, k)))
                .collect();
            format!(
                "UPDATE {qualified} AS t SET {} FROM {stage} AS s WHERE {}",
                sets.join(", "),
                matches.join(" AND ")
            )
        }
        InsertMode::Upsert if !key.is_empty() => {
            let action = if values.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                let updates: Vec<String> = values
                    .iter()
                    .map(|q| format!("{q} = EXCLUDED.{q}"))
                    .collect();
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            let conflict: Vec<String> = key.iter().map(|k| quote(D, k)).collect();
            format!(
                "INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT ({}) {action}",
                conflict.join(", ")
            )
        }
        _ => format!("INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {stage}"),
    })
}
