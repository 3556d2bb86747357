//! MariaDB column types through the Avro converter, from the snapshot and
//! from the binlog, decoded by an independent client (Python's
//! confluent-kafka `AvroDeserializer` through sluice's registry), with the
//! values Debezium documents for each type; a column added mid-stream
//! becomes a second schema version with its default.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{read_topic, topic_layout};
use sluice_tests::mariadb::Maria;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

const AVRO: &str = "io.confluent.connect.avro.AvroConverter";

/// `count` records of `topic` decoded by Python: [{"key", "value"}].
fn python_decode(env: &TestEnv, topic: &str, registry: &str, count: usize) -> Vec<Value> {
    sluice_tests::kafka::python_avro_decode(env.bootstrap(), topic, registry, count)
}

const COLUMNS: &str = "id INT PRIMARY KEY, c_bool BOOLEAN, c_tiny TINYINT, c_utiny TINYINT UNSIGNED, \
    c_small SMALLINT, c_usmall SMALLINT UNSIGNED, c_medium MEDIUMINT, c_int INT, c_uint INT UNSIGNED, \
    c_big BIGINT, c_ubig BIGINT UNSIGNED, c_dec DECIMAL(10,3), c_float FLOAT, c_double DOUBLE, \
    c_char CHAR(3), c_varchar VARCHAR(20), c_text TEXT, c_latin VARCHAR(10) CHARACTER SET latin1, \
    c_binary BINARY(2), c_varbinary VARBINARY(4), c_blob BLOB, c_date DATE, c_time TIME(6), \
    c_dt DATETIME, c_dt6 DATETIME(6), c_ts TIMESTAMP(3) NULL, c_year YEAR, c_json JSON, \
    c_enum ENUM('a','b','c'), c_set SET('x','y','z'), c_bit1 BIT(1), c_bits BIT(10), c_geo POINT, \
    c_zero DATE NULL, c_null VARCHAR(5) NULL, c_uuid UUID, c_inet6 INET6, c_inet4 INET4";

const ROW_VALUES: &str = "true, -5, 250, -300, 65000, -8000000, -2000000000, 4000000000, -9000000000000, \
    18446744073709551615, 12.345, 1.5, 2.25, 'ab', 'varchar', 'text', 'café', 0x0100, 0x010203, 0x0a0b, \
    '2024-02-29', '-10:11:12.123456', '2024-02-29 10:11:12', '2024-02-29 10:11:12.123456', \
    '2024-02-29 10:11:12.5', 2024, '{\"a\": 1}', 'b', 'x,z', b'1', b'1000000001', \
    ST_GeomFromText('POINT(1 2)'), '0000-00-00', NULL, '550e8400-e29b-41d4-a716-446655440000', \
    '::ffff:10.0.0.0', '10.0.0.0'";

/// What Debezium documents for each column of `ROW_VALUES` (as Python's
/// AvroDeserializer returns it, printed with `json.dumps(default=str)`).
fn expected_row() -> Value {
    json!({
        // BOOLEAN is TINYINT(1): an INT16 in Debezium's default mapping.
        "c_bool": 1, "c_tiny": -5, "c_utiny": 250, "c_small": -300, "c_usmall": 65000,
        "c_medium": -8000000, "c_int": -2000000000, "c_uint": 4000000000u64, "c_big": -9000000000000i64,
        // bigint.unsigned.handling.mode=long: the value above 2^63-1 wraps.
        "c_ubig": -1,
        "c_dec": "12.345", "c_float": 1.5, "c_double": 2.25,
        "c_char": "ab", "c_varchar": "varchar", "c_text": "text", "c_latin": "café",
        // BINARY(2) keeps its trailing zero byte, which the binlog leaves out.
        "c_binary": "b'\\x01\\x00'", "c_varbinary": "b'\\x01\\x02\\x03'", "c_blob": "b'\\n\\x0b'",
        "c_date": 19782,
        "c_time": -36672123456i64,
        "c_dt": 1709201472000i64,
        "c_dt6": 1709201472123456i64,
        // TIMESTAMP(3): three fractional digits, written in full as Debezium 2.2+.
        "c_ts": "2024-02-29T10:11:12.500Z",
        "c_year": 2024,
        "c_json": "{\"a\": 1}",
        "c_enum": "b", "c_set": "x,z",
        "c_bit1": true,
        // BIT(10) 0b1000000001 as little-endian bytes.
        "c_bits": "b'\\x01\\x02'",
        // POINT is Debezium's Point struct: coordinates beside WKB and SRID.
        "c_geo": {"x": 1.0, "y": 2.0, "wkb": "b'\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\xf0?\\x00\\x00\\x00\\x00\\x00\\x00\\x00@'", "srid": null},
        "c_zero": null,
        "c_null": null,
        // MariaDB's own types read as their text from the binlog too, whose
        // bytes lack the trailing zeros.
        "c_uuid": "550e8400-e29b-41d4-a716-446655440000",
        "c_inet6": "::ffff:10.0.0.0",
        "c_inet4": "10.0.0.0",
    })
}

