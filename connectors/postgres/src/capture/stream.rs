//! Streaming from the replication slot: pgoutput messages read in WAL
//! order, changes of committed transactions emitted with their position,
//! and the server told what is flushed only once it is durable downstream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sluice_connector_api::footprint::EVENT_OVERHEAD;
use sluice_connector_api::transaction::OpenTransaction;
use sluice_connector_api::{ConnectorError, SourceOffset, SourceRecord};
use tokio_postgres::Client;

use super::{now_micros, wire, Capture};
use crate::catalog::TypeCache;
use crate::events;
use crate::offset::{self, Position, Resume};
use crate::replication::pgoutput::{self, Message};
use crate::replication::{
    connection::PG_EPOCH_OFFSET_MICROS, Lsn, ReplicationConnection, StreamMessage,
};
use crate::setup::{query_error, SESSION_OPTIONS};
use crate::table_schema::TableSchema;

/// A batch at least this large, emitted because the socket held no
/// further complete message, means the server is draining a backlog
/// (single changes arriving one by one never reach it).
const BACKLOG_BATCH: usize = 32;

/// How long the loop lets a backlog gather in the socket before reading
/// on. Read as soon as anything arrived, the stream woke this task (and
/// behind it the converter and the producer) thousands of times a second,
/// and those threads kept preempting the walsender, which decodes on one
/// core and is what limits a backlog's drain: sampled during
/// scripts/bench-postgres, it was switched out involuntarily 800-4,000
/// times a second while sluice read and under 60 while pg_recvlogical
/// did. A quiet stream's latency is untouched, since its batches are
/// single changes. Measured with `scripts/bench-postgres 1000 1000000
/// 1000 100`, builds alternated:
/// - no pause: 0.75-0.86x of pg_recvlogical, worker 4.5-4.8 µs a change;
/// - 1 ms: 0.86-0.97x (four runs), worker 3.3-3.8 µs, walsender 7.1-7.5
///   µs a change against 6.3-6.9 for pg_recvlogical;
/// - 3 ms: 0.89-1.09x (six runs, five of them 1.04 or more), worker
///   2.4-3.2 µs, walsender 6.1-7.3 µs, as for pg_recvlogical;
/// - 5 ms: 0.85x and 0.96x, the machine 1.17 cores busy against 1.4: the
///   walsender waits for the socket to drain.
///
/// Commit -> consumer p99 at 99 commits/s was 14.3-15.6 ms in all.
const BACKLOG_PAUSE: Duration = Duration::from_millis(3);

/// The offset a heartbeat stores: just after the last fully emitted
/// transaction, or, with none since the start, at the LSN already
/// confirmed to the server — without a position in a transaction there,
/// because a transaction committing exactly at that LSN (begun before the
/// idle point) has not been emitted yet.
fn heartbeat_offset(
    last_complete: Option<(Lsn, u64)>,
    confirmed: Lsn,
    now_us: i64,
) -> SourceOffset {
    match last_complete {
        Some((commit_lsn, tx_seq)) => offset::offset(
            &Position::Stream {
                lsn: commit_lsn,
                commit_lsn,
                tx_seq,
                xid: 0,
            },
            now_us,
        ),
        None => offset::idle_offset(confirmed, now_us),
    }
}

/// How far the stream has emitted, so that the server is told a position
/// is flushed only when everything emitted before it is durable.
#[derive(Debug, Default)]
struct Emitted {
    /// The end of the last emitted transaction or message.
    end: Lsn,
}

impl Emitted {
    /// A transaction ended at `end_lsn` (its changes, if any, emitted).
    fn transaction(&mut self, end_lsn: Lsn) {
        self.end = self.end.max(end_lsn);
    }

    /// A logical decoding message outside any transaction was emitted; the
    /// task confirms its end (`lsn + 1`) once it is durable.
    fn message(&mut self, lsn: Lsn) {
        self.end = self.end.max(Lsn(lsn.0 + 1));
    }

