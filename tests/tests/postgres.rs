//! The PostgreSQL source against the real database and broker: snapshot
//! plus streaming under concurrent writes, crash recovery, preflight
//! failures; the topic, replayed, must equal the table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::connectors::{failure_trace, task_status as status};
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{
    assert_changes_made_while_down_are_last, read_topic, snapshot_row_and_its_streamed_copy,
    Consumed,
};
use sluice_tests::postgres::Pg;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

/// A fresh lower-case identifier (schema, slot).
fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// Creates `schema.items` with `rows` rows.
fn create_items(pg: &Pg, schema: &str, rows: i64) {
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2), \
           updated timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO {schema}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, {rows}) g;"
    ));
}

/// The table as the topic tells it: key id → (qty, note, price in cents).
type State = BTreeMap<i64, (i64, Option<String>, Option<i128>)>;

fn cents(price: &Value) -> Option<i128> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(price.as_str()?)
        .ok()?;
    let mut value: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for b in bytes {
        value = (value << 8) | i128::from(b);
    }
    Some(value)
}

fn row_state(row: &Value) -> (i64, (i64, Option<String>, Option<i128>)) {
    (
        row["id"].as_i64().expect("id"),
        (
            row["qty"].as_i64().expect("qty"),
            row["note"].as_str().map(str::to_owned),
            cents(&row["price"]),
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
            _ => {} // tombstones
        }
    }
    state
}

fn table_state(pg: &Pg, schema: &str) -> State {
    pg.rows(&format!(
        "SELECT id, qty, note, (price * 100)::bigint AS cents FROM {schema}.items ORDER BY id"
    ))
    .iter()
    .map(|r| {
        (
            r["id"].as_i64().expect("id"),
            (
                r["qty"].as_i64().expect("qty"),
                r["note"].as_str().map(str::to_owned),
                r["cents"].as_i64().map(i128::from),
            ),
        )
    })
    .collect()
}

/// Waits until replaying `topic` gives the table's state.
fn assert_converges(env: &TestEnv, pg: &Pg, schema: &str, topic: &str) -> Vec<Consumed> {
    let expected = table_state(pg, schema);
    let mut last = State::new();
    let records = wait_for(
        "the topic to converge on the table",
        Duration::from_secs(120),
        || {
            let records = read_topic(env.bootstrap(), topic, Duration::from_secs(20), |_| false);
            last = replay(&records);
            (last == expected).then_some(records)
        },
    );
    assert_eq!(last, expected);
    records
}

#[test]
fn snapshot_then_stream_under_concurrent_writes_rebuilds_the_table() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("snap");
    let slot = ident("slot");
    create_items(&pg, &schema, 5000);
    for extra in ["extra_a", "extra_b"] {
        pg.exec(&format!(
            "CREATE TABLE {schema}.{extra} (id int PRIMARY KEY); INSERT INTO {schema}.{extra} VALUES (1), (2), (3);"
        ));
    }
    // Big enough (~1000 pages) to be cut into page ranges the readers share.
    pg.exec(&format!(
        "CREATE TABLE {schema}.big (id int PRIMARY KEY, pad text NOT NULL); \
         INSERT INTO {schema}.big SELECT g, repeat('x', 160) FROM generate_series(1, 40000) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["snapshot.max.threads"] = json!("3");
    let writer = {
        let (pg, schema) = (pg.clone(), schema.clone());
        std::thread::spawn(move || pg.random_writes(&schema, 200, 100_000, 500))
    };
    let reply = api.post("/connectors", &json!({"name": "pg-snap", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    writer.join().expect("writer thread");
    let topic = format!("{prefix}.{schema}.items");
    let records = assert_converges(&env, &pg, &schema, &topic);

    // Snapshot events come first, marked as Debezium marks them.
    let reads: Vec<&Consumed> = records.iter().filter(|r| r.value["op"] == "r").collect();
    assert_eq!(reads.len(), 5000, "every row read once");
    // Three readers shared the snapshot: exactly one "first" and one "last"
    // over all tables, and each table's rows bracketed by its own markers.
    let mut markers = Vec::new();
    for table in ["items", "extra_a", "extra_b", "big"] {
        let topic = format!("{prefix}.{schema}.{table}");
        let wanted = match table {
            "items" => 5000,
            "big" => 40000,
            _ => 3,
        };
        let reads: Vec<Consumed> =
            read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
                r.iter().filter(|c| c.value["op"] == "r").count() >= wanted
            })
            .into_iter()
            .filter(|c| c.value["op"] == "r")
            .collect();
        let ids: std::collections::BTreeSet<i64> =
            reads.iter().filter_map(|c| c.key["id"].as_i64()).collect();
        assert_eq!(ids.len(), wanted, "{table}: every row once");
        let rows: Vec<String> = reads
            .iter()
            .map(|c| {
                c.value["source"]["snapshot"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(rows.len(), wanted, "{table}");
        assert!(
            rows[1..rows.len() - 1].iter().all(|m| m == "true"),
            "{table}: {rows:?}"
        );
        markers.push(rows[0].clone());
        markers.push(rows[rows.len() - 1].clone());
    }
    let count = |m: &str| markers.iter().filter(|x| *x == m).count();
    assert_eq!(count("first"), 1, "{markers:?}");
    assert_eq!(count("last"), 1, "{markers:?}");
    assert_eq!(count("first_in_data_collection"), 3, "{markers:?}");
    assert_eq!(count("last_in_data_collection"), 3, "{markers:?}");
    // The big table was read in pieces: more work units than tables.
    let logs = worker.logs();
    let units = logs
        .lines()
        .find(|l| l.contains("snapshot started"))
        .and_then(|l| l.split("units=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok());
    assert!(units.is_some_and(|u| u > 4), "units: {units:?}");
    let first_change = records
        .iter()
        .position(|r| r.value["op"] != "r" && !r.value.is_null());
    let last_read = records.iter().rposition(|r| r.value["op"] == "r");
    if let (Some(change), Some(read)) = (first_change, last_read) {
        assert!(read < change, "streamed changes follow the snapshot");
    }
    let event = &reads[0].value;
    assert_eq!(event["source"]["connector"], "postgresql");
    assert_eq!(event["source"]["name"], prefix.as_str());
    assert_eq!(event["source"]["schema"], schema.as_str());
    assert_eq!(event["source"]["table"], "items");
    assert!(
        event["after"]["updated"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{event}"
    );
    // Deletes carry the key and are followed by a tombstone.
    let delete = records
        .iter()
        .position(|r| r.value["op"] == "d")
        .expect("a delete event");
    assert!(
        records[delete + 1].raw_value.is_none(),
        "tombstone after the delete"
    );
    assert_eq!(records[delete + 1].key, records[delete].key);

    let shown = std::process::Command::new(sluice_tests::worker::sluice_bin())
        .args(["status", "pg-snap", "--rest", &worker.url()])
        .output()
        .expect("sluice status");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("pg-snap  RUNNING"), "{shown}");
    assert!(
        shown.contains(&format!("{schema}.items")) && shown.contains("100% 5000/"),
        "{shown}"
    );
    let metrics = api.get("/metrics").text;
    assert!(
        metrics.contains(&format!(
            "sluice_snapshot_rows{{connector=\"pg-snap\",task=\"0\",table=\"{schema}.items\"}} 5000"
        )),
        "snapshot progress in /metrics"
    );
    let progress = status(&api, "pg-snap");
    assert_eq!(progress["state"], "RUNNING", "{progress}");
    assert_eq!(progress["progress"]["phase"], "streaming");
    assert_eq!(
        progress["progress"]["snapshot"][format!("{schema}.items")]["rows"]
            .as_u64()
            .map(|rows| rows >= 5000),
        Some(true),
        "{progress}"
    );
    api.delete("/connectors/pg-snap");
    wait_for("the slot to be dropped", Duration::from_secs(30), || {
        (pg.exec(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"
        )) == "0")
            .then_some(())
    });
}

#[test]
fn kill_9_during_load_loses_no_change() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("crash");
    let slot = ident("slot");
    create_items(&pg, &schema, 1000);
    let mut worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let reply = api.post(
        "/connectors",
        &json!({"name": "pg-crash", "config": pg.connector_config(&prefix, &schema, &slot)}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, "pg-crash")["progress"]["phase"] == "streaming").then_some(())
    });
    let writer = {
        let (pg, schema) = (pg.clone(), schema.clone());
        std::thread::spawn(move || pg.random_writes(&schema, 300, 200_000, 500))
    };
    std::thread::sleep(Duration::from_millis(1500));
    worker.kill9();
    std::thread::sleep(Duration::from_millis(500));
    worker.restart();
    writer.join().expect("writer thread");
    // The old walsender may linger until PostgreSQL notices the dead socket.
    assert_converges(&env, &pg, &schema, &format!("{prefix}.{schema}.items"));
    assert_eq!(status(&api, "pg-crash")["state"], "RUNNING");
    api.delete("/connectors/pg-crash");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);
}

#[test]
fn preflight_failures_name_the_fix() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();

    // A table without a key under REPLICA IDENTITY DEFAULT.
    let schema = ident("nokey");
    let slot = ident("slot");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.log (line text);"
    ));
    let trace = failure_trace(
        &api,
        "pg-nokey",
        &pg.connector_config(&ident("srv"), &schema, &slot),
        "the keyless table to be refused",
    );
    assert!(trace.contains(&format!("{schema}.log")), "{trace}");
    assert!(trace.contains("REPLICA IDENTITY FULL"), "{trace}");

    // Wrong password: named, with what to check.
    let mut config = pg.connector_config(&ident("srv"), &schema, &ident("slot"));
    config["database.password"] = json!("wrong");
    let trace = failure_trace(&api, "pg-auth", &config, "the bad password to be reported");
    assert!(trace.contains("password"), "{trace}");

    // A missing publication when creation is disabled.
    let schema = ident("nopub");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id int PRIMARY KEY);"
    ));
    let mut config = pg.connector_config(&ident("srv"), &schema, &ident("slot"));
    config["publication.autocreate.mode"] = json!("disabled");
    let trace = failure_trace(
        &api,
        "pg-nopub",
        &config,
        "the missing publication to be reported",
    );
    assert!(trace.contains("CREATE PUBLICATION"), "{trace}");

    // Bad configs are refused before anything runs, naming the key.
    let mut config = pg.connector_config(&ident("srv"), &schema, &ident("slot"));
    config["snapshot.mode"] = json!("sometimes");
    config["slot.name"] = json!("Bad-Slot");
    config["table.include.list"] = json!("a.b");
    config["table.exclude.list"] = json!("a.c");
    let reply = api.post("/connectors", &json!({"name": "pg-bad", "config": config}));
    assert_eq!(reply.status, 400, "{}", reply.text);
    for key in ["snapshot.mode", "slot.name", "table.exclude.list"] {
        assert!(
            reply.message().contains(key),
            "{key} not named: {}",
            reply.text
        );
    }
}

