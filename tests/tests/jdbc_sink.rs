//! The JDBC sink end to end, driven through the REST API: PostgreSQL and
//! MariaDB sources → broker → the sink into PostgreSQL and MariaDB
//! targets, checked by reading the target tables.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::connectors::task_status as status;
use sluice_tests::env::TestEnv;
use sluice_tests::mariadb::Maria;
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

/// id, qty, note, price as text — comparable across PostgreSQL and MariaDB.
type Rows = Vec<[String; 4]>;

const ITEMS_COLUMNS: &str = "id, qty, note, price";

fn pg_items(pg: &Pg, table: &str) -> Rows {
    pg.rows(&format!(
        "SELECT id::text, qty::text, coalesce(note, 'NULL') AS note, coalesce(price::text, 'NULL') AS price FROM {table} t ORDER BY t.id"
    ))
    .iter()
    .map(|r| {
        ["id", "qty", "note", "price"].map(|k| r[k].as_str().unwrap_or_default().to_owned())
    })
    .collect()
}

fn maria_items(db: &Maria, table: &str) -> Rows {
    db.rows(&format!("SELECT {ITEMS_COLUMNS} FROM {table} ORDER BY id"))
        .into_iter()
        .map(|r| {
            let get = |i: usize| r.get(i).cloned().unwrap_or_default();
            [get(0), get(1), get(2), get(3)]
        })
        .collect()
}

/// A JDBC sink config (upserts and deletes by the record key, tables
/// created as needed) reading `topic` with JSON + schemas.
fn sink_config(url: &str, user: &str, password: &str, topic: &str, table_format: &str) -> Value {
    json!({
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "connection.url": url,
        "connection.username": user,
        "connection.password": password,
        "topics": topic,
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "schema.evolution": "basic",
        "table.name.format": table_format,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    })
}

/// Waits until `read` gives the source rows and the target rows equal;
/// on timeout, fails showing where they differ.
fn wait_equal(
    api: &sluice_tests::api::Api,
    sink: &str,
    what: &str,
    mut read: impl FnMut() -> (Rows, Rows),
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let task = status(api, sink);
        assert_ne!(task["state"], "FAILED", "sink failed: {task}");
        let (source, target) = read();
        if source == target {
            return;
        }
        if std::time::Instant::now() > deadline {
            let first = source
                .iter()
                .zip(&target)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a:?} vs {b:?}"));
            panic!(
                "timed out waiting for {what}: source {} rows, target {} rows, first difference {first:?}",
                source.len(),
                target.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn postgres_source_to_a_mariadb_target() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let (source, target) = (ident("src"), ident("dst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g || ' ø', g * 1.25 FROM generate_series(1, 200) g;"
    ));
    db.exec(&format!("CREATE DATABASE {target}"));
    let worker = Worker::start(&env);
    let api = worker.api();
    let (prefix, slot) = (ident("srv"), ident("slot"));
    let mut config = pg.connector_config(&prefix, &source, &slot);
    config["key.converter.schemas.enable"] = json!("true");
    config["value.converter.schemas.enable"] = json!("true");
    config["skipped.operations"] = json!("none");
    assert_eq!(
        api.post("/connectors", &json!({"name": "pg-src", "config": config}))
            .status,
        201
    );
    let url = format!(
        "jdbc:mariadb://{}:{}/{target}",
        env.get("SLUICE_MARIADB_HOST"),
        env.get("SLUICE_MARIADB_PORT")
    );
    let sink = sink_config(
        &url,
        env.get("SLUICE_MARIADB_USER"),
        env.get("SLUICE_MARIADB_PASSWORD"),
        &format!("{prefix}.{source}.items"),
        "${source.table}",
    );
    let mut sink = sink;
    sink["truncate.enabled"] = json!("true");
    let reply = api.post(
        "/connectors",
        &json!({"name": "maria-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    pg.exec(&format!(
        "UPDATE {source}.items SET qty = -1, note = NULL, price = NULL WHERE id % 7 = 0; \
         DELETE FROM {source}.items WHERE id % 11 = 0; \
         INSERT INTO {source}.items SELECT g, 1, 'late', 0.01 FROM generate_series(201, 230) g; \
         TRUNCATE {source}.items; \
         INSERT INTO {source}.items SELECT g, 2, 'after truncate', 9.99 FROM generate_series(1, 50) g; \
         DELETE FROM {source}.items WHERE id = 3;"
    ));
    wait_equal(
        &api,
        "maria-sink",
        "the MariaDB target to equal the source",
        || {
            (
                pg_items(&pg, &format!("{source}.items")),
                db.try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
                    .map(|_| maria_items(&db, &format!("{target}.items")))
                    .unwrap_or_default(),
            )
        },
    );
    api.delete("/connectors/pg-src");
    api.delete("/connectors/maria-sink");
}

#[test]
fn mariadb_source_to_a_postgres_target() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let (source, target) = (ident("msrc"), ident("pdst"));
    db.exec(&format!(
        "CREATE DATABASE {source}; \
         CREATE TABLE {source}.items (id INT PRIMARY KEY, qty INT NOT NULL, note VARCHAR(40), price DECIMAL(12,2)); \
         INSERT INTO {source}.items SELECT seq, seq % 100, CONCAT('note ', seq), seq * 1.25 FROM seq_1_to_200;"
    ));
    pg.exec(&format!("CREATE SCHEMA {target}"));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("msrv");
    let server_id = 6000 + std::process::id() % 1000;
    let mut config = db.connector_config(&prefix, &source, server_id);
    config["key.converter.schemas.enable"] = json!("true");
    config["value.converter.schemas.enable"] = json!("true");
    assert_eq!(
        api.post("/connectors", &json!({"name": "my-src", "config": config}))
            .status,
        201
    );
    let url = format!(
        "jdbc:postgresql://{}:{}/{}",
        env.get("SLUICE_PG_HOST"),
        env.get("SLUICE_PG_PORT"),
        env.get("SLUICE_PG_DATABASE")
    );
    let sink = sink_config(
        &url,
        env.get("SLUICE_PG_USER"),
        env.get("SLUICE_PG_PASSWORD"),
        &format!("{prefix}.{source}.items"),
        &format!("{target}.${{source.table}}"),
    );
    let reply = api.post("/connectors", &json!({"name": "pg-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    db.exec(&format!(
        "UPDATE {source}.items SET qty = -1, note = NULL WHERE id % 7 = 0; \
         DELETE FROM {source}.items WHERE id % 11 = 0; \
         INSERT INTO {source}.items SELECT seq, 1, 'late', 0.01 FROM seq_201_to_230;"
    ));
    wait_equal(
        &api,
        "pg-sink",
        "the PostgreSQL target to equal the source",
        || {
            (
                maria_items(&db, &format!("{source}.items")),
                pg.try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
                    .map(|_| pg_items(&pg, &format!("{target}.items")))
                    .unwrap_or_default(),
            )
        },
    );
    api.delete("/connectors/my-src");
    api.delete("/connectors/pg-sink");
}
