//! A sink connector's offsets are its consumer group's committed offsets
//! (`connect-<name>`). Connect 3.6 reads and changes them through the
//! connector's offsets endpoints while the connector is stopped; these
//! are the blocking broker calls behind that.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaSettings, SluiceContext};

const TIMEOUT: Duration = Duration::from_secs(15);

/// One partition's position: topic, partition, next offset to read.
pub type Position = (String, i32, i64);

fn client(
    settings: &KafkaSettings,
    group: &str,
) -> Result<BaseConsumer<SluiceContext>, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    for (key, value) in &settings.client_properties {
        config.set(key, value);
    }
    config.create_with_context(SluiceContext)
}

/// Every partition of `topics`.
fn partitions(
    consumer: &BaseConsumer<SluiceContext>,
    topics: &[String],
) -> Result<TopicPartitionList, KafkaError> {
    let mut list = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
        for t in metadata.topics() {
            for p in t.partitions() {
                list.add_partition(t.name(), p.id());
            }
        }
    }
    Ok(list)
}

/// The group's committed positions on `topics` (partitions it never
/// committed are left out).
pub fn committed(
    settings: &KafkaSettings,
    group: &str,
    topics: &[String],
) -> Result<Vec<Position>, KafkaError> {
    let consumer = client(settings, group)?;
    let wanted = partitions(&consumer, topics)?;
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.topic().to_owned(), e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// Commits `positions` for the group; `None` offsets go back to the
/// partition's earliest record (what a group without offsets reads, as
/// sinks start at the earliest). The group must have no active member.
pub fn commit(
    settings: &KafkaSettings,
    group: &str,
    positions: &[(String, i32, Option<i64>)],
) -> Result<(), KafkaError> {
    let consumer = client(settings, group)?;
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in positions {
        let offset = match offset {
            Some(o) => *o,
            None => consumer.fetch_watermarks(topic, *partition, TIMEOUT)?.0,
        };
        list.add_partition_offset(topic, *partition, Offset::Offset(offset))?;
    }
    if list.count() > 0 {
        consumer.commit(&list, CommitMode::Sync)?;
    }
    Ok(())
}

/// Every partition of `topics`, for a reset of all of them.
pub fn all_partitions(
    settings: &KafkaSettings,
    group: &str,
    topics: &[String],
) -> Result<Vec<(String, i32)>, KafkaError> {
    let consumer = client(settings, group)?;
    Ok(partitions(&consumer, topics)?
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect())
}
