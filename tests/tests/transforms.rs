//! Single message transforms end to end, configured as a Debezium user
//! writes them: the tutorial's `unwrap` + `RegexRouter` on a PostgreSQL
//! source feeding the JDBC sink (with a sink-side transform too), a
//! `Filter` guarded by a predicate, and a config naming a transform sluice
//! does not have, refused with the key to fix.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::connectors::task_status;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::read_topic;
use sluice_tests::postgres::Pg;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// A PostgreSQL source config capturing `schema` with JSON + schemas.
fn source_config(pg: &Pg, prefix: &str, schema: &str, slot: &str) -> Value {
    let mut config = pg.connector_config(prefix, schema, slot);
    config["key.converter.schemas.enable"] = json!("true");
    config["value.converter.schemas.enable"] = json!("true");
    config
}

fn create(api: &Api, name: &str, config: &Value) {
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[test]
fn unwrap_and_regex_router_feed_the_jdbc_sink() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target, prefix, slot) = (ident("src"), ident("dst"), ident("srv"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.customers (id int PRIMARY KEY, name text NOT NULL, email text); \
         INSERT INTO {source}.customers SELECT g, 'name ' || g, 'c' || g || '@example.com' FROM generate_series(1, 50) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let mut config = source_config(&pg, &prefix, &source, &slot);
    for (key, value) in [
        ("transforms", "unwrap,route"),
        (
            "transforms.unwrap.type",
            "io.debezium.transforms.ExtractNewRecordState",
        ),
        ("transforms.unwrap.add.fields", "op,table"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.regex", r"([^.]+)\.([^.]+)\.([^.]+)"),
        ("transforms.route.replacement", "$1.$3"),
    ] {
        config[key] = json!(value);
    }
    create(&api, "unwrapped", &config);
    let routed = format!("{prefix}.customers");
    let sink = json!({
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "connection.url": format!("jdbc:postgresql://{}:{}/{}", env.get("SLUICE_PG_HOST"), env.get("SLUICE_PG_PORT"), env.get("SLUICE_PG_DATABASE")),
        "connection.username": env.get("SLUICE_PG_USER"),
        "connection.password": env.get("SLUICE_PG_PASSWORD"),
        "topics": routed,
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "schema.evolution": "basic",
        "table.name.format": format!("{target}.customers"),
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        // On the sink side too: the e-mail never reaches the replica.
        "transforms": "noEmail",
        "transforms.noEmail.type": "org.apache.kafka.connect.transforms.ReplaceField$Value",
        "transforms.noEmail.exclude": "email",
    });
    create(&api, "flat-sink", &sink);
    let target_table = format!("{target}.customers");
    // The snapshot first, so that each row's op below is known.
    wait_for(
        "the snapshot at the replica",
        Duration::from_secs(120),
        || {
            let count = pg.try_exec(&format!("SELECT count(*) FROM {target_table}"));
            (count.as_deref() == Ok("50")).then_some(())
        },
    );
    pg.exec(&format!(
        "UPDATE {source}.customers SET name = 'renamed ' || id WHERE id % 5 = 0; \
         DELETE FROM {source}.customers WHERE id % 7 = 0; \
         INSERT INTO {source}.customers VALUES (51, 'late', 'late@example.com');"
    ));
    let expected = pg.rows(&format!(
        "SELECT id, name, CASE WHEN id % 5 = 0 THEN 'u' WHEN id = 51 THEN 'c' ELSE 'r' END AS op FROM {source}.customers ORDER BY id"
    ));
    let mut last = Vec::new();
    wait_for(
        "the flat replica to equal the source",
        Duration::from_secs(120),
        || {
            for name in ["unwrapped", "flat-sink"] {
                let task = task_status(&api, name);
                assert_ne!(task["state"], "FAILED", "{name} failed: {task}");
            }
            last = pg
                .try_exec(&format!("SELECT 1 FROM {target_table} LIMIT 1"))
                .ok()
                .map(|_| {
                    pg.rows(&format!(
                        "SELECT id, name, __op AS op FROM {target_table} ORDER BY id"
                    ))
                })
                .unwrap_or_default();
            (last == expected).then_some(())
        },
    );
    // The unwrapped rows carry the added fields; the sink dropped email.
    let columns = pg.rows(&format!(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = '{target}' AND table_name = 'customers' ORDER BY ordinal_position"
    ));
    let columns: Vec<&str> = columns
        .iter()
        .filter_map(|c| c["column_name"].as_str())
        .collect();
    assert_eq!(columns, ["id", "name", "__op", "__table"]);
    // The source wrote only the routed topic, the envelope topic never.
    let topics = api.get("/connectors/unwrapped/topics");
    assert_eq!(
        topics.body["unwrapped"]["topics"],
        json!([routed]),
        "{}",
        topics.text
    );
    // What a plain consumer reads: flat rows, and the tombstone of each delete.
    let records = read_topic(env.bootstrap(), &routed, Duration::from_secs(30), |r| {
        r.iter().filter(|c| c.raw_value.is_none()).count() >= 7
    });
    let first = records.first().expect("records");
    assert_eq!(
        first.value["schema"]["name"],
        json!(format!("{prefix}.{source}.customers.Value")),
        "{}",
        first.value
    );
    assert!(
        first.value["payload"]["email"].is_string(),
        "{}",
        first.value
    );
    assert!(
        records.iter().all(|r| r.value["payload"]["__op"] != "d"),
        "deletes are dropped, their tombstones kept"
    );
    api.delete("/connectors/unwrapped");
    api.delete("/connectors/flat-sink");
}

#[test]
fn a_filter_with_a_predicate_keeps_only_the_matching_tables() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, prefix, slot) = (ident("flt"), ident("srv"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.orders (id int PRIMARY KEY, total int); \
         CREATE TABLE {schema}.audit (id int PRIMARY KEY, what text); \
         INSERT INTO {schema}.orders SELECT g, g * 10 FROM generate_series(1, 20) g; \
         INSERT INTO {schema}.audit SELECT g, 'x' FROM generate_series(1, 20) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    for (key, value) in [
        ("transforms", "onlyOrders"),
        (
            "transforms.onlyOrders.type",
            "org.apache.kafka.connect.transforms.Filter",
        ),
        ("transforms.onlyOrders.predicate", "isOrders"),
        ("transforms.onlyOrders.negate", "true"),
        ("predicates", "isOrders"),
        (
            "predicates.isOrders.type",
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        ),
        ("predicates.isOrders.pattern", r".*\.orders"),
    ] {
        config[key] = json!(value);
    }
    create(&api, "filtered", &config);
    pg.exec(&format!(
        "INSERT INTO {schema}.audit VALUES (21, 'y'); INSERT INTO {schema}.orders VALUES (21, 210);"
    ));
    let orders = format!("{prefix}.{schema}.orders");
    let records = read_topic(env.bootstrap(), &orders, Duration::from_secs(60), |r| {
        r.len() >= 21
    });
    assert_eq!(records.len(), 21);
    // Every audit change was dropped, and the offsets still moved past them:
    // the task is RUNNING and only the orders topic was ever written.
    let topics = api.get("/connectors/filtered/topics");
    assert_eq!(
        topics.body["filtered"]["topics"],
        json!([orders]),
        "{}",
        topics.text
    );
    assert_eq!(task_status(&api, "filtered")["state"], "RUNNING");
    api.delete("/connectors/filtered");
}

#[test]
fn a_transform_sluice_does_not_have_is_refused_naming_the_key() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let mut config = pg.connector_config("srv", "public", "unused_slot");
    config["transforms"] = json!("outbox,typo");
    config["transforms.outbox.type"] = json!("io.debezium.transforms.TimezoneConverter");
    config["transforms.typo.type"] = json!("org.apache.kafka.connect.transforms.RegexRouterr");
    let reply = api.post("/connectors", &json!({"name": "refused", "config": config}));
    assert_eq!(reply.status, 400, "{}", reply.text);
    let message = reply.message();
    assert!(
        message.contains("transforms.outbox.type") && message.contains("not supported"),
        "{message}"
    );
    assert!(
        message.contains("transforms.typo.type") && message.contains("RegexRouterr"),
        "{message}"
    );
    // The validate endpoint reports the same keys.
    config["name"] = json!("refused");
    let report = api.put(
        "/connector-plugins/PostgresConnector/config/validate",
        &config,
    );
    assert_eq!(report.status, 200, "{}", report.text);
    let failing: Vec<&str> = report.body["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .filter(|c| !c["value"]["errors"].as_array().is_some_and(Vec::is_empty))
        .filter_map(|c| c["value"]["name"].as_str())
        .collect();
    assert!(
        failing.contains(&"transforms.outbox.type") && failing.contains(&"transforms.typo.type"),
        "{failing:?}"
    );
    // Nothing was created.
    assert_eq!(api.get("/connectors/refused").status, 404);
}

#[test]
fn masked_and_truncated_columns_reach_kafka_masked() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, prefix, slot) = (ident("pii"), ident("srv"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.people (id int PRIMARY KEY, email text, note text, age int, name varchar(12)); \
         INSERT INTO {schema}.people VALUES (1, 'ann@example.com', 'a very long note', 30, 'Ann Smith');"
    ));
    let registry_port = sluice_tests::process::free_port();
    let registry = format!("http://127.0.0.1:{registry_port}");
    let worker = Worker::start_with(
        &env,
        &["--registry-listen", &format!("127.0.0.1:{registry_port}")],
    );
    let api = worker.api();
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["key.converter"] = json!("io.confluent.connect.avro.AvroConverter");
    config["value.converter"] = json!("io.confluent.connect.avro.AvroConverter");
    config["column.mask.with.8.chars"] = json!(format!("{schema}.people.email"));
    config["column.truncate.to.6.chars"] = json!(format!("{schema}\\.peo.*\\.note"));
    config["column.mask.hash.v2.SHA-256.with.salt.pepper"] = json!(format!("{schema}.people.name"));
    config["column.propagate.source.type"] = json!(format!("{schema}.PEOPLE.(name|age)"));
    create(&api, "masked", &config);
    let topic = format!("{prefix}.{schema}.people");
    // The snapshot first, so the update below is a change event of its own.
    read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        !r.is_empty()
    });
    pg.exec(&format!(
        "UPDATE {schema}.people SET email = 'ann.new@example.com', note = 'another long note', name = 'Ann Jones' WHERE id = 1;"
    ));
    // An independent client decodes through the registry: what any
    // consumer of the topic sees.
    let records = sluice_tests::kafka::python_avro_decode(env.bootstrap(), &topic, &registry, 2);
    assert_eq!(records.len(), 2, "{records:?}");
    let snapshot = &records[0]["value"];
    assert_eq!(snapshot["after"]["email"], "********", "{snapshot}");
    assert_eq!(snapshot["after"]["note"], "a very", "{snapshot}");
    assert_eq!(snapshot["after"]["age"], 30, "{snapshot}");
    let update = &records[1]["value"];
    assert_eq!(update["after"]["email"], "********", "{update}");
    assert_eq!(update["after"]["note"], "anothe", "{update}");
    // Hashed as Debezium's v2 (salt + UTF-8), cut to varchar(12); the
    // digests are Python's hashlib.sha256(b"pepper" + name)[:12].
    assert_eq!(snapshot["after"]["name"], "21f91f3c499a", "{snapshot}");
    assert_eq!(update["after"]["name"], "749921948782", "{update}");
    // The registered schema says what Debezium's says: masked, truncated,
    // and the propagated source types.
    let latest = Api::new(&registry)
        .get(&format!("/subjects/{topic}-value/versions/latest"))
        .body;
    let text = latest["schema"].as_str().unwrap_or_default().to_owned();
    for expected in [
        r#""masked":"true""#,
        r#""truncateLength":"6""#,
        r#""__debezium.source.column.type":"VARCHAR""#,
        r#""__debezium.source.column.length":"12""#,
        r#""__debezium.source.column.type":"INT4""#,
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let raw = read_topic(env.bootstrap(), &topic, Duration::from_secs(30), |r| {
        r.len() >= 2
    });
    assert!(
        raw.iter().all(
            |r| !String::from_utf8_lossy(r.raw_value.as_deref().unwrap_or_default())
                .contains("example.com")
        ),
        "no e-mail address in clear on the topic"
    );
    api.delete("/connectors/masked");
}

