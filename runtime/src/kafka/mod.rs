//! The worker's Kafka clients: one idempotent producer shared by all source
//! tasks, a consumer per sink task, and topic creation ahead of the first
//! record.

mod admin_token;
mod client_context;
mod consumer;
pub mod delivery;
pub mod group_offsets;
pub mod msk_iam;
pub mod murmur2;
pub mod overrides;
mod producer;
mod reachability;
pub mod security;
mod sink_context;
pub mod topic_handles;
pub mod topic_reader;
mod topics;

pub(crate) use client_context::answers_token_refresh;
pub use client_context::SluiceContext;
pub use consumer::{build_consumer, GroupTimeouts, SinkConsumer};
pub use producer::{build_producer, build_transactional_producer, KafkaSettings, Producer};
pub use reachability::{cluster_id, BrokerError};
pub use sink_context::{Membership, SinkContext};
pub use topics::{TopicCreator, TopicLayout};
