//! The JDBC sink end to end: a PostgreSQL source → broker → the sink into
//! another PostgreSQL schema, driven through the REST API, checked by
//! reading the target table.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::connectors::task_status as status;
use sluice_tests::env::TestEnv;
use sluice_tests::postgres::Pg;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// id → (qty, note, price text, updated text) of a table.
fn state(pg: &Pg, table: &str) -> Vec<Value> {
    pg.rows(&format!(
        "SELECT id, qty, note, price::text AS price, to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS updated FROM {table} ORDER BY id"
    ))
}

#[test]
fn postgres_to_postgres_upserts_deletes_and_evolves_the_target() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = (ident("src"), ident("dst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2), \
           updated timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, 300) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let (prefix, slot) = (ident("srv"), ident("slot"));
    let mut config = pg.connector_config(&prefix, &source, &slot);
    config["key.converter.schemas.enable"] = json!("true");
    config["value.converter.schemas.enable"] = json!("true");
    let reply = api.post("/connectors", &json!({"name": "pg-src", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);

    let topic = format!("{prefix}.{source}.items");
    let sink = json!({
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "connection.url": format!("jdbc:postgresql://{}:{}/{}", env.get("SLUICE_PG_HOST"), env.get("SLUICE_PG_PORT"), env.get("SLUICE_PG_DATABASE")),
        "connection.username": env.get("SLUICE_PG_USER"),
        "connection.password": env.get("SLUICE_PG_PASSWORD"),
        "topics": topic,
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "schema.evolution": "basic",
        "table.name.format": format!("{target}.${{source.table}}"),
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    });
    let reply = api.post("/connectors", &json!({"name": "pg-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);

    // Changes while both run: updates, deletes, inserts, a column added.
    pg.exec(&format!(
        "UPDATE {source}.items SET qty = -1, note = NULL WHERE id % 7 = 0; \
         DELETE FROM {source}.items WHERE id % 11 = 0; \
         INSERT INTO {source}.items (id, qty, note, price) SELECT g, 1, 'late ' || g, 0.01 FROM generate_series(301, 320) g;"
    ));
    pg.exec(&format!(
        "ALTER TABLE {source}.items ADD COLUMN colour text; \
         UPDATE {source}.items SET colour = 'red' WHERE id <= 5;"
    ));
    let source_table = format!("{source}.items");
    let target_table = format!("{target}.items");
    let expected = state(&pg, &source_table);
    let mut last = Vec::new();
    wait_for(
        "the target to equal the source",
        Duration::from_secs(120),
        || {
            let task = status(&api, "pg-sink");
            assert_ne!(task["state"], "FAILED", "sink failed: {task}");
            last = pg
                .try_exec(&format!("SELECT 1 FROM {target_table} LIMIT 1"))
                .ok()
                .map(|_| state(&pg, &target_table))
                .unwrap_or_default();
            (last == expected).then_some(())
        },
    );
    assert_eq!(last, expected);
    // The added column reached the target with its values.
    wait_for(
        "the added column at the target",
        Duration::from_secs(60),
        || {
            let red = pg.try_exec(&format!(
                "SELECT count(*) FROM {target_table} WHERE colour = 'red'"
            ));
            (red.as_deref() == Ok("5")).then_some(())
        },
    );
    api.delete("/connectors/pg-src");
    api.delete("/connectors/pg-sink");
}
