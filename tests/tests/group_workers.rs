//! Workers started with one `--group-id` share connectors through Kafka's
//! group membership: each connector runs on exactly one worker, every
//! worker answers for all of them, and when workers leave and come back
//! one by one (a rolling restart) every connector keeps running on a live
//! worker and its records arrive once each — the worker giving a connector
//! up stores its offsets before the one taking it over starts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_tests::broker::OwnBroker;
use sluice_tests::env::TestEnv;
use sluice_tests::group::{survivors, Group};
use sluice_tests::kafka::{datagen_seqs, read_topic};
use sluice_tests::netns::Netns;
use sluice_tests::worker::Worker;
use sluice_tests::{wait_for, wait_until};

const CONNECTORS: [&str; 6] = [
    "orders",
    "payments",
    "shipments",
    "refunds",
    "invoices",
    "returns",
];
const RECORDS: i64 = 6_000;

/// Where each connector's task runs, as `worker` reports it, once every
/// task is RUNNING on one of `live`.
fn placement(worker: &Worker, live: &[String]) -> Option<BTreeMap<String, String>> {
    placement_seen(worker, live).ok()
}

/// [`placement`], or each connector's task state and worker as `worker`
/// reports them while some task is not yet RUNNING on one of `live`.
fn placement_seen(
    worker: &Worker,
    live: &[String],
) -> Result<BTreeMap<String, String>, BTreeMap<String, String>> {
    let api = worker.api();
    let seen: BTreeMap<String, (String, String)> = CONNECTORS
        .iter()
        .map(|name| {
            let status = api.get(&format!("/connectors/{name}/status")).body;
            let task = &status["tasks"][0];
            let text = |v: &Value| v.as_str().unwrap_or("none").to_owned();
            (
                name.to_string(),
                (text(&task["state"]), text(&task["worker_id"])),
            )
        })
        .collect();
    if seen
        .values()
        .all(|(state, on)| state == "RUNNING" && live.contains(on))
    {
        Ok(seen.into_iter().map(|(name, (_, on))| (name, on)).collect())
    } else {
        Err(seen
            .into_iter()
            .map(|(name, (state, on))| (name, format!("{state} on {on}")))
            .collect())
    }
}

fn worker_id(worker: &Worker) -> String {
    worker.url().trim_start_matches("http://").to_owned()
}

#[test]
fn a_rolling_restart_keeps_every_connector_running_once_and_loses_nothing() {
    let env = TestEnv::load();
    let group = Group::new();
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start_with(&env, &group.args()))
        .collect();
    let ids: Vec<String> = workers.iter().map(worker_id).collect();
    for name in CONNECTORS {
        create_datagen(&workers[0], &group, name);
    }
    // Every worker sees the same placement, spread over the group. Both
    // are read in each round: a placement read once and compared later
    // goes stale when the group rebalances meanwhile (a broker that
    // stalled past the lease on a loaded machine moved every connector
    // in one CI run), and agreeing on where each runs is the point.
    let first = wait_for(
        "every connector RUNNING, the same answer from each worker",
        Duration::from_secs(90),
        || {
            let seen = placement(&workers[2], &ids)?;
            (placement(&workers[1], &ids)? == seen).then_some(seen)
        },
    );
    let used: BTreeSet<&String> = first.values().collect();
    assert!(used.len() >= 2, "connectors spread over workers: {first:?}");

    // Any worker takes writes for a connector another worker runs.
    let (name, owner) = first.iter().next().expect("a connector");
    let other = workers
        .iter()
        .find(|w| &worker_id(w) != owner)
        .expect("another worker");
    let restart = other
        .api()
        .post_empty(&format!("/connectors/{name}/tasks/0/restart"));
    assert_eq!(
        restart.status, 204,
        "forwarded to {owner}: {}",
        restart.text
    );
    assert_eq!(
        other
            .api()
            .put_empty(&format!("/connectors/{name}/pause"))
            .status,
        202
    );
    let task_on = |state: &str| {
        let status = other.api().get(&format!("/connectors/{name}/status")).body;
        (status["tasks"][0]["state"] == state && status["tasks"][0]["worker_id"] == json!(owner))
            .then_some(())
    };
    wait_for(
        "paused on the worker running it",
        Duration::from_secs(30),
        || task_on("PAUSED"),
    );
    assert_eq!(
        other
            .api()
            .put_empty(&format!("/connectors/{name}/resume"))
            .status,
        202
    );
    wait_for(
        "resumed on the worker running it",
        Duration::from_secs(30),
        || task_on("RUNNING"),
    );

    // One worker at a time leaves and comes back.
    let mut handovers = Vec::new();
    for leaving in 0..workers.len() {
        let live = survivors(&ids, leaving);
        let asked = if leaving == 0 { 1 } else { 0 };
        let stopped = Instant::now();
        workers[leaving].terminate();
        let moved = wait_until(
            "the leaving worker's connectors running elsewhere",
            Duration::from_secs(60),
            || placement_seen(&workers[asked], &live),
        );
        handovers.push(stopped.elapsed());
        assert!(moved.values().all(|on| on != &ids[leaving]), "{moved:?}");
        workers[leaving].restart();
        wait_until(
            "every connector RUNNING after the restart",
            Duration::from_secs(60),
            || placement_seen(&workers[asked], &ids),
        );
    }
    eprintln!("handover times (SIGTERM to RUNNING elsewhere): {handovers:?}");

    // Every record once: no gap, and no repeat (graceful handovers).
    assert_each_record_once(&env, &group, &CONNECTORS);
}

