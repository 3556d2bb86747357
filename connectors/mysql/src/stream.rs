//! Binlog streaming: reads events from a position as a replica does,
//! follows the schema model through DDL, and turns row events of captured
//! tables into change events with offsets precise to the row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use mysql_async::binlog::events::{EventData, OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql_async::binlog::EventType;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;

use crate::binlog_guard;
use sluice_connector_api::transaction::OpenTransaction;
use sluice_connector_api::{Batch, ConnectorError, SourceRecord, Value};

use crate::capture::Progress;
use crate::catalog::{read_tables, table_id, Tables};
use crate::config::MySqlConfig;
use crate::ddl::{self, Ddl};
use crate::events::{self, EventContext, Op, TableChange};
use crate::gtid::{self, GtidSet};
use crate::offset::{self, BinlogPosition, Cursor, SnapshotMark};
use crate::payload::Placement;
use crate::row_images::RowImages;
use crate::setup::{self, classify, ServerInfo};
use crate::snapshot::now_us;
use crate::table_schema::TableSchema;
use crate::types::Mapping;

/// MariaDB event types mysql_common does not name.
const MARIADB_ANNOTATE_ROWS: u8 = 160;
const MARIADB_GTID: u8 = 162;
const MARIADB_GTID_LIST: u8 = 163;
const MARIADB_QUERY_COMPRESSED: u8 = 165;
const MARIADB_ROWS_COMPRESSED_FIRST: u8 = 166;
const MARIADB_ROWS_COMPRESSED_LAST: u8 = 171;

/// The schema model and the schemas built from it.
pub struct Model {
    /// Captured tables by `database.table`.
    pub tables: Tables,
    /// Their schemas.
    pub schemas: HashMap<String, Arc<TableSchema>>,
}

impl Model {
    /// A model of `tables`.
    pub fn new(config: &MySqlConfig, tables: Tables) -> Self {
        let schemas = crate::snapshot::build_schemas(config, &tables);
        Self { tables, schemas }
    }

    fn rebuild(&mut self, config: &MySqlConfig, id: &str) {
        match self.tables.get(id) {
            Some(def) => {
                let schema = TableSchema::build(
                    &config.topics,
                    def,
                    &config.filters,
                    &config.booleans,
                    config.flavor,
                    Mapping::of(config),
                    &config.column_mappers,
                );
                self.schemas.insert(id.to_owned(), Arc::new(schema));
            }
            None => {
                self.schemas.remove(id);
            }
        }
    }
}

/// The state of one streaming session.
pub struct Streamer<'a> {
    /// Settings.
    pub config: &'a MySqlConfig,
    /// Event context.
    pub ctx: &'a EventContext,
    /// Server facts.
    pub info: &'a ServerInfo,
    /// Where to send records.
    pub out: &'a sluice_connector_api::Emitter,
    /// Status shown by the task.
    pub progress: &'a Arc<Mutex<Progress>>,
    /// The schema model.
    pub model: &'a mut Model,
    /// Where to resume; advanced as records are emitted.
    pub cursor: &'a mut Cursor,
}

/// A GTID not yet in the completed set: it joins at its group's end.
#[derive(Debug, Clone)]
enum PendingGtid {
    MariaDb(u32, u32, u64),
    MySql(String, u64),
}

/// The event group (transaction or DDL statement) being read.
struct Group {
    /// Position of the group's first event.
    start: u64,
    /// Rows events handled so far.
    rows_events: u64,
    /// The group's GTID.
    gtid: Option<PendingGtid>,
    /// Its metadata, counted as its changes go out
    /// (`provide.transaction.metadata`).
    transaction: Option<OpenTransaction>,
    /// The statement behind the rows events that follow (`include.query`:
    /// MariaDB's Annotate_rows, MySQL's Rows_query event).
    query: Option<Arc<str>>,
}

