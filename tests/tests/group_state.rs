//! A worker started with `--group-id` keeps connector configs, offsets and
//! statuses in Kafka topics, in Kafka Connect's formats: its state
//! directory can be lost without losing a connector or a position, and the
//! topics a Debezium-on-Connect cluster left behind are picked up as they
//! are — the connector resumes where Debezium stopped, with no snapshot.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::env::TestEnv;
use sluice_tests::group::Group;
use sluice_tests::kafka::{create_topic, produce_keyed, produce_unkeyed, read_topic, Consumed};
use sluice_tests::mariadb::Maria;
use sluice_tests::postgres::Pg;
use sluice_tests::verify::{mariadb_url, postgres_url, verify};
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

/// A fresh lower-case identifier.
fn ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// Every record of a state topic, once `done` holds.
fn state_records(env: &TestEnv, topic: &str, done: impl Fn(&[Consumed]) -> bool) -> Vec<Consumed> {
    read_topic(env.bootstrap(), topic, Duration::from_secs(60), |r| done(r))
}

/// The change events (`op` set) of `topic`, once at least `at_least`.
fn events(env: &TestEnv, topic: &str, at_least: usize) -> Vec<Value> {
    read_topic(env.bootstrap(), topic, Duration::from_secs(90), |r| {
        r.iter().filter(|c| c.value["op"].is_string()).count() >= at_least
    })
    .into_iter()
    .map(|c| c.value)
    .filter(|v| v["op"].is_string())
    .collect()
}

