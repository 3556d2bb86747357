//! What the runtime hands a running source task: the push side of the
//! contract. A task emits batches into a bounded channel (a slow broker
//! makes `emit` wait, so reading slows instead of memory growing), learns
//! which offsets the runtime has made durable (what a database may now
//! release), sees when to shut down, and publishes typed progress. A
//! task may also store an offset with no record ([`Emitter::checkpoint`]),
//! in order with its records, when it must know that a position is stored
//! before it acts on the database (a PostgreSQL snapshot stores that it
//! began before it creates its replication slot).
//!
//! [`source_context`] makes both ends: the [`SourceContext`] the task owns
//! and the [`RuntimeEnd`] the runtime reads from. The channel between them
//! holds a number of batches (`max.queue.size`) and, when
//! `max.queue.size.in.bytes` is set, at most that many bytes of records
//! ([`SourceRecord::footprint`]), as Debezium's queue does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::batch::Batch;
use crate::error::ConnectorError;
use crate::offset::{SourceOffset, SourcePartition};
use crate::record::SourceRecord;

/// Offsets stored durably by the runtime, newest per partition.
pub type DurableOffsets = Arc<Vec<(SourcePartition, SourceOffset)>>;

/// A table's snapshot progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProgress {
    /// `schema.table` or `database.table`.
    pub table: String,
    /// Rows read so far.
    pub rows: u64,
    /// The database's estimate of the table's rows (-1 when unknown).
    pub estimated_rows: i64,
}

/// What a task shows in its status, in `/metrics` and in `sluice status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskProgress {
    /// `starting`, `snapshot` or `streaming`, for connectors with phases.
    pub phase: Option<&'static str>,
    /// Snapshot progress per table.
    pub snapshot: Vec<TableProgress>,
    /// Where the task is, named as the connector names it (`lsn`,
    /// `binlog_position`, `next_seq`, ...).
    pub positions: Vec<(&'static str, serde_json::Value)>,
}

/// Reads a task's current progress; installed by the task, called by the
/// runtime whenever it reports status.
pub type ProgressReader = Arc<dyn Fn() -> TaskProgress + Send + Sync>;

/// Reads a topic of the broker the runtime writes to, for a connector
/// that keeps state there beside its offsets (Debezium's MySQL connector
/// keeps its schema history in a topic).
#[async_trait::async_trait]
pub trait TopicReader: Send + Sync {
    /// The values of `topic`'s partition 0, from its start to its end when
    /// called, in order (tombstones left out); none when the topic does
    /// not exist.
    async fn read_to_end(&self, topic: &str) -> Result<Vec<Vec<u8>>, ConnectorError>;
}

/// The task's end of the contract.
pub struct SourceContext {
    offsets: Vec<(SourcePartition, SourceOffset)>,
    emitter: Emitter,
    durable: watch::Receiver<DurableOffsets>,
    shutdown: Shutdown,
    progress: Arc<Mutex<Option<ProgressReader>>>,
    topics: Option<Arc<dyn TopicReader>>,
}

/// What a task hands the runtime, in the order it handed it over.
#[derive(Debug)]
pub enum Emitted {
    /// Records to send.
    Records(Vec<SourceRecord>),
    /// An offset to store with no record.
    Checkpoint(Checkpoint),
}

/// An offset to store with no record, after every record emitted before
/// it has been acknowledged and its offset stored.
#[derive(Debug)]
pub struct Checkpoint {
    /// The input stream it belongs to.
    pub partition: Arc<SourcePartition>,
    /// The offset to store.
    pub offset: SourceOffset,
    /// Answered once the offset is stored; dropped unanswered when the
    /// runtime could not store it (the task is then ending).
    pub stored: oneshot::Sender<()>,
}

/// What waits in the channel: an emitted batch or checkpoint, with the
/// bytes of the queue's byte bound it holds until the runtime takes it.
struct Queued {
    emitted: Emitted,
    _room: Option<OwnedSemaphorePermit>,
}

/// The runtime's side of the channel: what the task emitted, in order.
pub struct TaskRecords(mpsc::Receiver<Queued>);

