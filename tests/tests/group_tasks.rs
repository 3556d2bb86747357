//! A connector with several tasks spreads them over a group of workers:
//! task 0 runs beside its connector, each further task wherever the group
//! places its own unit — the partitions next to the connector's, which the
//! group deals to different workers — so a JDBC sink with `tasks.max=3`
//! runs on three workers, each task where the workers' published shares
//! say, its status naming that worker. A task
//! restart asked of any worker reaches the one running the task, and a
//! worker killed with SIGKILL hands its tasks to the survivors with no
//! row lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_tests::env::TestEnv;
use sluice_tests::group::{survivors, Group};
use sluice_tests::kafka::{java_partition, read_topic_to_end};
use sluice_tests::postgres::Pg;
use sluice_tests::verify::{postgres_url, verify};
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

/// The partitions of the offset topic: the group's units of work.
const UNITS: i32 = 25;
const TASKS: u32 = 3;

fn worker_id(worker: &Worker) -> String {
    worker.url().trim_start_matches("http://").to_owned()
}

/// The partition of the group a connector's task belongs to, as
/// `docs/distributed.md` says: the connector's own (the murmur2 of its
/// name) for task 0, then those above it up to the last, then those below.
fn unit_partition(connector: &str, task: u32) -> i32 {
    let home = java_partition(connector.as_bytes(), UNITS);
    let task = (task % UNITS as u32) as i32;
    if task < UNITS - home {
        home + task
    } else {
        UNITS - 1 - task
    }
}

/// Which worker holds each partition, from the shares the workers publish
/// on the status topic (`sluice-worker-<id>`), once every partition is
/// held by exactly one of `ids`.
fn holders(env: &TestEnv, group: &Group, ids: &[String]) -> Option<BTreeMap<i32, String>> {
    let records = read_topic_to_end(env.bootstrap(), &group.status, Duration::from_secs(30));
    let mut shares: BTreeMap<String, Value> = BTreeMap::new();
    for record in records {
        let key = String::from_utf8_lossy(record.raw_key_bytes.as_deref().unwrap_or_default());
        let Some(worker) = key.strip_prefix("sluice-worker-") else {
            continue;
        };
        match record.value {
            Value::Null => shares.remove(worker),
            share => shares.insert(worker.to_owned(), share),
        };
    }
    let mut held = BTreeMap::new();
    for (worker, share) in shares.iter().filter(|(w, _)| ids.contains(w)) {
        for partition in share["partitions"]
            .as_array()?
            .iter()
            .filter_map(Value::as_i64)
        {
            if held.insert(partition as i32, worker.clone()).is_some() {
                return None;
            }
        }
    }
    (held.len() == UNITS as usize).then_some(held)
}

/// Where each task of `name` runs, once all `TASKS` are RUNNING on workers
/// of `live`.
fn running_tasks(asked: &Worker, name: &str, live: &[String]) -> Option<Vec<String>> {
    let status = asked.api().get(&format!("/connectors/{name}/status")).body;
    let tasks = status["tasks"].as_array()?;
    (tasks.len() == TASKS as usize).then_some(())?;
    tasks
        .iter()
        .map(|t| {
            let on = t["worker_id"].as_str()?.to_owned();
            (t["state"] == "RUNNING" && live.contains(&on)).then_some(on)
        })
        .collect()
}