#[test]
fn terminated_walsender_pause_resume_and_server_restart_lose_no_change() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("term");
    let slot = ident("slot");
    create_items(&pg, &schema, 500);
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let reply = api.post(
        "/connectors",
        &json!({"name": "pg-term", "config": pg.connector_config(&prefix, &schema, &slot)}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, "pg-term")["progress"]["phase"] == "streaming").then_some(())
    });
    let writer = {
        let (pg, schema) = (pg.clone(), schema.clone());
        std::thread::spawn(move || pg.random_writes(&schema, 300, 300_000, 500))
    };
    std::thread::sleep(Duration::from_millis(800));
    let terminated = pg.exec(&format!(
        "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active"
    ));
    assert_eq!(
        terminated, "1",
        "the walsender was running and is now terminated"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(api.put_empty("/connectors/pg-term/pause").status, 202);
    wait_for("PAUSED", Duration::from_secs(30), || {
        (status(&api, "pg-term")["state"] == "PAUSED").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(api.put_empty("/connectors/pg-term/resume").status, 202);
    std::thread::sleep(Duration::from_millis(800));
    // And the whole server restarts under the load.
    env.script("restart-postgres");
    writer.join().expect("writer thread");
    assert_converges(&env, &pg, &schema, &format!("{prefix}.{schema}.items"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task = status(&api, "pg-term");
        if task["state"] == "RUNNING" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not RUNNING after the restarts: {task}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    api.delete("/connectors/pg-term");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);
}

/// A database that turns read-only for a while (a failover under way, a
/// standby promoted late, `default_transaction_read_only` set for
/// maintenance) while the connector reconnects: its publication update is
/// refused with "read-only transaction". The task waits for writes and
/// streams on with nothing lost, where it failed for good before, taking
/// the refusal for a missing privilege (found by `scripts/chaos --seed
/// 2048`).
#[test]
fn a_database_read_only_while_the_connector_reconnects_is_waited_out() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("ro");
    let slot = ident("slot");
    create_items(&pg, &schema, 50);
    // A role of its own (owning the table, as a publication of it needs),
    // so that only this connector's sessions turn read-only, not those of
    // the tests running beside it.
    let role = ident("ro_user");
    pg.exec(&format!(
        "CREATE ROLE {role} LOGIN REPLICATION PASSWORD 'pw'; \
         GRANT CREATE ON DATABASE \"{}\" TO {role}; \
         GRANT USAGE ON SCHEMA {schema} TO {role}; \
         ALTER TABLE {schema}.items OWNER TO {role};",
        env.get("SLUICE_PG_DATABASE")
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["database.user"] = json!(role);
    config["database.password"] = json!("pw");
    let reply = api.post("/connectors", &json!({"name": "pg-ro", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, "pg-ro")["progress"]["phase"] == "streaming").then_some(())
    });
    pg.exec(&format!(
        "ALTER ROLE {role} SET default_transaction_read_only = on; \
         SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{role}'"
    ));
    // Changes go on meanwhile (made by another role).
    pg.random_writes(&schema, 50, 200, 200);
    let trace = wait_for(
        "the task to meet the read-only database",
        Duration::from_secs(60),
        || {
            let task = status(&api, "pg-ro");
            let trace = task["trace"].as_str().unwrap_or_default().to_owned();
            trace.contains("read-only").then_some((task, trace))
        },
    );
    assert_eq!(
        trace.0["state"], "RUNNING",
        "waiting, not failed: {}",
        trace.1
    );
    pg.exec(&format!(
        "ALTER ROLE {role} RESET default_transaction_read_only"
    ));
    pg.random_writes(&schema, 50, 200, 200);
    assert_converges(&env, &pg, &schema, &format!("{prefix}.{schema}.items"));
    assert_eq!(status(&api, "pg-ro")["state"], "RUNNING");
    api.delete("/connectors/pg-ro");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);
    let _ = pg.try_exec(&format!(
        "DROP PUBLICATION IF EXISTS {slot}_pub; DROP OWNED BY {role}; DROP ROLE {role}"
    ));
}

#[test]
fn heartbeats_flow_and_keep_an_idle_slot_advancing() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("beat");
    let slot = ident("slot");
    create_items(&pg, &schema, 10);
    pg.exec(&format!(
        "CREATE TABLE {schema}.beats (at timestamptz NOT NULL DEFAULT now())"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["table.include.list"] = json!(format!("{schema}\\.items"));
    config["heartbeat.interval.ms"] = json!("300");
    config["heartbeat.action.query"] = json!(format!("INSERT INTO {schema}.beats DEFAULT VALUES"));
    let reply = api.post("/connectors", &json!({"name": "pg-beat", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, "pg-beat")["progress"]["phase"] == "streaming").then_some(())
    });
    let lsn = |pg: &Pg| {
        pg.exec(&format!(
        "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
    )).parse::<f64>().unwrap_or(0.0)
    };
    let before = lsn(&pg);
    let beats = read_topic(
        env.bootstrap(),
        &format!("__debezium-heartbeat.{prefix}"),
        Duration::from_secs(60),
        |r| r.len() >= 3,
    );
    assert!(beats.len() >= 3, "heartbeats arrive: {}", beats.len());
    assert_eq!(beats[0].key, json!({"serverName": prefix}));
    assert!(
        beats[0].value["ts_ms"].as_i64().is_some(),
        "{:?}",
        beats[0].value
    );
    assert!(
        pg.exec(&format!("SELECT count(*) FROM {schema}.beats"))
            .parse::<i64>()
            .unwrap_or(0)
            >= 2,
        "heartbeat.action.query ran"
    );
    wait_for("the idle slot to advance", Duration::from_secs(30), || {
        (lsn(&pg) > before).then_some(())
    });
    api.delete("/connectors/pg-beat");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);
}

/// Whether the connector's walsender (application `sluice-<slot>`) and
/// its query sessions use TLS, as PostgreSQL reports it.
fn walsender_tls(pg: &Pg, slot: &str) -> Option<bool> {
    let text = pg.exec(&format!(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'sluice-{slot}' AND a.backend_type = 'walsender'"
    ));
    match text.as_str() {
        "t" => Some(true),
        "f" => Some(false),
        _ => None,
    }
}

#[test]
fn tls_modes_encrypt_verify_and_refuse_as_libpq() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("tls");
    create_items(&pg, &schema, 20);
    let worker = Worker::start(&env);
    let api = worker.api();
    let ca = env.get("SLUICE_PG_CA").to_owned();

    // verify-full against the server's CA, by the name in its
    // certificate: snapshot and stream over TLS.
    let (slot, prefix) = (ident("slot"), ident("srv"));
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["database.hostname"] = json!("localhost");
    config["database.sslmode"] = json!("verify-full");
    config["database.sslrootcert"] = json!(ca);
    let reply = api.post("/connectors", &json!({"name": "pg-tls", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming over TLS", Duration::from_secs(60), || {
        (status(&api, "pg-tls")["progress"]["phase"] == "streaming").then_some(())
    });
    pg.exec(&format!(
        "UPDATE {schema}.items SET qty = -1 WHERE id = 7; DELETE FROM {schema}.items WHERE id = 8;"
    ));
    assert_converges(&env, &pg, &schema, &format!("{prefix}.{schema}.items"));
    assert_eq!(walsender_tls(&pg, &slot), Some(true), "walsender over TLS");
    api.delete("/connectors/pg-tls");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);

    // disable: plain connections.
    let (slot, prefix) = (ident("slot"), ident("srv"));
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["database.sslmode"] = json!("disable");
    api.post(
        "/connectors",
        &json!({"name": "pg-plain", "config": config}),
    );
    wait_for("streaming in plain text", Duration::from_secs(60), || {
        (status(&api, "pg-plain")["progress"]["phase"] == "streaming").then_some(())
    });
    assert_eq!(
        walsender_tls(&pg, &slot),
        Some(false),
        "walsender in plain text"
    );
    api.delete("/connectors/pg-plain");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);

    // A CA that did not sign the server's certificate: FAILED, named.
    let other_ca = sluice_tests::connectors::unrelated_ca("other_ca");
    let mut config = pg.connector_config(&ident("srv"), &schema, &ident("slot"));
    config["database.sslmode"] = json!("verify-ca");
    config["database.sslrootcert"] = json!(other_ca.to_string_lossy());
    let trace = failure_trace(
        &api,
        "pg-badca",
        &config,
        "the untrusted server to be refused",
    );
    assert!(
        trace.contains("TLS") && trace.contains("database.sslrootcert"),
        "{trace}"
    );
    let _ = std::fs::remove_file(&other_ca);

    // verify-full by an address the certificate does not name: refused.
    let mut config = pg.connector_config(&ident("srv"), &schema, &ident("slot"));
    config["database.sslmode"] = json!("verify-full");
    config["database.sslrootcert"] = json!(ca);
    let trace = failure_trace(
        &api,
        "pg-badname",
        &config,
        "the wrong host name to be refused",
    );
    assert!(
        trace.contains("TLS") && trace.contains("verify-ca"),
        "{trace}"
    );

    // Bad TLS settings are refused before anything runs, naming the key.
    let mut config = pg.connector_config(&ident("srv"), &schema, &ident("slot"));
    config["database.sslmode"] = json!("verify-full");
    let reply = api.post(
        "/connectors",
        &json!({"name": "pg-noca", "config": config.clone()}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("database.sslrootcert"),
        "{}",
        reply.text
    );
    config["database.sslrootcert"] = json!("/nonexistent/ca.crt");
    let reply = api.post("/connectors", &json!({"name": "pg-noca", "config": config}));
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("/nonexistent/ca.crt"),
        "{}",
        reply.text
    );
}

