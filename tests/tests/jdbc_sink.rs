//! The JDBC sink end to end, driven through the REST API: PostgreSQL and
//! MariaDB sources → broker → the sink into PostgreSQL and MariaDB
//! targets, checked by reading the target tables.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::broker::OwnBroker;
use sluice_tests::connectors::task_status as status;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::read_topic;
use sluice_tests::mariadb::Maria;
use sluice_tests::postgres::Pg;
use sluice_tests::verify::{mariadb_url as maria_url, postgres_url as pg_url, verify};
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

fn assert_verified(source: &str, target: &str, table: &str) {
    let (code, text) = verify(source, target, table);
    assert_eq!(code, 0, "sluice verify: {text}");
    assert!(text.contains("EQUAL"), "{text}");
}

/// A source schema with an `items` table of `rows` rows (the columns
/// [`state`] reads) and an empty target schema; their names.
fn items_schemas(pg: &Pg, rows: u32) -> (String, String) {
    let (source, target) = (ident("src"), ident("dst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2), \
           updated timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, {rows}) g;"
    ));
    (source, target)
}

#[test]
fn postgres_to_postgres_upserts_deletes_and_evolves_the_target() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = items_schemas(&pg, 300);
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "pg-src", &source, &[]);

    let topic = format!("{prefix}.{source}.items");
    let sink = sink_config(
        &env,
        &Target::Postgres,
        &topic,
        &format!("{target}.${{source.table}}"),
    );
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
    // Connect's topics API lists what the sink reads.
    let topics = api.get("/connectors/pg-sink/topics");
    assert_eq!(
        topics.body["pg-sink"]["topics"],
        json!([topic]),
        "{}",
        topics.text
    );
    api.delete("/connectors/pg-src");
    api.delete("/connectors/pg-sink");
}

/// id → (note, data as hex) of a table.
fn notes(pg: &Pg, table: &str) -> Vec<Value> {
    pg.rows(&format!(
        "SELECT id, note, encode(data, 'hex') AS data FROM {table} ORDER BY id"
    ))
}