#[test]
fn a_sinks_tasks_spread_over_the_group_and_move_when_a_worker_dies() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let group = Group::new();
    let ident = |prefix: &str| unique(prefix).replace('-', "_");
    let (source, target, prefix) = (ident("tsrc"), ident("tdst"), ident("tpg"));
    pg.items_table(&source, 300);
    pg.exec(&format!("CREATE SCHEMA {target};"));
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start_with(&env, &group.args()))
        .collect();
    let ids: Vec<String> = workers.iter().map(worker_id).collect();
    let api = workers[0].api();

    // The source writes a topic of three partitions, one per sink task.
    let mut config = pg.connector_config(&prefix, &source, &ident("tslot"));
    config["topic.creation.default.partitions"] = json!("3");
    config["key.converter"] = json!("org.apache.kafka.connect.json.JsonConverter");
    config["value.converter"] = json!("org.apache.kafka.connect.json.JsonConverter");
    config["key.converter.schemas.enable"] = json!("true");
    config["value.converter.schemas.enable"] = json!("true");
    let reply = api.post(
        "/connectors",
        &json!({"name": format!("source-{}", group.id), "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);

    // A sink name that hashing each task's id (`<name>-<n>`) on its own
    // would have put two tasks of on one worker, as sluice did before its
    // tasks took neighbouring partitions: the spread is the placement's
    // doing, not the name's luck.
    let held = wait_for(
        "every partition held by one worker",
        Duration::from_secs(90),
        || holders(&env, &group, &ids),
    );
    let sink = (0..)
        .map(|k| format!("sink-{}-{k}", group.id))
        .find(|name| {
            let by_task_id: std::collections::BTreeSet<&String> = (0..TASKS)
                .map(|t| {
                    let id = if t == 0 {
                        name.clone()
                    } else {
                        format!("{name}-{t}")
                    };
                    &held[&java_partition(id.as_bytes(), UNITS)]
                })
                .collect();
            by_task_id.len() < TASKS as usize
        })
        .expect("some name would have crowded");
    let reply = api.post(
        "/connectors",
        &json!({"name": sink, "config": {
            "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
            "tasks.max": TASKS.to_string(),
            "connection.url": format!("jdbc:postgresql://{}:{}/{}", env.get("SLUICE_PG_HOST"), env.get("SLUICE_PG_PORT"), env.get("SLUICE_PG_DATABASE")),
            "connection.username": env.get("SLUICE_PG_USER"),
            "connection.password": env.get("SLUICE_PG_PASSWORD"),
            "topics": format!("{prefix}.{source}.items"),
            "insert.mode": "upsert", "primary.key.mode": "record_key",
            "delete.enabled": "true", "schema.evolution": "basic",
            "table.name.format": format!("{target}.${{source.table}}"),
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        }}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);

    // Each task runs where the group placed its unit, on three workers.
    let placed = wait_for(
        "the sink's tasks RUNNING where the group placed them",
        Duration::from_secs(90),
        || {
            let on = running_tasks(&workers[2], &sink, &ids)?;
            let held = holders(&env, &group, &ids)?;
            let expected: Vec<String> = (0..TASKS)
                .map(|t| held[&unit_partition(&sink, t)].clone())
                .collect();
            (on == expected).then_some(on)
        },
    );
    let distinct: std::collections::BTreeSet<&String> = placed.iter().collect();
    assert_eq!(distinct.len(), TASKS as usize, "tasks on {placed:?}");
    let connector_on = api.get(&format!("/connectors/{sink}/status")).body["connector"]
        ["worker_id"]
        .as_str()
        .map(str::to_owned);
    assert_eq!(
        connector_on.as_ref(),
        Some(&placed[0]),
        "task 0 runs beside its connector"
    );

    // A restart of every task, asked of a worker that runs none of the
    // sink's tasks but the first, reaches the workers running the others.
    let far = (1..TASKS as usize)
        .find(|t| placed[*t] != ids[0])
        .expect("a task away from worker 0");
    let far_worker = ids.iter().position(|id| *id == placed[far]).expect("known");
    let restarts_before = workers[far_worker]
        .logs()
        .matches("task restarting")
        .count();
    let reply = api.post(
        &format!("/connectors/{sink}/restart?includeTasks=true"),
        &json!({}),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    wait_for(
        "the task's own worker to restart it",
        Duration::from_secs(30),
        || {
            (workers[far_worker]
                .logs()
                .matches("task restarting")
                .count()
                > restarts_before)
                .then_some(())
        },
    );

    // Writes go on; a worker running a task (not the first, which leads
    // the group: Tansu 0.6 forms no generation without it) is killed.
    let writes = std::thread::scope(|scope| {
        let writer = scope.spawn(|| pg.random_writes(&source, 150, 10_000, 250));
        std::thread::sleep(Duration::from_secs(3));
        let victim = (0..3)
            .find(|i| *i != 0 && placed.contains(&ids[*i]))
            .expect("a task on a worker other than the first");
        let killed = Instant::now();
        workers[victim].kill9();
        let live = survivors(&ids, victim);
        let after = wait_for(
            "every task RUNNING on the survivors",
            Duration::from_secs(120),
            || running_tasks(&workers[0], &sink, &live),
        );
        eprintln!(
            "kill -9 of a worker running a sink task: every task RUNNING on the survivors after {:?} (before {placed:?}, after {after:?})",
            killed.elapsed()
        );
        writer.join()
    });
    writes.expect("writes done");

    let db = postgres_url(&env);
    let table = format!("{source}.items:{target}.items");
    let mut last = String::new();
    let equal = (0..120).any(|_| {
        let (code, text) = verify(&db, &db, &table);
        last = text;
        code == 0 || {
            std::thread::sleep(Duration::from_secs(1));
            false
        }
    });
    let logs: Vec<String> = workers
        .iter()
        .enumerate()
        .map(|(i, worker)| format!("── worker {i} ──\n{}", worker.logs()))
        .collect();
    assert!(
        equal,
        "the replica never caught up: {last}\n{}",
        logs.join("\n")
    );
    api.delete(&format!("/connectors/{sink}"));
    api.delete(&format!("/connectors/source-{}", group.id));
}
