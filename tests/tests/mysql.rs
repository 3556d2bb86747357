//! The MySQL / MariaDB source against the real MariaDB and broker:
//! snapshot plus streaming under concurrent writes, DDL followed across a
//! restart, crashes, server restarts and binlog rotation, preflight
//! failures; the topic, replayed, must equal the table.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{read_topic, Consumed};
use sluice_tests::mariadb::Maria;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

/// A fresh identifier (database, prefix).
fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// A replica id no other test uses at the same time.
fn server_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    5000 + std::process::id() % 1000 * 16 + NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Creates `db.items` with `rows` rows.
fn create_items(db: &Maria, database: &str, rows: i64) {
    db.exec(&format!(
        "CREATE DATABASE {database}; \
         CREATE TABLE {database}.items (id INT PRIMARY KEY, qty INT NOT NULL, note VARCHAR(40), \
           price DECIMAL(12,2), updated TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)); \
         INSERT INTO {database}.items (id, qty, note, price) \
           SELECT seq, seq % 100, CONCAT('note ', seq), seq * 1.25 FROM seq_1_to_{rows};"
    ));
}

/// The table as the topic tells it: id → (qty, note, price text).
type State = BTreeMap<i64, (i64, Option<String>, Option<String>)>;

/// Decimal bytes (base64 in JSON) as text with two decimals.
fn price_text(price: &Value) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(price.as_str()?)
        .ok()?;
    let mut value: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
    for b in bytes {
        value = (value << 8) | i128::from(b);
    }
    Some(format!("{}.{:02}", value / 100, (value % 100).abs()))
}

fn row_state(row: &Value) -> (i64, (i64, Option<String>, Option<String>)) {
    (
        row["id"].as_i64().expect("id"),
        (
            row["qty"].as_i64().expect("qty"),
            row["note"].as_str().map(str::to_owned),
            price_text(&row["price"]),
        ),
    )
}

/// Replays change events (JSON, schemas off) into the final state.
fn replay(records: &[Consumed]) -> State {
    let mut state = State::new();
    for record in records {
        let event = &record.value;
        match event["op"].as_str() {
            Some("r" | "c" | "u") => {
                let (id, row) = row_state(&event["after"]);
                state.insert(id, row);
            }
            Some("d") => {
                state.remove(&event["before"]["id"].as_i64().expect("deleted id"));
            }
            _ => {}
        }
    }
    state
}

fn table_state(db: &Maria, database: &str) -> State {
    db.rows(&format!("SELECT id, qty, note, price FROM {database}.items ORDER BY id"))
        .into_iter()
        .map(|r| {
            let opt = |s: &str| (s != "NULL").then(|| s.to_owned());
            (
                r[0].parse().expect("id"),
                (r[1].parse().expect("qty"), opt(&r[2]), opt(&r[3])),
            )
        })
        .collect()
}

/// Waits until replaying `topic` gives the table's state.
fn assert_converges(env: &TestEnv, db: &Maria, database: &str, topic: &str) -> Vec<Consumed> {
    let expected = table_state(db, database);
    let mut last = State::new();
    let records = wait_for("the topic to converge on the table", Duration::from_secs(120), || {
        let records = read_topic(env.bootstrap(), topic, Duration::from_secs(20), |_| false);
        last = replay(&records);
        (last == expected).then_some(records)
    });
    assert_eq!(last, expected);
    records
}

fn status(api: &Api, name: &str) -> Value {
    api.get(&format!("/connectors/{name}/status")).body["tasks"][0].clone()
}

/// Creates connector `name` and waits for its task to fail; the trace.
fn failure_trace(api: &Api, name: &str, config: &Value, waiting_for: &str) -> String {
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let failed = wait_for(waiting_for, Duration::from_secs(60), || {
        let task = status(api, name);
        (task["state"] == "FAILED").then_some(task)
    });
    api.delete(&format!("/connectors/{name}"));
    failed["trace"].as_str().unwrap_or_default().to_owned()
}

