//! Delivery reports without a future per record. rust-rdkafka's
//! `FutureProducer` allocates a one-shot channel and a box for every
//! record (272 bytes each, 5.4 MB for a task's 20,000 records in flight)
//! and wakes a task per report. Here the producer's context files each
//! report on the board of the task that sent the record — a slot in a
//! queue, found by the number the record carries as its opaque — and wakes
//! the task only when the report it waits for arrives.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll, Waker};

use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

/// The producer source tasks share (and each exactly-once task has).
pub type Producer = ThreadedProducer<DeliveryContext>;

/// A record the producer takes, numbered by its opaque.
pub type Record<'r> = BaseRecord<'r, [u8], [u8], usize>;

/// Bits of a record's opaque that number it on its board; the rest name
/// the board.
const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// The producer's context: answers token refreshes, and files delivery
/// reports on the boards of the tasks that sent the records.
#[derive(Default)]
pub struct DeliveryContext {
    boards: RwLock<BTreeMap<u32, Weak<Board>>>,
    next_id: AtomicU32,
}

impl ClientContext for DeliveryContext {
    crate::kafka::answers_token_refresh!();
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let id = (opaque as u64 >> SEQ_BITS) as u32;
        let board = self
            .boards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .and_then(Weak::upgrade);
        // A board gone is a task that stopped waiting: nothing to file.
        if let Some(board) = board {
            let outcome = match result {
                Ok(_) => Ok(()),
                Err((e, _)) => Err(e.to_string()),
            };
            board.report(opaque as u64 & SEQ_MASK, outcome);
        }
    }
}

/// Where one sender's delivery reports arrive, in the order it sent.
pub struct Board {
    id: u32,
    context: Weak<DeliveryContext>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The number of `slots[0]`.
    first: u64,
    slots: VecDeque<Slot>,
    /// The record a task waits for, and how to wake it.
    waiting: Option<(u64, Waker)>,
}

enum Slot {
    Pending,
    Done(Result<(), String>),
    /// Reported and taken, or no longer awaited.
    Taken,
}

impl Board {
    /// A board for records sent through `producer`.
    pub fn open(producer: &Producer) -> Arc<Self> {
        let context = producer.context();
        let id = context.next_id.fetch_add(1, Ordering::Relaxed);
        let board = Arc::new(Self {
            id,
            context: Arc::downgrade(context),
            state: Mutex::default(),
        });
        context
            .boards
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::downgrade(&board));
        board
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `record` to `producer`, numbered on this board; the ticket
    /// resolves with its delivery report.
    // The record comes back with the error, as from rdkafka's own send,
    // so that a full queue can be waited out and the record sent again.
    #[allow(clippy::result_large_err)]
    pub fn send<'r>(
        self: &Arc<Self>,
        producer: &Producer,
        record: Record<'r>,
    ) -> Result<Ticket, (KafkaError, Record<'r>)> {
        self.send_with(|opaque| producer.send(record.delivery_opaque(opaque)))
    }

    /// Numbers a record on this board and has `hand_over` give it to the
    /// producer with that number as its delivery opaque; the ticket
    /// resolves with its delivery report. Nothing is numbered if
    /// `hand_over` fails.
    pub fn send_with<E>(
        self: &Arc<Self>,
        hand_over: impl FnOnce(usize) -> Result<(), E>,
    ) -> Result<Ticket, E> {
        let seq = {
            let mut state = self.state();
            state.slots.push_back(Slot::Pending);
            state.first + state.slots.len() as u64 - 1
        };
        let opaque = (u64::from(self.id) << SEQ_BITS) | (seq & SEQ_MASK);
        match hand_over(opaque as usize) {
            Ok(()) => Ok(Ticket {
                board: Arc::clone(self),
                seq,
                done: false,
            }),
            Err(e) => {
                self.state().slots.pop_back();
                Err(e)
            }
        }
    }

    fn report(&self, low: u64, outcome: Result<(), String>) {
        let mut state = self.state();
        // Numbers in flight span less than 2^40, so the low bits name one.
        let seq = state.first + (low.wrapping_sub(state.first) & SEQ_MASK);
        let Some(index) = seq.checked_sub(state.first) else {
            return;
        };
        if let Some(slot @ Slot::Pending) = state.slots.get_mut(index as usize) {
            *slot = Slot::Done(outcome);
            if state.waiting.as_ref().is_some_and(|(s, _)| *s == seq) {
                if let Some((_, waker)) = state.waiting.take() {
                    waker.wake();
                }
            }
        }
    }

    fn take(&self, seq: u64, waker: &Waker) -> Poll<Result<(), String>> {
        let mut state = self.state();
        let index = seq
            .checked_sub(state.first)
            .map_or(usize::MAX, |i| i as usize);
        let outcome = match state.slots.get_mut(index) {
            Some(slot @ Slot::Done(_)) => match std::mem::replace(slot, Slot::Taken) {
                Slot::Done(outcome) => outcome,
                _ => unreachable!("matched Done"),
            },
            Some(Slot::Pending) => {
                match &mut state.waiting {
                    Some((s, w)) if *s == seq && w.will_wake(waker) => {}
                    waiting => *waiting = Some((seq, waker.clone())),
                }
                return Poll::Pending;
            }
            Some(Slot::Taken) | None => Err("the delivery report was already taken".into()),
        };
        state.trim();
        Poll::Ready(outcome)
    }

    fn forget(&self, seq: u64) {
        let mut state = self.state();
        if let Some(index) = seq.checked_sub(state.first) {
            if let Some(slot) = state.slots.get_mut(index as usize) {
                *slot = Slot::Taken;
            }
        }
        state.trim();
    }
}