/// Every datagen record of each connector's topic is there exactly once.
fn assert_each_record_once(env: &TestEnv, group: &Group, connectors: &[&str]) {
    let repeats = assert_each_record_at_least_once(env.bootstrap(), group, connectors);
    for (name, count) in repeats {
        assert_eq!(count, 0, "{name}: {count} records repeated");
    }
}

fn create_datagen(worker: &Worker, group: &Group, name: &str) {
    let reply = worker.api().post(
        "/connectors",
        &json!({"name": name, "config": {
            "connector.class": "datagen", "topic": format!("{}-{name}", group.id),
            "rate.per.sec": "300", "max.records": RECORDS, "payload.bytes": 16,
        }}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
}

/// A group of `size` workers running the six datagen connectors: the
/// group, its workers, their ids and where each connector runs.
fn group_running_the_connectors(
    env: &TestEnv,
    size: usize,
) -> (Group, Vec<Worker>, Vec<String>, BTreeMap<String, String>) {
    let group = Group::new();
    let workers: Vec<Worker> = (0..size)
        .map(|_| Worker::start_with(env, &group.args()))
        .collect();
    let ids: Vec<String> = workers.iter().map(worker_id).collect();
    for name in CONNECTORS {
        create_datagen(&workers[0], &group, name);
    }
    let running = wait_for("every connector RUNNING", Duration::from_secs(60), || {
        placement(&workers[size - 1], &ids)
    });
    (group, workers, ids, running)
}

/// A worker running a connector, not the first: the first leads the
/// group, and Tansu 0.6 never forms a generation again once its leader is
/// gone (Kafka elects another), so the faults spare it.
fn follower_running_a_connector(running: &BTreeMap<String, String>, ids: &[String]) -> usize {
    running
        .values()
        .filter_map(|on| ids.iter().position(|id| id == on))
        .find(|i| *i != 0)
        .expect("a worker other than the first running a connector")
}

/// A worker frozen longer than its lease (a GC-like stall, SIGSTOP) stops
/// writing the moment it wakes (its lease ran out while it slept, and the
/// group may have given its connectors away), then rejoins the group and
/// takes its share again from the stored offsets: nothing lost, nothing
/// written twice.
#[test]
fn a_worker_frozen_past_its_lease_fences_itself_and_rejoins() {
    let env = TestEnv::load();
    let (group, workers, ids, before) = group_running_the_connectors(&env, 2);
    // A stall past the session (a loaded machine adds to the 9 s) would
    // leave Tansu 0.6 without a leader if it hit the first worker.
    let frozen = follower_running_a_connector(&before, &ids);
    workers[frozen].freeze();
    std::thread::sleep(Duration::from_secs(9));
    workers[frozen].thaw();
    wait_for(
        "the frozen worker to notice its lapsed lease",
        Duration::from_secs(30),
        || {
            workers[frozen]
                .logs()
                .contains("group lease lost")
                .then_some(())
        },
    );
    wait_for(
        "every connector RUNNING again",
        Duration::from_secs(90),
        || placement(&workers[1 - frozen], &ids),
    );
    assert_each_record_once(&env, &group, &CONNECTORS);
}

/// A worker killed with SIGKILL leaves no goodbye: the group coordinator
/// drops it after the session timeout and the survivors take its
/// connectors over from the stored offsets — nothing lost; records after
/// the last stored offset may come twice.
#[test]
fn a_worker_killed_hard_hands_its_connectors_to_the_survivors() {
    let env = TestEnv::load();
    let (group, mut workers, ids, before) = group_running_the_connectors(&env, 3);
    let victim = follower_running_a_connector(&before, &ids);
    let killed = Instant::now();
    workers[victim].kill9();
    let live = survivors(&ids, victim);
    let asked = if victim == 0 { 1 } else { 0 };
    let after = wait_for(
        "the killed worker's connectors RUNNING on the survivors",
        Duration::from_secs(120),
        || placement(&workers[asked], &live),
    );
    eprintln!(
        "failover after kill -9: {:?} (placement before {before:?}, after {after:?})",
        killed.elapsed()
    );
    assert_each_record_at_least_once(env.bootstrap(), &group, &CONNECTORS);
}

/// Every datagen record of each connector's topic is there, repeats allowed
/// (what a crash before an offset flush gives); the repeats by connector.
fn assert_each_record_at_least_once(
    bootstrap: &str,
    group: &Group,
    connectors: &[&str],
) -> BTreeMap<String, usize> {
    let mut repeats = BTreeMap::new();
    for name in connectors {
        let topic = format!("{}-{name}", group.id);
        let records = read_topic(bootstrap, &topic, Duration::from_secs(120), |r| {
            datagen_seqs(r).iter().collect::<BTreeSet<_>>().len() as i64 >= RECORDS
        });
        let seqs = datagen_seqs(&records);
        let distinct: BTreeSet<i64> = seqs.iter().copied().collect();
        let missing: Vec<i64> = (0..RECORDS)
            .filter(|s| !distinct.contains(s))
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: records lost, first missing {missing:?}"
        );
        repeats.insert(name.to_string(), seqs.len() - distinct.len());
    }
    repeats
}

/// When a worker's log first has `needle`, from the RFC 3339 timestamp
/// that starts each line.
fn logged_at(logs: &str, needle: &str) -> Option<String> {
    logs.lines()
        .find(|line| line.contains(needle))
        .and_then(|line| line.split_whitespace().next())
        .map(str::to_owned)
}

/// A worker cut off from the broker (its own network namespace, packets to
/// the broker dropped, as in a real partition) stops its tasks once its
/// lease runs out, before the group gives them to the other worker; when
/// the link heals it rejoins. Nothing is lost, and what comes twice is
/// bounded by what the cut-off worker had sent without an acknowledgement.
/// Needs root (network namespaces).
#[test]
fn a_worker_cut_off_from_the_broker_is_fenced_before_its_connectors_move() {
    let env = TestEnv::load();
    let Some(netns) = Netns::create("10.83") else {
        eprintln!("not root: the partition test needs a network namespace; skipped");
        return;
    };
    let broker = OwnBroker::start(&env, &netns.server_address(3));
    let group = Group::new();
    // The worker outside starts first and so leads the group: Tansu 0.6
    // never forms a generation again after its leader is gone.
    let outside = Worker::start_wrapped(Vec::new(), "127.0.0.1", broker.bootstrap(), &group.args());
    let inside = Worker::start_wrapped(
        netns.wrapper(),
        &netns.address(),
        broker.bootstrap(),
        &group.args(),
    );
    let workers = [&inside, &outside];
    let ids: Vec<String> = workers
        .iter()
        .map(|w| w.url().trim_start_matches("http://").to_owned())
        .collect();
    for name in CONNECTORS {
        create_datagen(&outside, &group, name);
    }
    let before = wait_for("every connector RUNNING", Duration::from_secs(60), || {
        placement(&outside, &ids)
    });
    let moving: Vec<String> = before
        .iter()
        .filter(|(_, on)| **on == ids[0])
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        !moving.is_empty(),
        "the worker inside runs a connector: {before:?}"
    );

    let cut = Instant::now();
    netns.cut(broker.bootstrap().split(':').next().expect("host"));
    wait_for(
        "the cut-off worker's connectors RUNNING on the other",
        Duration::from_secs(120),
        || placement(&outside, &ids[1..]),
    );
    let moved_after = cut.elapsed();
    let (inside_logs, outside_logs) = (inside.logs(), outside.logs());
    let fenced = logged_at(&inside_logs, "group lease lost")
        .unwrap_or_else(|| panic!("the cut-off worker never fenced itself:\n{inside_logs}"));
    let after_fence = inside_logs
        .split_once("group lease lost")
        .map_or("", |(_, rest)| rest);
    for name in &moving {
        // Its task on the cut-off worker ended (slot or binlog reader let
        // go, not just writes stopped) before it started elsewhere.
        let stopped = logged_at(after_fence, &format!("task stopped connector={name} "))
            .unwrap_or_else(|| {
                panic!("{name} never stopped on the cut-off worker:\n{inside_logs}")
            });
        let started = outside_logs
            .lines()
            .filter(|l| l.contains("task started") && l.contains(&format!("connector={name} ")))
            .filter_map(|l| l.split_whitespace().next())
            .max()
            .expect("the task started on the other worker")
            .to_owned();
        assert!(
            fenced < started && stopped < started,
            "{name} started elsewhere at {started}, before the cut-off worker fenced itself ({fenced}) and stopped it ({stopped})"
        );
    }
    netns.heal(broker.bootstrap().split(':').next().expect("host"));
    wait_for(
        "every connector RUNNING after the heal",
        Duration::from_secs(120),
        || placement(&outside, &ids),
    );
    let repeats = assert_each_record_at_least_once(broker.bootstrap(), &group, &CONNECTORS);
    eprintln!(
        "partition: moved after {moved_after:?}; fenced at {fenced}; repeats by connector {repeats:?}"
    );
    // At most what the cut-off worker sent in its last lease (6 s at 300
    // records/s) and its last offset flush, for a connector that moved.
    for (name, count) in &repeats {
        assert!(*count <= 300 * 8, "{name}: {count} records repeated");
    }
}