/// Makes PostgreSQL flush its WAL with a committed transaction. A
/// non-transactional logical message is written but not flushed (before
/// PostgreSQL 17 there is no way to ask), and a walsender sends only
/// flushed WAL: alone on an idle server such a message waits for the next
/// commit, as it would for Debezium.
fn flush_wal(pg: &Pg) {
    pg.exec("SELECT txid_current()");
}

#[test]
fn logical_decoding_messages_become_op_m_events_once() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("msg");
    let slot = ident("slot");
    create_items(&pg, &schema, 1);
    let mut worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["message.prefix.exclude.list"] = json!("internal.*");
    // The slot must outlive the worker's restart below.
    config["slot.drop.on.stop"] = json!("false");
    let reply = api.post("/connectors", &json!({"name": "pg-msg", "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, "pg-msg")["progress"]["phase"] == "streaming").then_some(())
    });
    let xid = pg.exec(&format!(
        "BEGIN; INSERT INTO {schema}.items (id, qty) VALUES (100, 1); \
         SELECT pg_logical_emit_message(true, 'audit', 'hello'); \
         SELECT txid_current() % 4294967296; COMMIT;"
    ));
    let xid: i64 = xid.lines().last().unwrap_or_default().parse().expect("xid");
    pg.exec("SELECT pg_logical_emit_message(false, 'internal.cache', 'skip me')");
    pg.exec("SELECT pg_logical_emit_message(false, 'ping', '\\x00ff'::bytea)");
    flush_wal(&pg);
    let topic = format!("{prefix}.message");
    let messages = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.len() >= 2
    });
    assert_eq!(messages.len(), 2, "{messages:?}");
    let (audit, ping) = (&messages[0], &messages[1]);
    assert_eq!(audit.key, json!({"prefix": "audit"}));
    assert_eq!(audit.value["op"], "m");
    assert_eq!(audit.value["message"]["prefix"], "audit");
    assert_eq!(
        audit.value["message"]["content"], "aGVsbG8=",
        "base64 of hello"
    );
    assert_eq!(audit.value["source"]["txId"], xid, "{}", audit.value);
    assert_eq!(audit.value["source"]["table"], "");
    assert_eq!(ping.key, json!({"prefix": "ping"}));
    assert_eq!(ping.value["message"]["content"], "AP8=", "base64 of 00 ff");
    assert!(ping.value["source"]["txId"].is_null(), "{}", ping.value);

    // After a restart nothing is emitted twice, and new messages follow.
    assert!(worker.terminate().success());
    worker.restart();
    pg.exec("SELECT pg_logical_emit_message(false, 'ping', 'again')");
    flush_wal(&pg);
    let messages = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.len() >= 3
    });
    std::thread::sleep(Duration::from_secs(2));
    let messages = if messages.len() == 3 {
        read_topic(env.bootstrap(), &topic, Duration::from_secs(5), |_| false)
    } else {
        messages
    };
    let contents: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.value["message"]["content"].as_str())
        .collect();
    assert_eq!(contents, ["aGVsbG8=", "AP8=", "YWdhaW4="], "{messages:?}");
    api.delete("/connectors/pg-msg");
    std::thread::sleep(Duration::from_secs(2));
    pg.drop_slot(&slot);
}

