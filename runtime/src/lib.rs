//! The sluice runtime: the worker that hosts connectors.
//!
//! The herder owns connector and task lifecycles; source runners move
//! records from tasks through converters into the Kafka producer and store
//! offsets once the broker has acknowledged them; the REST API is Kafka
//! Connect's; stores keep configs and offsets in the state directory.

pub mod converter;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod herder;
pub mod kafka;
pub mod logging;
pub mod metrics;
pub mod plugins;
pub mod registry;
pub mod rest;
pub mod secrets;
pub mod store;
pub mod transforms;
pub mod worker;
pub mod worker_config;