fn ops(events: &[Value]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| {
            let row = if e["after"].is_null() {
                &e["before"]
            } else {
                &e["after"]
            };
            (
                e["op"].as_str().unwrap_or_default().to_owned(),
                row["id"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn a_lost_state_directory_loses_no_connector_and_no_position() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let group = Group::new();
    let schema = ident("grp");
    let slot = ident("grp_slot");
    let prefix = ident("grp");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.items (id int PRIMARY KEY, qty int); \
         INSERT INTO {schema}.items SELECT g, g FROM generate_series(1, 20) g;"
    ));
    let topic = format!("{prefix}.{schema}.items");
    let mut first = Worker::start_with(&env, &group.args());
    let reply = first.api().post(
        "/connectors",
        &json!({"name": prefix, "config": pg.connector_config(&prefix, &schema, &slot)}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(events(&env, &topic, 20).len(), 20, "the snapshot");
    pg.exec(&format!("INSERT INTO {schema}.items VALUES (21, 21)"));
    events(&env, &topic, 21);
    wait_for("a streamed offset", Duration::from_secs(30), || {
        let offsets = first
            .api()
            .get(&format!("/connectors/{prefix}/offsets"))
            .body;
        offsets.to_string().contains("lsn_commit").then_some(())
    });
    // Stopped, not killed: Tansu 0.6 never drops a member that died
    // without leaving, so the next worker would wait on it for ever.
    first.terminate();
    // A new machine: nothing of the first worker's disk survives.
    let second = Worker::start_with(&env, &group.args());
    assert_ne!(first.state_dir(), second.state_dir());
    let listed = second.api().get("/connectors").body;
    assert_eq!(listed, json!([prefix]), "{}", second.logs());
    pg.exec(&format!("INSERT INTO {schema}.items VALUES (22, 22)"));
    let all = ops(&events(&env, &topic, 22));
    assert_eq!(
        all.iter().filter(|(op, _)| op == "r").count(),
        20,
        "no second snapshot after the move: {all:?}\n{}",
        second.logs()
    );
    assert!(all.contains(&("c".into(), 22)), "{all:?}");

    // The topics hold Connect's records, read by an independent client.
    let key = json!([prefix, {"server": prefix}]);
    let offsets = state_records(&env, &group.offsets, |r| r.iter().any(|c| c.key == key));
    let stored = offsets
        .iter()
        .rev()
        .find(|c| c.key == key)
        .expect("the connector's offset record");
    assert!(stored.value["lsn_commit"].is_u64(), "{:?}", stored.value);
    let configs = state_records(&env, &group.configs, |r| r.len() >= 2);
    let config = configs
        .iter()
        .find(|c| c.raw_key() == format!("connector-{prefix}"))
        .expect("connector-<name> record");
    assert_eq!(config.value["properties"]["slot.name"], json!(slot));
    let task_key = format!("status-task-{prefix}-0");
    let status = state_records(&env, &group.status, |r| {
        r.iter().any(|c| {
            c.raw_key() == task_key
                && c.value["state"] == "RUNNING"
                && c.value["worker_id"] == json!(second.url().trim_start_matches("http://"))
        })
    });
    assert!(
        status.iter().any(|c| c.raw_key() == task_key
            && c.value["worker_id"] == json!(second.url().trim_start_matches("http://"))),
        "the second worker's RUNNING task in {}",
        group.status
    );
    assert_eq!(
        second.api().delete(&format!("/connectors/{prefix}")).status,
        204
    );
    let configs = state_records(&env, &group.configs, |r| {
        r.iter()
            .any(|c| c.raw_key() == format!("connector-{prefix}") && c.raw_value.is_none())
    });
    assert!(
        configs
            .iter()
            .any(|c| c.raw_key() == format!("connector-{prefix}") && c.raw_value.is_none()),
        "a deleted connector leaves a tombstone"
    );
}

#[test]
fn a_postgres_connector_resumes_where_debezium_left_its_offset() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let group = Group::new();
    let schema = ident("dbzpg");
    let slot = ident("dbzpg_slot");
    let name = "inventory-connector";
    let prefix = ident("dbserver");
    // What Debezium set up and streamed before it stopped: publication,
    // slot, and row 1, whose transaction its offset records as done.
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.items (id int PRIMARY KEY, qty int); \
         CREATE PUBLICATION {slot}_pub FOR TABLE {schema}.items;"
    ));
    pg.exec(&format!(
        "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
    ));
    pg.exec(&format!("INSERT INTO {schema}.items VALUES (1, 1)"));
    let lsn: u64 = pg
        .exec("SELECT (pg_current_wal_lsn() - '0/0')::bigint")
        .trim()
        .parse()
        .expect("an LSN");
    // After Debezium stopped: these must come through, and only these.
    pg.exec(&format!(
        "INSERT INTO {schema}.items VALUES (2, 2); UPDATE {schema}.items SET qty = 10 WHERE id = 1"
    ));

    group.create_topics_as_connect(&env);
    let mut config = pg.connector_config(&prefix, &schema, &slot);
    config["name"] = json!(name);
    write_connect_config(&env, &group, name, &config);
    produce_keyed(
        env.bootstrap(),
        &group.offsets,
        &json!([name, {"server": prefix}]).to_string(),
        &json!({"transaction_id": null, "lsn_proc": lsn, "messageType": "INSERT",
                "lsn_commit": lsn, "lsn": lsn, "txId": 1234, "ts_usec": 1_700_000_000_000_000u64})
        .to_string(),
    );

    let worker = Worker::start_with(&env, &group.args());
    let topic = format!("{prefix}.{schema}.items");
    let seen = ops(&events(&env, &topic, 2));
    assert_eq!(
        seen,
        vec![("c".to_owned(), 2), ("u".to_owned(), 1)],
        "exactly the changes after Debezium's offset, no snapshot\n{}",
        worker.logs()
    );
    assert_eq!(
        worker.api().delete(&format!("/connectors/{name}")).status,
        204
    );
}

#[test]
fn a_mariadb_connector_resumes_where_debezium_left_its_offset() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let group = Group::new();
    let database = ident("dbzmy");
    let name = "inventory-mysql";
    let prefix = ident("dbserver");
    db.exec(&format!(
        "CREATE DATABASE {database}; CREATE TABLE {database}.items (id INT PRIMARY KEY, qty INT); \
         INSERT INTO {database}.items VALUES (1, 1);"
    ));
    let status = db.rows("SHOW MASTER STATUS");
    let (file, pos) = (&status[0][0], &status[0][1]);
    db.exec(&format!(
        "INSERT INTO {database}.items VALUES (2, 2); UPDATE {database}.items SET qty = 10 WHERE id = 1"
    ));

    group.create_topics_as_connect(&env);
    let server_id = 6000 + std::process::id() % 1000;
    let mut config = db.connector_config(&prefix, &database, server_id);
    config["name"] = json!(name);
    config["include.schema.changes"] = json!("false");
    write_connect_config(&env, &group, name, &config);
    produce_keyed(
        env.bootstrap(),
        &group.offsets,
        &json!([name, {"server": prefix}]).to_string(),
        &json!({"ts_sec": 1_700_000_000u64, "file": file,
                "pos": pos.parse::<u64>().expect("a position"), "server_id": 1})
        .to_string(),
    );

    let worker = Worker::start_with(&env, &group.args());
    let topic = format!("{prefix}.{database}.items");
    let seen = ops(&events(&env, &topic, 2));
    assert_eq!(
        seen,
        vec![("c".to_owned(), 2), ("u".to_owned(), 1)],
        "exactly the changes after Debezium's binlog position, no snapshot\n{}",
        worker.logs()
    );
    assert_eq!(
        worker.api().delete(&format!("/connectors/{name}")).status,
        204
    );
}

