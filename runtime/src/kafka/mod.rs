//! The worker's Kafka clients: one idempotent producer shared by all source
//! tasks, and topic creation ahead of the first record.

mod producer;
mod topics;

pub use producer::{build_producer, KafkaSettings};
pub use topics::{TopicCreator, TopicLayout};