#[test]
fn keys_sluice_does_not_implement_are_refused_or_named_as_without_effect() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let base = pg.connector_config("srv", "public", "unused_slot");
    // Refused: each alone gets a 400 naming it.
    for (key, value) in [
        (
            "column.mask.hash.SHA-999.with.salt.pepper",
            "public.t.email",
        ),
        ("snapshot.select.statement.overrides", "public.t"),
        ("topic.delimiter", "/"),
        ("converters", "boolean"),
        ("incremental.snapshot.chunk.size", "1024"),
        ("column.truncate.to.0.chars", "public.t.email"),
        (
            "header.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
    ] {
        let mut config = base.clone();
        config[key] = json!(value);
        let reply = api.post("/connectors", &json!({"name": "refused", "config": config}));
        assert_eq!(reply.status, 400, "{key}: {}", reply.text);
        assert!(reply.message().contains(key), "{key}: {}", reply.message());
    }
    // Without effect: accepted (at Debezium's default where that matters).
    let mut config = base.clone();
    for (key, value) in [
        ("poll.interval.ms", "500"),
        ("topic.delimiter", "."),
        ("snapshot.locking.mode", "none"),
        (
            "header.converter",
            "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        ),
    ] {
        config[key] = json!(value);
    }
    config["name"] = json!("refused");
    let report = api.put(
        "/connector-plugins/PostgresConnector/config/validate",
        &config,
    );
    assert_eq!(report.body["error_count"], 0, "{}", report.text);
}

#[test]
fn the_outbox_pattern_routes_events_per_aggregate_type() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, prefix, slot) = (ident("obx"), ident("srv"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, \
           aggregateid text NOT NULL, type text NOT NULL, payload jsonb);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    for (key, value) in [
        ("table.include.list", format!("{schema}.outbox")),
        ("transforms", "outbox".to_owned()),
        (
            "transforms.outbox.type",
            "io.debezium.transforms.outbox.EventRouter".to_owned(),
        ),
        (
            "transforms.outbox.route.topic.replacement",
            format!("{prefix}.${{routedByValue}}.events"),
        ),
        (
            "transforms.outbox.table.expand.json.payload",
            "true".to_owned(),
        ),
        (
            "transforms.outbox.table.fields.additional.placement",
            "type:header:eventType".to_owned(),
        ),
    ] {
        config[key] = json!(value);
    }
    create(&api, "outbox", &config);
    wait_for("the connector to stream", Duration::from_secs(60), || {
        (task_status(&api, "outbox")["progress"]["phase"] == "streaming").then_some(())
    });
    // The outbox is written and emptied in the same transaction, as
    // applications do: only the inserts become events.
    pg.exec(&format!(
        "BEGIN; \
         INSERT INTO {schema}.outbox VALUES ('11111111-1111-1111-1111-111111111111', 'Order', 'o-1', 'OrderCreated', '{{\"total\": 5, \"lines\": [\"book\"]}}'); \
         INSERT INTO {schema}.outbox VALUES ('22222222-2222-2222-2222-222222222222', 'Customer', 'c-9', 'CustomerMoved', '{{\"city\": \"Lyon\"}}'); \
         INSERT INTO {schema}.outbox VALUES ('33333333-3333-3333-3333-333333333333', 'Order', 'o-1', 'OrderPaid', '{{\"total\": 5, \"lines\": []}}'); \
         DELETE FROM {schema}.outbox; \
         COMMIT;"
    ));
    let orders = read_topic(
        env.bootstrap(),
        &format!("{prefix}.Order.events"),
        Duration::from_secs(60),
        |r| r.len() >= 2,
    );
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(orders[0].key, json!("o-1"));
    assert_eq!(orders[0].value, json!({"total": 5, "lines": ["book"]}));
    let header = |r: &sluice_tests::kafka::Consumed, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(
        header(&orders[0], "id").as_deref(),
        Some("11111111-1111-1111-1111-111111111111")
    );
    assert_eq!(
        header(&orders[1], "eventType").as_deref(),
        Some("OrderPaid")
    );
    let customers = read_topic(
        env.bootstrap(),
        &format!("{prefix}.Customer.events"),
        Duration::from_secs(30),
        |r| !r.is_empty(),
    );
    assert_eq!(customers[0].value, json!({"city": "Lyon"}));
    // No record of the outbox table itself, no tombstone of its deletes.
    let topics = api.get("/connectors/outbox/topics");
    let mut listed: Vec<String> = topics.body["outbox"]["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            format!("{prefix}.Customer.events"),
            format!("{prefix}.Order.events")
        ]
    );
    api.delete("/connectors/outbox");
}