fn assert_row(after: &Value, id: i64) {
    assert_eq!(after["id"], id, "{after}");
    for (column, value) in expected_row().as_object().expect("object") {
        assert_eq!(
            &after[column], value,
            "column {column} of row {id}: {after}"
        );
    }
}

/// A MySQL source capturing `database` with Avro keys and values; its
/// topic prefix and config.
fn avro_source(db: &Maria, database: &str) -> (String, Value) {
    let prefix = unique("srv").replace('-', "_");
    let mut config = db.connector_config(&prefix, database, 7000 + std::process::id() % 1000);
    config["key.converter"] = json!(AVRO);
    config["value.converter"] = json!(AVRO);
    (prefix, config)
}

/// Creates connector `name` with `config` and waits until its task streams.
fn create_streaming(api: &Api, name: &str, config: &Value) {
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        let task = api.get(&format!("/connectors/{name}/status")).body["tasks"][0].clone();
        assert_ne!(task["state"], "FAILED", "{task}");
        (task["progress"]["phase"] == "streaming").then_some(())
    });
}

#[test]
fn every_type_decodes_as_debezium_documents_from_snapshot_and_binlog() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let database = unique("types").replace('-', "_");
    db.exec(&format!(
        "SET time_zone = '+00:00'; CREATE DATABASE {database}; \
         CREATE TABLE {database}.all_types ({COLUMNS}); \
         INSERT INTO {database}.all_types VALUES (1, {ROW_VALUES});"
    ));
    let (worker, registry) = Worker::with_registry(&env);
    let api = worker.api();
    let (prefix, config) = avro_source(&db, &database);
    create_streaming(&api, "my-types", &config);
    db.exec(&format!(
        "SET time_zone = '+00:00'; INSERT INTO {database}.all_types VALUES (2, {ROW_VALUES}); \
         ALTER TABLE {database}.all_types ADD COLUMN c_new INT NOT NULL DEFAULT 7; \
         INSERT INTO {database}.all_types (id) VALUES (3);"
    ));
    let rows = python_decode(
        &env,
        &format!("{prefix}.{database}.all_types"),
        &registry,
        3,
    );
    assert_eq!(rows[0]["value"]["op"], "r");
    assert_eq!(rows[0]["key"], json!({"id": 1}));
    assert_row(&rows[0]["value"]["after"], 1);
    assert_eq!(rows[1]["value"]["op"], "c");
    assert_row(&rows[1]["value"]["after"], 2);
    let added = &rows[2]["value"]["after"];
    assert_eq!(added["c_new"], 7, "the column added mid-stream: {added}");
    let source = &rows[1]["value"]["source"];
    assert_eq!(source["connector"], "mysql");
    assert_eq!(source["snapshot"], "false");
    assert!(
        source["pos"].as_i64().is_some() && source["server_id"] == 1,
        "{source}"
    );
    let subject = format!("{prefix}.{database}.all_types-value");
    let versions = Api::new(&registry)
        .get(&format!("/subjects/{subject}/versions"))
        .body;
    assert_eq!(
        versions,
        json!([1, 2]),
        "the ALTER made a second schema version"
    );
    let latest = Api::new(&registry)
        .get(&format!("/subjects/{subject}/versions/latest"))
        .body;
    let schema: Value =
        serde_json::from_str(latest["schema"].as_str().unwrap_or("{}")).expect("schema JSON");
    let text = schema.to_string();
    assert!(
        text.contains("\"name\":\"c_new\"") && text.contains("\"default\":7"),
        "{text}"
    );
    assert!(
        text.contains("io.debezium.time.MicroTime") && text.contains("io.debezium.data.Bits"),
        "{text}"
    );
    api.delete("/connectors/my-types");
}