/// Issue 19, finding 4: a connector starting without offsets must never
/// drop a replication slot it did not create. The default `slot.name` is
/// `debezium`, shared by every database of a cluster, so dropping an
/// existing slot of the same name silently breaks another connector.
#[test]
fn a_fresh_start_never_drops_someone_elses_slot() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot) = (ident("shared"), ident("slot"));
    create_items(&pg, &schema, 5);
    // Another consumer's slot, holding WAL from this point on.
    let held = pg.exec(&format!(
        "SELECT lsn FROM pg_create_logical_replication_slot('{slot}', 'pgoutput')"
    ));
    pg.exec(&format!(
        "INSERT INTO {schema}.items (id, qty) VALUES (100, 1)"
    ));
    let mut config = pg.connector_config(&ident("srv"), &schema, &slot);
    config["slot.drop.on.stop"] = json!("false");
    let trace = failure_trace(
        &api,
        "pg-shared-slot",
        &config,
        "the existing slot to be refused",
    );
    assert!(trace.contains(&slot), "{trace}");
    assert!(
        trace.contains("slot.name"),
        "the fix names the key: {trace}"
    );
    assert!(trace.contains("pg_drop_replication_slot"), "{trace}");
    // Still the same slot: it was neither dropped nor recreated later.
    let still = pg.exec(&format!(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    assert_eq!(still, held, "the other consumer's slot was replaced");
    pg.drop_slot(&slot);
}

/// A task stopped after creating its slot but before its snapshot stored
/// any offset (a rolling restart or a reconfiguration in the first moments
/// of a connector's life) drops that slot as it stops, so the next start
/// takes the snapshot again instead of refusing a slot it has no offsets
/// for (which it must refuse when the slot may be someone else's, above).
/// `config` with the snapshot's read of `table` waiting 20 s, so that a
/// task can be stopped after its slot exists and before any record.
fn slow_snapshot(config: &Value, table: &str) -> Value {
    let mut slow = config.clone();
    slow["snapshot.select.statement.overrides"] = json!(table);
    slow[format!("snapshot.select.statement.overrides.{table}")] = json!(format!(
        "SELECT * FROM {table} WHERE (SELECT pg_sleep(20)) IS NOT NULL"
    ));
    slow
}

fn wait_for_slot(pg: &Pg, slot: &str) {
    wait_for("the slot created", Duration::from_secs(60), || {
        (pg.exec(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"
        )) == "1")
            .then_some(())
    });
}

/// Waits until the task is past its snapshot, and asserts it RUNNING.
fn wait_streaming(api: &Api, name: &str) {
    let streaming = wait_for(
        "the task past its snapshot",
        Duration::from_secs(90),
        || {
            let task = status(api, name);
            (task["state"] == "FAILED" || task["progress"]["phase"] == "streaming").then_some(task)
        },
    );
    assert_eq!(streaming["state"], "RUNNING", "the task: {streaming}");
}

/// Puts `config` (the read no longer held) back on connector `name` of
/// `worker` and waits until its task streams; the worker's API.
fn stream_again(worker: &Worker, name: &str, config: &Value) -> Api {
    let api = worker.api();
    let reply = api.put(&format!("/connectors/{name}/config"), config);
    assert_eq!(reply.status, 200, "{}", reply.text);
    wait_streaming(&api, name);
    api
}

/// How [`first_snapshot_cut_short`] cuts the task's first snapshot short.
#[derive(PartialEq)]
enum Cut {
    /// Reconfigured: the task is stopped and started again.
    Reconfigured,
    /// The worker killed (`kill -9`, a lost machine) and restarted: the
    /// task could not clean up.
    WorkerKilled,
}

