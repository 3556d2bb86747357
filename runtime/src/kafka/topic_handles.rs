//! Sending through a producer's handle on each topic, looked up once.
//!
//! rust-rdkafka's `send` names the topic on every call: it makes and frees
//! a C string of the name, and librdkafka finds the topic by name under a
//! lock and takes and drops a reference to it. That was about 800
//! instructions a record (callgrind, `scripts/bench-mysql`), a quarter of
//! what the producing loop spent on one. A source task sends to a handful
//! of topics, so it keeps a handle on each and hands librdkafka the handle.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::sync::Mutex;

use rdkafka::bindings as rd;
use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;

use super::delivery::Producer;

/// One record as librdkafka takes it; headers go through rust-rdkafka's
/// own send (see [`TopicHandles::send`]).
#[derive(Debug, Clone, Copy)]
pub struct Plain<'a> {
    /// The key bytes; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value bytes; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The partition, or `None` for the producer's partitioner.
    pub partition: Option<i32>,
    /// The record timestamp; `None` stamps the time it is sent.
    pub timestamp_ms: Option<i64>,
}

/// A producer's handles on the topics one sender writes to.
pub struct TopicHandles<'p> {
    producer: &'p Producer,
    /// Few topics per sender (a table's, its transaction and heartbeat
    /// topics): a list searched from the last one used beats a map.
    handles: Mutex<Vec<Handle>>,
}

struct Handle {
    topic: Box<str>,
    native: NonNull<rd::rd_kafka_topic_t>,
}

// SAFETY: librdkafka's topic handles may be used and destroyed from any
// thread; the handle holds nothing tied to the thread that made it.
unsafe impl Send for Handle {}

impl<'p> TopicHandles<'p> {
    /// Handles on `producer`'s topics; none is looked up until used.
    pub fn new(producer: &'p Producer) -> Self {
        Self {
            producer,
            handles: Mutex::new(Vec::new()),
        }
    }

    /// Hands `record` for `topic` to the producer with `opaque` as its
    /// delivery opaque (rust-rdkafka's delivery callback reads it back as
    /// the `usize` it would have passed itself). The payload is copied, as
    /// rust-rdkafka's send copies it.
    pub fn send(
        &self,
        topic: &str,
        record: Plain<'_>,
        opaque: usize,
    ) -> Result<(), RDKafkaErrorCode> {
        let native = self.handle(topic)?;
        let (value, value_len) = bytes(record.value);
        let (key, key_len) = bytes(record.key);
        // SAFETY: the producer outlives `self` (the borrow), and every
        // handle in `self` was made from it and is destroyed before it
        // (Drop below); the key and value are valid for the call and
        // copied (RD_KAFKA_MSG_F_COPY); each argument follows its tag with
        // the type librdkafka's varargs read for that tag (as
        // rust-rdkafka's own send passes them).
        let code = unsafe {
            rd::rd_kafka_producev(
                self.producer.client().native_ptr(),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT,
                native.as_ptr(),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION,
                record.partition.unwrap_or(-1),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
                rd::RD_KAFKA_MSG_F_COPY,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
                value,
                value_len,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY,
                key,
                key_len,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_OPAQUE,
                opaque as *mut c_void,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TIMESTAMP,
                record.timestamp_ms.unwrap_or(0),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_END,
            )
        };
        match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::NoError => Ok(()),
            error => Err(error),
        }
    }

    /// The handle on `topic`, made on first use.
    fn handle(&self, topic: &str) -> Result<NonNull<rd::rd_kafka_topic_t>, RDKafkaErrorCode> {
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = handles.iter().rev().find(|h| &*h.topic == topic) {
            return Ok(found.native);
        }
        let name = CString::new(topic).map_err(|_| RDKafkaErrorCode::InvalidTopic)?;
        // SAFETY: the producer's client is alive for `'p`; the name is a
        // valid C string for the call (librdkafka copies it); a null
        // configuration takes the producer's default topic settings, as
        // naming the topic in `rd_kafka_producev` does.
        let native = unsafe {
            rd::rd_kafka_topic_new(
                self.producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        let native = NonNull::new(native).ok_or(RDKafkaErrorCode::InvalidTopic)?;
        handles.push(Handle {
            topic: topic.into(),
            native,
        });
        Ok(native)
    }
}

impl Drop for TopicHandles<'_> {
    fn drop(&mut self) {
        let handles = self.handles.get_mut().unwrap_or_else(|e| e.into_inner());
        for handle in handles.drain(..) {
            // SAFETY: made by `rd_kafka_topic_new` on the producer, which
            // is still alive (borrowed for `'p`), and destroyed once:
            // drained from the list here. Records in flight hold their own
            // references to the topic.
            unsafe { rd::rd_kafka_topic_destroy(handle.native.as_ptr()) };
        }
    }
}

