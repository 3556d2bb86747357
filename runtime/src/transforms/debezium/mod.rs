//! Debezium's transforms (`io.debezium.transforms.*`).

pub mod event_router;
pub mod extract_new_record_state;