impl Group {
    fn gtid_text(&self) -> Option<String> {
        self.gtid.as_ref().map(|g| match g {
            PendingGtid::MariaDb(d, s, q) => format!("{d}-{s}-{q}"),
            PendingGtid::MySql(u, n) => format!("{u}:{n}"),
        })
    }
}

/// A server UUID from its 16 bytes.
fn format_uuid(sid: &[u8; 16]) -> String {
    let hex: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A binlog stream error: a clash of replica ids is fatal (it needs a
/// config change); the rest are worth a reconnect.
fn stream_error(e: mysql_async::Error, server_id: u32) -> ConnectorError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("same server_id")
        || lower.contains("same server_uuid")
        || lower.contains("slave with the same")
    {
        return ConnectorError::fatal(format!(
            "another replica connected with server id {server_id} and the server dropped this one ({text}); give this connector a unique database.server.id"
        ));
    }
    if let mysql_async::Error::Server(s) = &e {
        if s.code == 1236 {
            return ConnectorError::fatal(format!(
                "the server cannot send the binlog from the stored position: {text}. If the binlog was purged, set snapshot.mode=when_needed (or reset the offsets) to take a new snapshot"
            ));
        }
    }
    classify("reading the binlog", e)
}

/// The file a ROTATE names. The artificial ROTATE that opens a stream
/// comes before the format description, so its body still holds the 4
/// checksum bytes: a name the server does not list loses them.
fn rotate_file_name(raw: &[u8], known: &[String]) -> String {
    let full = String::from_utf8_lossy(raw).into_owned();
    if known.contains(&full) || raw.len() <= 4 {
        return full;
    }
    let trimmed = String::from_utf8_lossy(&raw[..raw.len() - 4]).into_owned();
    let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
    if known.contains(&trimmed) || !printable(&full) {
        trimmed
    } else {
        full
    }
}

/// `(file, pos)` ordering: binlog files are numbered with fixed width.
fn at_or_before(a: (&str, u64), b: (&str, u64)) -> bool {
    (a.0, a.1) <= (b.0, b.1)
}

/// How long the binlog connection may stay silent (the server is asked for
/// a heartbeat every 5 s) before it is taken for dead.
const SERVER_SILENCE: Duration = Duration::from_secs(30);

impl Streamer<'_> {
    fn position(
        &self,
        file: &str,
        pos: u64,
        ts_sec: i64,
        gtids: &GtidSet,
        gtid: Option<String>,
    ) -> BinlogPosition {
        BinlogPosition {
            file: file.into(),
            pos,
            event: 0,
            row: 0,
            gtids: gtids
                .filtered(|s| self.config.gtid_source_kept(s))
                .to_string()
                .into(),
            gtid: gtid.map(Arc::from),
            server_id: self.info.server_id,
            ts_sec,
        }
    }

    async fn send(&self, batch: &mut Batch) -> Result<(), ConnectorError> {
        self.out.emit_batch(batch).await
    }

    /// Sends `batch` to the task; the cursor then moves to `staged`, the
    /// resume point just after the batch's last record.
    async fn hand_over(
        &mut self,
        batch: &mut Batch,
        staged: &Cursor,
    ) -> Result<(), ConnectorError> {
        self.send(batch).await?;
        *self.cursor = staged.clone();
        Ok(())
    }

    /// The END event of the group's transaction, when its BEGIN went out.
    fn end_transaction(&self, group: &Option<Group>, batch: &mut Batch) {
        let end = group
            .as_ref()
            .and_then(|g| g.transaction.as_ref())
            .and_then(|t| t.end(&self.ctx.partition, &self.ctx.topics.transaction()));
        batch.extend(end);
    }

    /// Ends the current group: its GTID joins the completed set.
    fn complete(group: &mut Option<Group>, gtids: &mut GtidSet) {
        if let Some(g) = group.take() {
            match g.gtid {
                Some(PendingGtid::MariaDb(d, s, q)) => gtids.add_mariadb(d, s, q),
                Some(PendingGtid::MySql(u, n)) => gtids.add_mysql(&u, n),
                None => {}
            }
        }
    }

    /// Emits a heartbeat when one is due and the stream is between groups.
    async fn heartbeat(
        &self,
        last: &mut Instant,
        file: &str,
        pos: u64,
        ts_sec: i64,
        gtids: &GtidSet,
    ) -> Result<(), ConnectorError> {
        let interval = self.config.common.heartbeat_interval;
        if interval.is_zero() || last.elapsed() < interval {
            return Ok(());
        }
        *last = Instant::now();
        if let Some(query) = &self.config.common.heartbeat_action_query {
            // On a connection of its own: the binlog connection only reads.
            let mut conn = setup::connect(self.config).await?;
            let ran = conn.query_drop(query.as_str()).await;
            let _ = conn.disconnect().await;
            ran.map_err(|e| classify(&format!("heartbeat.action.query {query:?} failed"), e))?;
        }
        let position = self.position(file, pos, ts_sec, gtids, None);
        let record = self
            .ctx
            .heartbeat(offset::offset(&position, SnapshotMark::Streaming), now_us());
        self.out.emit(vec![record]).await
    }

    /// Re-reads one table from `information_schema`.
    async fn refresh(&mut self, database: &str, table: &str) -> Result<(), ConnectorError> {
        let mut conn = setup::connect(self.config).await?;
        let fresh = read_tables(
            &mut conn,
            &self.config.filters,
            Some((database, table)),
            self.info.mariadb,
        )
        .await
        .map_err(|e| classify("re-reading a table definition", e))?;
        let _ = conn.disconnect().await;
        let id = table_id(database, table);
        match fresh.get(&id) {
            Some(def) => {
                self.model.tables.insert(id.clone(), def.clone());
            }
            None => {
                self.model.tables.remove(&id);
            }
        }
        self.model.rebuild(self.config, &id);
        Ok(())
    }

    /// Checks a TABLE_MAP against the model: a different column count (or,
    /// with full row metadata, different names) means the model missed a
    /// change, and the table is re-read.
    async fn check_columns(
        &mut self,
        id: &str,
        tme: &TableMapEvent<'_>,
    ) -> Result<(), ConnectorError> {
        let Some(def) = self.model.tables.get(id) else {
            return Ok(());
        };
        let mut stale = def.columns.len() as u64 != tme.columns_count();
        if !stale {
            if let Ok(meta) = OptionalMetaExtractor::new(tme.iter_optional_meta()) {
                let names: Vec<String> = meta
                    .iter_column_name()
                    .filter_map(Result::ok)
                    .map(|n| n.name().into_owned())
                    .collect();
                if !names.is_empty() {
                    stale = names.len() != def.columns.len()
                        || names
                            .iter()
                            .zip(&def.columns)
                            .any(|(n, c)| !n.eq_ignore_ascii_case(&c.name));
                }
            }
        }
        if stale {
            tracing::warn!(table = %id, "the binlog's columns differ from the schema model; re-reading the table definition");
            let (db, table) = (def.database.clone(), def.name.clone());
            self.refresh(&db, &table).await?;
            let still = self
                .model
                .tables
                .get(id)
                .is_none_or(|d| d.columns.len() as u64 != tme.columns_count());
            if still {
                return Err(ConnectorError::fatal(format!(
                    "the binlog's row events for {id} have {} columns but the table now has a different layout, and the DDL between them could not be followed; take a new snapshot (snapshot.mode=when_needed after resetting offsets)",
                    tme.columns_count()
                )));
            }
        }
        Ok(())
    }

    /// Applies a DDL statement to the model; returns the schema-change and
    /// history records it gives.
    async fn apply_ddl(
        &mut self,
        database: &str,
        sql: &str,
        position: &BinlogPosition,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        let resolve = |name: &ddl::Name| {
            (
                name.0.clone().unwrap_or_else(|| database.to_owned()),
                name.1.clone(),
            )
        };
        let captured = |db: &str, t: &str| self.config.filters.table(db, t);
        let mut changed: Vec<(&'static str, String)> = Vec::new();
        let mut truncated = None;
        match ddl::parse(sql) {
            Ddl::Create(name, mut def) => {
                let (db, t) = resolve(&name);
                if captured(&db, &t) {
                    def.database = db.clone();
                    def.name = t.clone();
                    let id = table_id(&db, &t);
                    self.model.tables.insert(id.clone(), def);
                    changed.push(("CREATE", id));
                }
            }
            Ddl::Alter(name, ops) => {
                let (db, t) = resolve(&name);
                let id = table_id(&db, &t);
                if let Some(mut def) = self.model.tables.get(&id).cloned() {
                    match ddl::apply_alter(&mut def, &ops) {
                        Ok(()) => {
                            let new_id = def.id();
                            self.model.tables.remove(&id);
                            if new_id != id {
                                changed.push(("DROP", id.clone()));
                                self.model.rebuild(self.config, &id);
                            }
                            if captured(&def.database, &def.name) {
                                self.model.tables.insert(new_id.clone(), def);
                                changed.push(("ALTER", new_id));
                            }
                        }
                        Err(why) => {
                            tracing::warn!(table = %id, %why, "could not follow the DDL; re-reading the table");
                            self.refresh(&db, &t).await?;
                            changed.push(("ALTER", id));
                        }
                    }
                } else if captured(&db, &t) {
                    self.refresh(&db, &t).await?;
                    changed.push(("ALTER", id));
                }
            }
            Ddl::Drop(names) => {
                for name in names {
                    let (db, t) = resolve(&name);
                    let id = table_id(&db, &t);
                    if self.model.tables.remove(&id).is_some() {
                        changed.push(("DROP", id));
                    }
                }
            }
            Ddl::Rename(pairs) => {
                for (from, to) in pairs {
                    let (fdb, ft) = resolve(&from);
                    let (tdb, tt) = resolve(&to);
                    let from_id = table_id(&fdb, &ft);
                    let to_id = table_id(&tdb, &tt);
                    let old = self.model.tables.remove(&from_id);
                    if old.is_some() {
                        changed.push(("DROP", from_id.clone()));
                        self.model.rebuild(self.config, &from_id);
                    }
                    if captured(&tdb, &tt) {
                        match old {
                            Some(mut def) => {
                                def.database = tdb.clone();
                                def.name = tt.clone();
                                self.model.tables.insert(to_id.clone(), def);
                            }
                            None => self.refresh(&tdb, &tt).await?,
                        }
                        changed.push(("CREATE", to_id));
                    }
                }
            }
            Ddl::Truncate(name) => {
                let (db, t) = resolve(&name);
                truncated = Some(table_id(&db, &t));
            }
            Ddl::Refresh(name) => {
                let (db, t) = resolve(&name);
                if captured(&db, &t) {
                    self.refresh(&db, &t).await?;
                    changed.push(("ALTER", table_id(&db, &t)));
                }
            }
            Ddl::Other => {}
        }
        let mut records = Vec::new();
        if let Some(id) = truncated {
            if let Some(schema) = self.model.schemas.get(&id) {
                if !self.config.common.skipped_operations.contains(&'t') {
                    records.extend(events::change(
                        self.ctx,
                        schema,
                        Op::Truncate,
                        None,
                        None,
                        position,
                        ("false", SnapshotMark::Streaming),
                        (0, sluice_connector_api::Value::Null, None),
                        now_us(),
                    ));
                }
            }
        }
        if changed.is_empty() {
            return Ok(records);
        }
        for (_, id) in &changed {
            self.model.rebuild(self.config, id);
        }
        tracing::info!(ddl = %sql, tables = ?changed.iter().map(|(_, id)| id).collect::<Vec<_>>(), "schema change");
        records.push(events::history(
            self.ctx,
            &self.config.history_topic,
            &self.model.tables,
            sql,
            database,
            position,
        ));
        if self.config.include_schema_changes {
            let changes: Vec<TableChange<'_>> = changed
                .iter()
                .map(|(kind, id)| TableChange {
                    kind,
                    id: id.clone(),
                    table: if *kind == "DROP" {
                        None
                    } else {
                        self.model.tables.get(id)
                    },
                })
                .collect();
            records.push(events::schema_change(
                self.ctx,
                database,
                sql,
                &changes,
                position,
                SnapshotMark::Streaming,
            ));
        }
        Ok(records)
    }

    /// Streams until an error; a retriable error means reconnect at the cursor.
    pub async fn run(&mut self, history_at: Option<(String, u64)>) -> Result<(), ConnectorError> {
        let mut conn = setup::connect(self.config).await?;
        let files = setup::binlog_files(&mut conn).await?;
        if !files.contains(&self.cursor.file) {
            return Err(ConnectorError::fatal(format!(
                "the binlog file {} the connector's offset points to is no longer on the server (purged); the changes since then cannot be read. Set snapshot.mode=when_needed to take a new snapshot automatically, or reset the connector's offsets and snapshot again",
                self.cursor.file
            )));
        }
        // Heartbeats from the server every few seconds tell a dead
        // connection from an idle one.
        conn.query_drop("SET @master_heartbeat_period = 5000000000")
            .await
            .map_err(|e| classify("setting the binlog heartbeat", e))?;
        if self.info.mariadb {
            // Capability 4: MariaDB GTID events are sent as they are.
            conn.query_drop("SET @mariadb_slave_capability = 4")
                .await
                .map_err(|e| classify("announcing MariaDB replica capabilities", e))?;
        }
        let mut request = BinlogStreamRequest::new(self.config.server_id)
            .with_filename(self.cursor.file.as_bytes())
            .with_pos(self.cursor.pos.max(4));
        if self.config.include_query && self.info.mariadb {
            request = request.with_annotate_rows();
        }
        let mut stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| classify("starting the binlog stream", e))?;
        tracing::info!(file = %self.cursor.file, pos = self.cursor.pos, "binlog streaming");
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .phase = "streaming";
        let resume = self.cursor.clone();
        let mut file = self.cursor.file.clone();
        let mut gtids = GtidSet::parse(&self.cursor.gtids);
        let mut group: Option<Group> = None;
        let mut batch = Batch::new(self.config.common.batch_limit());
        // Where a reconnect would resume once `batch` is handed over; the
        // cursor itself moves only with what was handed over, so an error
        // that drops `batch` never leaves it past records no one sent.
        let mut staged = self.cursor.clone();
        let mut last_heartbeat = Instant::now();
        let mut committed_end = self.cursor.pos;
        let mut committed_ts = 0i64;
        let mut placement = Placement::default();
        // The server sends a heartbeat every 5 s of quiet (set above); six
        // missed ones mean a half-open connection (a network cut, a stalled
        // proxy), which would otherwise be waited on forever.
        let mut last_heard = Instant::now();
        loop {
            let event = match tokio::time::timeout(Duration::from_millis(20), stream.next()).await {
                Err(_) if last_heard.elapsed() > SERVER_SILENCE => {
                    self.hand_over(&mut batch, &staged).await?;
                    return Err(ConnectorError::retriable(format!(
                        "no binlog event or heartbeat from the server for {} s: the connection is presumably half-open (a network cut or a stalled proxy); reconnecting from the last position",
                        last_heard.elapsed().as_secs()
                    )));
                }
                Err(_) => {
                    self.hand_over(&mut batch, &staged).await?;
                    if group.is_none() {
                        self.heartbeat(
                            &mut last_heartbeat,
                            &file,
                            committed_end,
                            committed_ts,
                            &gtids,
                        )
                        .await?;
                    }
                    continue;
                }
                Ok(None) => {
                    self.hand_over(&mut batch, &staged).await?;
                    return Err(ConnectorError::retriable(
                        "the server ended the binlog stream",
                    ));
                }
                Ok(Some(Err(e))) => {
                    self.hand_over(&mut batch, &staged).await?;
                    return Err(stream_error(e, self.config.server_id));
                }
                Ok(Some(Ok(event))) => {
                    last_heard = Instant::now();
                    event
                }
            };
            let header = event.header();
            let (start, end) = placement
                .place(&event)
                .map_err(|e| ConnectorError::fatal(format!("{file}: {e}")))?;
            let ts_sec = i64::from(header.timestamp());
            match header.event_type_raw() {
                MARIADB_GTID => {
                    if let Some((seq, domain, _flags)) =
                        gtid::parse_mariadb_gtid_event(event.data())
                    {
                        group = Some(Group {
                            start,
                            rows_events: 0,
                            gtid: Some(PendingGtid::MariaDb(domain, header.server_id(), seq)),
                            transaction: None,
                            query: None,
                        });
                    }
                    continue;
                }
                MARIADB_ANNOTATE_ROWS => {
                    // Only sent when asked for (include.query).
                    if let Some(g) = group.as_mut().filter(|_| self.config.include_query) {
                        g.query = Some(String::from_utf8_lossy(event.data()).into());
                    }
                    continue;
                }
                MARIADB_GTID_LIST => continue,
                t if t == MARIADB_QUERY_COMPRESSED
                    || (MARIADB_ROWS_COMPRESSED_FIRST..=MARIADB_ROWS_COMPRESSED_LAST)
                        .contains(&t) =>
                {
                    return Err(ConnectorError::fatal(
                        "the binlog holds MariaDB compressed events (log_bin_compress=ON), which sluice cannot read; SET GLOBAL log_bin_compress=OFF and take a new snapshot",
                    ));
                }
                t if t == EventType::HEARTBEAT_EVENT as u8 => {
                    if group.is_none() {
                        // The heartbeat's offset is past these records.
                        self.hand_over(&mut batch, &staged).await?;
                        self.heartbeat(
                            &mut last_heartbeat,
                            &file,
                            committed_end,
                            committed_ts,
                            &gtids,
                        )
                        .await?;
                    }
                    continue;
                }
                _ => {}
            }
            let data = match event.read_data() {
                Ok(Some(data)) => data,
                Ok(None) => continue,
                Err(e) => {
                    return Err(ConnectorError::fatal(format!(
                        "cannot decode a binlog event at {file}:{start}: {e}"
                    )))
                }
            };
            match data {
                EventData::RotateEvent(rotate) => {
                    file = rotate_file_name(rotate.name_raw(), &files);
                    if group.is_none() {
                        committed_end = rotate.position();
                    }
                }
                EventData::GtidEvent(g) => {
                    group = Some(Group {
                        start,
                        rows_events: 0,
                        gtid: Some(PendingGtid::MySql(format_uuid(&g.sid()), g.gno())),
                        transaction: None,
                        query: None,
                    });
                }
                EventData::QueryEvent(q) => {
                    let sql = q.query();
                    let sql = sql.trim();
                    if sql.eq_ignore_ascii_case("BEGIN") {
                        if group.is_none() {
                            group = Some(Group {
                                start,
                                rows_events: 0,
                                gtid: None,
                                transaction: None,
                                query: None,
                            });
                        }
                    } else if sql.eq_ignore_ascii_case("COMMIT") {
                        self.end_transaction(&group, &mut batch);
                        Self::complete(&mut group, &mut gtids);
                        (committed_end, committed_ts) = (end, ts_sec);
                    } else if ddl::is_ddl(sql) {
                        Self::complete(&mut group, &mut gtids);
                        (committed_end, committed_ts) = (end, ts_sec);
                        // A restart that stored the history after this DDL
                        // but not yet the main offset must not apply it twice.
                        let applied = history_at
                            .as_ref()
                            .is_some_and(|(f, p)| at_or_before((&file, end), (f, *p)));
                        if !applied {
                            self.hand_over(&mut batch, &staged).await?;
                            let database = q.schema().into_owned();
                            let position = self.position(&file, end, ts_sec, &gtids, None);
                            batch.extend(self.apply_ddl(&database, sql, &position).await?);
                            self.hand_over(&mut batch, &staged).await?;
                        }
                    }
                }
                EventData::RowsQueryEvent(q) => {
                    // MySQL writes these with binlog_rows_query_log_events=ON.
                    if let Some(g) = group.as_mut().filter(|_| self.config.include_query) {
                        g.query = Some(q.query().as_ref().into());
                    }
                }
                EventData::XidEvent(_) => {
                    self.end_transaction(&group, &mut batch);
                    Self::complete(&mut group, &mut gtids);
                    (committed_end, committed_ts) = (end, ts_sec);
                }
                EventData::RowsEvent(rows) => {
                    let Some(g) = group.as_mut() else {
                        continue;
                    };
                    let index = g.rows_events;
                    g.rows_events += 1;
                    let (group_start, gtid_text) = (g.start, g.gtid_text());
                    let query = g.query.clone();
                    // What a previous session already emitted of this group.
                    let already = if resume.file == file && group_start == resume.pos {
                        match index.cmp(&resume.event) {
                            std::cmp::Ordering::Less => continue,
                            std::cmp::Ordering::Equal => resume.row,
                            std::cmp::Ordering::Greater => 0,
                        }
                    } else {
                        0
                    };
                    let Some(tme) = stream.get_tme(rows.table_id()) else {
                        return Err(ConnectorError::fatal(format!(
                            "a rows event at {file}:{start} refers to an unknown table id {}",
                            rows.table_id()
                        )));
                    };
                    let (db, table) = (
                        tme.database_name().into_owned(),
                        tme.table_name().into_owned(),
                    );
                    if !self.config.filters.table(&db, &table) {
                        continue;
                    }
                    let id = table_id(&db, &table);
                    if !self.model.tables.contains_key(&id) {
                        self.refresh(&db, &table).await?;
                    }
                    self.check_columns(&id, tme).await?;
                    let Some(schema) = self.model.schemas.get(&id).cloned() else {
                        continue;
                    };
                    let op = match &rows {
                        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                            Op::Create
                        }
                        RowsEventData::UpdateRowsEventV1(_)
                        | RowsEventData::UpdateRowsEvent(_)
                        | RowsEventData::PartialUpdateRowsEvent(_) => Op::Update,
                        _ => Op::Delete,
                    };
                    if op
                        .code()
                        .chars()
                        .any(|c| self.config.common.skipped_operations.contains(&c))
                    {
                        continue;
                    }
                    let now = now_us();
                    let decode = |image: Option<crate::row_images::Image<'_>>| {
                        image
                            .map(|mut values| schema.row_from_binlog(&mut values))
                            .transpose()
                    };
                    let position = self.position(&file, group_start, ts_sec, &gtids, gtid_text);
                    // mysql_common trusts the event: check it first.
                    if let Err(why) = binlog_guard::check_table_map(tme) {
                        return Err(ConnectorError::fatal(format!(
                            "the table map of {id} at {file}:{start} is corrupt: {why}; it came from the server or a proxy in between; check the binlog with mariadb-binlog / mysqlbinlog at that position"
                        )));
                    }
                    let most_rows = binlog_guard::most_rows(&rows) as u64;
                    let source =
                        events::rows_event_source(self.ctx, &schema, &position, query.as_deref());
                    let images = RowImages::new(&rows, tme).map_err(|e| {
                        ConnectorError::fatal(format!(
                            "cannot read the rows event of {id} at {file}:{start}: {e}"
                        ))
                    })?;
                    for (r, pair) in images.enumerate() {
                        let r = r as u64;
                        if r >= most_rows {
                            return Err(ConnectorError::fatal(format!(
                                "the rows event of {id} at {file}:{start} yields more rows than it has bytes ({most_rows}): a corrupt event from the server or a proxy in between; check the binlog with mariadb-binlog / mysqlbinlog at that position"
                            )));
                        }
                        if r < already {
                            continue;
                        }
                        let (before, after) = pair.map_err(|e| {
                            ConnectorError::fatal(format!(
                                "cannot decode a row of {id} at {file}:{start}: {e}"
                            ))
                        })?;
                        let mut position = position.clone();
                        position.event = index;
                        position.row = r + 1;
                        let block = match group.as_mut() {
                            Some(g) if self.ctx.transaction_metadata => {
                                let id = g
                                    .gtid_text()
                                    .unwrap_or_else(|| format!("{file}:{group_start}"));
                                let open = g
                                    .transaction
                                    .get_or_insert_with(|| OpenTransaction::new(id, ts_sec * 1000));
                                // BEGIN goes out before the first change.
                                if let Some(begin) =
                                    open.begin(&self.ctx.partition, &self.ctx.topics.transaction())
                                {
                                    batch.push(begin);
                                }
                                open.block(&schema.def.id())
                            }
                            _ => sluice_connector_api::Value::Null,
                        };
                        // A row whose values cannot be read fails the task
                        // or is skipped, as event.processing.failure.handling.mode says.
                        let (before, after) = match (decode(before), decode(after)) {
                            (Ok(before), Ok(after)) => (before, after),
                            (Err(problem), _) | (_, Err(problem)) => {
                                self.config.common.failure_handling.undecodable(
                                    problem,
                                    &format!("{file}:{start}, row {}", r + 1),
                                )?;
                                continue;
                            }
                        };
                        // skip.messages.without.change: the emitted
                        // columns are the same before and after.
                        if self.config.common.skip_unchanged && op == Op::Update && before == after
                        {
                            continue;
                        }
                        let row_bytes = before.as_ref().map_or(0, Value::footprint)
                            + after.as_ref().map_or(0, Value::footprint);
                        batch.extend_row(
                            events::row_change(
                                self.ctx,
                                &schema,
                                op,
                                (before, after),
                                &position,
                                (&source, r),
                                block,
                                now,
                            ),
                            row_bytes,
                        );
                        // In place: a new cursor per row cost two
                        // allocations, two copies and two frees an event.
                        staged.file.clone_from(&file);
                        staged.pos = group_start;
                        staged.event = index;
                        staged.row = r + 1;
                        staged.gtids.clear();
                        staged.gtids.push_str(&position.gtids);
                        if batch.is_full() {
                            self.hand_over(&mut batch, &staged).await?;
                        }
                    }
                    self.progress
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .position = format!("{file}:{end}");
                }
                _ => {}
            }
            if group.is_none() {
                // Between groups: a reconnect starts after the last complete one.
                staged = Cursor {
                    file: file.clone(),
                    pos: committed_end,
                    event: 0,
                    row: 0,
                    gtids: gtids
                        .filtered(|s| self.config.gtid_source_kept(s))
                        .to_string(),
                };
            }
            if batch.is_empty() {
                *self.cursor = staged.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_names_lose_a_trailing_checksum() {
        let known = vec!["binlog.000001".to_owned()];
        let mut raw = b"binlog.000001".to_vec();
        assert_eq!(rotate_file_name(&raw, &known), "binlog.000001");
        raw.extend([0x9a, 0x5e, 0x69, 0x20]);
        assert_eq!(rotate_file_name(&raw, &known), "binlog.000001");
        // A file created after the stream started is not yet listed.
        assert_eq!(rotate_file_name(b"binlog.000002", &known), "binlog.000002");
        assert_eq!(
            format_uuid(&[0x3e; 16]),
            "3e3e3e3e-3e3e-3e3e-3e3e-3e3e3e3e3e3e"
        );
        assert!(at_or_before(("binlog.000001", 900), ("binlog.000002", 4)));
        assert!(!at_or_before(("binlog.000002", 5), ("binlog.000002", 4)));
    }
}