/// Workers of a group started with `--registry-listen` serve one schema
/// registry: its log is a topic in Confluent's `_schemas` format, one
/// worker writes (the others forward to it), every worker reads, ids are
/// the same everywhere, and when the writer leaves another takes over with
/// nothing it answered lost.
#[test]
fn the_group_serves_one_schema_registry_with_one_id_space() {
    use sluice_tests::api::Api;
    use sluice_tests::process::free_port;

    let env = TestEnv::load();
    let group = Group::new();
    let topic = format!("{}-schemas", group.id);
    let start = || {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = group.args();
        args.extend(["--registry-listen", &listen, "--registry-topic", &topic]);
        (
            Worker::start_with(&env, &args),
            Api::new(format!("http://{listen}")),
        )
    };
    let mut workers = [start(), start()];
    let register = |registry: &Api, name: &str| -> i64 {
        let schema =
            json!({"type": "record", "name": name, "fields": [{"name": "a", "type": "int"}]});
        let body = json!({ "schema": schema.to_string() });
        wait_for("a registration answered", Duration::from_secs(60), || {
            let reply = registry.post(&format!("/subjects/{name}-value/versions"), &body);
            // 503 while the group places or moves the writer.
            (reply.status == 200)
                .then(|| reply.body["id"].as_i64())
                .flatten()
        })
    };
    let mut ids = BTreeMap::new();
    for (i, name) in ["R1", "R2", "R3", "R4"].iter().enumerate() {
        ids.insert(*name, register(&workers[i % 2].1, name));
    }
    let distinct: BTreeSet<i64> = ids.values().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "one id space: {ids:?}");
    let text_of = |registry: &Api, id: i64| {
        registry.get(&format!("/schemas/ids/{id}")).body["schema"]
            .as_str()
            .map(str::to_owned)
    };
    for (name, id) in &ids {
        let seen: Vec<Option<String>> = workers.iter().map(|(_, r)| text_of(r, *id)).collect();
        assert!(
            seen.iter()
                .all(|t| t.as_deref().is_some_and(|t| t.contains(name))),
            "id {id} is {name} on every worker: {seen:?}"
        );
    }

    // The first worker leaves; whoever writes now, registration goes on.
    workers[0].0.terminate();
    ids.insert("R5", register(&workers[1].1, "R5"));
    let distinct: BTreeSet<i64> = ids.values().copied().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "one id space after the move: {ids:?}"
    );

    // A new worker with an empty disk serves every schema under its id.
    let (_fresh, registry) = start();
    for (name, id) in &ids {
        let text = wait_for("the new worker's registry", Duration::from_secs(30), || {
            text_of(&registry, *id)
        });
        assert!(text.contains(name), "id {id} is {name}: {text}");
    }
}