/// `rounds` transactions of insert + update + delete, ten per client call.
fn random_writes(db: &Maria, database: &str, rounds: i64, base: i64) {
    for chunk in (0..rounds).collect::<Vec<_>>().chunks(10) {
        let sql: String = chunk
            .iter()
            .map(|i| {
                let id = base + i;
                format!(
                    "BEGIN; \
                     INSERT IGNORE INTO {database}.items (id, qty, note, price) VALUES ({id}, {i}, 'new {i}', {i}.5); \
                     UPDATE {database}.items SET qty = qty + 1, note = 'upd {i}' WHERE id = {}; \
                     DELETE FROM {database}.items WHERE id = {}; \
                     COMMIT;",
                    1 + (i * 7) % 500,
                    500 + i
                )
            })
            .collect();
        // A batch cut short by a server restart is run again; the
        // statements tolerate it.
        let mut attempts = 0;
        while let Err(e) = db.try_exec(&sql) {
            attempts += 1;
            assert!(attempts < 150, "mariadb kept failing: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn snapshot_then_stream_under_concurrent_writes_rebuilds_the_table() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let database = ident("snap");
    create_items(&db, &database, 5000);
    // Big enough to be cut into key ranges the readers share.
    db.exec(&format!(
        "CREATE TABLE {database}.big (id BIGINT PRIMARY KEY, pad VARCHAR(200) NOT NULL); \
         INSERT INTO {database}.big SELECT seq, REPEAT('x', 100) FROM seq_1_to_40000; ANALYZE TABLE {database}.big;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = db.connector_config(&prefix, &database, server_id());
    config["snapshot.max.threads"] = json!("3");
    let writer = {
        let (db, database) = (db.clone(), database.clone());
        std::thread::spawn(move || random_writes(&db, &database, 200, 100_000))
    };
    let reply = api.post("/connectors", &json!({"name": "my-snap", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    writer.join().expect("writer thread");
    let topic = format!("{prefix}.{database}.items");
    let records = assert_converges(&env, &db, &database, &topic);

    let reads: Vec<&Consumed> = records.iter().filter(|r| r.value["op"] == "r").collect();
    assert_eq!(reads.len(), 5000, "every row read once");
    let big = read_topic(env.bootstrap(), &format!("{prefix}.{database}.big"), Duration::from_secs(60), |r| r.len() >= 40000);
    let ids: std::collections::BTreeSet<i64> = big.iter().filter_map(|c| c.key["id"].as_i64()).collect();
    assert_eq!(ids.len(), 40000, "every row of the big table once");
    assert_eq!(big.len(), 40000, "and no row twice");
    let event = &reads[0].value;
    assert_eq!(event["source"]["connector"], "mysql");
    assert_eq!(event["source"]["name"], prefix.as_str());
    assert_eq!(event["source"]["db"], database.as_str());
    assert_eq!(event["source"]["table"], "items");
    assert!(event["after"]["updated"].as_str().is_some_and(|t| t.ends_with('Z')), "{event}");
    // Streamed changes carry their binlog position and GTID.
    let change = records.iter().find(|r| r.value["op"] == "c").expect("an insert event");
    assert!(change.value["source"]["file"].as_str().is_some_and(|f| f.starts_with("binlog.")), "{}", change.value);
    assert!(change.value["source"]["gtid"].as_str().is_some_and(|g| g.starts_with("0-1-")), "{}", change.value);
    let delete = records.iter().position(|r| r.value["op"] == "d").expect("a delete event");
    assert!(records[delete + 1].raw_value.is_none(), "tombstone after the delete");
    assert_eq!(records[delete + 1].key, records[delete].key);
    // The schema change topic announced the tables.
    let ddl = read_topic(env.bootstrap(), &prefix, Duration::from_secs(20), |r| r.len() >= 2);
    assert!(ddl.iter().any(|r| r.value["tableChanges"][0]["id"] == format!("\"{database}\".\"items\"")), "{:?}", ddl.first().map(|r| &r.value));

    let progress = status(&api, "my-snap");
    assert_eq!(progress["state"], "RUNNING", "{progress}");
    assert_eq!(progress["progress"]["phase"], "streaming");
    assert_eq!(
        progress["progress"]["snapshot"][format!("{database}.big")]["rows"].as_u64(),
        Some(40000),
        "{progress}"
    );
    let shown = std::process::Command::new(sluice_tests::worker::sluice_bin())
        .args(["status", "my-snap", "--rest", &worker.url()])
        .output()
        .expect("sluice status");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(&format!("{database}.items")) && shown.contains("5000/"), "{shown}");
    let metrics = api.get("/metrics").text;
    assert!(
        metrics.contains(&format!(
            "sluice_snapshot_rows{{connector=\"my-snap\",task=\"0\",table=\"{database}.big\"}} 40000"
        )),
        "snapshot progress in /metrics"
    );
    let offsets = api.get("/connectors/my-snap/offsets").body;
    assert!(offsets.to_string().contains("\"file\""), "{offsets}");
    api.delete("/connectors/my-snap");
}
