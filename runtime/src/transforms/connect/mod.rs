//! Kafka Connect's own transforms (`org.apache.kafka.connect.transforms.*`).

pub mod cast;
pub mod extract_field;
pub mod filter;
pub mod flatten;
pub mod headers;
pub mod hoist_field;
pub mod insert_field;
pub mod mask_field;
pub mod regex_router;
pub mod replace_field;
pub mod set_schema_metadata;
pub mod timestamp_converter;
pub mod timestamp_router;
pub mod value_to_key;