/// A task's first snapshot cut short after its slot exists and before any
/// record; then the task must take the snapshot again (its five rows once,
/// nothing of the cut run) and stream, not fail on the slot it left.
fn first_snapshot_cut_short(cut: Cut) {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let mut worker = Worker::start(&env);
    let (schema, slot) = (ident("cut"), ident("slot"));
    create_items(&pg, &schema, 5);
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    // Debezium's default: the slot outlives a stop.
    config["slot.drop.on.stop"] = json!("false");
    let table = format!("{schema}.items");
    let reply = worker.api().post(
        "/connectors",
        &json!({"name": slot, "config": slow_snapshot(&config, &table)}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for_slot(&pg, &slot);
    if cut == Cut::WorkerKilled {
        worker.kill9();
        worker.restart();
    }
    let api = stream_again(&worker, &slot, &config);
    pg.exec(&format!("INSERT INTO {table} (id, qty) VALUES (6, 6)"));
    let records = read_topic(
        env.bootstrap(),
        &format!("{prefix}.{table}"),
        Duration::from_secs(60),
        |r| r.iter().any(|r| r.value["op"] == "c"),
    );
    let ops: Vec<(Value, Value)> = records
        .iter()
        .map(|r| (r.value["op"].clone(), r.value["after"]["id"].clone()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (json!("r"), json!(1)),
            (json!("r"), json!(2)),
            (json!("r"), json!(3)),
            (json!("r"), json!(4)),
            (json!("r"), json!(5)),
            (json!("c"), json!(6)),
        ]
    );
    api.delete(&format!("/connectors/{slot}"));
    pg.drop_slot(&slot);
}

#[test]
fn a_task_stopped_inside_its_first_snapshot_starts_over_on_the_next_start() {
    first_snapshot_cut_short(Cut::Reconfigured);
}

/// The task on the restarted worker takes the snapshot again with a new
/// slot, as Debezium would, instead of failing on a slot it takes for
/// someone else's: it stored that the snapshot had begun before creating
/// the slot.
#[test]
fn a_worker_killed_inside_its_first_snapshot_takes_it_again_on_restart() {
    first_snapshot_cut_short(Cut::WorkerKilled);
}

/// A worker killed after its first snapshot reached Kafka, before the
/// snapshot's end was stored, takes the snapshot again on restart. A row
/// deleted meanwhile is in neither snapshot's reads, so its delete must
/// still reach the topic, or a replica keeps the row the first snapshot
/// gave it (the JDBC sink's kill -9 test caught a replica that did).
#[test]
fn a_snapshot_taken_again_after_a_kill_keeps_the_changes_made_meanwhile() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    // Offsets flushed once a minute: the snapshot's end is not stored
    // before the kill.
    let mut worker = Worker::start_with(&env, &["--offset-flush-interval-ms", "60000"]);
    let (schema, slot) = (ident("again"), ident("slot"));
    create_items(&pg, &schema, 5);
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["slot.drop.on.stop"] = json!("false");
    let table = format!("{schema}.items");
    let topic = format!("{prefix}.{table}");
    let reply = worker
        .api()
        .post("/connectors", &json!({"name": slot, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.len() >= 5
    });
    worker.kill9();
    pg.exec(&format!(
        "DELETE FROM {table} WHERE id = 1; UPDATE {table} SET qty = 42 WHERE id = 2"
    ));
    worker.restart();
    // The log counts starts: the status may still show the first run's
    // `streaming` for a moment after the restart.
    wait_for("streaming again", Duration::from_secs(60), || {
        (worker.logs().matches("streaming started").count() >= 2).then_some(())
    });
    pg.exec(&format!("INSERT INTO {table} (id, qty) VALUES (6, 6)"));
    assert_changes_made_while_down_are_last(env.bootstrap(), &topic, 6);
    worker.api().delete(&format!("/connectors/{slot}"));
    pg.drop_slot(&slot);
}

/// `snapshot.mode=when_needed` after the slot was lost: the new snapshot
/// replaces the connector's stream offset, which no longer holds. A
/// worker killed inside that snapshot must take it again on restart, not
/// stream from the new slot as if the old offset were good: the change
/// made while there was no slot would be lost.
#[test]
fn a_worker_killed_inside_a_when_needed_snapshot_takes_it_again_and_loses_nothing() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let mut worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot) = (ident("needed"), ident("slot"));
    create_items(&pg, &schema, 5);
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["slot.drop.on.stop"] = json!("false");
    config["snapshot.mode"] = json!("when_needed");
    let table = format!("{schema}.items");
    let topic = format!("{prefix}.{table}");
    let reply = api.post("/connectors", &json!({"name": slot, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_streaming(&api, &slot);
    pg.exec(&format!("INSERT INTO {table} (id, qty) VALUES (6, 6)"));
    read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.len() >= 6
    });
    // The slot is lost while the connector is stopped, and a change is
    // made that only a new snapshot can bring.
    assert_eq!(
        api.put_empty(&format!("/connectors/{slot}/stop")).status,
        204
    );
    wait_for("the task stopped", Duration::from_secs(30), || {
        (pg.exec(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active"
        )) == "0")
            .then_some(())
    });
    pg.drop_slot(&slot);
    pg.exec(&format!("INSERT INTO {table} (id, qty) VALUES (7, 7)"));
    let reply = api.put(
        &format!("/connectors/{slot}/config"),
        &slow_snapshot(&config, &table),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        api.put_empty(&format!("/connectors/{slot}/resume")).status,
        202
    );
    wait_for_slot(&pg, &slot);
    worker.kill9();
    worker.restart();
    let api = stream_again(&worker, &slot, &config);
    pg.exec(&format!("INSERT INTO {table} (id, qty) VALUES (8, 8)"));
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.iter().any(|r| r.value["after"]["id"] == 8)
    });
    let after_the_loss: Vec<(Value, Value)> = records[6..]
        .iter()
        .map(|r| (r.value["op"].clone(), r.value["after"]["id"].clone()))
        .collect();
    assert!(
        after_the_loss.contains(&(json!("r"), json!(7))),
        "row 7, written while there was no slot, never came: {after_the_loss:?}"
    );
    assert_eq!(after_the_loss.last(), Some(&(json!("c"), json!(8))));
    api.delete(&format!("/connectors/{slot}"));
    pg.drop_slot(&slot);
}

/// Issue 19, finding 10: a table whose name Kafka cannot take as is
/// (spaces, non-ASCII) gets Debezium's sanitized topic name instead of
/// stopping the connector in a restart loop.
#[test]
fn odd_table_names_get_sanitized_topics() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot, prefix) = (ident("odd"), ident("slot"), ident("srv"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.\"Odd Table ü\" (id int PRIMARY KEY, note text); \
         INSERT INTO {schema}.\"Odd Table ü\" VALUES (1, 'snapshot');"
    ));
    let config = pg.connector_config(&prefix, &schema, &slot);
    create_streaming(&api, "pg-odd", &config);
    pg.exec(&format!(
        "INSERT INTO {schema}.\"Odd Table ü\" VALUES (2, 'streamed')"
    ));
    let topic = format!("{prefix}.{schema}.Odd_Table__");
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.len() >= 2
    });
    let notes: Vec<&str> = records
        .iter()
        .filter_map(|r| r.value["after"]["note"].as_str())
        .collect();
    assert_eq!(notes, ["snapshot", "streamed"], "{records:?}");
    assert_eq!(status(&api, "pg-odd")["state"], "RUNNING");
    api.delete("/connectors/pg-odd");
}

/// A Debezium user moving to sluice keeps their topics: a key's changes
/// written by sluice must land in the partition Debezium's Java producer
/// put that key's earlier changes in (murmur2 of the key bytes), or a
/// consumer reading partitions in parallel can apply an older change after
/// a newer one, and compaction keeps a stale value in the old partition.
/// librdkafka's default partitioner (CRC32) picks other partitions.
#[test]
fn keyed_records_land_in_the_partition_debeziums_producer_picks() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot, prefix) = (ident("parts"), ident("slot"), ident("srv"));
    create_items(&pg, &schema, 60);
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["topic.creation.default.partitions"] = json!("6");
    create_streaming(&api, "pg-parts", &config);
    pg.exec(&format!(
        "UPDATE {schema}.items SET qty = qty + 1 WHERE id <= 20; DELETE FROM {schema}.items WHERE id > 50;"
    ));
    let topic = format!("{prefix}.{schema}.items");
    // 60 reads, 20 updates, 10 deletes and their 10 tombstones.
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.len() >= 100
    });
    assert_eq!(records.len(), 100, "{records:?}");
    let used: std::collections::BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(used.len() > 1, "all 60 keys in one partition: {used:?}");
    for record in &records {
        let key = record.raw_key_bytes.as_deref().expect("a keyed record");
        assert_eq!(
            record.partition,
            sluice_tests::kafka::java_partition(key, 6),
            "key {} (offset {})",
            record.raw_key(),
            record.offset
        );
    }
    api.delete("/connectors/pg-parts");
}

/// Debezium's records carry no timestamp of their own, so Kafka Connect's
/// producer stamps each with the time it sends it; sluice's records carry
/// the same. A change committed while the connector was paused, sent
/// after the resume, must not carry its commit time: time-based retention
/// deletes a segment whose newest timestamp is older than `retention.ms`,
/// so a catch-up after a long pause would hand the broker records to
/// delete before anyone read them, and a broker limiting how old a
/// timestamp may be (`log.message.timestamp.before.max.ms`) refuses them.
#[test]
fn records_carry_the_time_they_were_sent_not_the_commit_time() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot, prefix) = (ident("stamp"), ident("slot"), ident("srv"));
    create_items(&pg, &schema, 1);
    let config = pg.connector_config(&prefix, &schema, &slot);
    create_streaming(&api, "pg-stamp", &config);
    assert_eq!(api.put_empty("/connectors/pg-stamp/pause").status, 202);
    wait_for("PAUSED", Duration::from_secs(30), || {
        (status(&api, "pg-stamp")["state"] == "PAUSED").then_some(())
    });
    pg.exec(&format!(
        "INSERT INTO {schema}.items (id, qty) VALUES (2, 2)"
    ));
    std::thread::sleep(Duration::from_secs(3));
    let resumed_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    assert_eq!(api.put_empty("/connectors/pg-stamp/resume").status, 202);
    let topic = format!("{prefix}.{schema}.items");
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.iter().any(|r| r.value["op"] == "c")
    });
    let created = records
        .iter()
        .find(|r| r.value["op"] == "c")
        .expect("the insert's event");
    let committed_ms = created.value["source"]["ts_ms"].as_i64().expect("ts_ms");
    assert!(
        committed_ms < resumed_ms - 2_000,
        "committed at {committed_ms}, resumed at {resumed_ms}"
    );
    let stamped = created.timestamp_ms.expect("a record timestamp");
    assert!(
        stamped >= resumed_ms,
        "the record is stamped {stamped}, before it could be sent (resumed at {resumed_ms}; committed at {committed_ms})"
    );
    api.delete("/connectors/pg-stamp");
}

