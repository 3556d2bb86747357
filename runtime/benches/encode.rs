//! Encode cost per record, warm caches: the Avro converter (Confluent
//! framing, schema id already resolved) beside Connect's JSON converter
//! with and without embedded schemas, on the same records.
//!
//!   cargo bench -p sluice-runtime --bench encode [-- RECORDS]
//!
//! The registry is sluice's own, in memory, in this process: it is called
//! once per schema, so it does not show in the per-record figures.

use std::sync::Arc;
use std::time::Instant;

use sluice_connector_api::{logical, Field, Schema, SchemaKind, Value};
use sluice_runtime::converter::{
    AvroConverter, AvroSettings, Converter, JsonConverter, JsonOptions, Side, SubjectStrategy,
};
use sluice_runtime::registry::spawn_in_memory;

/// A Debezium-shaped row: ids, text, a decimal, timestamps, nullable columns.
fn row_schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(SchemaKind::Struct(vec![
            Field::new("id", Schema::int64()),
            Field::new("customer_id", Schema::int32()),
            Field::new("status", Schema::string()),
            Field::new("note", Schema::string().optional()),
            Field::new("amount", logical::decimal(2, Some(12))),
            Field::new("quantity", Schema::int16()),
            Field::new("paid", Schema::boolean()),
            Field::new("created_at", logical::micro_timestamp()),
            Field::new("updated_at", logical::zoned_timestamp().optional()),
            Field::new("weight", Schema::float64().optional()),
        ]))
        .named("bench.public.orders.Value"),
    )
}

fn row(i: i64) -> Value {
    Value::Struct(vec![
        Value::Int64(i),
        Value::Int32((i % 1000) as i32),
        Value::String(if i % 3 == 0 { "shipped" } else { "pending" }.into()),
        if i % 2 == 0 {
            Value::Null
        } else {
            Value::String(format!("note for order {i}").into())
        },
        Value::decimal(i128::from(i) * 137 + 99),
        Value::Int16((i % 50) as i16),
        Value::Boolean(i % 2 == 0),
        Value::Int64(1_700_000_000_000_000 + i),
        Value::String("2026-11-23T10:15:30.123456Z".into()),
        Value::Float64(i as f64 * 0.25),
    ])
}

/// Average microseconds per encode over `rows`, best of five passes, and
/// the average encoded size.
fn measure(converter: &dyn Converter, schema: &Arc<Schema>, rows: &[Value]) -> (f64, f64) {
    let mut best = f64::MAX;
    let mut bytes = 0usize;
    for _ in 0..5 {
        bytes = 0;
        let start = Instant::now();
        for value in rows {
            let encoded = converter
                .encode("bench.public.orders", Some(schema), Some(value))
                .expect("encodes");
            bytes += encoded.map_or(0, |b| b.len());
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / rows.len() as f64);
    }
    (best, bytes as f64 / rows.len() as f64)
}

fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime
        .block_on(spawn_in_memory())
        .expect("in-memory registry");

    let schema = row_schema();
    let rows: Vec<Value> = (0..records as i64).map(row).collect();
    let client = sluice_runtime::registry::client::RegistryClient::new(&url);
    let avro = AvroConverter::new(
        AvroSettings {
            side: Side::Value,
            registry_url: url,
            strategy: SubjectStrategy::TopicName,
            auto_register: true,
            nulls: sluice_runtime::converter::avro::encode::NullsWithDefault::WriteDefault,
            access: Default::default(),
        },
        client,
    );
    avro.resolve("bench.public.orders", &schema)
        .expect("registers");

    let (avro_us, avro_bytes) = measure(&avro, &schema, &rows);
    let (json_us, json_bytes) = measure(
        &JsonConverter::new(true, JsonOptions::default()),
        &schema,
        &rows,
    );
    let (bare_us, bare_bytes) = measure(
        &JsonConverter::new(false, JsonOptions::default()),
        &schema,
        &rows,
    );
    println!("encode cost per record, {records} records of a 10-column row, best of 5:");
    println!("  avro (Confluent framing)   {avro_us:6.3} µs  {avro_bytes:6.1} bytes");
    println!("  json, schemas.enable=true  {json_us:6.3} µs  {json_bytes:6.1} bytes  (avro is {:.1}x faster)", json_us / avro_us);
    println!("  json, schemas.enable=false {bare_us:6.3} µs  {bare_bytes:6.1} bytes  (avro is {:.1}x faster)", bare_us / avro_us);
}