    /// The LSN to confirm: what is `durable` downstream, or, once all that
    /// was emitted is durable and the server is idle at `idle_end`, that.
    fn confirmable(&self, durable: Lsn, idle_end: Option<Lsn>) -> Lsn {
        match idle_end {
            Some(end) if durable >= self.end && end > durable => end,
            _ => durable,
        }
    }
}

/// The transaction being streamed, between its BEGIN and its COMMIT.
#[derive(Debug)]
struct InTransaction {
    /// LSN of its commit record (BEGIN's final LSN): `lsn_commit` in the
    /// offsets of its changes.
    commit_lsn: Lsn,
    /// Its transaction id.
    xid: u32,
    /// Its commit time, µs since the Unix epoch.
    commit_us: i64,
    /// The position within the transaction the next change takes.
    next_seq: u64,
    /// An earlier run emitted its changes up to this position (it stopped
    /// inside the transaction): they are read again but not emitted.
    emitted_through: Option<u64>,
}

impl InTransaction {
    /// The position of the transaction's next change, read at `lsn`;
    /// `None` when an earlier run emitted it already.
    fn next_change(&mut self, lsn: Lsn) -> Option<Position> {
        let tx_seq = self.next_seq;
        self.next_seq += 1;
        if self
            .emitted_through
            .is_some_and(|through| tx_seq <= through)
        {
            return None;
        }
        Some(Position::Stream {
            lsn,
            commit_lsn: self.commit_lsn,
            tx_seq,
            xid: self.xid,
        })
    }
}

