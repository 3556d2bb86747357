//! Wide rows under `max.queue.size.in.bytes`, against the real databases
//! and broker: with a byte bound smaller than one row, each source still
//! hands its rows over (a batch larger than the whole bound goes alone
//! once the queue is empty) through the snapshot and the stream, and
//! every row arrives whole, once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::connectors::task_status;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{read_topic, Consumed};
use sluice_tests::mariadb::Maria;
use sluice_tests::postgres::Pg;
use sluice_tests::unique;
use sluice_tests::worker::Worker;

/// Each row's text: 160,000 characters, its id's MD5 digest repeated.
const WIDTH: usize = 160_000;
/// Less than one row: every batch is larger than the whole bound.
const BOUND: &str = "100000";
const SNAPSHOT_ROWS: i64 = 24;
const STREAMED_ROWS: i64 = 12;

fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// Waits until `topic` holds a change event for every id in `1..=rows`,
/// then checks that each carries its row whole (the id's digest, as the
/// database gives it in `digests`, repeated) and that none came twice.
fn assert_rows_arrive_whole(
    env: &TestEnv,
    topic: &str,
    rows: i64,
    digests: &HashMap<i64, String>,
) -> Vec<Consumed> {
    let records = read_topic(env.bootstrap(), topic, Duration::from_secs(120), |r| {
        r.len() as i64 >= rows
    });
    let ids: Vec<i64> = records
        .iter()
        .map(|r| r.value["after"]["id"].as_i64().expect("an id in after"))
        .collect();
    assert_eq!(
        ids,
        (1..=rows).collect::<Vec<_>>(),
        "every row once, in order"
    );
    for record in &records {
        let id = record.value["after"]["id"].as_i64().unwrap_or(0);
        let text = record.value["after"]["body"].as_str().unwrap_or("");
        assert_eq!(text.len(), WIDTH, "row {id}'s text, whole");
        let digest = digests.get(&id).expect("the row is in the table");
        assert!(
            text == digest.repeat(WIDTH / 32),
            "row {id}'s text is its own"
        );
    }
    records
}

fn post(api: &Api, name: &str, config: &Value) {
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
}

fn assert_running(api: &Api, name: &str) {
    let status = task_status(api, name);
    assert_eq!(status["state"], "RUNNING", "{status}");
}

#[test]
fn postgres_rows_wider_than_the_queue_bound_all_arrive() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("wide");
    let slot = ident("slot");
    let insert = |from: i64, to: i64| {
        format!("INSERT INTO {schema}.wide SELECT g, repeat(md5(g::text), {WIDTH} / 32) FROM generate_series({from}, {to}) g;")
    };
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.wide (id bigint PRIMARY KEY, body text); {}",
        insert(1, SNAPSHOT_ROWS)
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["max.queue.size.in.bytes"] = json!(BOUND);
    post(&api, "pg-wide", &config);
    let topic = format!("{prefix}.{schema}.wide");
    let digests = || -> HashMap<i64, String> {
        pg.rows(&format!(
            "SELECT id, md5(id::text) AS digest FROM {schema}.wide"
        ))
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap_or(0),
                r["digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
    };
    assert_rows_arrive_whole(&env, &topic, SNAPSHOT_ROWS, &digests());
    // One transaction of wide rows, streamed.
    pg.exec(&format!(
        "BEGIN; {} COMMIT;",
        insert(SNAPSHOT_ROWS + 1, SNAPSHOT_ROWS + STREAMED_ROWS)
    ));
    let records = assert_rows_arrive_whole(&env, &topic, SNAPSHOT_ROWS + STREAMED_ROWS, &digests());
    assert_eq!(records[0].value["op"], "r");
    assert_eq!(records[records.len() - 1].value["op"], "c");
    assert_running(&api, "pg-wide");
    api.delete("/connectors/pg-wide");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);
}

#[test]
fn mariadb_rows_wider_than_the_queue_bound_all_arrive() {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let database = ident("wide");
    let insert = |from: i64, to: i64| {
        format!("INSERT INTO {database}.wide SELECT seq, REPEAT(MD5(seq), {WIDTH} DIV 32) FROM seq_{from}_to_{to};")
    };
    db.exec(&format!(
        "CREATE DATABASE {database}; CREATE TABLE {database}.wide (id BIGINT PRIMARY KEY, body LONGTEXT); {}",
        insert(1, SNAPSHOT_ROWS)
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let server_id = 30_000 + std::process::id() % 1000 * 4 + NEXT.fetch_add(1, Ordering::Relaxed);
    let mut config = db.connector_config(&prefix, &database, server_id);
    config["max.queue.size.in.bytes"] = json!(BOUND);
    post(&api, "my-wide", &config);
    let topic = format!("{prefix}.{database}.wide");
    let digests = || -> HashMap<i64, String> {
        db.rows(&format!("SELECT id, MD5(id) FROM {database}.wide"))
            .into_iter()
            .map(|r| (r[0].parse().unwrap_or(0), r[1].clone()))
            .collect()
    };
    assert_rows_arrive_whole(&env, &topic, SNAPSHOT_ROWS, &digests());
    db.exec(&format!(
        "BEGIN; {} COMMIT;",
        insert(SNAPSHOT_ROWS + 1, SNAPSHOT_ROWS + STREAMED_ROWS)
    ));
    let records = assert_rows_arrive_whole(&env, &topic, SNAPSHOT_ROWS + STREAMED_ROWS, &digests());
    assert_eq!(records[0].value["op"], "r");
    assert_eq!(records[records.len() - 1].value["op"], "c");
    assert_running(&api, "my-wide");
    api.delete("/connectors/my-wide");
}