impl TaskRecords {
    /// The next batch or checkpoint; `None` once the task ended. Taking a
    /// batch frees its bytes in the queue's byte bound.
    pub async fn recv(&mut self) -> Option<Emitted> {
        self.0.recv().await.map(|queued| queued.emitted)
    }

    /// Stops taking: the task's next `emit` fails.
    pub fn close(&mut self) {
        self.0.close();
    }
}

/// The runtime's end of the contract.
pub struct RuntimeEnd {
    /// Batches and checkpoints the task emitted, in order. Closed when the
    /// task ended.
    pub records: TaskRecords,
    durable: watch::Sender<DurableOffsets>,
    shutdown: watch::Sender<bool>,
    progress: Arc<Mutex<Option<ProgressReader>>>,
}

/// Makes both ends for a task resuming from `offsets`, with room for
/// `capacity` batches between them.
pub fn source_context(
    offsets: Vec<(SourcePartition, SourceOffset)>,
    capacity: usize,
) -> (SourceContext, RuntimeEnd) {
    bounded_source_context(offsets, capacity, 0)
}

/// As [`source_context`], with room for at most `max_bytes` bytes of
/// records (`max.queue.size.in.bytes`; 0 for no byte bound). A batch
/// larger than the whole bound waits for the queue to empty and then goes
/// alone.
pub fn bounded_source_context(
    offsets: Vec<(SourcePartition, SourceOffset)>,
    capacity: usize,
    max_bytes: usize,
) -> (SourceContext, RuntimeEnd) {
    let (records_tx, records) = mpsc::channel(capacity.max(1));
    // Permits are taken many at a time as a u32.
    let room_bytes = u32::try_from(max_bytes).unwrap_or(u32::MAX);
    let room = (room_bytes > 0).then(|| RoomInBytes {
        free: Arc::new(Semaphore::new(room_bytes as usize)),
        total: room_bytes,
    });
    let (durable_tx, durable) = watch::channel(DurableOffsets::default());
    let (shutdown_tx, shutdown) = watch::channel(false);
    let progress = Arc::new(Mutex::new(None));
    (
        SourceContext {
            offsets,
            emitter: Emitter {
                records: records_tx,
                room,
                waited: Arc::default(),
            },
            durable,
            shutdown: Shutdown(shutdown),
            progress: Arc::clone(&progress),
            topics: None,
        },
        RuntimeEnd {
            records: TaskRecords(records),
            durable: durable_tx,
            shutdown: shutdown_tx,
            progress,
        },
    )
}

impl SourceContext {
    /// The stored offset for `partition`, if any: where to resume.
    pub fn offset(&self, partition: &SourcePartition) -> Option<&SourceOffset> {
        self.offsets
            .iter()
            .find(|(p, _)| p == partition)
            .map(|(_, o)| o)
    }

    /// Where records go; clone it into the pipeline that reads the source.
    pub fn emitter(&self) -> Emitter {
        self.emitter.clone()
    }

    /// The offsets the runtime has stored, each time it stores more: a
    /// database source may release its log up to them.
    pub fn durable(&self) -> watch::Receiver<DurableOffsets> {
        self.durable.clone()
    }

    /// Fires when the runtime wants the task to end.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Lets the task read topics through `reader` (the runtime installs
    /// one reading its broker).
    pub fn with_topic_reader(mut self, reader: Arc<dyn TopicReader>) -> Self {
        self.topics = Some(reader);
        self
    }

    /// The values of `topic`'s partition 0 from its start to its end, as
    /// [`TopicReader::read_to_end`]; none when the runtime gave the task no
    /// reader.
    pub async fn read_topic(&self, topic: &str) -> Result<Vec<Vec<u8>>, ConnectorError> {
        match &self.topics {
            Some(reader) => reader.read_to_end(topic).await,
            None => Ok(Vec::new()),
        }
    }

    /// Adds the time the task spends handing records over (waiting for
    /// room, nearly all of it) to `nanos` from now on, instead of to a
    /// counter of its own: the runtime's, which outlives a restart.
    pub fn count_emit_time_in(mut self, nanos: Arc<AtomicU64>) -> Self {
        self.emitter.waited = nanos;
        self
    }