/// The PostgreSQL target loads each batch through COPY into a staging
/// table: text that COPY frames with (tabs, newlines, backslashes, a
/// literal `\N`), empty text, NULL and bytes must arrive as they left; a
/// truncate between writes of one table in one batch must not keep the
/// rows staged before it; and `insert.mode=update` only updates rows the
/// target has.
#[test]
fn a_postgres_target_takes_awkward_text_truncates_between_writes_and_update_mode() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target, update_target) = (ident("src"), ident("dst"), ident("upd"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; CREATE SCHEMA {update_target}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, note text, data bytea); \
         INSERT INTO {source}.items SELECT g, 'n ' || g, '\\x01'::bytea FROM generate_series(1, 30) g; \
         CREATE TABLE {update_target}.items (id int PRIMARY KEY, note text, data bytea); \
         INSERT INTO {update_target}.items SELECT g, 'old', NULL FROM generate_series(1, 20) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(
        &api,
        &pg,
        "pg-src",
        &source,
        &[("skipped.operations", "none")],
    );
    let topic = format!("{prefix}.{source}.items");
    let mut upsert = sink_config(&env, &Target::Postgres, &topic, &format!("{target}.items"));
    upsert["truncate.enabled"] = json!("true");
    let mut update = sink_config(
        &env,
        &Target::Postgres,
        &topic,
        &format!("{update_target}.items"),
    );
    update["insert.mode"] = json!("update");
    update["delete.enabled"] = json!("false");
    let reply = api.post(
        "/connectors",
        &json!({"name": "upsert-sink", "config": upsert}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    // The snapshot is applied first, so the transaction below reaches the
    // sink as changes (a snapshot taken after it would show only its result).
    let target_table = format!("{target}.items");
    wait_for(
        "the snapshot at the target",
        Duration::from_secs(120),
        || {
            let count = pg.try_exec(&format!("SELECT count(*) FROM {target_table}"));
            (count.as_deref() == Ok("30")).then_some(())
        },
    );
    // One source transaction: writes, a truncate, writes again.
    pg.exec(&format!(
        "BEGIN; \
         UPDATE {source}.items SET note = 'before truncate' WHERE id <= 5; \
         DELETE FROM {source}.items WHERE id = 6; \
         TRUNCATE {source}.items; \
         INSERT INTO {source}.items SELECT g, 'again ' || g, '\\x02'::bytea FROM generate_series(1, 10) g; \
         UPDATE {source}.items SET note = E'tab\\there\\nnew line \\\\ back \\\\N cr\\r', \
           data = '\\x005c0a09ff'::bytea WHERE id = 1; \
         UPDATE {source}.items SET note = '', data = ''::bytea WHERE id = 2; \
         UPDATE {source}.items SET note = NULL, data = NULL WHERE id = 3; \
         COMMIT;"
    ));
    let expected = notes(&pg, &format!("{source}.items"));
    assert_eq!(expected.len(), 10);
    assert_eq!(
        expected[0]["note"],
        json!("tab\there\nnew line \\ back \\N cr\r")
    );
    wait_for(
        "the upsert target to equal the source",
        Duration::from_secs(120),
        || {
            let task = status(&api, "upsert-sink");
            assert_ne!(task["state"], "FAILED", "sink failed: {task}");
            let rows = pg
                .try_exec(&format!("SELECT 1 FROM {target_table} LIMIT 1"))
                .map(|_| notes(&pg, &target_table))
                .unwrap_or_default();
            (rows == expected).then_some(())
        },
    );
    // Update mode, reading the same topic from its start: ids 1..10 take
    // their last values, 11..20 their snapshot values; ids 21..30 were
    // never in the target and stay out.
    let reply = api.post(
        "/connectors",
        &json!({"name": "update-sink", "config": update}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let update_table = format!("{update_target}.items");
    let mut wanted: Vec<Value> = expected.clone();
    wanted.extend((11..=20).map(|g| json!({"id": g, "note": format!("n {g}"), "data": "01"})));
    let mut last = Vec::new();
    wait_for(
        "the update-mode target to take the updates",
        Duration::from_secs(120),
        || {
            let task = status(&api, "update-sink");
            assert_ne!(task["state"], "FAILED", "sink failed: {task}");
            last = notes(&pg, &update_table);
            (last == wanted).then_some(())
        },
    );
    api.delete("/connectors/pg-src");
    api.delete("/connectors/upsert-sink");
    api.delete("/connectors/update-sink");
}

/// id, qty, note, price as text — comparable across PostgreSQL and MariaDB.
type Rows = Vec<[String; 4]>;

const ITEMS_COLUMNS: &str = "id, qty, note, price";

/// The value of `name` for task 0 of `connector` in /metrics text.
fn metric(metrics: &str, name: &str, connector: &str) -> f64 {
    let prefix = format!("{name}{{connector=\"{connector}\",task=\"0\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for {connector} in:\n{metrics}"))
}

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

/// Where a sink writes.
enum Target<'a> {
    /// The test PostgreSQL database.
    Postgres,
    /// A database of the test MariaDB.
    MariaDb(&'a str),
}

/// A JDBC sink config (upserts and deletes by the record key, tables
/// created as needed) reading `topic` with JSON + schemas.
fn sink_config(env: &TestEnv, target: &Target<'_>, topic: &str, table_format: &str) -> Value {
    let (url, user, password) = match target {
        Target::Postgres => (
            format!(
                "jdbc:postgresql://{}:{}/{}",
                env.get("SLUICE_PG_HOST"),
                env.get("SLUICE_PG_PORT"),
                env.get("SLUICE_PG_DATABASE")
            ),
            env.get("SLUICE_PG_USER"),
            env.get("SLUICE_PG_PASSWORD"),
        ),
        Target::MariaDb(database) => (
            format!(
                "jdbc:mariadb://{}:{}/{database}",
                env.get("SLUICE_MARIADB_HOST"),
                env.get("SLUICE_MARIADB_PORT")
            ),
            env.get("SLUICE_MARIADB_USER"),
            env.get("SLUICE_MARIADB_PASSWORD"),
        ),
    };
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

/// Starts a PostgreSQL source `name` capturing `schema` (JSON with
/// schemas, then `extra` settings); its topic prefix.
fn start_pg_source(api: &Api, pg: &Pg, name: &str, schema: &str, extra: &[(&str, &str)]) -> String {
    let prefix = ident("srv");
    start_pg_source_as(api, pg, name, schema, &prefix, extra);
    prefix
}

/// [`start_pg_source`] under a topic prefix chosen beforehand.
fn start_pg_source_as(
    api: &Api,
    pg: &Pg,
    name: &str,
    schema: &str,
    prefix: &str,
    extra: &[(&str, &str)],
) {
    let slot = ident("slot");
    let mut config = pg.connector_config(prefix, schema, &slot);
    config["key.converter.schemas.enable"] = json!("true");
    config["value.converter.schemas.enable"] = json!("true");
    for (key, value) in extra {
        config[*key] = json!(value);
    }
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
}

/// Waits until `read` gives the source rows and the target rows equal;
/// on timeout, fails showing where they differ.
fn wait_equal(api: &Api, sink: &str, what: &str, mut read: impl FnMut() -> (Rows, Rows)) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        // A retriable failure (a target restart) restarts the task by itself.
        let task = status(api, sink);
        let retrying = task["trace"]
            .as_str()
            .is_some_and(|t| t.contains("(retriable"));
        assert!(task["state"] != "FAILED" || retrying, "sink failed: {task}");
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
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g || ' ø '' \\ \\N', g * 1.25 FROM generate_series(1, 200) g;"
    ));
    db.exec(&format!("CREATE DATABASE {target}"));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(
        &api,
        &pg,
        "pg-src",
        &source,
        &[("skipped.operations", "none")],
    );
    let sink = sink_config(
        &env,
        &Target::MariaDb(&target),
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
    // Load while both run.
    pg.random_writes(&source, 200, 10_000, 150);
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
    // Where each task's time went is in /metrics: the sink applied
    // batches for some of it, and the source handed its records over.
    let metrics = api.get("/metrics").text;
    assert!(metric(&metrics, "sluice_sink_put_batches_total", "maria-sink") >= 1.0);
    assert!(metric(&metrics, "sluice_sink_put_seconds_total", "maria-sink") > 0.0);
    assert!(
        metric(
            &metrics,
            "sluice_sink_next_batch_wait_seconds_total",
            "maria-sink"
        ) > 0.0
    );
    assert!(metric(&metrics, "sluice_source_emit_seconds_total", "pg-src") > 0.0);
    api.delete("/connectors/pg-src");
    api.delete("/connectors/maria-sink");
    let (source_url, target_url) = (pg_url(&env), maria_url(&env, &target));
    let table = format!("{source}.items:items");
    assert_verified(&source_url, &target_url, &table);
    // Differences are named by key, and the exit code says so.
    db.exec(&format!(
        "UPDATE {target}.items SET note = 'tampered' WHERE id = 5; DELETE FROM {target}.items WHERE id = 9; \
         INSERT INTO {target}.items (id, qty, note, price) VALUES (9999, 1, 'extra', 1.00), (-4, 1, 'below', 2.00);"
    ));
    let (code, text) = verify(&source_url, &target_url, &table);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("1 missing from the target: 9"), "{text}");
    assert!(text.contains("2 extra in the target: -4, 9999"), "{text}");
    assert!(text.contains("1 different: 5"), "{text}");
    // A bad URL or table is an error (exit 2) naming it.
    let (code, text) = verify(&source_url, &target_url, &format!("{source}.nope"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("nope"), "{text}");
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
    let sink = sink_config(
        &env,
        &Target::Postgres,
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
    // Load while both run.
    db.random_writes(&source, 200, 10_000, 150);
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
    assert_verified(
        &maria_url(&env, &source),
        &pg_url(&env),
        &format!("items:{target}.items"),
    );
}

#[test]
fn kill_9_of_the_worker_and_a_target_restart_lose_nothing() {
    converges_after_kills("crash", 1, 150, |env| env.script("restart-mariadb"));
}

/// Six kill -9s of the worker in a row, each before the sink's consumer
/// group has settled, leave the group with members that never come back.
/// Tansu 0.6 drops them without starting a new generation and keeps
/// handing out the assignment that gave their partitions to them: the
/// sink task sat RUNNING with nothing to read, and the target never
/// caught up. The task must notice, rejoin the group, and converge.
#[test]
fn a_worker_killed_six_times_in_a_row_still_brings_the_target_level() {
    converges_after_kills("kills", 6, 400, |_| {});
}

/// A sink created before its topic exists joins no consumer group
/// (librdkafka waits for a topic to subscribe to): that is no rebalance
/// stuck for good, and the task must not be restarted for it. With the
/// group timings shortened, 25 s is past the longest rebalance (10 s
/// max.poll.interval.ms and a 6 s session).
#[test]
fn a_sink_waiting_for_its_topic_to_exist_is_left_waiting() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = items_schemas(&pg, 20);
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut sink = sink_config(
        &env,
        &Target::Postgres,
        &format!("{prefix}.{source}.items"),
        &format!("{target}.${{source.table}}"),
    );
    sink["consumer.override.max.poll.interval.ms"] = json!("10000");
    sink["consumer.override.session.timeout.ms"] = json!("6000");
    let reply = api.post(
        "/connectors",
        &json!({"name": "early-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    std::thread::sleep(Duration::from_secs(25));
    let task = status(&api, "early-sink");
    assert_eq!(task["state"], "RUNNING", "{task}");
    assert!(task.get("trace").is_none(), "{task}");
    assert!(!worker.logs().contains("task failed"), "{}", worker.logs());
    start_pg_source_as(&api, &pg, "early-src", &source, &prefix, &[]);
    let (from, to) = (format!("{source}.items"), format!("{target}.items"));
    wait_for("the rows to land", Duration::from_secs(60), || {
        let landed = pg.try_exec(&format!("SELECT 1 FROM {to} LIMIT 1")).is_ok()
            && state(&pg, &from) == state(&pg, &to);
        landed.then_some(())
    });
}

/// A PostgreSQL source and a MariaDB sink on one worker, killed with
/// SIGKILL `kills` times (each ~1 s after the last start) while random
/// writes run (updates of ids below `span`, see [`Pg::random_writes`]),
/// then `after` (a target restart); the target must end equal to the
/// source.
fn converges_after_kills(name: &str, kills: usize, span: i64, after: impl FnOnce(&TestEnv)) {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let (source, target) = (ident(&format!("{name}_src")), ident(&format!("{name}_dst")));
    let (source_name, sink_name) = (format!("{name}-src"), format!("{name}-sink"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, 400) g;"
    ));
    db.exec(&format!("CREATE DATABASE {target}"));
    let mut worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, &source_name, &source, &[]);
    let mut sink = sink_config(
        &env,
        &Target::MariaDb(&target),
        &format!("{prefix}.{source}.items"),
        "${source.table}",
    );
    // Small batches, so the crash lands between commits.
    sink["batch.size"] = json!("20");
    assert_eq!(
        api.post("/connectors", &json!({"name": sink_name, "config": sink}))
            .status,
        201
    );
    let writer = {
        let (pg, source) = (pg.clone(), source.clone());
        std::thread::spawn(move || pg.random_writes(&source, 300, 100_000, span))
    };
    for kill in 0..kills {
        // The first lets the snapshot start; the rest land before the
        // restarted worker's group has settled.
        let running = if kill == 0 { 1500 } else { 900 };
        std::thread::sleep(Duration::from_millis(running));
        worker.kill9();
        std::thread::sleep(Duration::from_millis(300));
        worker.restart();
    }
    std::thread::sleep(Duration::from_millis(1000));
    after(&env);
    writer.join().expect("writer thread");
    let source_table = format!("{source}.items");
    let target_table = format!("{target}.items");
    wait_equal(
        &api,
        &sink_name,
        "the target to converge after the crash",
        || {
            (
                pg_items(&pg, &source_table),
                db.try_exec(&format!("SELECT 1 FROM {target_table} LIMIT 1"))
                    .map(|_| maria_items(&db, &target_table))
                    .unwrap_or_default(),
            )
        },
    );
    assert_eq!(status(&api, &sink_name)["state"], "RUNNING");
    api.delete(&format!("/connectors/{source_name}"));
    api.delete(&format!("/connectors/{sink_name}"));
    assert_verified(
        &pg_url(&env),
        &maria_url(&env, &target),
        &format!("{source}.items:items"),
    );
}

#[test]
fn records_the_target_refuses_go_to_the_dead_letter_topic_with_the_cause() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = (ident("qsrc"), ident("qdst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         CREATE TABLE {target}.items (id int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0), note text, price numeric(12,2)); \
         INSERT INTO {source}.items SELECT g, g, 'note ' || g, g FROM generate_series(1, 20) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "dlq-src", &source, &[]);
    let topic = format!("{prefix}.{source}.items");
    let dlq = ident("dlq");
    let mut sink = sink_config(
        &env,
        &Target::Postgres,
        &topic,
        &format!("{target}.${{source.table}}"),
    );
    sink["errors.tolerance"] = json!("all");
    sink["errors.deadletterqueue.topic.name"] = json!(dlq);
    sink["errors.deadletterqueue.context.headers.enable"] = json!("true");
    sink["errors.log.enable"] = json!("true");
    assert_eq!(
        api.post("/connectors", &json!({"name": "dlq-sink", "config": sink}))
            .status,
        201
    );
    // Two rows the target's CHECK refuses, among good ones.
    pg.exec(&format!(
        "UPDATE {source}.items SET qty = -5 WHERE id IN (3, 4); UPDATE {source}.items SET note = 'fine' WHERE id = 5;"
    ));
    let expected: Rows = pg_items(&pg, &format!("{source}.items"))
        .into_iter()
        .filter(|r| r[0] != "3" && r[0] != "4")
        .collect();
    wait_equal(&api, "dlq-sink", "the good rows at the target", || {
        let target_rows: Rows = pg
            .try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
            .map(|_| pg_items(&pg, &format!("{target}.items")))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r[0] != "3" && r[0] != "4")
            .collect();
        (expected.clone(), target_rows)
    });
    let dead =
        sluice_tests::kafka::read_topic(env.bootstrap(), &dlq, Duration::from_secs(30), |r| {
            r.len() >= 2
        });
    assert_eq!(dead.len(), 2, "two refused records in {dlq}");
    for record in &dead {
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        assert_eq!(header("__connect.errors.topic"), topic);
        assert!(
            header("__connect.errors.exception.message").contains("check constraint"),
            "{}",
            header("__connect.errors.exception.message")
        );
        assert!(record.raw_value.is_some(), "the original value is kept");
    }
    assert_eq!(status(&api, "dlq-sink")["state"], "RUNNING");
    api.delete("/connectors/dlq-src");
    api.delete("/connectors/dlq-sink");
}

#[test]
fn bad_sink_configs_are_refused_naming_the_key() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let mut base = sink_config(&env, &Target::Postgres, "some.topic", "${topic}");
    base["connection.url"] = json!("jdbc:postgresql://127.0.0.1:1/db");
    for (key, value, named) in [
        (
            "connection.url",
            "jdbc:oracle:thin:@h:1521/x",
            "connection.url",
        ),
        ("insert.mode", "merge", "insert.mode"),
        ("primary.key.mode", "none", "delete.enabled"),
        ("schema.evolution", "advanced", "schema.evolution"),
    ] {
        let mut config = base.clone();
        config[key] = json!(value);
        let reply = api.post(
            "/connectors",
            &json!({"name": "bad-sink", "config": config}),
        );
        assert_eq!(reply.status, 400, "{key}={value}: {}", reply.text);
        assert!(
            reply.message().contains(named),
            "{key}={value}: {}",
            reply.text
        );
    }
    // An unreachable target: the task fails with the fix, retrying.
    let reply = api.post("/connectors", &json!({"name": "down-sink", "config": base}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let trace = wait_failed(
        &api,
        "down-sink",
        "the unreachable target to be reported",
        Duration::from_secs(60),
    );
    assert!(
        trace.contains("connection.url") && trace.contains("127.0.0.1:1"),
        "{trace}"
    );
    api.delete("/connectors/down-sink");
    // A consumer setting librdkafka refuses: failed for good at once,
    // naming the setting, not retried every minute.
    let mut config = base.clone();
    config["consumer.override.fetch.max.bytes"] = json!("1000");
    let reply = api.post(
        "/connectors",
        &json!({"name": "bad-consumer", "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let trace = wait_failed(
        &api,
        "bad-consumer",
        "the refused consumer setting to be reported",
        Duration::from_secs(30),
    );
    assert!(
        trace.contains("fetch.max.bytes") && trace.contains("consumer.override"),
        "{trace}"
    );
    assert!(!trace.contains("(retriable"), "{trace}");
    api.delete("/connectors/bad-consumer");
}

#[test]
fn avro_records_of_many_types_round_trip_into_a_postgres_target() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = (ident("asrc"), ident("adst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.types (id int PRIMARY KEY, c_int2 smallint, c_int8 bigint, c_num numeric(10,3), \
           c_num_var numeric, c_real real, c_double double precision, c_bool boolean, c_text text, c_bytea bytea, \
           c_date date, c_time time, c_ts timestamp, c_tstz timestamptz, c_uuid uuid, c_json json, c_jsonb jsonb, \
           c_text_array text[], c_int_array int[]); \
         INSERT INTO {source}.types VALUES \
           (1, -32768, 9007199254740993, -1234567.891, 12.0000000001, 3.14, 2.718281828459045, true, 'ünïcødé \"q\"', '\\x00ff10', \
            '1969-07-20', '23:59:59.999999', '2024-02-29 12:34:56.123456', '2024-02-29 12:34:56.5+02', \
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"a\": [1, 2]}}', '{{\"b\": null}}', '{{x,\"y z\",NULL}}', '{{1,NULL,3}}'), \
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    ));
    let registry_port = sluice_tests::process::free_port();
    let worker = Worker::start_with(
        &env,
        &["--registry-listen", &format!("127.0.0.1:{registry_port}")],
    );
    let api = worker.api();
    let avro = "io.confluent.connect.avro.AvroConverter";
    let prefix = start_pg_source(
        &api,
        &pg,
        "avro-src",
        &source,
        &[("key.converter", avro), ("value.converter", avro)],
    );
    let mut sink = sink_config(
        &env,
        &Target::Postgres,
        &format!("{prefix}.{source}.types"),
        &format!("{target}.${{source.table}}"),
    );
    sink["key.converter"] = json!(avro);
    sink["value.converter"] = json!(avro);
    let reply = api.post("/connectors", &json!({"name": "avro-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    pg.exec(&format!(
        "UPDATE {source}.types SET c_text = 'streamed', c_num = 0.001, c_tstz = '1970-01-01 00:00:00+00' WHERE id = 1;"
    ));
    // Each column as text in one canonical form (json through jsonb).
    let canonical = |table: &str| -> Rows {
        pg.rows(&format!(
            "SELECT id::text AS id, json_build_array(c_int2, c_int8::text, c_num::text, c_num_var::text, c_real, c_double, \
               c_bool, c_text, encode(c_bytea, 'hex'), c_date::text, c_time::text, c_ts::text, c_tstz::text, c_uuid::text, \
               c_json::jsonb, c_jsonb, c_text_array, c_int_array)::text AS cols FROM {table} t ORDER BY t.id"
        ))
        .iter()
        .map(|r| {
            [
                r["id"].as_str().unwrap_or_default().to_owned(),
                r["cols"].as_str().unwrap_or_default().to_owned(),
                String::new(),
                String::new(),
            ]
        })
        .collect()
    };
    wait_equal(
        &api,
        "avro-sink",
        "every type at the target as at the source",
        || {
            (
                canonical(&format!("{source}.types")),
                pg.try_exec(&format!("SELECT 1 FROM {target}.types LIMIT 1"))
                    .map(|_| canonical(&format!("{target}.types")))
                    .unwrap_or_default(),
            )
        },
    );
    api.delete("/connectors/avro-src");
    api.delete("/connectors/avro-sink");
    assert_verified(
        &pg_url(&env),
        &pg_url(&env),
        &format!("{source}.types:{target}.types"),
    );
}

/// Fails if the dead-letter topic holds anything: set aside `why`.
fn assert_nothing_dead_lettered(env: &TestEnv, topic: &str, why: &str) {
    let set_aside =
        sluice_tests::kafka::read_topic(env.bootstrap(), topic, Duration::from_secs(3), |_| false);
    assert!(
        set_aside.is_empty(),
        "{} records were dead-lettered {why}",
        set_aside.len()
    );
}

/// Issue 19, finding 9: a schema registry that cannot be reached is a
/// retriable condition, never a reason to set a record aside. With
/// `errors.tolerance=all` and a dead-letter topic, the sink used to send
/// every record it could not decode during the outage to the dead-letter
/// topic and commit past them — lost from the target for good.
#[test]
fn a_registry_outage_is_retried_never_dead_lettered() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = (ident("rsrc"), ident("rdst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, 1500) g;"
    ));
    let mut registry = sluice_tests::registry::RegistryServer::start();
    let worker = Worker::start(&env);
    let api = worker.api();
    let avro = "io.confluent.connect.avro.AvroConverter";
    let url = registry.url();
    let prefix = start_pg_source(
        &api,
        &pg,
        "outage-src",
        &source,
        &[
            ("key.converter", avro),
            ("value.converter", avro),
            ("key.converter.schema.registry.url", &url),
            ("value.converter.schema.registry.url", &url),
        ],
    );
    let topic = format!("{prefix}.{source}.items");
    let written = sluice_tests::kafka::read_topic(
        env.bootstrap(),
        &topic,
        Duration::from_secs(120),
        |records| records.len() >= 1500,
    );
    assert_eq!(written.len(), 1500, "the snapshot reached the topic");
    api.delete("/connectors/outage-src");

    // The registry goes away before the sink has read a single schema.
    registry.process.kill9();
    let dead_letters = unique("dlq-outage");
    let mut sink = sink_config(
        &env,
        &Target::Postgres,
        &topic,
        &format!("{target}.${{source.table}}"),
    );
    for (key, value) in [
        ("key.converter", avro),
        ("value.converter", avro),
        ("key.converter.schema.registry.url", &url),
        ("value.converter.schema.registry.url", &url),
        ("errors.tolerance", "all"),
        ("errors.deadletterqueue.topic.name", &dead_letters),
    ] {
        sink[key] = json!(value);
    }
    let reply = api.post(
        "/connectors",
        &json!({"name": "outage-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let trace = wait_for(
        "the sink to report the registry outage as retriable",
        Duration::from_secs(60),
        || {
            let task = status(&api, "outage-sink");
            let trace = task["trace"].as_str().unwrap_or_default().to_owned();
            (trace.contains("unreachable") && trace.contains("(retriable")).then_some(trace)
        },
    );
    assert!(trace.contains("schema.registry.url"), "{trace}");

    registry.process.restart();
    let (source_table, target_table) = (format!("{source}.items"), format!("{target}.items"));
    wait_equal(
        &api,
        "outage-sink",
        "the target to get every row once the registry is back",
        || {
            (
                pg_items(&pg, &source_table),
                pg.try_exec(&format!("SELECT 1 FROM {target_table} LIMIT 1"))
                    .map(|_| pg_items(&pg, &target_table))
                    .unwrap_or_default(),
            )
        },
    );
    assert_nothing_dead_lettered(&env, &dead_letters, "during a registry outage");
    api.delete("/connectors/outage-sink");
}

/// Issue 19, finding 6: a target that is only briefly unable to write (a
/// lock held past the statement timeout, here) must be waited out, never
/// taken for a bad record. With `errors.tolerance=all` the sink used to
/// dead-letter every record of such a batch and commit past them.
#[test]
fn a_transient_target_error_is_retried_never_dead_lettered() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target, role) = (ident("tsrc"), ident("tdst"), ident("sinkrole"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, 200) g; \
         CREATE TABLE {target}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         CREATE ROLE {role} LOGIN PASSWORD 'pw'; \
         GRANT USAGE ON SCHEMA {target} TO {role}; GRANT ALL ON {target}.items TO {role}; \
         ALTER ROLE {role} SET statement_timeout = '300ms';"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "transient-src", &source, &[]);
    // The source's slot waits for open transactions: it streams first.
    wait_for("the source to stream", Duration::from_secs(60), || {
        (status(&api, "transient-src")["progress"]["phase"] == "streaming").then_some(())
    });
    // Another session holds the target table until the test lets go.
    let holder = {
        let (pg, target) = (pg.clone(), target.clone());
        std::thread::spawn(move || {
            pg.try_exec(&format!(
                "BEGIN; LOCK TABLE {target}.items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;"
            ))
        })
    };
    wait_for("the lock to be held", Duration::from_secs(10), || {
        let held = pg.exec(&format!(
            "SELECT count(*) FROM pg_locks WHERE relation = '{target}.items'::regclass AND mode = 'AccessExclusiveLock' AND granted"
        ));
        (held == "1").then_some(())
    });
    let dead_letters = unique("dlq-transient");
    let mut sink = sink_config(
        &env,
        &Target::Postgres,
        &format!("{prefix}.{source}.items"),
        &format!("{target}.${{source.table}}"),
    );
    sink["connection.username"] = json!(role);
    sink["connection.password"] = json!("pw");
    sink["errors.tolerance"] = json!("all");
    sink["errors.deadletterqueue.topic.name"] = json!(dead_letters);
    let reply = api.post(
        "/connectors",
        &json!({"name": "transient-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let trace = wait_for(
        "the sink to report the statement timeout as retriable",
        Duration::from_secs(60),
        || {
            let trace = status(&api, "transient-sink")["trace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            trace.contains("57014").then_some(trace)
        },
    );
    assert!(trace.contains("(retriable"), "{trace}");
    // The lock goes away: its holder's sleep is cancelled.
    pg.exec(&format!(
        "SELECT pg_cancel_backend(pid) FROM pg_locks WHERE relation = '{target}.items'::regclass AND mode = 'AccessExclusiveLock' AND granted"
    ));
    let (source_table, target_table) = (format!("{source}.items"), format!("{target}.items"));
    wait_equal(
        &api,
        "transient-sink",
        "the target to get every row once the lock is gone",
        || (pg_items(&pg, &source_table), pg_items(&pg, &target_table)),
    );
    let _ = holder.join();
    assert_nothing_dead_lettered(&env, &dead_letters, "for a lock timeout");
    api.delete("/connectors/transient-src");
    api.delete("/connectors/transient-sink");
    pg.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// A PostgreSQL target commits a batch while the sink already works on
/// the next one, and the runtime commits the batch's offsets only once
/// that commit has landed. A commit that fails then (here a deferred
/// check the target runs at `COMMIT`, failing once as a serialization
/// failure would) is a failure of an earlier batch than the one being
/// applied: the rows of both are applied again, none is skipped. They are
/// retried in place, as any transient target error is, so a sink that
/// allows the task no restart (`errors.max.retries=0`) keeps running.
#[test]
fn a_commit_that_fails_after_its_batch_was_handed_over_loses_no_row() {
    // Row 330 of 1,000 is in a middle batch: the failure is met by the
    // next batch's `put`.
    commit_fails_once_at_row(330);
}

/// As above, when the batch whose commit fails is the last one: the
/// failure is met while the sink waits for more records, by the flush
/// that would let its offsets be committed.
#[test]
fn a_last_batch_whose_commit_fails_is_applied_again() {
    commit_fails_once_at_row(1000);
}

/// A `COMMIT` that fails for good (a deferred check no retry passes) is
/// not retried as a transient failure would be: met while the sink waits
/// for more records, it fails the task, with the target's error in its
/// trace, as it does when met by the next batch's `put`.
#[test]
fn a_last_batch_whose_commit_fails_for_good_fails_the_task() {
    let late = LateCommit::start(
        "IF NEW.id = 1000 THEN \
           RAISE EXCEPTION 'injected check failure' USING ERRCODE = '23514'; \
         END IF;",
        "",
        &[],
    );
    let api = late.worker.api();
    let trace = wait_for("the task to fail", Duration::from_secs(60), || {
        let status = api
            .get(&format!("/connectors/{}/status", late.sink_name))
            .body;
        let task = &status["tasks"][0];
        let trace = task["trace"].as_str().unwrap_or_default().to_owned();
        (task["state"] == "FAILED" && !trace.contains("retriable")).then_some(trace)
    });
    assert!(trace.contains("injected check failure"), "{trace}");
    let target_rows: i64 = late
        .pg
        .exec(&format!("SELECT count(*) FROM {}", late.target_table))
        .parse()
        .expect("a count");
    assert!(
        target_rows < 1000,
        "row 1000 was never committed: {target_rows}"
    );
    late.delete();
}

/// A batch whose `COMMIT` fails while the sink is being paused (the pause
/// waits for what was put to be durable) is read and applied again, as
/// when the failure is met while running: the task pauses, not fails, even
/// with `errors.max.retries=0`, and after the resume the target holds
/// every row. The pause is requested while the commit before that batch
/// is held up, so it is seen just after the failing batch is put.
#[test]
fn a_commit_that_fails_while_pausing_loses_no_row_and_pauses() {
    // The 300th row checked holds its transaction's commit up for three
    // seconds; the first row another transaction checks afterwards fails
    // that one's commit, once.
    let late = LateCommit::start(
        "IF n = 300 THEN \
           INSERT INTO {target}.slow VALUES (txid_current()); \
           PERFORM nextval('{target}.sleeping'); \
           PERFORM pg_sleep(3); \
         ELSIF n > 300 \
           AND NOT EXISTS (SELECT 1 FROM {target}.slow WHERE xid = txid_current()) \
           AND nextval('{target}.failed') = 1 THEN \
           RAISE EXCEPTION 'injected commit failure' USING ERRCODE = '40001'; \
         END IF;",
        "CREATE TABLE {target}.slow (xid bigint); CREATE SEQUENCE {target}.failed; \
         CREATE SEQUENCE {target}.sleeping;",
        &[("errors.max.retries", "0")],
    );
    let api = late.worker.api();
    // A sequence, not a table: other sessions see it move at once.
    let sleeping = format!("SELECT is_called FROM {}.sleeping", late.target);
    wait_for("the held-up commit", Duration::from_secs(60), || {
        (late.pg.exec(&sleeping) == "t").then_some(())
    });
    let pause = api.put_empty(&format!("/connectors/{}/pause", late.sink_name));
    assert_eq!(pause.status, 202, "{}", pause.text);
    wait_for("the task to pause", Duration::from_secs(60), || {
        let status = api
            .get(&format!("/connectors/{}/status", late.sink_name))
            .body;
        let state = &status["tasks"][0]["state"];
        assert_ne!(
            status["tasks"][0]["trace"]
                .as_str()
                .map(|t| t.contains("gave up")),
            Some(true),
            "{status}"
        );
        (state == "PAUSED").then_some(())
    });
    assert!(
        late.worker.logs().contains("injected commit failure"),
        "the commit failed while pausing:\n{}",
        late.worker.logs()
    );
    let resume = api.put_empty(&format!("/connectors/{}/resume", late.sink_name));
    assert_eq!(resume.status, 202, "{}", resume.text);
    late.assert_replica_after_failure();
    late.delete();
}

/// 1,000 rows through a sink in batches of 50 to a PostgreSQL target
/// whose deferred check fails, once, the `COMMIT` of the transaction that
/// checks row number `at`; asserts the target ends equal to the source.
fn commit_fails_once_at_row(at: u32) {
    let late = LateCommit::start(
        &format!(
            "IF n = {at} THEN \
               PERFORM pg_sleep(1); \
               RAISE EXCEPTION 'injected commit failure' USING ERRCODE = '40001'; \
             END IF;"
        ),
        "",
        &[("errors.max.retries", "0")],
    );
    late.assert_replica_after_failure();
    late.delete();
}

/// A sink of 1,000 PostgreSQL source rows (the whole snapshot in the topic
/// first, batches of 50) to a target table whose deferred check runs
/// `check` at each row's `COMMIT`: PL/pgSQL statements where `n` is the
/// number of rows checked so far and `{target}` the target schema;
/// `setup` (SQL, `{target}` too) runs first.
struct LateCommit {
    pg: Pg,
    worker: Worker,
    source_name: String,
    sink_name: String,
    source_table: String,
    target_table: String,
    /// The target schema.
    target: String,
    /// Counts the rows checked.
    checked: String,
}

impl LateCommit {
    fn start(check: &str, setup: &str, config: &[(&str, &str)]) -> Self {
        let env = TestEnv::load();
        let pg = Pg::from_env(&env);
        let (source, target) = items_schemas(&pg, 1000);
        let checked = format!("{target}.checked");
        let check = check.replace("{target}", &target);
        let setup = setup.replace("{target}", &target);
        pg.exec(&format!(
            "CREATE TABLE {target}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2), \
               updated timestamptz NOT NULL); \
             CREATE SEQUENCE {checked}; {setup} \
             CREATE FUNCTION {target}.check_late() RETURNS trigger LANGUAGE plpgsql AS $$ \
               DECLARE n bigint := nextval('{checked}'); BEGIN {check} RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER check_late AFTER INSERT OR UPDATE ON {target}.items \
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {target}.check_late();"
        ));
        let worker = Worker::start(&env);
        let api = worker.api();
        // Names of their own: a consumer group a killed worker left behind
        // would hold the sink back until its session expires.
        let (source_name, sink_name) = (unique("late-commit-src"), unique("late-commit-sink"));
        let prefix = start_pg_source(&api, &pg, &source_name, &source, &[]);
        // The whole snapshot is in the topic first, so batches follow each
        // other at once: the next is put while a commit is under way.
        wait_for("the source to stream", Duration::from_secs(60), || {
            (status(&api, &source_name)["progress"]["phase"] == "streaming").then_some(())
        });
        let mut sink = sink_config(
            &env,
            &Target::Postgres,
            &format!("{prefix}.{source}.items"),
            &format!("{target}.items"),
        );
        // Many batches.
        sink["batch.size"] = json!("50");
        for (key, value) in config {
            sink[*key] = json!(value);
        }
        let reply = api.post("/connectors", &json!({"name": sink_name, "config": sink}));
        assert_eq!(reply.status, 201, "{}", reply.text);
        Self {
            pg,
            worker,
            source_name,
            sink_name,
            source_table: format!("{source}.items"),
            target_table: format!("{target}.items"),
            target,
            checked,
        }
    }

    /// Asserts the target ends equal to the source, the commit failed
    /// once and rows were applied again, and the task is RUNNING.
    fn assert_replica_after_failure(&self) {
        wait_replica(
            &self.pg,
            &self.source_table,
            &self.target_table,
            "every row, the batch whose commit failed included",
        );
        assert!(
            self.worker.logs().contains("injected commit failure"),
            "the commit failed once:\n{}",
            self.worker.logs()
        );
        let checked: i64 = self
            .pg
            .exec(&format!("SELECT last_value FROM {}", self.checked))
            .parse()
            .expect("a count");
        assert!(
            checked > 1000,
            "rows were applied again after the failure: {checked}"
        );
        let api = self.worker.api();
        let status = api
            .get(&format!("/connectors/{}/status", self.sink_name))
            .body;
        assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    }

    fn delete(&self) {
        let api = self.worker.api();
        api.delete(&format!("/connectors/{}", self.source_name));
        api.delete(&format!("/connectors/{}", self.sink_name));
    }
}

/// A PostgreSQL source of `rows` items and a sink `<name>-sink` writing them
/// to a PostgreSQL target, started and awaited until the target equals the
/// source. Returns the topic and the source and target tables.
fn pg_replica(
    env: &TestEnv,
    pg: &Pg,
    api: &Api,
    name: &str,
    rows: u32,
) -> (String, String, String) {
    let (source, target) = items_schemas(pg, rows);
    let prefix = start_pg_source(api, pg, &format!("{name}-src"), &source, &[]);
    let topic = format!("{prefix}.{source}.items");
    let sink = sink_config(env, &Target::Postgres, &topic, &format!("{target}.items"));
    let reply = api.post(
        "/connectors",
        &json!({"name": format!("{name}-sink"), "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let (source_table, target_table) = (format!("{source}.items"), format!("{target}.items"));
    wait_replica(pg, &source_table, &target_table, "the replica");
    (topic, source_table, target_table)
}

/// Waits until `target_table` holds what `source_table` holds.
fn wait_replica(pg: &Pg, source_table: &str, target_table: &str, what: &str) {
    let expected = state(pg, source_table);
    wait_for(what, Duration::from_secs(120), || {
        let rows = pg
            .try_exec(&format!("SELECT 1 FROM {target_table} LIMIT 1"))
            .ok()
            .map(|_| state(pg, target_table))
            .unwrap_or_default();
        (rows == expected).then_some(())
    });
}

/// Stops connector `name` and waits until it says STOPPED.
fn stop_and_wait(api: &Api, name: &str) {
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/stop")).status,
        204
    );
    wait_for("the connector stopped", Duration::from_secs(30), || {
        (api.get(&format!("/connectors/{name}/status")).body["connector"]["state"] == "STOPPED")
            .then_some(())
    });
}

#[test]
fn a_sinks_offsets_are_its_consumer_groups_and_a_reset_replays_the_topic() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (topic, source_table, target_table) = pg_replica(&env, &pg, &api, "replay", 40);
    stop_and_wait(&api, "replay-sink");
    // Connect 3.6's shape: the consumer group's committed offsets.
    let offsets = api.get("/connectors/replay-sink/offsets").body;
    assert_eq!(
        offsets["offsets"][0]["partition"],
        json!({"kafka_topic": topic, "kafka_partition": 0}),
        "{offsets}"
    );
    assert_eq!(
        offsets["offsets"][0]["offset"]["kafka_offset"], 40,
        "{offsets}"
    );
    // The replica is lost; resetting the sink's offsets replays the topic.
    pg.exec(&format!("TRUNCATE {target_table}"));
    let reset = api.delete("/connectors/replay-sink/offsets");
    assert_eq!(reset.status, 200, "{}", reset.text);
    let moved = api.get("/connectors/replay-sink/offsets").body;
    assert_eq!(moved["offsets"][0]["offset"]["kafka_offset"], 0, "{moved}");
    assert_eq!(api.put_empty("/connectors/replay-sink/resume").status, 202);
    wait_replica(
        &pg,
        &source_table,
        &target_table,
        "the replica rebuilt from the topic",
    );
    // A sink offset must name a Kafka partition.
    assert_eq!(api.put_empty("/connectors/replay-sink/stop").status, 204);
    let bad = api.patch(
        "/connectors/replay-sink/offsets",
        &json!({"offsets": [{"partition": {"table": "x"}, "offset": {"kafka_offset": 1}}]}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text);
    api.delete("/connectors/replay-src");
    api.delete("/connectors/replay-sink");
}

#[test]
fn record_header_keys_rows_by_a_header_a_source_transform_set() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = items_schemas(&pg, 5);
    let worker = Worker::start(&env);
    let api = worker.api();
    // The source copies each row's id into a header `row_id`.
    let prefix = start_pg_source(
        &api,
        &pg,
        "hdr-src",
        &source,
        &[
            ("transforms", "unwrap,hdr"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            (
                "transforms.hdr.type",
                "org.apache.kafka.connect.transforms.HeaderFrom$Value",
            ),
            ("transforms.hdr.fields", "id"),
            ("transforms.hdr.headers", "row_id"),
            ("transforms.hdr.operation", "copy"),
        ],
    );
    let topic = format!("{prefix}.{source}.items");
    let mut sink = sink_config(&env, &Target::Postgres, &topic, &format!("{target}.items"));
    sink["primary.key.mode"] = json!("record_header");
    sink["primary.key.fields"] = json!("row_id");
    sink["delete.enabled"] = json!("false");
    let reply = api.post("/connectors", &json!({"name": "hdr-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    pg.exec(&format!("UPDATE {source}.items SET qty = 99 WHERE id = 2"));
    // Keyed by the header: the update replaced its row, five rows in all.
    wait_for(
        "the target keyed by row_id",
        Duration::from_secs(90),
        || {
            let rows = pg
                .try_exec(&format!(
                "SELECT string_agg(row_id || ':' || qty, ',' ORDER BY row_id) FROM {target}.items"
            ))
                .ok()?;
            (rows == "1:1,2:99,3:3,4:4,5:5").then_some(())
        },
    );
    let key = pg.exec(&format!(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
         AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{target}.items'::regclass AND i.indisprimary"
    ));
    assert_eq!(key, "row_id", "the header is the table's primary key");
    api.delete("/connectors/hdr-src");
    api.delete("/connectors/hdr-sink");
}

#[test]
fn use_time_zone_writes_zoned_timestamps_as_that_zones_wall_clock() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let (source, target) = (ident("tzsrc"), ident("tzdst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; \
         CREATE TABLE {source}.events (id int PRIMARY KEY, at timestamptz NOT NULL); \
         INSERT INTO {source}.events VALUES (1, '2024-01-15 10:00:00+00'), (2, '2024-07-15 10:00:00+00');"
    ));
    db.exec(&format!("CREATE DATABASE {target}"));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "tz-src", &source, &[]);
    let mut sink = sink_config(
        &env,
        &Target::MariaDb(&target),
        &format!("{prefix}.{source}.events"),
        "${source.table}",
    );
    sink["use.time.zone"] = json!("Europe/Paris");
    let reply = api.post("/connectors", &json!({"name": "tz-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    // DATETIME has no zone: it holds Paris's wall clock (winter +1, summer +2).
    wait_for("both rows in Paris time", Duration::from_secs(90), || {
        let rows = db
            .try_exec(&format!(
                "SELECT GROUP_CONCAT(DATE_FORMAT(at, '%Y-%m-%d %H:%i') ORDER BY id) FROM {target}.events"
            ))
            .ok()?;
        (rows == "2024-01-15 11:00,2024-07-15 12:00").then_some(())
    });
    let mut bad = sink_config(&env, &Target::MariaDb(&target), "t", "x");
    bad["use.time.zone"] = json!("Mars/Olympus");
    let reply = api.post("/connectors", &json!({"name": "tz-bad", "config": bad}));
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("use.time.zone"),
        "{}",
        reply.message()
    );
    api.delete("/connectors/tz-src");
    api.delete("/connectors/tz-sink");
}

#[test]
fn the_sink_and_verify_reach_targets_over_verified_tls() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let (source, target) = items_schemas(&pg, 10);
    let maria_target = ident("tlsdst");
    db.exec(&format!("CREATE DATABASE {maria_target}"));
    // A MariaDB login the server accepts only over TLS.
    let user = ident("tls_sink");
    db.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw' REQUIRE SSL; GRANT ALL ON {maria_target}.* TO '{user}'@'%';"
    ));
    let (pg_ca, maria_ca) = (
        env.get("SLUICE_PG_CA").to_owned(),
        env.get("SLUICE_MARIADB_CA").to_owned(),
    );
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "tls-src", &source, &[]);
    let topic = format!("{prefix}.{source}.items");
    // PostgreSQL by the name its certificate carries, checked fully.
    let mut to_pg = sink_config(&env, &Target::Postgres, &topic, &format!("{target}.items"));
    to_pg["connection.url"] = json!(format!(
        "jdbc:postgresql://localhost:{}/{}?sslmode=verify-full&sslrootcert={pg_ca}",
        env.get("SLUICE_PG_PORT"),
        env.get("SLUICE_PG_DATABASE")
    ));
    to_pg["delete.enabled"] = json!("false");
    let reply = api.post("/connectors", &json!({"name": "tls-pg", "config": to_pg}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    // MariaDB as Connector/J spells it.
    let mut to_maria = sink_config(&env, &Target::MariaDb(&maria_target), &topic, "items");
    to_maria["connection.url"] = json!(format!(
        "jdbc:mysql://localhost:{}/{maria_target}?sslMode=VERIFY_IDENTITY&serverSslCert={maria_ca}",
        env.get("SLUICE_MARIADB_PORT")
    ));
    to_maria["connection.username"] = json!(user);
    to_maria["connection.password"] = json!("pw");
    to_maria["delete.enabled"] = json!("false");
    let reply = api.post(
        "/connectors",
        &json!({"name": "tls-maria", "config": to_maria}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_equal(&api, "tls-pg", "the PostgreSQL target over TLS", || {
        (
            pg_items(&pg, &format!("{source}.items")),
            pg.try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
                .map(|_| pg_items(&pg, &format!("{target}.items")))
                .unwrap_or_default(),
        )
    });
    let encrypted = pg.exec(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'sluice-jdbc-sink'",
    );
    assert_eq!(encrypted, "t", "the sink's PostgreSQL sessions use TLS");
    wait_equal(&api, "tls-maria", "the MariaDB target over TLS", || {
        (
            pg_items(&pg, &format!("{source}.items")),
            db.try_exec(&format!("SELECT 1 FROM {maria_target}.items LIMIT 1"))
                .map(|_| maria_items(&db, &format!("{maria_target}.items")))
                .unwrap_or_default(),
        )
    });
    // A CA that signed nothing here: refused, naming TLS.
    let wrong = sluice_tests::connectors::unrelated_ca("sink");
    let mut bad = sink_config(&env, &Target::Postgres, &topic, &format!("{target}.other"));
    bad["connection.url"] = json!(format!(
        "jdbc:postgresql://localhost:{}/{}?sslmode=verify-full&sslrootcert={}",
        env.get("SLUICE_PG_PORT"),
        env.get("SLUICE_PG_DATABASE"),
        wrong.display()
    ));
    let trace = sluice_tests::connectors::failure_trace(
        &api,
        "tls-bad",
        &bad,
        "the wrong CA to be refused",
    );
    assert!(trace.to_lowercase().contains("certificate"), "{trace}");
    // sluice verify over verified TLS on both sides.
    let source_url = format!(
        "{}?sslmode=verify-full&sslrootcert={pg_ca}",
        pg_url(&env).replace(env.get("SLUICE_PG_HOST"), "localhost")
    );
    let target_url = format!(
        "mysql://{user}:pw@localhost:{}/{maria_target}?sslMode=VERIFY_IDENTITY&serverSslCert={maria_ca}",
        env.get("SLUICE_MARIADB_PORT")
    );
    let (code, text) = verify(&source_url, &target_url, &format!("{source}.items:items"));
    assert_eq!(code, 0, "{text}");
    let (code, text) = verify(
        &format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            pg_url(&env).replace(env.get("SLUICE_PG_HOST"), "localhost"),
            wrong.display()
        ),
        &target_url,
        &format!("{source}.items:items"),
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    api.delete("/connectors/tls-src");
    api.delete("/connectors/tls-pg");
    api.delete("/connectors/tls-maria");
}

#[test]
fn infinite_timestamps_reach_the_target_infinite() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = (ident("infsrc"), ident("infdst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; CREATE SCHEMA {target}; \
         CREATE TABLE {source}.spans (id int PRIMARY KEY, ends timestamp, ends_tz timestamptz); \
         INSERT INTO {source}.spans VALUES (1, 'infinity', '-infinity'), (2, '2024-01-01 10:00', '2024-01-01 10:00+00');"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "inf-src", &source, &[]);
    let mut sink = sink_config(
        &env,
        &Target::Postgres,
        &format!("{prefix}.{source}.spans"),
        &format!("{target}.spans"),
    );
    sink["delete.enabled"] = json!("false");
    let reply = api.post("/connectors", &json!({"name": "inf-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    // Before, the source task failed on 'infinity' (not a timestamp it could read).
    wait_for(
        "the infinite row at the target",
        Duration::from_secs(90),
        || {
            let row = pg
                .try_exec(&format!(
                    "SELECT ends::text || ' ' || ends_tz::text FROM {target}.spans WHERE id = 1"
                ))
                .ok()?;
            (row == "infinity -infinity").then_some(())
        },
    );
    assert_eq!(status(&api, "inf-src")["state"], "RUNNING");
    api.delete("/connectors/inf-src");
    api.delete("/connectors/inf-sink");
}

/// Sinks are often deployed before their sources: a sink whose topic does
/// not exist yet waits for it, RUNNING, and reads it from its first
/// record once the source creates it.
#[test]
fn a_sink_created_before_its_topic_reads_it_once_it_appears() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = (ident("early"), ident("early_dst"));
    pg.exec(&format!(
        "CREATE SCHEMA {source}; \
         CREATE TABLE {source}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, 100) g; \
         CREATE SCHEMA {target};"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    // The source's topic prefix is chosen here so the sink can name the
    // topic before the source exists.
    let prefix = ident("srv");
    let sink = sink_config(
        &env,
        &Target::Postgres,
        &format!("{prefix}.{source}.items"),
        &format!("{target}.${{source.table}}"),
    );
    let reply = api.post(
        "/connectors",
        &json!({"name": "early-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    // The sink runs with nothing to read for a while.
    wait_for("the sink RUNNING", Duration::from_secs(30), || {
        (status(&api, "early-sink")["state"] == "RUNNING").then_some(())
    });
    std::thread::sleep(Duration::from_secs(8));
    start_pg_source_as(&api, &pg, "late-src", &source, &prefix, &[]);
    pg.exec(&format!(
        "UPDATE {source}.items SET qty = -1 WHERE id % 7 = 0; DELETE FROM {source}.items WHERE id % 11 = 0;"
    ));
    wait_equal(&api, "early-sink", "the target to equal the source", || {
        (
            pg_items(&pg, &format!("{source}.items")),
            pg.try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
                .map(|_| pg_items(&pg, &format!("{target}.items")))
                .unwrap_or_default(),
        )
    });
    api.delete("/connectors/late-src");
    api.delete("/connectors/early-sink");
}

/// A sink resuming from an offset inside a record batch — the common case
/// after a commit, a restart or a move to another worker, since a
/// producer's batch holds many records and a sink's commits fall anywhere
/// in it — applies every record from that offset on. Kafka answers a fetch
/// from inside a batch with the whole batch, and the consumer drops the
/// records before the offset; a broker answering with the next batch
/// instead (Tansu 0.6 on its in-memory engine) silently loses the rest of
/// the batch, and this test fails on it.
#[test]
fn a_sink_resuming_inside_a_record_batch_applies_every_record_from_its_offset() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = items_schemas(&pg, 300);
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "midbatch-src", &source, &[]);
    let topic = format!("{prefix}.{source}.items");
    // The snapshot's 300 records reach the broker in a few large batches,
    // so offset 150 lies inside one.
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(90), |r| {
        r.len() >= 300
    });
    let from = 150;
    let expected: Vec<i64> = {
        let mut ids: Vec<i64> = records
            .iter()
            .filter(|r| r.offset >= from)
            .filter_map(|r| r.key["payload"]["id"].as_i64())
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        expected.len(),
        150,
        "the snapshot's records: {}",
        records.len()
    );
    let sink = sink_config(&env, &Target::Postgres, &topic, &format!("{target}.items"));
    let reply = api.post(
        "/connectors",
        &json!({"name": "midbatch-sink", "config": sink, "initial_state": "STOPPED"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let moved = api.patch(
        "/connectors/midbatch-sink/offsets",
        &json!({"offsets": [{
            "partition": {"kafka_topic": topic, "kafka_partition": 0},
            "offset": {"kafka_offset": from},
        }]}),
    );
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        api.put_empty("/connectors/midbatch-sink/resume").status,
        202
    );
    let target_ids = || -> Vec<i64> {
        pg.try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
            .map(|_| {
                pg.rows(&format!("SELECT id FROM {target}.items ORDER BY id"))
                    .iter()
                    .filter_map(|row| row["id"].as_i64())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Waits for the sink to commit the end of the topic, then compares
    // (a sink that skipped reaches the end too).
    let reached = (0..120).any(|_| {
        let offsets = api.get("/connectors/midbatch-sink/offsets").body;
        let done = offsets["offsets"][0]["offset"]["kafka_offset"] == 300;
        if !done {
            std::thread::sleep(Duration::from_secs(1));
        }
        done
    });
    assert_eq!(
        target_ids(),
        expected,
        "the target after resuming at offset {from} (sink reached the end: {reached}; status {})",
        api.get("/connectors/midbatch-sink/status").text
    );
    api.delete("/connectors/midbatch-src");
    api.delete("/connectors/midbatch-sink");
}

/// What the sink logs when a COPY straight into a PostgreSQL table met
/// keys the table holds, and the rows go through the merge instead.
const FELL_BACK: &str = "the table holds some of these keys already";

/// New rows go into a PostgreSQL target with a COPY straight into their
/// table; rows the table already holds (here: the topic replayed over a
/// replica whose rows were changed since) make that COPY fail, and the
/// sink merges them instead — the replica ends equal to its source, the
/// task never fails.
#[test]
fn creates_replayed_over_rows_the_target_holds_are_merged_not_refused() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (_, source_table, target_table) = pg_replica(&env, &pg, &api, "straight", 60);
    assert!(
        !worker.logs().contains(FELL_BACK),
        "new rows load without a fallback:\n{}",
        worker.logs()
    );

    // The replica drifts, and the topic is replayed over it: every
    // snapshot record is a create of a key the table holds.
    stop_and_wait(&api, "straight-sink");
    pg.exec(&format!("UPDATE {target_table} SET qty = -1"));
    let reset = api.delete("/connectors/straight-sink/offsets");
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(
        api.put_empty("/connectors/straight-sink/resume").status,
        202
    );
    wait_replica(
        &pg,
        &source_table,
        &target_table,
        "the replica overwritten by the replay",
    );
    merged_and_running(&worker, &api, "straight");
}

/// A COPY straight into a PostgreSQL table is sent in parts (64 KiB) while
/// the server loads it. One that meets a key the table holds fails on the
/// server while later parts are still on the way; it is rolled back and
/// merged all the same: the replica ends equal, the task never fails.
#[test]
fn a_straight_copy_sent_in_parts_that_meets_held_keys_is_merged() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (_, source_table, target_table) = pg_replica(&env, &pg, &api, "parts", 20);
    assert!(
        !worker.logs().contains(FELL_BACK),
        "new rows load without a fallback:\n{}",
        worker.logs()
    );
    // 100,000 bytes of text a row: every batch of these updates is a COPY
    // of two parts or more, and its first row's key is held.
    pg.exec(&format!(
        "UPDATE {source_table} SET note = repeat('wide ', 20000)"
    ));
    wait_replica(
        &pg,
        &source_table,
        &target_table,
        "the replica with the wide notes",
    );
    merged_and_running(&worker, &api, "parts");
}

/// Checks that the `{name}-sink` of a [`pg_replica`] met keys its table
/// held and merged them, and runs on; then deletes both connectors.
fn merged_and_running(worker: &Worker, api: &Api, name: &str) {
    assert!(
        worker.logs().contains(FELL_BACK),
        "the COPY met the keys the table holds:\n{}",
        worker.logs()
    );
    let status = api.get(&format!("/connectors/{name}-sink/status")).body;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    api.delete(&format!("/connectors/{name}-src"));
    api.delete(&format!("/connectors/{name}-sink"));
}

/// A target table with no unique index on the sink's key cannot take
/// upserts: the sink fails naming that, and writes nothing, rather than
/// loading the rows with a COPY straight into the table (which needs no
/// index) and then adding a second row for each key it updates.
#[test]
fn upserts_into_a_table_with_no_unique_key_fail_naming_it() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (source, target) = items_schemas(&pg, 20);
    pg.exec(&format!(
        "CREATE TABLE {target}.items (id int, qty int NOT NULL, note text, price numeric(12,2), updated timestamptz)"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "nokey-src", &source, &[]);
    let sink = sink_config(
        &env,
        &Target::Postgres,
        &format!("{prefix}.{source}.items"),
        &format!("{target}.items"),
    );
    let reply = api.post(
        "/connectors",
        &json!({"name": "nokey-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let trace = wait_failed(
        &api,
        "nokey-sink",
        "the sink to fail naming the missing unique key",
        Duration::from_secs(60),
    );
    assert!(trace.contains("42P10"), "{trace}");
    assert_eq!(
        pg.exec(&format!("SELECT count(*) FROM {target}.items")),
        "0",
        "nothing written"
    );
    api.delete("/connectors/nokey-src");
    api.delete("/connectors/nokey-sink");
}

/// Waits until the task of connector `name` is FAILED; its trace.
fn wait_failed(api: &Api, name: &str, what: &str, limit: Duration) -> String {
    wait_for(what, limit, || {
        let task = status(api, name);
        (task["state"] == "FAILED").then(|| task["trace"].as_str().unwrap_or_default().to_owned())
    })
}

/// A PostgreSQL source `NAME-src` of an `items` table of `rows` rows and a
/// JDBC sink `NAME-sink` writing it into a new MariaDB database, after
/// `setup` ran there (`{db}` in it names the database); the source schema
/// and the target database.
fn pg_to_maria(
    env: &TestEnv,
    pg: &Pg,
    db: &Maria,
    api: &Api,
    name: &str,
    rows: u32,
    setup: &str,
) -> (String, String) {
    let (source, _) = items_schemas(pg, rows);
    let target = ident(name);
    db.exec(&format!("CREATE DATABASE {target}"));
    if !setup.is_empty() {
        db.exec(&setup.replace("{db}", &target));
    }
    let prefix = start_pg_source(api, pg, &format!("{name}-src"), &source, &[]);
    let sink = sink_config(
        env,
        &Target::MariaDb(&target),
        &format!("{prefix}.{source}.items"),
        "${source.table}",
    );
    let reply = api.post(
        "/connectors",
        &json!({"name": format!("{name}-sink"), "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    (source, target)
}

/// The rows of the source's and of the MariaDB target's `items`.
fn pg_and_maria_items(pg: &Pg, db: &Maria, source: &str, target: &str) -> (Rows, Rows) {
    (
        pg_items(pg, &format!("{source}.items")),
        db.try_exec(&format!("SELECT 1 FROM {target}.items LIMIT 1"))
            .map(|_| maria_items(db, &format!("{target}.items")))
            .unwrap_or_default(),
    )
}

/// The MariaDB target loads new rows with `LOAD DATA LOCAL INFILE`, for
/// which the server skips a key the table holds with a warning rather than
/// an error. A replay of creates over a replica whose rows changed since
/// must still overwrite them: the load is rolled back and the rows go
/// through the upsert statements — the replica ends equal to its source,
/// the task never fails.
#[test]
fn creates_replayed_over_rows_a_mariadb_target_holds_are_upserted_not_skipped() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (source, target) = pg_to_maria(&env, &pg, &db, &api, "mload", 60, "");
    let read = || pg_and_maria_items(&pg, &db, &source, &target);
    wait_equal(&api, "mload-sink", "the MariaDB replica", read);
    const DECLINED: &str =
        "the table holds some of these keys already, or a value needed converting";
    assert!(
        !worker.logs().contains(DECLINED),
        "new rows load without a fallback:\n{}",
        worker.logs()
    );

    stop_and_wait(&api, "mload-sink");
    db.exec(&format!("UPDATE {target}.items SET qty = -1"));
    let reset = api.delete("/connectors/mload-sink/offsets");
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(api.put_empty("/connectors/mload-sink/resume").status, 202);
    wait_equal(
        &api,
        "mload-sink",
        "the replica overwritten by the replay",
        read,
    );
    assert!(
        worker.logs().contains(DECLINED),
        "the replay met the keys the table holds:\n{}",
        worker.logs()
    );
    assert_eq!(status(&api, "mload-sink")["state"], "RUNNING");
    api.delete("/connectors/mload-src");
    api.delete("/connectors/mload-sink");
}

/// A value a MariaDB column cannot hold fails the sink naming it, as the
/// statements always did, and nothing is written: `LOAD DATA LOCAL` would
/// have cut it to fit with a warning.
#[test]
fn a_value_too_long_for_a_mariadb_column_fails_the_sink_and_is_never_cut() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (_, target) = pg_to_maria(
        &env,
        &pg,
        &db,
        &api,
        "mcut",
        20,
        "CREATE TABLE {db}.items (id int PRIMARY KEY, qty int NOT NULL, note varchar(4), price decimal(12,2), updated datetime(6))",
    );
    let trace = wait_failed(
        &api,
        "mcut-sink",
        "the sink to fail naming the value too long",
        Duration::from_secs(60),
    );
    assert!(trace.contains("Data too long for column 'note'"), "{trace}");
    assert_eq!(
        db.exec(&format!("SELECT count(*) FROM {target}.items")),
        "0",
        "nothing written, nothing cut"
    );
    api.delete("/connectors/mcut-src");
    api.delete("/connectors/mcut-sink");
}

/// A MariaDB target's batch of new rows ends (its load, the statements
/// if the load is declined, the commit) after `put` returns. Under
/// `errors.tolerance=all` a row the target refuses must still be found in
/// its own batch and dead-lettered alone: the other rows of that batch and
/// the batches after it land, and the task keeps running.
#[test]
fn rows_a_mariadb_target_refuses_go_to_the_dead_letter_topic_and_the_rest_land() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let (source, _) = items_schemas(&pg, 40);
    let target = ident("mdlq");
    db.exec(&format!(
        "CREATE DATABASE {target}; CREATE TABLE {target}.items (id int PRIMARY KEY, \
         qty int NOT NULL CHECK (qty >= 0), note text, price decimal(12,2), updated datetime(6))"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_pg_source(&api, &pg, "mdlq-src", &source, &[]);
    let topic = format!("{prefix}.{source}.items");
    let dlq = ident("mdlq_dead");
    let mut sink = sink_config(&env, &Target::MariaDb(&target), &topic, "${source.table}");
    sink["errors.tolerance"] = json!("all");
    sink["errors.deadletterqueue.topic.name"] = json!(dlq);
    sink["errors.deadletterqueue.context.headers.enable"] = json!("true");
    let reply = api.post("/connectors", &json!({"name": "mdlq-sink", "config": sink}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let read = || pg_and_maria_items(&pg, &db, &source, &target);
    wait_equal(&api, "mdlq-sink", "the snapshot at the target", read);
    // Two rows the target's CHECK refuses, then new rows after them.
    pg.exec(&format!(
        "UPDATE {source}.items SET qty = -5 WHERE id IN (3, 4); \
         INSERT INTO {source}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(41, 60) g;"
    ));
    let refused = |rows: Rows| -> Rows {
        rows.into_iter()
            .filter(|r| r[0] != "3" && r[0] != "4")
            .collect()
    };
    wait_equal(&api, "mdlq-sink", "every row but the refused ones", || {
        let (source_rows, target_rows) = read();
        (refused(source_rows), refused(target_rows))
    });
    let dead =
        sluice_tests::kafka::read_topic(env.bootstrap(), &dlq, Duration::from_secs(30), |r| {
            r.len() >= 2
        });
    assert_eq!(dead.len(), 2, "two refused records in {dlq}");
    let held = db.exec(&format!(
        "SELECT qty FROM {target}.items WHERE id IN (3, 4) ORDER BY id"
    ));
    assert_eq!(held, "3\n4", "the refused rows keep what the target had");
    assert_eq!(status(&api, "mdlq-sink")["state"], "RUNNING");
    api.delete("/connectors/mdlq-src");
    api.delete("/connectors/mdlq-sink");
}

/// Turns the test MariaDB's `local_infile` off, and back on when dropped.
struct LocalInfileOff<'a>(&'a Maria);

impl<'a> LocalInfileOff<'a> {
    fn new(db: &'a Maria) -> Self {
        db.exec("SET GLOBAL local_infile = 0");
        Self(db)
    }
}

impl Drop for LocalInfileOff<'_> {
    fn drop(&mut self) {
        self.0.exec("SET GLOBAL local_infile = 1");
    }
}

/// A MariaDB server that refuses `LOAD DATA LOCAL INFILE` (MySQL 8's
/// default) gets the rows through statements, with one warning saying how
/// to allow the faster load — never a failed sink. (Tests running at the
/// same time meanwhile write with statements too, which they must bear.)
#[test]
fn a_mariadb_target_without_local_infile_takes_the_rows_as_statements() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let off = LocalInfileOff::new(&db);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (source, target) = pg_to_maria(&env, &pg, &db, &api, "noinfile", 40, "");
    wait_equal(&api, "noinfile-sink", "the MariaDB replica", || {
        pg_and_maria_items(&pg, &db, &source, &target)
    });
    drop(off);
    assert!(
        worker
            .logs()
            .contains("the target does not allow LOAD DATA LOCAL INFILE"),
        "{}",
        worker.logs()
    );
    assert_eq!(status(&api, "noinfile-sink")["state"], "RUNNING");
    api.delete("/connectors/noinfile-src");
    api.delete("/connectors/noinfile-sink");
}

/// A sink's consumer-offset commit waits for the broker's answer; while
/// the broker does not answer (stopped here mid-batch, as a broker cut off
/// or stalled would be) the wait holds no worker thread: with the worker
/// on one runtime thread, its REST API still answers. Once the broker
/// wakes the commit lands, and every record is in the target.
#[test]
fn a_commit_waiting_on_a_stalled_broker_leaves_the_worker_answering() {
    const RECORDS: i64 = 1_000;
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let broker = OwnBroker::start(&env, "127.0.0.1");
    let worker = Worker::start_wrapped(
        vec!["env".into(), "TOKIO_WORKER_THREADS=1".into()],
        "127.0.0.1",
        broker.bootstrap(),
        &[],
    );
    let api = worker.api();
    let (topic, target) = (unique("stall-topic"), ident("stall_dst"));
    let reply = api.post(
        "/connectors",
        &json!({"name": "stall-gen", "config": {
            "connector.class": "datagen", "topic": topic, "max.records": RECORDS,
            "key.cardinality": RECORDS,
        }}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("datagen to finish", Duration::from_secs(60), || {
        let offsets = api.get("/connectors/stall-gen/offsets").body;
        (offsets["offsets"][0]["offset"]["seq"].as_i64() == Some(RECORDS - 1)).then_some(())
    });
    // The target's first write sleeps, long enough to stop the broker
    // before the sink commits the batch and then its consumer offsets.
    pg.exec(&format!(
        "CREATE TABLE {target} (id bigint PRIMARY KEY, seq bigint NOT NULL, ts_ms timestamp NOT NULL, payload text NOT NULL); \
         CREATE TABLE {target}_slept (at timestamptz); \
         CREATE FUNCTION {target}_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM {target}_slept) THEN \
             INSERT INTO {target}_slept VALUES (now()); PERFORM pg_sleep(4); \
           END IF; RETURN NULL; END $$; \
         CREATE TRIGGER slow AFTER INSERT ON {target} FOR EACH STATEMENT EXECUTE FUNCTION {target}_slow();"
    ));
    let mut sink = sink_config(&env, &Target::Postgres, &topic, &target);
    sink["batch.size"] = json!(RECORDS.to_string());
    let reply = api.post(
        "/connectors",
        &json!({"name": "stall-sink", "config": sink}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for(
        "the sink's first write to sleep",
        Duration::from_secs(60),
        || {
            pg.rows(&format!(
            "SELECT 1 AS sleeping FROM pg_stat_activity WHERE query LIKE 'COPY%{target}%' AND wait_event = 'PgSleep'"
        ))
        .first()
        .cloned()
        },
    );
    broker.signal(libc::SIGSTOP);
    // The batch commits in the target; the consumer-offset commit that
    // follows it gets no answer.
    wait_for(
        "the first batch in the target",
        Duration::from_secs(30),
        || {
            let rows = pg.rows(&format!("SELECT count(*) AS n FROM {target}"));
            (rows[0]["n"].as_i64() > Some(0)).then_some(())
        },
    );
    let (answered, answer) = std::sync::mpsc::channel();
    let asking = worker.api();
    std::thread::spawn(move || {
        let _ = answered.send(asking.try_get("/connectors/stall-sink/status"));
    });
    let reply = answer.recv_timeout(Duration::from_secs(10));
    broker.signal(libc::SIGCONT);
    match reply {
        Ok(Some(reply)) => assert_eq!(reply.status, 200, "{}", reply.text),
        Ok(None) => panic!("the REST API refused a status request while the broker was stopped"),
        Err(_) => panic!(
            "the REST API did not answer within 10 s while the sink waited on the stopped broker:\n{}",
            worker.logs()
        ),
    }
    wait_for(
        "every record in the target",
        Duration::from_secs(90),
        || {
            let rows = pg.rows(&format!("SELECT count(*) AS n FROM {target}"));
            (rows[0]["n"].as_i64() == Some(RECORDS)).then_some(())
        },
    );
    wait_for(
        "the sink's offsets at the topic's end",
        Duration::from_secs(60),
        || {
            let offsets = api.get("/connectors/stall-sink/offsets").body;
            (offsets["offsets"][0]["offset"]["kafka_offset"].as_i64() == Some(RECORDS))
                .then_some(())
        },
    );
}