/// A row of just under a megabyte (a large JSON document, a text blob)
/// fits in a request of Kafka's Java producer (`max.request.size`,
/// 1,048,576 bytes) and Kafka's default `message.max.bytes` (1,048,588),
/// so Debezium on Connect sends it; librdkafka's own default limit is
/// 1,000,000 bytes, and such a row stalled the connector (the send was
/// refused and retried for ever).
#[test]
fn a_row_of_almost_a_megabyte_is_sent_as_on_connect() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot, prefix) = (ident("big"), ident("slot"), ident("srv"));
    create_items(&pg, &schema, 1);
    let config = pg.connector_config(&prefix, &schema, &slot);
    create_streaming(&api, "pg-big", &config);
    // 1,030,000 characters: the JSON record is ~1,030,900 bytes.
    pg.exec(&format!(
        "INSERT INTO {schema}.items (id, qty, note) VALUES (2, 2, repeat('x', 1030000)); \
         INSERT INTO {schema}.items (id, qty) VALUES (3, 3);"
    ));
    let topic = format!("{prefix}.{schema}.items");
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.iter().any(|r| r.value["after"]["id"] == 3)
    });
    let big = records
        .iter()
        .find(|r| r.value["after"]["id"] == 2)
        .unwrap_or_else(|| {
            panic!(
                "the large row's event is missing; task: {}",
                status(&api, "pg-big")
            )
        });
    let bytes = big.raw_value.as_ref().map_or(0, Vec::len);
    assert!(bytes > 1_000_000, "{bytes} bytes");
    assert_eq!(
        big.value["after"]["note"].as_str().map(str::len),
        Some(1_030_000)
    );
    assert_eq!(status(&api, "pg-big")["state"], "RUNNING");

    // A larger row fails the task, naming the limit and how to raise it,
    // and nothing after it is sent; raised for the connector, it goes out.
    pg.exec(&format!(
        "INSERT INTO {schema}.items (id, qty, note) VALUES (4, 4, repeat('y', 1200000)); \
         INSERT INTO {schema}.items (id, qty) VALUES (5, 5);"
    ));
    let trace = wait_for("the task to fail", Duration::from_secs(60), || {
        let task = status(&api, "pg-big");
        (task["state"] == "FAILED").then(|| task["trace"].as_str().unwrap_or_default().to_owned())
    });
    assert!(
        trace.contains("message.max.bytes")
            && trace.contains("producer.override.message.max.bytes"),
        "{trace}"
    );
    let mut raised = config.clone();
    raised["producer.override.message.max.bytes"] = json!("2000000");
    assert_eq!(api.put("/connectors/pg-big/config", &raised).status, 200);
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(60), |r| {
        r.iter().any(|r| r.value["after"]["id"] == 5)
    });
    let ids: Vec<i64> = records
        .iter()
        .filter_map(|r| r.value["after"]["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5], "one event per row, in order");
    api.delete("/connectors/pg-big");
}

/// Issue 19, finding 7: a walsender that stops answering (its process
/// stopped, as behind a half-open connection) is detected — the server is
/// asked to answer and stays silent — and the task reconnects instead of
/// waiting forever with status RUNNING; nothing is lost.
#[test]
fn a_silent_walsender_is_taken_for_dead_and_reconnected() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let (schema, slot, prefix) = (ident("silent"), ident("slot"), ident("srv"));
    create_items(&pg, &schema, 5);
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["status.update.interval.ms"] = json!("500");
    let reply = api.post(
        "/connectors",
        &json!({"name": "pg-silent", "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, "pg-silent")["progress"]["phase"] == "streaming").then_some(())
    });
    let walsender = pg.exec(&format!(
        "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    /// Sends SIGCONT when dropped, so a failing test never leaves the
    /// server's walsender stopped.
    struct Stopped(String);
    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.0])
                .status();
        }
    }
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &walsender])
        .status()
        .expect("kill runs");
    assert!(stopped.success(), "kill -STOP {walsender}");
    let stopped = Stopped(walsender);
    wait_for(
        "the silent walsender to be detected",
        Duration::from_secs(30),
        || worker.logs().contains("half-open").then_some(()),
    );
    drop(stopped);
    pg.exec(&format!(
        "INSERT INTO {schema}.items (id, qty) VALUES (1000, 7)"
    ));
    assert_converges(&env, &pg, &schema, &format!("{prefix}.{schema}.items"));
    assert_eq!(status(&api, "pg-silent")["state"], "RUNNING");
    api.delete("/connectors/pg-silent");
}