/// A column of Debezium's table-change document, as its history holds it.
fn debezium_column(name: &str, position: i32, optional: bool) -> Value {
    json!({"name": name, "jdbcType": 4, "typeName": "INT", "typeExpression": "INT",
           "charsetName": null, "length": 11, "position": position, "optional": optional,
           "autoIncremented": false, "generated": false, "comment": null,
           "hasDefaultValue": optional, "enumValues": []})
}

/// Debezium leaves its schema history beside its offsets: a table changed
/// between the position it stored and the switch must be read, up to the
/// DDL, with the columns Debezium's history gives it there, not with its
/// current ones (a column added then would fail the task; one renamed
/// would label values with the wrong names).
#[test]
fn a_mariadb_connector_from_debezium_replays_its_schema_history_to_the_resume_point() {
    let env = TestEnv::load();
    let db = Maria::from_env(&env);
    let group = Group::new();
    let database = ident("dbzhist");
    let name = "history-mysql";
    let prefix = ident("dbserver");
    let history = format!("{prefix}.dbhistory");
    db.exec(&format!(
        "CREATE DATABASE {database}; CREATE TABLE {database}.items (id INT PRIMARY KEY, qty INT); \
         INSERT INTO {database}.items VALUES (1, 1);"
    ));
    let status = db.rows("SHOW MASTER STATUS");
    let (file, pos) = (
        status[0][0].clone(),
        status[0][1].parse::<u64>().expect("a position"),
    );
    db.exec(&format!(
        "INSERT INTO {database}.items VALUES (2, 2); \
         ALTER TABLE {database}.items ADD COLUMN note VARCHAR(10); \
         INSERT INTO {database}.items VALUES (3, 3, 'x'); \
         ALTER TABLE {database}.items RENAME COLUMN qty TO amount; \
         INSERT INTO {database}.items VALUES (4, 4, 'y');"
    ));

    // The history as Debezium 2.x writes it: one partition, unkeyed JSON
    // documents, the table as of its snapshot (before the position).
    create_topic(env.bootstrap(), &history, 1, &[("retention.ms", "-1")]);
    let document = json!({
        "source": {"server": prefix},
        "position": {"ts_sec": 1_700_000_000u64, "file": file, "pos": pos.saturating_sub(1), "snapshot": true},
        "ts_ms": 1_700_000_000_000u64,
        "databaseName": database,
        "ddl": format!("CREATE TABLE `items` (`id` int(11) NOT NULL, `qty` int(11) DEFAULT NULL, PRIMARY KEY (`id`))"),
        "tableChanges": [{
            "type": "CREATE",
            "id": format!("\"{database}\".\"items\""),
            "table": {
                "defaultCharsetName": "utf8mb4",
                "primaryKeyColumnNames": ["id"],
                "columns": [debezium_column("id", 1, false), debezium_column("qty", 2, true)],
                "attributes": [],
            },
            "comment": null,
        }],
    });
    produce_unkeyed(env.bootstrap(), &history, &document.to_string());

    group.create_topics_as_connect(&env);
    let server_id = 6100 + std::process::id() % 1000;
    let mut config = db.connector_config(&prefix, &database, server_id);
    config["name"] = json!(name);
    config["include.schema.changes"] = json!("false");
    config["schema.history.internal.kafka.topic"] = json!(history);
    write_connect_config(&env, &group, name, &config);
    produce_keyed(
        env.bootstrap(),
        &group.offsets,
        &json!([name, {"server": prefix}]).to_string(),
        &json!({"ts_sec": 1_700_000_000u64, "file": file, "pos": pos, "server_id": 1}).to_string(),
    );

    let worker = Worker::start_with(&env, &group.args());
    let topic = format!("{prefix}.{database}.items");
    let seen = events(&env, &topic, 3);
    let rows: Vec<Value> = seen.iter().map(|e| e["after"].clone()).collect();
    assert_eq!(
        rows,
        vec![
            json!({"id": 2, "qty": 2}),
            json!({"id": 3, "qty": 3, "note": "x"}),
            json!({"id": 4, "amount": 4, "note": "y"}),
        ],
        "each change with the columns it was written under, no snapshot\n{}",
        worker.logs()
    );
    assert_eq!(
        worker.api().delete(&format!("/connectors/{name}")).status,
        204
    );
}