#[test]
fn shards_route_to_one_logical_topic_with_keys_kept_apart() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, prefix, slot) = (ident("shr"), ident("srv"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.orders_1 (id int PRIMARY KEY, total int); \
         CREATE TABLE {schema}.orders_2 (id int PRIMARY KEY, total int); \
         INSERT INTO {schema}.orders_1 VALUES (1, 10); INSERT INTO {schema}.orders_2 VALUES (1, 20);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    for (key, value) in [
        ("transforms", "shards".to_owned()),
        (
            "transforms.shards.type",
            "io.debezium.transforms.ByLogicalTableRouter".to_owned(),
        ),
        (
            "transforms.shards.topic.regex",
            r"(.*)\.orders_\d+".to_owned(),
        ),
        (
            "transforms.shards.topic.replacement",
            "$1.orders".to_owned(),
        ),
    ] {
        config[key] = json!(value);
    }
    create(&api, "shards", &config);
    let logical = format!("{prefix}.{schema}.orders");
    let records = read_topic(env.bootstrap(), &logical, Duration::from_secs(60), |r| {
        r.len() >= 2
    });
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| {
            r.key["__dbz__physicalTableIdentifier"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("{prefix}.{schema}.orders_1"),
            format!("{prefix}.{schema}.orders_2")
        ],
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.key["id"] == 1));
    api.delete("/connectors/shards");
}