    /// The time the task has spent handing records over so far, nearly
    /// all of it waiting for the runtime to take them.
    pub fn emit_time(&self) -> Duration {
        Duration::from_nanos(self.emitter.waited.load(Ordering::Relaxed))
    }

    /// Installs how the runtime reads this task's progress.
    pub fn report_progress(&self, reader: ProgressReader) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(reader);
    }
}

impl RuntimeEnd {
    /// Takes the task's channel out, for a part of the runtime that reads
    /// it on its own (the runner's conversion stage); `records` is left
    /// empty and closed.
    pub fn take_records(&mut self) -> TaskRecords {
        let (_, closed) = mpsc::channel(1);
        std::mem::replace(&mut self.records, TaskRecords(closed))
    }

    /// Tells the task these offsets are stored.
    pub fn publish_durable(&self, offsets: Vec<(SourcePartition, SourceOffset)>) {
        self.durable.send_replace(Arc::new(offsets));
    }

    /// Asks the task to end.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// The task's progress, if it reports any.
    pub fn progress(&self) -> Option<TaskProgress> {
        let reader = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Some(reader())
    }
}

/// Sends batches to the runtime; waits while the runtime is behind.
#[derive(Clone)]
pub struct Emitter {
    records: mpsc::Sender<Queued>,
    room: Option<RoomInBytes>,
    /// Nanoseconds spent in `emit`, most of it waiting for room: how
    /// much of its time the task was held back by the runtime.
    waited: Arc<AtomicU64>,
}

/// The queue's byte bound: one permit per byte of the records waiting.
#[derive(Clone)]
struct RoomInBytes {
    free: Arc<Semaphore>,
    total: u32,
}

impl Emitter {
    /// Hands `batch` to the runtime, waiting for room. An empty batch is
    /// not sent. Fails (retriable) only when the runtime stopped taking
    /// records, which it does when it ends the task.
    pub async fn emit(&self, batch: Vec<SourceRecord>) -> Result<(), ConnectorError> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let sent = self.hand_over(batch).await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.waited.fetch_add(nanos, Ordering::Relaxed);
        sent
    }

    /// [`Emitter::emit`] of a batch that is not empty, untimed.
    async fn hand_over(&self, batch: Vec<SourceRecord>) -> Result<(), ConnectorError> {
        let room = match &self.room {
            None => None,
            Some(room) => {
                let bytes: usize = batch.iter().map(SourceRecord::footprint).sum();
                let wanted = u32::try_from(bytes).unwrap_or(u32::MAX).min(room.total);
                let taken = Arc::clone(&room.free).acquire_many_owned(wanted).await;
                Some(taken.map_err(|_| stopped_taking())?)
            }
        };
        self.records
            .send(Queued {
                emitted: Emitted::Records(batch),
                _room: room,
            })
            .await
            .map_err(|_| stopped_taking())
    }

    /// Stores `offset` for `partition` with no record, after every record
    /// emitted before it is acknowledged and stored, and returns once it
    /// is stored: what a task needs before an action on the database that
    /// a restart must know about. Fails (retriable) when the runtime could
    /// not store it; the task is then ending.
    pub async fn checkpoint(
        &self,
        partition: Arc<SourcePartition>,
        offset: SourceOffset,
    ) -> Result<(), ConnectorError> {
        let (stored, answer) = oneshot::channel();
        self.records
            .send(Queued {
                emitted: Emitted::Checkpoint(Checkpoint {
                    partition,
                    offset,
                    stored,
                }),
                _room: None,
            })
            .await
            .map_err(|_| stopped_taking())?;
        answer.await.map_err(|_| {
            ConnectorError::retriable("the runtime could not store the task's checkpoint")
        })
    }

    /// Hands over what `batch` holds, as [`Emitter::emit`], and leaves it
    /// empty with room for as many records: a steady stream then fills
    /// each batch without growing it from nothing again (a copy of every
    /// record at each doubling, ~260 instructions an event in the MariaDB
    /// binlog bench by callgrind).
    pub async fn emit_from(&self, batch: &mut Vec<SourceRecord>) -> Result<(), ConnectorError> {
        let next = Vec::with_capacity(batch.len());
        self.emit(std::mem::replace(batch, next)).await
    }

    /// Hands over what `batch` holds, as [`Emitter::emit_from`].
    pub async fn emit_batch(&self, batch: &mut Batch) -> Result<(), ConnectorError> {
        self.emit(batch.take()).await
    }

    /// Whether the runtime stopped taking records.
    pub fn is_closed(&self) -> bool {
        self.records.is_closed()
    }
}

