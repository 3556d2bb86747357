//! The worker's Kafka clients: one idempotent producer shared by all source
//! tasks, a consumer per sink task, and topic creation ahead of the first
//! record.

mod consumer;
pub mod group_offsets;
pub mod overrides;
mod producer;
mod reachability;
pub mod security;
mod topics;

pub use consumer::build_consumer;
pub use producer::{build_producer, KafkaSettings};
pub use reachability::{cluster_id, BrokerError};
pub use topics::{TopicCreator, TopicLayout};