impl State {
    /// Drops the settled slots at the front.
    fn trim(&mut self) {
        while matches!(self.slots.front(), Some(Slot::Taken)) {
            self.slots.pop_front();
            self.first += 1;
        }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if let Some(context) = self.context.upgrade() {
            context
                .boards
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
        }
    }
}

/// Sends one record and waits up to `timeout` for its report (the
/// dead-letter topic's occasional record), waiting out a full queue.
pub async fn send_and_wait(
    producer: &Producer,
    mut record: Record<'_>,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let board = Board::open(producer);
    let deadline = tokio::time::Instant::now() + timeout;
    let ticket = loop {
        match board.send(producer, record) {
            Ok(ticket) => break ticket,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if tokio::time::Instant::now() < deadline =>
            {
                record = back;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err((e, _)) => return Err(e.to_string()),
        }
    };
    tokio::time::timeout_at(deadline, ticket)
        .await
        .map_err(|_| format!("not acknowledged within {} s", timeout.as_secs()))?
}

/// One record's delivery report to come.
pub struct Ticket {
    board: Arc<Board>,
    seq: u64,
    done: bool,
}

impl Future for Ticket {
    type Output = Result<(), String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = self.board.take(self.seq, cx.waker());
        if outcome.is_ready() {
            self.done = true;
        }
        outcome
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.board.forget(self.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::mocking::MockCluster;
    use rdkafka::ClientConfig;

    use super::*;

    fn record(topic: &str, n: u32) -> Record<'_> {
        let payload: &'static [u8] = Box::leak(n.to_string().into_bytes().into_boxed_slice());
        BaseRecord::with_opaque_to(topic, 0).payload(payload)
    }

    /// Reports reach the board of the task that sent each record, in any
    /// order; a ticket no longer awaited does not hold the others back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_report_reaches_its_own_ticket() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("a", 3, 1).expect("topic");
        let producer: Producer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("linger.ms", "5")
            .create_with_context(DeliveryContext::default())
            .expect("producer");
        let (one, two) = (Board::open(&producer), Board::open(&producer));
        let mut tickets = Vec::new();
        for n in 0..1000 {
            let board = if n % 2 == 0 { &one } else { &two };
            tickets.push(board.send(&producer, record("a", n)).expect("sent"));
        }
        // Dropped unawaited: the rest still resolve, and the board empties.
        let dropped = tickets.split_off(900);
        drop(dropped);
        for ticket in tickets {
            tokio::time::timeout(Duration::from_secs(30), ticket)
                .await
                .expect("reported in time")
                .expect("delivered");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for board in [&one, &two] {
            assert!(board.state().slots.is_empty(), "every slot settled");
        }
        // A record to a topic the broker does not have fails, on its ticket.
        cluster
            .topic_error(
                "b",
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            )
            .expect("topic error");
        let failing = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("message.timeout.ms", "1000")
            .create_with_context(DeliveryContext::default())
            .expect("producer");
        let board = Board::open(&failing);
        // Refused on its ticket — or at once, when the producer already
        // knows the topic's error (CI saw that race): either way with the
        // broker's reason.
        let outcome = match board.send(&failing, record("b", 1)) {
            Ok(ticket) => tokio::time::timeout(Duration::from_secs(30), ticket)
                .await
                .expect("reported in time"),
            Err((e, _)) => Err(e.to_string()),
        };
        assert!(
            outcome
                .as_ref()
                .is_err_and(|e| e.to_lowercase().contains("authorization")),
            "{outcome:?}"
        );
        assert!(board.state().slots.is_empty());
    }
}