/// A byte slice as librdkafka takes one: null for none.
fn bytes(data: Option<&[u8]>) -> (*mut c_void, usize) {
    match data {
        Some(data) => (data.as_ptr().cast_mut().cast(), data.len()),
        None => (std::ptr::null_mut(), 0),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::{Message, Timestamp};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::BaseRecord;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    use rdkafka::ClientConfig;

    use super::*;
    use crate::kafka::delivery::{Board, DeliveryContext};

    /// (partition, key, value, timestamp) of every record of `topic`.
    fn read(bootstrap: &str, topic: &str, partitions: i32) -> Vec<(i32, String, String, i64)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "reader")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&assignment).expect("assign");
        let (mut out, mut ended) = (Vec::new(), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ended < partitions {
            assert!(
                std::time::Instant::now() < deadline,
                "reading {topic} timed out"
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push((
                    m.partition(),
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    match m.timestamp() {
                        Timestamp::CreateTime(t) => t,
                        other => panic!("{other:?}"),
                    },
                )),
                Some(Err(KafkaError::PartitionEOF(_))) => ended += 1,
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out.sort();
        out
    }

    /// Records sent through the handles land as rust-rdkafka's named send
    /// puts them: the same partition for the same key, the partition and
    /// timestamp asked for, on the right topic, each reported on its
    /// ticket; a topic the broker refuses fails on the ticket.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_land_where_the_named_send_puts_them() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        for topic in ["named", "handled", "other"] {
            cluster.create_topic(topic, 3, 1).expect("topic");
        }
        let producer: Producer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("linger.ms", "5")
            .create_with_context(DeliveryContext::default())
            .expect("producer");
        let board = Board::open(&producer);
        let handles = TopicHandles::new(&producer);
        let mut tickets = Vec::new();
        for n in 0..30i64 {
            let (key, value) = (format!("key-{}", n % 7), format!("value-{n}"));
            let partition = (n % 10 == 0).then_some(2);
            let timestamp = 1_700_000_000_000 + n;
            let mut named = BaseRecord::with_opaque_to("named", 0)
                .key(key.as_bytes())
                .payload(value.as_bytes())
                .timestamp(timestamp);
            if let Some(p) = partition {
                named = named.partition(p);
            }
            tickets.push(
                board
                    .send(&producer, named)
                    .map_err(|(e, _)| e)
                    .expect("named send"),
            );
            let plain = Plain {
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
                partition,
                timestamp_ms: Some(timestamp),
            };
            // Two topics in turn, so that a handle is found again, not
            // only the last one used.
            for topic in ["handled", "other"] {
                tickets.push(
                    board
                        .send_with(|opaque| handles.send(topic, plain, opaque))
                        .expect("handle send"),
                );
            }
        }
        for ticket in tickets {
            tokio::time::timeout(Duration::from_secs(30), ticket)
                .await
                .expect("reported in time")
                .expect("delivered");
        }
        let named = read(cluster.bootstrap_servers().as_str(), "named", 3);
        assert_eq!(named.len(), 30);
        assert!(
            named.iter().any(|(p, ..)| *p != 2),
            "keys spread: {named:?}"
        );
        assert_eq!(read(&cluster.bootstrap_servers(), "handled", 3), named);
        assert_eq!(read(&cluster.bootstrap_servers(), "other", 3), named);

        cluster
            .topic_error(
                "refused",
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            )
            .expect("topic error");
        let failing: Producer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("message.timeout.ms", "1000")
            .create_with_context(DeliveryContext::default())
            .expect("producer");
        let (board, handles) = (Board::open(&failing), TopicHandles::new(&failing));
        let plain = Plain {
            key: None,
            value: Some(b"1"),
            partition: None,
            timestamp_ms: None,
        };
        // Refused on its ticket, or at once when the producer already
        // knows the topic's error: either way with the broker's reason.
        let outcome = match board.send_with(|opaque| handles.send("refused", plain, opaque)) {
            Ok(ticket) => tokio::time::timeout(Duration::from_secs(30), ticket)
                .await
                .expect("reported in time"),
            Err(code) => Err(code.to_string()),
        };
        assert!(
            outcome
                .as_ref()
                .is_err_and(|e| e.to_lowercase().contains("authoriz")),
            "{outcome:?}"
        );
    }
}