/// Creates a connector (named after its slot) capturing `schema` with
/// `settings`, and reads the first event of its table `t`.
fn first_event_of_t(
    env: &TestEnv,
    api: &Api,
    pg: &Pg,
    schema: &str,
    settings: &[(&str, &str)],
) -> Consumed {
    let (prefix, slot) = (ident("srv"), ident("slot"));
    let mut config = pg.connector_config(&prefix, schema, &slot);
    for (key, value) in settings {
        config[*key] = json!(value);
    }
    let reply = api.post("/connectors", &json!({"name": slot, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let mut rows = read_topic(
        env.bootstrap(),
        &format!("{prefix}.{schema}.t"),
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    api.delete(&format!("/connectors/{slot}"));
    rows.swap_remove(0)
}

#[test]
fn json_converter_options_write_decimals_as_numbers_and_keep_nulls_on_request() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("jsonopt");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.t (id int PRIMARY KEY, price numeric(12,2), qty int DEFAULT 5, label text DEFAULT 'none'); \
         INSERT INTO {schema}.t VALUES (1, -12.50, NULL, NULL);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let row = first_event_of_t(
        &env,
        &api,
        &pg,
        &schema,
        &[
            ("value.converter.decimal.format", "NUMERIC"),
            // Connect's default writes qty's and label's defaults for their NULLs.
            ("value.converter.replace.null.with.default", "false"),
        ],
    );
    let raw = String::from_utf8_lossy(row.raw_value.as_deref().unwrap_or_default()).to_string();
    assert!(raw.contains(r#""price":-12.50"#), "{raw}");
    let after = &row.value["after"];
    assert_eq!(after["qty"], Value::Null, "{after}");
    assert_eq!(after["label"], Value::Null, "{after}");
    // The same row with Connect's default: the defaults stand in for NULL.
    let row = first_event_of_t(&env, &api, &pg, &schema, &[]);
    let after = &row.value["after"];
    assert_eq!(after["qty"], 5, "{after}");
    assert_eq!(after["label"], "none", "{after}");
}

#[test]
fn a_snapshot_select_override_leaves_old_rows_out() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, slot) = (ident("override"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.t (id int PRIMARY KEY, note text, qty int); \
         INSERT INTO {schema}.t SELECT g, 'n' || g, g FROM generate_series(1, 10) g;"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    let table = format!("{schema}.t");
    config["snapshot.select.statement.overrides"] = json!(table);
    // Columns in another order than the table's, and a WHERE: picked by name.
    config[format!("snapshot.select.statement.overrides.{table}")] =
        json!(format!("SELECT qty, note, id FROM {table} WHERE id > 7;"));
    let reply = api.post("/connectors", &json!({"name": slot, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        (status(&api, &slot)["progress"]["phase"] == "streaming").then_some(())
    });
    pg.exec(&format!("INSERT INTO {table} VALUES (11, 'n11', 11)"));
    let records = read_topic(
        env.bootstrap(),
        &format!("{prefix}.{table}"),
        Duration::from_secs(60),
        |r| r.len() >= 4,
    );
    let seen: Vec<(Value, Value, Value)> = records
        .iter()
        .map(|r| {
            let v = &r.value;
            (
                v["op"].clone(),
                v["after"]["id"].clone(),
                v["after"]["note"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (json!("r"), json!(8), json!("n8")),
            (json!("r"), json!(9), json!("n9")),
            (json!("r"), json!(10), json!("n10")),
            (json!("c"), json!(11), json!("n11")),
        ]
    );
    // A listed table without its statement is refused by name.
    let mut bad = pg.connector_config(&prefix, &schema, &format!("{slot}_bad"));
    bad["snapshot.select.statement.overrides"] = json!(table);
    let reply = api.post(
        "/connectors",
        &json!({"name": format!("{slot}_bad"), "config": bad}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply
            .message()
            .contains(&format!("snapshot.select.statement.overrides.{table}")),
        "{}",
        reply.message()
    );
    api.delete(&format!("/connectors/{slot}"));
}

/// Text the snapshot reads through COPY's escapes (tabs, newlines, carriage
/// returns, backslashes, the text `\N` beside a null and an empty text,
/// bytes that are tabs and backslashes, arrays and JSON holding escapes,
/// text beyond ASCII) comes out as the stream writes the same row.
#[test]
fn escaped_text_reads_the_same_in_the_snapshot_as_in_the_stream() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, slot) = (ident("escapes"), ident("slot"));
    let table = format!("{schema}.t");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {table} (id int PRIMARY KEY, t text, n text, e text, z text, b bytea, \
           a text[], j jsonb, u text); \
         INSERT INTO {table} VALUES (1, E'tab\\there\\nnew\\rcr\\\\back', '\\N', '', NULL, \
           '\\x095c0a00', ARRAY['a\"b', 'c\\d', 'e,f', NULL], '{{\"k\": \"v\\\"\\n\"}}', 'größe 🍎');"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let config = pg.connector_config(&prefix, &schema, &slot);
    create_streaming(&api, &slot, &config);
    pg.exec(&format!(
        "INSERT INTO {table} SELECT 2, t, n, e, z, b, a, j, u FROM {table} WHERE id = 1"
    ));
    let (read, streamed) =
        snapshot_row_and_its_streamed_copy(env.bootstrap(), &format!("{prefix}.{table}"));
    assert_eq!(read["t"], "tab\there\nnew\rcr\\back", "{read}");
    assert_eq!(read["n"], "\\N", "the text \\N is not a null: {read}");
    assert_eq!(read["e"], "", "{read}");
    assert_eq!(read["z"], Value::Null, "{read}");
    assert_eq!(read["b"], "CVwKAA==", "bytes 09 5c 0a 00: {read}");
    assert_eq!(read["a"], json!(["a\"b", "c\\d", "e,f", null]), "{read}");
    assert_eq!(read["u"], "größe 🍎", "{read}");
    assert_eq!(read, streamed, "the snapshot's row against the stream's");
    api.delete(&format!("/connectors/{slot}"));
}

/// Creates a connector named after its slot capturing `schema` from now
/// on (`no_data`) with `extra` settings, and waits until it streams; its
/// topic prefix.
fn start_streaming(api: &Api, pg: &Pg, schema: &str, slot: &str, extra: &[(&str, &str)]) -> String {
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, schema, slot);
    config["snapshot.mode"] = json!("no_data");
    for (key, value) in extra {
        config[*key] = json!(value);
    }
    create_streaming(api, slot, &config);
    prefix
}

/// Creates connector `name` with `config` and waits until it streams.
fn create_streaming(api: &Api, name: &str, config: &Value) {
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("streaming", Duration::from_secs(60), || {
        let task = status(api, name);
        assert_ne!(task["state"], "FAILED", "{task}");
        (task["progress"]["phase"] == "streaming").then_some(())
    });
}

#[test]
fn an_undecodable_change_fails_the_task_by_name_or_is_skipped_when_asked() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("undecodable");
    // numeric 'NaN' has no Connect Decimal: the change cannot be written.
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id int PRIMARY KEY, price numeric(12,2));"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let (failing, warning) = (ident("slot"), ident("slot"));
    start_streaming(&api, &pg, &schema, &failing, &[]);
    let prefix = start_streaming(
        &api,
        &pg,
        &schema,
        &warning,
        &[("event.processing.failure.handling.mode", "warn")],
    );
    pg.exec(&format!(
        "INSERT INTO {schema}.t VALUES (1, 'NaN'); INSERT INTO {schema}.t VALUES (2, 2.50);"
    ));
    let trace = wait_for(
        "the default mode to fail the task",
        Duration::from_secs(60),
        || {
            let task = status(&api, &failing);
            (task["state"] == "FAILED")
                .then(|| task["trace"].as_str().unwrap_or_default().to_owned())
        },
    );
    assert!(
        trace.contains("price") && trace.contains("event.processing.failure.handling.mode"),
        "{trace}"
    );
    let records = read_topic(
        env.bootstrap(),
        &format!("{prefix}.{schema}.t"),
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    let ids: Vec<Value> = records
        .iter()
        .map(|r| r.value["after"]["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(2)], "warn skips the NaN row and goes on");
    assert_eq!(status(&api, &warning)["state"], "RUNNING");
    api.delete(&format!("/connectors/{failing}"));
    api.delete(&format!("/connectors/{warning}"));
}

#[test]
fn binary_interval_and_hstore_modes_write_what_debezium_writes() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("modes");
    pg.exec(&format!(
        "CREATE EXTENSION IF NOT EXISTS hstore; CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.t (id int PRIMARY KEY, data bytea, span interval, attrs hstore); \
         INSERT INTO {schema}.t VALUES (1, '\\x0aff', '1 year 2 months 3 days 04:05:06.78', 'a=>1, b=>NULL');"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let row = first_event_of_t(
        &env,
        &api,
        &pg,
        &schema,
        &[
            ("binary.handling.mode", "hex"),
            ("interval.handling.mode", "string"),
            ("hstore.handling.mode", "map"),
        ],
    );
    let after = &row.value["after"];
    assert_eq!(after["data"], "0aff", "{after}");
    assert_eq!(after["span"], "P1Y2M3DT4H5M6.78S", "{after}");
    // A map with string keys is a JSON object in Connect's JSON.
    assert_eq!(after["attrs"], json!({"a": "1", "b": null}), "{after}");
}

/// PostGIS columns (the real extension) arrive as Debezium writes them: a
/// `Geometry` / `Geography` struct of the value's EWKB (what PostGIS's own
/// `ST_AsEWKB` gives, compared byte for byte) and its SRID, null without one.
#[test]
fn postgis_columns_are_debeziums_geometry_structs() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("gis");
    pg.exec(&format!(
        "CREATE EXTENSION IF NOT EXISTS postgis; CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.t (id int PRIMARY KEY, place geometry(Point, 4326), \
           area geography(Polygon), shape geometry); \
         INSERT INTO {schema}.t VALUES (1, 'SRID=4326;POINT(1 2)', \
           'POLYGON((0 0, 1 0, 1 1, 0 0))', 'LINESTRING(0 0, 3 4)');"
    ));
    let ewkb = |column: &str| {
        pg.exec(&format!(
            "SELECT encode(ST_AsEWKB({column}::geometry), 'base64') FROM {schema}.t"
        ))
        .replace('\n', "")
    };
    let worker = Worker::start(&env);
    let api = worker.api();
    let row = first_event_of_t(
        &env,
        &api,
        &pg,
        &schema,
        &[("value.converter.schemas.enable", "true")],
    );
    let after = &row.value["payload"]["after"];
    assert_eq!(
        after["place"],
        json!({"wkb": ewkb("place"), "srid": 4326}),
        "{after}"
    );
    assert_eq!(
        after["area"],
        json!({"wkb": ewkb("area"), "srid": 4326}),
        "{after}"
    );
    assert_eq!(
        after["shape"],
        json!({"wkb": ewkb("shape"), "srid": null}),
        "{after}"
    );
    let fields = row.value["schema"]["fields"].clone();
    let named = |field: &str| {
        fields
            .as_array()
            .and_then(|f| f.iter().find(|f| f["field"] == "after"))
            .and_then(|after| after["fields"].as_array())
            .and_then(|f| f.iter().find(|f| f["field"] == field))
            .map(|f| f["name"].clone())
    };
    assert_eq!(
        named("place"),
        Some(json!("io.debezium.data.geometry.Geometry"))
    );
    assert_eq!(
        named("area"),
        Some(json!("io.debezium.data.geometry.Geography"))
    );
}

#[test]
fn the_topic_delimiter_and_heartbeat_prefix_name_every_topic() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, slot) = (ident("naming"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id int PRIMARY KEY); \
         INSERT INTO {schema}.t VALUES (1);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = ident("srv");
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["topic.delimiter"] = json!("_");
    config["topic.heartbeat.prefix"] = json!("beats");
    config["heartbeat.interval.ms"] = json!("200");
    let reply = api.post("/connectors", &json!({"name": slot, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let rows = read_topic(
        env.bootstrap(),
        &format!("{prefix}_{schema}_t"),
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    assert_eq!(rows[0].value["after"]["id"], 1);
    let beats = read_topic(
        env.bootstrap(),
        &format!("beats_{prefix}"),
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    assert_eq!(beats[0].key, json!({"serverName": prefix}));
    api.delete(&format!("/connectors/{slot}"));
}

#[test]
fn transaction_metadata_marks_events_and_writes_begin_and_end() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let (schema, slot) = (ident("txmeta"), ident("slot"));
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.a (id int PRIMARY KEY); \
         CREATE TABLE {schema}.b (id int PRIMARY KEY);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let prefix = start_streaming(
        &api,
        &pg,
        &schema,
        &slot,
        &[("provide.transaction.metadata", "true")],
    );
    pg.exec(&format!(
        "BEGIN; INSERT INTO {schema}.a VALUES (1); INSERT INTO {schema}.b VALUES (1); \
         INSERT INTO {schema}.a VALUES (2); COMMIT;"
    ));
    let events = read_topic(
        env.bootstrap(),
        &format!("{prefix}.transaction"),
        Duration::from_secs(60),
        |r| r.len() >= 2,
    );
    let begin = &events[0].value;
    let end = &events[1].value;
    assert_eq!(begin["status"], "BEGIN", "{begin}");
    assert_eq!(end["status"], "END", "{end}");
    assert_eq!(begin["id"], end["id"]);
    assert_eq!(events[0].key, json!({"id": begin["id"]}));
    assert_eq!(end["event_count"], 3, "{end}");
    assert_eq!(
        end["data_collections"],
        json!([
            {"data_collection": format!("{schema}.a"), "event_count": 2},
            {"data_collection": format!("{schema}.b"), "event_count": 1}
        ])
    );
    let a = read_topic(
        env.bootstrap(),
        &format!("{prefix}.{schema}.a"),
        Duration::from_secs(60),
        |r| r.len() >= 2,
    );
    let orders: Vec<(Value, Value, Value)> = a
        .iter()
        .map(|r| {
            let t = &r.value["transaction"];
            (
                t["id"].clone(),
                t["total_order"].clone(),
                t["data_collection_order"].clone(),
            )
        })
        .collect();
    assert_eq!(
        orders,
        vec![
            (begin["id"].clone(), json!(1), json!(1)),
            (begin["id"].clone(), json!(3), json!(2))
        ]
    );
    api.delete(&format!("/connectors/{slot}"));
}

#[test]
fn a_working_task_retries_while_running_and_gives_up_when_told() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let schema = ident("retry");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id int PRIMARY KEY);"
    ));
    let worker = Worker::start(&env);
    let api = worker.api();
    let (patient, strict) = (ident("slot"), ident("slot"));
    start_streaming(&api, &pg, &schema, &patient, &[]);
    start_streaming(&api, &pg, &schema, &strict, &[("errors.max.retries", "0")]);
    // Both make durable progress first: they are working tasks.
    pg.exec(&format!("INSERT INTO {schema}.t VALUES (1)"));
    for slot in [&patient, &strict] {
        wait_for("an offset stored", Duration::from_secs(30), || {
            let offsets = api.get(&format!("/connectors/{slot}/offsets")).body;
            offsets.to_string().contains("lsn_commit").then_some(())
        });
    }
    // A lost connection is retriable.
    pg.exec(&format!(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
         WHERE slot_name IN ('{patient}', '{strict}') AND active"
    ));
    // errors.max.retries=0: the first retriable failure is final.
    let trace = wait_for(
        "the strict task to give up",
        Duration::from_secs(30),
        || {
            let task = status(&api, &strict);
            (task["state"] == "FAILED")
                .then(|| task["trace"].as_str().unwrap_or_default().to_owned())
        },
    );
    assert!(trace.contains("errors.max.retries"), "{trace}");
    // The default keeps retrying, RUNNING as Connect shows it, with the
    // error in the trace until the restart succeeds.
    let mut saw_retrying = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let task = status(&api, &patient);
        assert_ne!(task["state"], "FAILED", "{task}");
        if task["trace"]
            .as_str()
            .is_some_and(|t| t.contains("retriable"))
        {
            saw_retrying = true;
        } else if saw_retrying && task["progress"]["phase"] == "streaming" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(saw_retrying, "the retry showed in the RUNNING task's trace");
    api.delete(&format!("/connectors/{patient}"));
    api.delete(&format!("/connectors/{strict}"));
}

/// A user waiting for a snapshot to end watches the task's status: its
/// phase says `streaming` once the stream starts, not at the next offset
/// flush (a minute away here).
#[test]
fn the_status_shows_streaming_soon_after_the_snapshot_not_at_the_next_flush() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start_with(&env, &["--offset-flush-interval-ms", "60000"]);
    let (schema, slot) = (ident("phase"), ident("slot"));
    create_items(&pg, &schema, 3);
    let config = pg.connector_config(&ident("srv"), &schema, &slot);
    let api = worker.api();
    let reply = api.post("/connectors", &json!({"name": slot, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for("the stream to start", Duration::from_secs(60), || {
        worker.logs().contains("streaming started").then_some(())
    });
    wait_for(
        "the status to show the streaming phase",
        Duration::from_secs(15),
        || {
            let status = status(&api, &slot);
            (status["progress"]["phase"] == "streaming").then_some(())
        },
    );
}