#[test]
fn tinyint_one_is_a_boolean_only_where_the_boolean_converter_selects_it() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let database = unique("bools").replace('-', "_");
    db.exec(&format!(
        "CREATE DATABASE {database}; \
         CREATE TABLE {database}.flags (id INT PRIMARY KEY, c_bool BOOLEAN, c_flag TINYINT(1)); \
         INSERT INTO {database}.flags VALUES (1, true, 1);"
    ));
    let (worker, registry) = Worker::with_registry(&env);
    let api = worker.api();
    let (prefix, mut config) = avro_source(&db, &database);
    config["converters"] = json!("boolean");
    config["boolean.type"] =
        json!("io.debezium.connector.binlog.converters.TinyIntOneToBooleanConverter");
    config["boolean.selector"] = json!(format!("{database}.flags.c_flag"));
    let reply = api.post(
        "/connectors",
        &json!({"name": "my-bools", "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let topic = format!("{prefix}.{database}.flags");
    // The Python client only sees topics that exist when it subscribes.
    sluice_tests::kafka::read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        !r.is_empty()
    });
    let rows = python_decode(&env, &topic, &registry, 1);
    let after = &rows[0]["value"]["after"];
    assert_eq!(
        after["c_bool"], 1,
        "not selected: an integer, as Debezium: {after}"
    );
    assert_eq!(after["c_flag"], true, "selected: a boolean: {after}");
    // A converter class sluice cannot load is refused by name.
    let mut config = db.connector_config(&prefix, &database, 7001 + std::process::id() % 1000);
    config["converters"] = json!("money");
    config["money.type"] = json!("com.example.MoneyConverter");
    let reply = api.post(
        "/connectors",
        &json!({"name": "my-money", "config": config}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("money.type"),
        "{}",
        reply.message()
    );
    api.delete("/connectors/my-bools");
}

#[test]
fn the_mariadb_connector_class_writes_mariadbs_source_block() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let database = unique("flavor").replace('-', "_");
    db.exec(&format!(
        "CREATE DATABASE {database}; CREATE TABLE {database}.t (id INT PRIMARY KEY); INSERT INTO {database}.t VALUES (1);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = unique("srv").replace('-', "_");
    let mut config = db.connector_config(&prefix, &database, 7000 + std::process::id() % 1000);
    config["connector.class"] = json!("io.debezium.connector.mariadb.MariaDbConnector");
    config["value.converter.schemas.enable"] = json!("true");
    let reply = api.post("/connectors", &json!({"name": "maria", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let records = sluice_tests::kafka::read_topic(
        env.bootstrap(),
        &format!("{prefix}.{database}.t"),
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    let value = &records.first().expect("the snapshot row").value;
    assert_eq!(
        value["payload"]["source"]["connector"], "mariadb",
        "{value}"
    );
    let source_schema = value["schema"]["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["field"] == "source"))
        .expect("a source field");
    assert_eq!(
        source_schema["name"],
        "io.debezium.connector.mariadb.Source"
    );
}

/// Debezium's history producer is its own: it writes each history record
/// as a plain JSON string with no key to partition 0 of a topic it creates
/// with one partition and unlimited retention, outside the connector's
/// converters and transforms. A Debezium that reads that topic (a user
/// moving back) expects that one partition, cannot parse Avro-framed
/// documents, and finds the history gone once retention deleted it.
#[test]
fn the_schema_history_topic_is_kept_as_debeziums_own_producer_keeps_it() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let database = unique("hist").replace('-', "_");
    db.exec(&format!(
        "CREATE DATABASE {database}; CREATE TABLE {database}.t (id INT PRIMARY KEY, a INT); \
         INSERT INTO {database}.t VALUES (1, 1);"
    ));
    let (worker, registry) = Worker::with_registry(&env);
    let api = worker.api();
    let (prefix, mut config) = avro_source(&db, &database);
    let history = format!("{prefix}.history");
    config["schema.history.internal.kafka.topic"] = json!(history);
    // Data topics of three partitions, renamed by a transform: neither
    // may touch the history topic.
    config["topic.creation.default.partitions"] = json!("3");
    config["transforms"] = json!("route");
    config["transforms.route.type"] = json!("org.apache.kafka.connect.transforms.RegexRouter");
    config["transforms.route.regex"] = json!("(.*)");
    config["transforms.route.replacement"] = json!("$1.routed");
    create_streaming(&api, "my-history", &config);
    db.exec(&format!(
        "ALTER TABLE {database}.t ADD COLUMN b INT; INSERT INTO {database}.t VALUES (2, 2, 2);"
    ));
    // The change after the ALTER reached its (routed) topic (keys spread
    // over three partitions: read in any order).
    let data = python_decode(&env, &format!("{prefix}.{database}.t.routed"), &registry, 2);
    assert!(
        data.iter().any(|r| r["value"]["after"]["b"] == 2),
        "{data:?}"
    );

    let records = read_topic(env.bootstrap(), &history, Duration::from_secs(30), |r| {
        r.iter().any(|c| {
            c.value["ddl"]
                .as_str()
                .is_some_and(|d| d.starts_with("ALTER"))
        })
    });
    assert!(
        records.len() >= 2,
        "the snapshot's and the ALTER's records: {records:?}"
    );
    for record in &records {
        assert_eq!(
            record.raw_key_bytes, None,
            "no key, as Debezium writes them"
        );
        assert_eq!(record.partition, 0);
        let text = String::from_utf8(record.raw_value.clone().unwrap_or_default())
            .expect("the value is text");
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the value is a plain JSON document ({e}): {text:?}"));
        assert_eq!(document["source"]["server"], json!(prefix), "{document}");
        assert!(document["position"]["file"].is_string(), "{document}");
        assert!(document["position"]["pos"].is_u64(), "{document}");
        assert!(
            document["ddl"].is_string() && document["tableChanges"].is_array(),
            "{document}"
        );
    }
    let alter = records
        .iter()
        .find(|c| {
            c.value["ddl"]
                .as_str()
                .is_some_and(|d| d.starts_with("ALTER"))
        })
        .expect("the ALTER's record");
    assert!(
        alter.value["ddl"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("{database}.t"))),
        "{:?}",
        alter.value
    );
    // The table as Debezium's history reader parses it
    // (JsonTableChangeSerializer): a quoted id, the key's columns, and per
    // column its name, java.sql.Types code, type name, position and
    // optionality.
    let change = &alter.value["tableChanges"][0];
    assert_eq!(
        change["id"],
        json!(format!("\"{database}\".\"t\"")),
        "{change}"
    );
    assert_eq!(
        change["table"]["primaryKeyColumnNames"],
        json!(["id"]),
        "{change}"
    );
    let columns = change["table"]["columns"].as_array().expect("columns");
    let b = columns
        .iter()
        .find(|c| c["name"] == "b")
        .expect("the added column");
    assert_eq!(
        (
            &b["jdbcType"],
            &b["typeName"],
            &b["position"],
            &b["optional"]
        ),
        (&json!(4), &json!("INT"), &json!(3), &json!(true)),
        "{b}"
    );

    let (partitions, configs) = topic_layout(env.bootstrap(), &history);
    assert_eq!(
        partitions, 1,
        "one partition, as Debezium creates and reads it"
    );
    assert_eq!(
        configs.get("cleanup.policy").map(String::as_str),
        Some("delete"),
        "{configs:?}"
    );
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("9223372036854775807"),
        "kept for ever: {configs:?}"
    );
    assert_eq!(
        configs.get("retention.bytes").map(String::as_str),
        Some("-1"),
        "{configs:?}"
    );
    let subjects = Api::new(&registry).get("/subjects").body;
    assert!(
        !subjects.to_string().contains(&history),
        "no schema is registered for the history topic: {subjects}"
    );
    assert!(
        api.get("/connectors/my-history/topics")
            .body
            .to_string()
            .contains(".routed"),
        "the transform renamed the data topics"
    );
    api.delete("/connectors/my-history");
}