/// The config topic as a Connect cluster leaves it for one running
/// connector: its config, one task config and the commit of the tasks.
fn write_connect_config(env: &TestEnv, group: &Group, name: &str, config: &Value) {
    let properties: serde_json::Map<String, Value> = config
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.clone(), Value::String(text))
        })
        .collect();
    let mut task = properties.clone();
    task.insert(
        "task.class".into(),
        json!("io.debezium.connector.postgresql.PostgresConnectorTask"),
    );
    for (key, value) in [
        (
            format!("connector-{name}"),
            json!({ "properties": properties }),
        ),
        (format!("task-{name}-0"), json!({ "properties": task })),
        (format!("commit-{name}"), json!({"tasks": 1})),
    ] {
        produce_keyed(env.bootstrap(), &group.configs, &key, &value.to_string());
    }
}

/// A PostgreSQL and a MariaDB source, each replicated by a JDBC sink into a
/// PostgreSQL schema, run on a group of two workers while both databases
/// take writes and each worker is stopped and started in turn: every
/// handover moves a replication slot or a binlog reader between workers,
/// and the replicas end equal to their sources. The sinks run in a worker
/// of their own here: Tansu 0.6 can leave a consumer group stuck for good
/// on a member that left while still joining, which a sink moved twice
/// within a second by the rolling restart sometimes is (seen: a sink
/// stopped 0.06 s after it started, and its successor was given nothing
/// for two minutes; Kafka drops such a member after its session timeout).
#[test]
fn replication_under_write_load_survives_a_rolling_restart() {
    replicate_through(2, Sinks::OwnWorker, |workers| {
        for worker in workers.iter_mut() {
            std::thread::sleep(Duration::from_secs(4));
            worker.terminate();
            std::thread::sleep(Duration::from_secs(2));
            worker.restart();
        }
    });
}

/// The same replication on three workers running the sources and the
/// sinks alike, two of them killed with SIGKILL one after the other (no
/// goodbye, no offset flush; not the first, which leads the group), then
/// both restarted: the group hands the connectors to the survivors, which
/// resume from the stored positions and committed consumer offsets, and
/// the replicas end equal to their sources (what the killed workers had
/// sent or written but not stored comes again, and the sinks' upserts
/// absorb it).
#[test]
fn replication_under_write_load_survives_two_workers_killed() {
    replicate_through(3, Sinks::InTheGroup, |workers| {
        let ids: Vec<String> = workers
            .iter()
            .map(|w| w.url().trim_start_matches("http://").to_owned())
            .collect();
        // Where each connector's task runs, once all run on `alive`.
        let placed = |asked: &Worker, alive: &[usize]| -> Option<Vec<String>> {
            let names = asked.api().get("/connectors").body;
            names
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .map(|name| {
                    let status = asked.api().get(&format!("/connectors/{name}/status")).body;
                    let on = status["tasks"][0]["worker_id"].as_str()?.to_owned();
                    (status["tasks"][0]["state"] == "RUNNING"
                        && alive.iter().any(|i| ids[*i] == on))
                    .then_some(on)
                })
                .collect()
        };
        let mut alive: Vec<usize> = (0..workers.len()).collect();
        let mut killed = Vec::new();
        for _ in 0..2 {
            std::thread::sleep(Duration::from_secs(3));
            let running = wait_for("the sources RUNNING", Duration::from_secs(120), || {
                placed(&workers[alive[0]], &alive)
            });
            // Not the first worker: it leads the group, and Tansu 0.6 never
            // forms a generation again after its leader is gone (Kafka
            // elects another). One that runs a source if there is one, so
            // that the kill moves it.
            let candidates: Vec<usize> = alive.iter().copied().filter(|i| *i != 0).collect();
            let victim = candidates
                .iter()
                .copied()
                .find(|i| running.contains(&ids[*i]))
                .unwrap_or(candidates[0]);
            let at = std::time::Instant::now();
            workers[victim].kill9();
            alive.retain(|i| *i != victim);
            killed.push(victim);
            wait_for(
                "every source RUNNING on a live worker",
                Duration::from_secs(120),
                || placed(&workers[alive[0]], &alive),
            );
            eprintln!(
                "kill -9 of a worker running a source: running elsewhere after {:?}",
                at.elapsed()
            );
        }
        for victim in killed {
            workers[victim].restart();
        }
    });
}