fn stopped_taking() -> ConnectorError {
    ConnectorError::retriable("the runtime stopped taking records")
}

/// The runtime's request to end the task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Whether shutdown was requested.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until shutdown is requested (or the runtime is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with offset `{"n": n}` and nothing else.
    fn record(n: u64) -> SourceRecord {
        SourceRecord {
            partition: Arc::new(crate::offset::partition("p", "x")),
            offset: crate::offset::partition("n", n).into(),
            topic: "t".into(),
            kafka_partition: None,
            key_schema: None,
            key: None,
            value_schema: None,
            value: None,
            timestamp_ms: None,
            headers: Vec::new(),
            topic_kind: crate::record::TopicKind::Data,
        }
    }

    #[tokio::test]
    async fn emit_waits_for_room_and_fails_once_the_runtime_is_gone() {
        let (context, mut end) = source_context(Vec::new(), 1);
        let emitter = context.emitter();
        emitter.emit(vec![record(1)]).await.expect("room for one");
        // Full: the second waits until the runtime takes the first.
        let second = tokio::spawn({
            let emitter = emitter.clone();
            async move { emitter.emit(vec![record(2)]).await }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        assert_eq!(
            end.records.recv().await.map(|b| records_of(b).len()),
            Some(1)
        );
        second.await.expect("joined").expect("sent after room");
        drop(end);
        let error = emitter
            .emit(vec![record(3)])
            .await
            .expect_err("runtime gone");
        assert!(error.is_retriable());
    }

    #[tokio::test]
    async fn the_time_a_task_waits_for_room_is_counted_where_the_runtime_says() {
        let counter = Arc::new(AtomicU64::new(0));
        let (context, mut end) = source_context(Vec::new(), 1);
        let context = context.count_emit_time_in(Arc::clone(&counter));
        let emitter = context.emitter();
        emitter.emit(vec![record(1)]).await.expect("room for one");
        let before_waiting = context.emit_time();
        // Full: the second waits until the runtime takes the first, 100 ms on.
        let second = tokio::spawn({
            let emitter = emitter.clone();
            async move { emitter.emit(vec![record(2)]).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(end.records.recv().await);
        second.await.expect("joined").expect("sent after room");
        let waited = context.emit_time() - before_waiting;
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert_eq!(
            Duration::from_nanos(counter.load(Ordering::Relaxed)),
            context.emit_time(),
            "counted in the runtime's counter"
        );
        // An empty batch is not handed over, and takes no time.
        let now = context.emit_time();
        emitter.emit(Vec::new()).await.expect("nothing to send");
        assert_eq!(context.emit_time(), now);
    }

    #[tokio::test]
    async fn emit_from_hands_the_batch_over_and_leaves_room_for_the_next() {
        let (context, mut end) = source_context(Vec::new(), 1);
        let mut batch: Vec<SourceRecord> = (1..=5).map(record).collect();
        context.emitter().emit_from(&mut batch).await.expect("room");
        assert!(batch.is_empty());
        assert!(batch.capacity() >= 5, "{}", batch.capacity());
        let sent = records_of(end.records.recv().await.expect("a batch"));
        assert_eq!(sent.len(), 5);
    }

    /// With `max.queue.size.in.bytes` set, a batch waits while the
    /// records queued before it hold the bytes it needs, however many
    /// batches would fit; a batch larger than the whole bound goes alone
    /// once the queue is empty.
    #[tokio::test]
    async fn a_byte_bound_holds_batches_back_until_the_runtime_takes_records() {
        let wide = |n: u64, bytes: usize| SourceRecord {
            value: Some(crate::value::Value::Bytes(vec![0; bytes])),
            ..record(n)
        };
        let (context, mut end) = bounded_source_context(Vec::new(), 100, 10_000);
        let emitter = context.emitter();
        emitter.emit(vec![wide(1, 6_000)]).await.expect("room");
        let second = tokio::spawn({
            let emitter = emitter.clone();
            async move { emitter.emit(vec![wide(2, 6_000)]).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !second.is_finished(),
            "12,000 bytes queued past a 10,000 bound"
        );
        assert_eq!(
            records_of(end.records.recv().await.expect("first")).len(),
            1
        );
        second
            .await
            .expect("joined")
            .expect("sent once the first was taken");
        let oversized = tokio::spawn({
            let emitter = emitter.clone();
            async move { emitter.emit(vec![wide(3, 50_000)]).await }
        });
        tokio::task::yield_now().await;
        assert!(!oversized.is_finished(), "went while the second was queued");
        assert_eq!(
            records_of(end.records.recv().await.expect("second")).len(),
            1
        );
        oversized
            .await
            .expect("joined")
            .expect("alone in an empty queue");
        let third = records_of(end.records.recv().await.expect("third"));
        assert_eq!(third[0].offset["n"], 3);
        // Without a byte bound the same batches all fit at once.
        let (context, _end) = source_context(Vec::new(), 100);
        for n in 0..3 {
            context
                .emitter()
                .emit(vec![wide(n, 50_000)])
                .await
                .expect("room");
        }
    }

    fn records_of(emitted: Emitted) -> Vec<SourceRecord> {
        match emitted {
            Emitted::Records(records) => records,
            Emitted::Checkpoint(c) => panic!("a checkpoint: {c:?}"),
        }
    }

    /// A checkpoint follows the records before it through the channel and
    /// returns only once the runtime says it is stored.
    #[tokio::test]
    async fn a_checkpoint_comes_in_order_and_returns_once_stored() {
        let (context, mut end) = source_context(Vec::new(), 4);
        let emitter = context.emitter();
        emitter.emit(vec![record(1)]).await.expect("room");
        let partition = Arc::new(crate::offset::partition("p", "x"));
        let checkpoint = tokio::spawn({
            let (emitter, partition) = (emitter.clone(), Arc::clone(&partition));
            async move {
                emitter
                    .checkpoint(partition, crate::offset::partition("n", 2).into())
                    .await
            }
        });
        assert_eq!(
            records_of(end.records.recv().await.expect("records")).len(),
            1
        );
        let Some(Emitted::Checkpoint(stored)) = end.records.recv().await else {
            panic!("the checkpoint after the records");
        };
        assert_eq!(stored.offset["n"], 2);
        tokio::task::yield_now().await;
        assert!(!checkpoint.is_finished(), "returned before it was stored");
        stored.stored.send(()).expect("the task waits");
        checkpoint.await.expect("joined").expect("stored");
        // A runtime that drops it unanswered (it could not store it) fails
        // the checkpoint.
        let unanswered = tokio::spawn({
            let emitter = emitter.clone();
            async move {
                emitter
                    .checkpoint(partition, crate::offset::partition("n", 3).into())
                    .await
            }
        });
        drop(end.records.recv().await);
        let error = unanswered.await.expect("joined").expect_err("not stored");
        assert!(error.is_retriable());
    }

    #[tokio::test]
    async fn durable_offsets_and_shutdown_reach_the_task() {
        let (context, end) = source_context(Vec::new(), 1);
        let mut durable = context.durable();
        let mut shutdown = context.shutdown();
        assert!(!shutdown.requested());
        end.publish_durable(vec![(
            crate::offset::partition("server", "a"),
            crate::offset::partition("lsn", 7).into(),
        )]);
        durable.changed().await.expect("published");
        assert_eq!(durable.borrow()[0].1["lsn"], 7);
        end.request_shutdown();
        shutdown.wait().await;
        assert!(shutdown.requested());
        context.report_progress(Arc::new(|| TaskProgress {
            phase: Some("streaming"),
            ..TaskProgress::default()
        }));
        assert_eq!(end.progress().and_then(|p| p.phase), Some("streaming"));
    }
}