impl Capture {
    /// Streams changes from `start` until the task goes away.
    pub(super) async fn stream(
        &self,
        client: &Client,
        types: &mut TypeCache,
        params: &crate::replication::ConnectParams,
        start: Resume,
    ) -> Result<(), ConnectorError> {
        let resume = start;
        let start_lsn = match resume {
            Resume::Stream { commit_lsn, .. } => commit_lsn,
            Resume::AfterSnapshot(lsn) => lsn,
            Resume::Fresh | Resume::SnapshotIncomplete => Lsn(0),
        };
        let mut conn = ReplicationConnection::connect(params, SESSION_OPTIONS)
            .await
            .map_err(|e| wire("connecting for replication", e))?;
        // Protocol 1 on purpose, not 2 with `streaming`: streamed chunks of
        // an in-progress transaction may still abort, and Debezium emits
        // committed changes only, so they would have to be held (on disk,
        // to stay bounded) until Stream Commit — redoing what the server's
        // reorder buffer already does (it spills past
        // logical_decoding_work_mem). With protocol 1 the server sends a
        // committed transaction change by change and this loop forwards
        // them through a bounded queue, so even a 1M-row transaction
        // never sits whole in the worker (see scripts/bench-postgres).
        let options = [
            ("proto_version", "1".to_owned()),
            (
                "publication_names",
                format!("\"{}\"", self.config.publication_name),
            ),
        ];
        // Logical decoding messages reach pgoutput from PostgreSQL 14 on.
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| crate::setup::query_error("reading server_version_num", e))?
            .get(0);
        let options: Vec<(&str, String)> = if version >= 140_000 {
            options
                .into_iter()
                .chain([("messages", "true".to_owned())])
                .collect()
        } else {
            options.to_vec()
        };
        conn.start_logical(&self.config.slot_name, start_lsn, &options)
            .await
            .map_err(|e| {
                let hint = if e.code() == Some("55006") {
                    "; the slot is in use by another client: stop it or use another slot.name"
                } else {
                    ""
                };
                wire(
                    &format!(
                        "starting replication from slot {}{hint}",
                        self.config.slot_name
                    ),
                    e,
                )
            })?;
        tracing::info!(slot = %self.config.slot_name, from = %start_lsn, "streaming started");
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .phase = "streaming";
        let ctx = self.event_context();
        let transaction_topic = ctx.topics.transaction();
        // The transaction whose metadata is being counted
        // (provide.transaction.metadata).
        let mut open: Option<OpenTransaction> = None;
        let mut sources = events::StreamSources::default();
        let mut relations: HashMap<u32, Option<TableSchema>> = HashMap::new();
        let mut flushed_sent = Lsn(0);
        let mut last_status = Instant::now();
        // A walsender that does not answer when asked is behind a
        // half-open connection (a network cut, a stalled proxy): without
        // this the task would wait forever, RUNNING.
        let mut last_heard = Instant::now();
        let mut asked: Option<Instant> = None;
        let silence_limit = self.config.status_interval * 6;
        let mut tx: Option<InTransaction> = None;
        let mut emitted = Emitted::default();
        let mut flushed = self.flushed.clone();
        // Changes already decoded go to the task in batches: whenever the
        // socket buffer holds no further complete message (so batching
        // never adds latency) or the batch is full.
        let mut pending: Vec<SourceRecord> = Vec::new();
        let mut pending_lsn = Lsn(0);
        // What `pending` weighs: the pgoutput messages its changes came
        // from (a row's text, about what its values hold) and an event's
        // overhead per record; weighing each event whole cost more.
        let limit = self.config.common.batch_limit();
        let mut read_bytes = 0;
        // Processing time for `ts_ms`, read when the loop waits for the
        // socket and every 256 changes in a burst rather than per change.
        let mut now_us = now_micros();
        let mut since_clock = 0u32;
        let mut last_heartbeat = Instant::now();
        // The last fully emitted transaction: (commit LSN, its last change's position).
        let mut last_complete: Option<(Lsn, u64)> = None;
        loop {
            if !self.config.common.heartbeat_interval.is_zero()
                && last_heartbeat.elapsed() >= self.config.common.heartbeat_interval
                && tx.is_none()
            {
                last_heartbeat = Instant::now();
                if let Some(query) = &self.config.common.heartbeat_action_query {
                    client.batch_execute(query).await.map_err(|e| {
                        query_error(&format!("heartbeat.action.query {query:?} failed"), e)
                    })?;
                }
                // The position of the last complete transaction (which the
                // task maps to its end), or what is already confirmed.
                pending.push(events::heartbeat(
                    &ctx,
                    heartbeat_offset(last_complete, flushed_sent, now_us),
                    now_us,
                ));
            }
            if !conn.has_buffered_message() || since_clock >= 256 {
                now_us = now_micros();
                since_clock = 0;
            }
            if pending.is_empty() {
                // Messages that made no event (filtered tables, BEGIN).
                read_bytes = 0;
            }
            let pending_bytes = read_bytes + pending.len() * EVENT_OVERHEAD;
            if !pending.is_empty()
                && (!conn.has_buffered_message() || limit.reached(pending.len(), pending_bytes))
            {
                read_bytes = 0;
                self.progress.lock().unwrap_or_else(|e| e.into_inner()).lsn = pending_lsn;
                let backlog = !conn.has_buffered_message() && pending.len() >= BACKLOG_BATCH;
                self.out.emit_from(&mut pending).await?;
                if backlog {
                    tokio::time::sleep(BACKLOG_PAUSE).await;
                }
            }
            let message = conn
                .next_message(Duration::from_millis(500))
                .await
                .map_err(|e| wire("reading the replication stream", e))?;
            let mut reply_now = false;
            let mut idle_end = None;
            if message.is_some() {
                last_heard = Instant::now();
                asked = None;
            } else if asked.is_some_and(|at| at.elapsed() > silence_limit) {
                return Err(ConnectorError::retriable(format!(
                    "PostgreSQL's walsender has not answered for {} s although asked to: the connection is presumably half-open (a network cut or a stalled proxy); reconnecting from the stored offset",
                    last_heard.elapsed().as_secs()
                )));
            }
            match message {
                None => {}
                Some(StreamMessage::Keepalive { end, reply }) => {
                    reply_now = reply;
                    if tx.is_none() {
                        idle_end = Some(end);
                    }
                }
                Some(StreamMessage::XLogData { start, data, .. }) => {
                    read_bytes += data.len();
                    let decoded = pgoutput::decode(data, false)
                        .map_err(|e| ConnectorError::fatal(e.to_string()))?;
                    match decoded {
                        Message::Begin {
                            final_lsn,
                            commit_time,
                            xid,
                        } => {
                            open = ctx.transaction_metadata.then(|| {
                                OpenTransaction::new(
                                    format!("{xid}:{}", final_lsn.0),
                                    (commit_time + PG_EPOCH_OFFSET_MICROS) / 1000,
                                )
                            });
                            tx = Some(InTransaction {
                                commit_lsn: final_lsn,
                                xid,
                                commit_us: commit_time + PG_EPOCH_OFFSET_MICROS,
                                next_seq: 0,
                                emitted_through: resume.emitted_of(final_lsn),
                            });
                        }
                        Message::Commit { end_lsn, .. } => {
                            if let Some(end) = open
                                .take()
                                .and_then(|o| o.end(&ctx.partition, &transaction_topic))
                            {
                                pending.push(end);
                            }
                            if let Some(InTransaction {
                                commit_lsn,
                                next_seq,
                                ..
                            }) = tx.take()
                            {
                                let mut completed =
                                    self.completed.lock().unwrap_or_else(|e| e.into_inner());
                                if completed.len() > 10_000 {
                                    completed.clear();
                                }
                                completed
                                    .insert(commit_lsn.0, (next_seq.saturating_sub(1), end_lsn.0));
                                if next_seq == 0 {
                                    // An empty (filtered-out) transaction:
                                    // nothing waits on it downstream.
                                    idle_end = Some(end_lsn);
                                } else {
                                    last_complete = Some((commit_lsn, next_seq - 1));
                                }
                                emitted.transaction(end_lsn);
                            }
                        }
                        Message::Relation(relation) => {
                            let schema = self.relation_schema(client, types, &relation).await?;
                            relations.insert(relation.oid, schema);
                        }
                        change @ (Message::Insert { .. }
                        | Message::Update { .. }
                        | Message::Delete { .. }
                        | Message::Truncate { .. }) => {
                            let Some(transaction) = tx.as_mut() else {
                                return Err(ConnectorError::fatal(
                                    "a change arrived outside a transaction",
                                ));
                            };
                            let Some(position) = transaction.next_change(start) else {
                                continue;
                            };
                            let commit_us = transaction.commit_us;
                            since_clock += 1;
                            let first_new = pending.len();
                            self.change_records(
                                &ctx,
                                &relations,
                                change,
                                &position,
                                (commit_us, now_us),
                                (&mut open, &mut sources, &mut pending),
                            )?;
                            // BEGIN goes out before the transaction's first
                            // emitted change (none for a filtered one).
                            if let Some(begin) = open
                                .as_mut()
                                .filter(|_| pending.len() > first_new)
                                .and_then(|o| o.begin(&ctx.partition, &transaction_topic))
                            {
                                pending.insert(first_new, begin);
                            }
                            pending_lsn = start;
                        }
                        Message::LogicalMessage {
                            transactional,
                            lsn,
                            prefix,
                            content,
                        } => {
                            let position = match tx.as_mut() {
                                Some(transaction) if transactional => {
                                    match transaction.next_change(lsn) {
                                        Some(position) => position,
                                        None => continue,
                                    }
                                }
                                _ => {
                                    // Outside any transaction: emitted in WAL
                                    // order, so one at or before the resume
                                    // point was emitted already.
                                    if resume.emitted_of(lsn).is_some() {
                                        continue;
                                    }
                                    self.completed
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .insert(lsn.0, (0, lsn.0 + 1));
                                    Position::Stream {
                                        lsn,
                                        commit_lsn: lsn,
                                        tx_seq: 0,
                                        xid: 0,
                                    }
                                }
                            };
                            if self.config.filters.message_prefix(&prefix) {
                                let commit_us = match &tx {
                                    Some(transaction) if transactional => transaction.commit_us,
                                    _ => now_us,
                                };
                                pending.push(events::logical_message(
                                    &ctx, &prefix, &content, &position, commit_us, now_us,
                                ));
                                if !transactional || tx.is_none() {
                                    emitted.message(lsn);
                                }
                                pending_lsn = start;
                            }
                        }
                        _ => {}
                    }
                }
            }
            // Confirm what is durable downstream; when everything emitted
            // is durable and the stream is idle, the server's position.
            let target = emitted.confirmable(*flushed.borrow_and_update(), idle_end);
            if reply_now
                || target > flushed_sent
                || last_status.elapsed() > self.config.status_interval
            {
                let confirm = target.max(flushed_sent);
                let ask = last_heard.elapsed() > self.config.status_interval;
                if ask && asked.is_none() {
                    asked = Some(Instant::now());
                }
                conn.send_status(confirm, ask)
                    .await
                    .map_err(|e| wire("sending the standby status", e))?;
                flushed_sent = confirm;
                last_status = Instant::now();
            }
            if self.out.is_closed() {
                conn.close().await;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 1: a heartbeat stored before any transaction
    /// finished, then a transaction whose commit record sits exactly at
    /// the heartbeat's position (it began before the idle point and
    /// committed right at it). Resuming from the heartbeat must emit it.
    #[test]
    fn a_transaction_committing_at_an_idle_heartbeat_is_not_skipped() {
        let idle = Lsn(0x0100_0000);
        let offset = heartbeat_offset(None, idle, 0);
        let resume = offset::resume_from(Some(&offset));
        assert_eq!(
            resume.emitted_of(idle),
            None,
            "resume {resume:?} skips a transaction no one emitted"
        );
        // Transactions that committed before the idle point were emitted.
        assert_eq!(resume.emitted_of(Lsn(idle.0 - 8)), Some(u64::MAX));
        assert_eq!(resume.emitted_of(Lsn(idle.0 + 8)), None);
    }

    /// After a completed transaction, a heartbeat resumes after it: that
    /// transaction is skipped whole, the next one is not.
    #[test]
    fn a_heartbeat_after_a_transaction_resumes_after_it() {
        let commit = Lsn(0x0200_0000);
        let offset = heartbeat_offset(Some((commit, 4)), Lsn(0), 0);
        let resume = offset::resume_from(Some(&offset));
        assert_eq!(resume.emitted_of(commit), Some(4));
        assert_eq!(resume.emitted_of(Lsn(commit.0 + 1)), None);
    }

    /// A task that stopped after emitting a transaction's first changes
    /// reads the transaction again from its commit LSN: the changes it
    /// emitted are skipped, the rest keep their positions.
    #[test]
    fn a_resumed_transaction_emits_only_what_was_not_emitted() {
        let commit = Lsn(0x0300_0000);
        let resume = Resume::Stream {
            commit_lsn: commit,
            tx_seq: Some(1),
        };
        let mut tx = InTransaction {
            commit_lsn: commit,
            xid: 7,
            commit_us: 0,
            next_seq: 0,
            emitted_through: resume.emitted_of(commit),
        };
        let seqs: Vec<Option<u64>> = (0..4)
            .map(|i| match tx.next_change(Lsn(commit.0 - 100 + i)) {
                Some(Position::Stream { tx_seq, .. }) => Some(tx_seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [None, None, Some(2), Some(3)]);
        // A transaction the stored offset does not reach is emitted whole.
        let mut fresh = InTransaction {
            emitted_through: resume.emitted_of(Lsn(commit.0 + 8)),
            ..tx
        };
        fresh.next_seq = 0;
        assert!(fresh.next_change(Lsn(commit.0 + 1)).is_some());
    }

    /// Issue 19, finding 2: a logical decoding message outside any
    /// transaction is emitted; until Kafka has it, an idle server's
    /// position must not be confirmed past it.
    #[test]
    fn an_unacknowledged_message_holds_back_the_idle_confirm() {
        let mut emitted = Emitted::default();
        emitted.transaction(Lsn(100));
        // Everything so far is durable and the server is idle: confirm its end.
        assert_eq!(emitted.confirmable(Lsn(100), Some(Lsn(150))), Lsn(150));
        emitted.message(Lsn(200));
        assert_eq!(
            emitted.confirmable(Lsn(150), Some(Lsn(300))),
            Lsn(150),
            "confirmed past a message Kafka has not acknowledged"
        );
        // Once the message is durable (its end, 201), the idle end may go.
        assert_eq!(emitted.confirmable(Lsn(201), Some(Lsn(300))), Lsn(300));
    }
}
