//! Debezium's transforms (`io.debezium.transforms.*`).

pub mod by_logical_table_router;
pub mod event_router;
pub mod extract_new_record_state;
pub mod header_to_value;
