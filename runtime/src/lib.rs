//! The sluice runtime: the worker that hosts connectors.
//!
//! The herder owns connector and task lifecycles; source runners move
//! records from tasks through converters into the Kafka producer and store
//! offsets once the broker has acknowledged them; the REST API is Kafka
//! Connect's; stores keep configs and offsets in the state directory.

pub mod change_line;
pub mod cli;
pub mod contracts;
pub mod converter;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod herder;
pub mod kafka;
pub mod logging;
pub mod metrics;
pub mod plugins;
pub mod reference;
pub mod registry;
pub mod rest;
pub mod secrets;
pub mod status_cli;
pub mod store;
pub mod tail;
pub mod transforms;
pub mod verify;
pub mod worker;
pub mod worker_config;