/// Where [`replicate_through`] runs the two JDBC sinks.
#[derive(Clone, Copy, PartialEq)]
enum Sinks {
    /// On the group, beside the sources, moved by the disruption too.
    InTheGroup,
    /// On a standalone worker the disruption does not touch.
    OwnWorker,
}

/// Replicates a PostgreSQL and a MariaDB table through two sources on a
/// group of `size` workers and two JDBC sinks placed as `sinks` says,
/// while both databases take writes and `disrupt` does its worst to the
/// group; then checks both replicas with `sluice verify`.
fn replicate_through(size: usize, sinks: Sinks, disrupt: impl FnOnce(&mut Vec<Worker>) + Send) {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let db = Maria::from_env(&env);
    let group = Group::new();
    let (pg_source, pg_target, my_source, my_target) =
        (ident("rsrc"), ident("rdst"), ident("msrc"), ident("mdst"));
    pg.items_table(&pg_source, 300);
    pg.exec(&format!(
        "CREATE SCHEMA {pg_target}; CREATE SCHEMA {my_target};"
    ));
    db.exec(&format!(
        "CREATE DATABASE {my_source}; \
         CREATE TABLE {my_source}.items (id INT PRIMARY KEY, qty INT NOT NULL, note VARCHAR(40), price DECIMAL(12,2)); \
         INSERT INTO {my_source}.items SELECT seq, seq % 100, CONCAT('note ', seq), seq * 1.25 FROM seq_1_to_300;"
    ));
    let mut workers: Vec<Worker> = (0..size)
        .map(|_| Worker::start_with(&env, &group.args()))
        .collect();
    let api = workers[0].api();
    let own_worker = (sinks == Sinks::OwnWorker).then(|| Worker::start(&env));
    let sink_api = own_worker.as_ref().map_or_else(|| api.clone(), Worker::api);
    // Names of their own: a sink's consumer group is connect-<name>, and
    // Tansu never drops a member of an earlier run that died in it.
    let name = |role: &str| format!("{role}-{}", group.id);
    let (pg_prefix, my_prefix) = (ident("rpg"), ident("rmy"));
    let json_schemas = |mut config: Value| {
        config["key.converter.schemas.enable"] = json!("true");
        config["value.converter.schemas.enable"] = json!("true");
        config
    };
    let pg_url = format!(
        "jdbc:postgresql://{}:{}/{}",
        env.get("SLUICE_PG_HOST"),
        env.get("SLUICE_PG_PORT"),
        env.get("SLUICE_PG_DATABASE")
    );
    let sink = |topic: String, target: &str| {
        json!({
            "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
            "connection.url": pg_url, "connection.username": env.get("SLUICE_PG_USER"),
            "connection.password": env.get("SLUICE_PG_PASSWORD"),
            "topics": topic, "insert.mode": "upsert", "primary.key.mode": "record_key",
            "delete.enabled": "true", "schema.evolution": "basic",
            "table.name.format": format!("{target}.${{source.table}}"),
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        })
    };
    let server_id = 7000 + std::process::id() % 1000;
    let (pg_topic, my_topic) = (
        format!("{pg_prefix}.{pg_source}.items"),
        format!("{my_prefix}.{my_source}.items"),
    );
    for (on, name, config) in [
        (
            &api,
            name("pg-source"),
            json_schemas(pg.connector_config(&pg_prefix, &pg_source, &ident("rslot"))),
        ),
        (
            &api,
            name("my-source"),
            json_schemas(db.connector_config(&my_prefix, &my_source, server_id)),
        ),
        (
            &sink_api,
            name("pg-sink"),
            sink(pg_topic.clone(), &pg_target),
        ),
        (
            &sink_api,
            name("my-sink"),
            sink(my_topic.clone(), &my_target),
        ),
    ] {
        let reply = on.post("/connectors", &json!({"name": name, "config": config}));
        assert_eq!(reply.status, 201, "{name}: {}", reply.text);
    }
    // Writes go on in rounds for as long as the disruption lasts.
    let disrupted = std::sync::atomic::AtomicBool::new(false);
    let writes = |write: &(dyn Fn(i64) + Sync)| {
        let mut round = 0;
        while round < 3 || !disrupted.load(std::sync::atomic::Ordering::Acquire) {
            write(10_000 + round * 1_000);
            round += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| writes(&|base| pg.random_writes(&pg_source, 200, base, 250)));
        scope.spawn(|| writes(&|base| db.random_writes(&my_source, 200, base, 250)));
        disrupt(&mut workers);
        disrupted.store(true, std::sync::atomic::Ordering::Release);
    });

    let (pg_db, my_db) = (postgres_url(&env), mariadb_url(&env, &my_source));
    for (source, table) in [
        (&pg_db, format!("{pg_source}.items:{pg_target}.items")),
        (&my_db, format!("items:{my_target}.items")),
    ] {
        let mut last = String::new();
        let equal = (0..120).any(|_| {
            let (code, text) = verify(source, &pg_db, &table);
            last = text;
            code == 0 || {
                std::thread::sleep(Duration::from_secs(1));
                false
            }
        });
        let logs: Vec<String> = workers
            .iter()
            .chain(&own_worker)
            .enumerate()
            .map(|(i, worker)| format!("── worker {i} ──\n{}", worker.logs()))
            .collect();
        assert!(
            equal,
            "{table}: the replica never caught up: {last}\n{}",
            logs.join("\n")
        );
    }
    for role in ["pg-sink", "my-sink"] {
        sink_api.delete(&format!("/connectors/{}", name(role)));
    }
    for role in ["pg-source", "my-source"] {
        api.delete(&format!("/connectors/{}", name(role)));
    }
}

