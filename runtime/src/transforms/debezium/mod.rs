//! Debezium's transforms (`io.debezium.transforms.*`).

pub mod extract_new_record_state;
