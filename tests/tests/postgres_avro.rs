//! PostgreSQL types, TOAST, replica identity, truncates and schema changes
//! through the Avro converter, decoded by an independent client (Python's
//! confluent-kafka `AvroDeserializer` through sluice's registry), with the
//! values Debezium documents for each type.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::env::TestEnv;
use sluice_tests::postgres::Pg;
use sluice_tests::process::free_port;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

const AVRO: &str = "io.confluent.connect.avro.AvroConverter";

/// `count` records of `topic` decoded by Python: [{"key", "value"}].
fn python_decode(env: &TestEnv, topic: &str, registry: &str, count: usize) -> Vec<Value> {
    sluice_tests::kafka::python_avro_decode(env.bootstrap(), topic, registry, count)
}

/// The first record field called `name` anywhere in an Avro schema.
fn find_field<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    match schema {
        Value::Object(map) => {
            if map.get("name").and_then(Value::as_str) == Some(name) && map.contains_key("type") {
                return Some(schema);
            }
            map.values().find_map(|v| find_field(v, name))
        }
        Value::Array(items) => items.iter().find_map(|v| find_field(v, name)),
        _ => None,
    }
}

fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

const ROW_VALUES: &str = "1, 2, 3, 12.345, 1.5, 12.34, 1.5, 2.25, true, 'text', 'varchar', 'ab', '\\x0102', \
    '2024-02-29', '10:11:12.123456', '10:11:12.123', '10:11:12+02', '2024-02-29 10:11:12.123456', \
    '2024-02-29 10:11:12.123', '2024-02-29 10:11:12.5+00', '1 day 2 hours', \
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": 1}', '{\"a\": 1}', '<a>1</a>', B'1', B'101', \
    '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,2}', '{a,b}', 'happy', 5, '[1,5)', '(1,2)', 'a=>1', \
    'a fat cat', '((1,2),(3,4))'";

/// What Debezium documents for each column of `ROW_VALUES` (as Python's
/// AvroDeserializer returns it, printed with `json.dumps(default=str)`).
fn expected_row() -> Value {
    json!({
        "c_int2": 1, "c_int4": 2, "c_int8": 3,
        "c_num": "12.345",
        "c_num_var": {"scale": 1, "value": "b'\\x0f'"},
        "c_money": "12.34",
        "c_real": 1.5, "c_double": 2.25, "c_bool": true,
        "c_text": "text", "c_varchar": "varchar", "c_char": "ab ",
        "c_bytea": "b'\\x01\\x02'",
        "c_date": 19782,
        "c_time": 36_672_123_456i64,
        "c_time3": 36_672_123,
        "c_timetz": "08:11:12Z",
        "c_ts": 1_709_201_472_123_456i64,
        "c_ts3": 1_709_201_472_123i64,
        // timestamptz's 6 fractional digits, written in full as Debezium 2.2+.
        "c_tstz": "2024-02-29T10:11:12.500000Z",
        "c_interval": 93_600_000_000i64,
        "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "c_json": "{\"a\": 1}", "c_jsonb": "{\"a\": 1}",
        "c_xml": "<a>1</a>",
        "c_bit": true, "c_varbit": "b'\\x05'",
        "c_inet": "192.168.0.1", "c_cidr": "10.0.0.0/8", "c_macaddr": "08:00:2b:01:02:03",
        "c_int_array": [1, 2], "c_text_array": ["a", "b"],
        "c_mood": "happy", "c_domain": 5, "c_range": "[1,5)",
        "c_point": {"x": 1.0, "y": 2.0, "wkb": "b'\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\xf0?\\x00\\x00\\x00\\x00\\x00\\x00\\x00@'", "srid": null},
        "c_hstore": "{\"a\":\"1\"}",
        "c_tsv": "'a' 'cat' 'fat'",
        // A type Debezium leaves out: its text.
        "c_box": "(3,4),(1,2)",
    })
}

fn assert_row(after: &Value, id: i64) {
    assert_eq!(after["id"], id, "{after}");
    let expected = expected_row();
    for (column, value) in expected.as_object().expect("object") {
        assert_eq!(
            &after[column], value,
            "column {column} of row {id}: {after}"
        );
    }
}

#[test]
fn types_toast_identity_truncate_and_ddl_decode_as_debezium_documents() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("types");
    let slot = ident("slot");
    pg.exec("CREATE EXTENSION IF NOT EXISTS hstore");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy'); \
         CREATE DOMAIN {schema}.posint AS int CHECK (VALUE > 0); \
         CREATE TABLE {schema}.all_types (id int PRIMARY KEY, c_int2 smallint, c_int4 integer, c_int8 bigint, \
           c_num numeric(10,3), c_num_var numeric, c_money money, c_real real, c_double double precision, \
           c_bool boolean, c_text text, c_varchar varchar(20), c_char char(3), c_bytea bytea, c_date date, \
           c_time time, c_time3 time(3), c_timetz timetz, c_ts timestamp, c_ts3 timestamp(3), c_tstz timestamptz, \
           c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_xml xml, c_bit bit(1), \
           c_varbit varbit(16), c_inet inet, c_cidr cidr, c_macaddr macaddr, c_int_array int[], \
           c_text_array text[], c_mood {schema}.mood, c_domain {schema}.posint, c_range int4range, \
           c_point point, c_hstore hstore, c_tsv tsvector, c_box box); \
         INSERT INTO {schema}.all_types VALUES (1, {ROW_VALUES}); \
         CREATE TABLE {schema}.toasty (id int PRIMARY KEY, big text, n int); \
         INSERT INTO {schema}.toasty SELECT 1, string_agg(md5(g::text), ''), 1 FROM generate_series(1, 3000) g; \
         CREATE TABLE {schema}.fulltab (id int PRIMARY KEY, name text); \
         ALTER TABLE {schema}.fulltab REPLICA IDENTITY FULL; \
         INSERT INTO {schema}.fulltab VALUES (1, 'before');"
    ));
    let registry_port = free_port();
    let registry = format!("http://127.0.0.1:{registry_port}");
    let worker = Worker::start_with(
        &env,
        &["--registry-listen", &format!("127.0.0.1:{registry_port}")],
    );
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["key.converter"] = json!(AVRO);
    config["value.converter"] = json!(AVRO);
    config["skipped.operations"] = json!("none");
    let reply = api.post(
        "/connectors",
        &json!({"name": "pg-types", "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        let task = api.get("/connectors/pg-types/status").body["tasks"][0].clone();
        assert_ne!(task["state"], "FAILED", "{task}");
        (task["progress"]["phase"] == "streaming").then_some(())
    });

    pg.exec(&format!(
        "INSERT INTO {schema}.all_types VALUES (2, {ROW_VALUES}); \
         UPDATE {schema}.toasty SET n = 2 WHERE id = 1; \
         UPDATE {schema}.fulltab SET name = 'after' WHERE id = 1; \
         ALTER TABLE {schema}.all_types ADD COLUMN c_new int DEFAULT 7; \
         INSERT INTO {schema}.all_types (id, c_int4) VALUES (3, 30); \
         TRUNCATE {schema}.fulltab;"
    ));

    let all_types = python_decode(&env, &format!("{prefix}.{schema}.all_types"), &registry, 3);
    assert_eq!(all_types[0]["value"]["op"], "r");
    assert_eq!(all_types[0]["key"], json!({"id": 1}));
    assert_row(&all_types[0]["value"]["after"], 1);
    assert_eq!(all_types[1]["value"]["op"], "c");
    assert_row(&all_types[1]["value"]["after"], 2);
    let added = &all_types[2]["value"]["after"];
    assert_eq!(added["c_new"], 7, "the column added mid-stream: {added}");
    assert_eq!(added["c_int4"], 30);
    let source = &all_types[1]["value"]["source"];
    assert_eq!(source["connector"], "postgresql");
    assert_eq!(source["snapshot"], "false");
    assert!(
        source["lsn"].as_i64().is_some() && source["txId"].as_i64().is_some(),
        "{source}"
    );
    let versions = Api::new(&registry)
        .get(&format!(
            "/subjects/{prefix}.{schema}.all_types-value/versions"
        ))
        .body;
    assert_eq!(
        versions,
        json!([1, 2]),
        "the ALTER made a second schema version"
    );
    // The column's DEFAULT is the field's default, as in Debezium's schemas.
    let latest = Api::new(&registry)
        .get(&format!(
            "/subjects/{prefix}.{schema}.all_types-value/versions/latest"
        ))
        .body;
    let text = latest["schema"].as_str().unwrap_or_default();
    let avro: Value = serde_json::from_str(text).expect("schema JSON");
    let c_new = find_field(&avro, "c_new").expect("c_new in the schema");
    assert_eq!(c_new["default"], 7, "{c_new}");
    assert_eq!(c_new["type"][0], "int", "default branch first: {c_new}");

    let toasty = python_decode(&env, &format!("{prefix}.{schema}.toasty"), &registry, 2);
    assert_eq!(toasty[1]["value"]["op"], "u");
    assert_eq!(toasty[1]["value"]["after"]["n"], 2);
    assert_eq!(
        toasty[1]["value"]["after"]["big"], "__debezium_unavailable_value",
        "an unchanged TOASTed value is Debezium's placeholder"
    );

    let full = python_decode(&env, &format!("{prefix}.{schema}.fulltab"), &registry, 3);
    assert_eq!(full[1]["value"]["op"], "u");
    assert_eq!(
        full[1]["value"]["before"],
        json!({"id": 1, "name": "before"}),
        "REPLICA IDENTITY FULL"
    );
    assert_eq!(full[1]["value"]["after"], json!({"id": 1, "name": "after"}));
    assert_eq!(
        full[2]["value"]["op"], "t",
        "truncate, with skipped.operations=none"
    );
    assert_eq!(full[2]["key"], Value::Null);
    api.delete("/connectors/pg-types");
}