/// Exactly-once source delivery on a broker without transactions: Tansu
/// 0.6 takes a transactional id and transactional writes but cannot end a
/// transaction. The task fails for good at its first commit (retrying
/// cannot help), naming the cause and the fix.
#[test]
fn exactly_once_on_a_broker_without_transactions_fails_the_task_naming_the_fix() {
    let env = TestEnv::load();
    let group = Group::new();
    let mut args = group.args();
    args.extend(["--exactly-once-source-support", "enabled"]);
    let worker = Worker::start_with(&env, &args);
    let trace = sluice_tests::connectors::failure_trace(
        &worker.api(),
        &unique("eos"),
        &json!({"connector.class": "datagen", "topic": unique("eos-topic"),
                "rate.per.sec": "100", "exactly.once.support": "required"}),
        "the task to fail on the broker without transactions",
    );
    assert!(
        trace.contains("does not support transactions")
            && trace.contains("--exactly-once-source-support=disabled"),
        "{trace}"
    );
    assert!(
        worker.logs().contains("source tasks deliver exactly once"),
        "the worker says it runs exactly once"
    );
    // Offsets set through the API go in a transaction too (as on Connect,
    // fencing the connector's tasks first), which this broker cannot end:
    // the request fails naming the cause, instead of writing them outside
    // a transaction.
    let api = worker.api();
    let name = unique("eos-offsets");
    let reply = api.post(
        "/connectors",
        &json!({"name": name, "config": {"connector.class": "datagen",
                "topic": unique("eos-topic"), "rate.per.sec": "1"}}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/stop")).status,
        204
    );
    let reply = api.patch(
        &format!("/connectors/{name}/offsets"),
        &json!({"offsets": [{"partition": {"topic": "t"}, "offset": {"seq": 5}}]}),
    );
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert!(
        reply.text.contains("does not support transactions")
            && reply
                .text
                .contains("--exactly-once-source-support=disabled"),
        "{}",
        reply.text
    );
    api.delete(&format!("/connectors/{name}"));
}
