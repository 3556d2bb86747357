//! Avro on the wire, end to end: an independent client (Python's
//! confluent-kafka) reads what sluice writes and writes what sluice reads;
//! a schema change the registry rejects stops the task without moving its
//! offset; an unreachable registry delays records without dropping any.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{avro_id_and_first_long, read_topic, Consumed};
use sluice_tests::process::{free_port, python, sluice_bin};
use sluice_tests::registry::RegistryServer;
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

const AVRO: &str = "io.confluent.connect.avro.AvroConverter";

/// Runs `command`, killing it if it is still running after `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(limit);
        // SAFETY: kill(2) has no memory effects; a reused pid is not a
        // concern within a test's lifetime.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    });
    let output = child.wait_with_output().expect("wait");
    drop(watchdog);
    output
}

fn interop_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/avro_interop.py")
}

fn datagen_avro(name: &str, topic: &str, extra: Value) -> Value {
    let mut config = json!({
        "connector.class": "datagen",
        "topic": topic,
        "key.converter": AVRO,
        "value.converter": AVRO,
        "key.cardinality": "50",
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    json!({"name": name, "config": config})
}

fn committed_seq(api: &Api, name: &str) -> Option<i64> {
    api.get(&format!("/connectors/{name}/offsets")).body["offsets"][0]["offset"]["seq"].as_i64()
}

fn wait_committed(api: &Api, name: &str, seq: i64) {
    wait_for(
        &format!("{name} to commit seq {seq}"),
        Duration::from_secs(90),
        || (committed_seq(api, name) == Some(seq)).then_some(()),
    );
}

fn task_status(api: &Api, name: &str) -> Value {
    api.get(&format!("/connectors/{name}/status")).body["tasks"][0].clone()
}

fn wait_task_state(api: &Api, name: &str, state: &str) -> Value {
    wait_for(
        &format!("{name} task {state}"),
        Duration::from_secs(60),
        || {
            let task = task_status(api, name);
            (task["state"] == state).then_some(task)
        },
    )
}

/// Reads `count` records of `topic`: (schema id, seq) for each.
fn ids_and_seqs(env: &TestEnv, topic: &str, count: usize) -> Vec<(i32, i64)> {
    let records: Vec<Consumed> = read_topic(env.bootstrap(), topic, Duration::from_secs(60), |r| {
        r.len() >= count
    });
    records
        .iter()
        .map(|r| {
            avro_id_and_first_long(r.raw_value.as_deref().unwrap_or_default())
                .expect("a Confluent-framed Avro value")
        })
        .collect()
}

/// datagen's filler for `seq`, to compare decoded payloads with.
fn expected_payload(seq: i64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| ALPHABET[(seq as usize + i) % ALPHABET.len()] as char)
        .collect()
}

#[test]
fn python_confluent_kafka_reads_and_writes_through_sluice() {
    let env = TestEnv::load();
    let registry_port = free_port();
    let registry = format!("http://127.0.0.1:{registry_port}");
    let worker = Worker::start_with(
        &env,
        &["--registry-listen", &format!("127.0.0.1:{registry_port}")],
    );
    let api = worker.api();
    let topic = unique("avro-interop");
    let reply = api.post(
        "/connectors",
        &datagen_avro("interop", &topic, json!({"max.records": "200"})),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_committed(&api, "interop", 199);

    // Python decodes sluice's records through sluice's registry.
    let mut consume = Command::new(python());
    consume
        .arg(interop_script())
        .args(["consume", env.bootstrap(), &topic, &registry, "200"]);
    let output = run_bounded(consume, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "python consume failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 200);
    for (seq, line) in lines.iter().enumerate() {
        let seq = seq as i64;
        assert_eq!(line["value"]["seq"], seq, "{line}");
        assert_eq!(line["key"]["id"], seq % 50, "{line}");
        assert_eq!(line["value"]["id"], seq % 50, "{line}");
        assert_eq!(
            line["value"]["payload"],
            expected_payload(seq, 64),
            "{line}"
        );
        // timestamp-millis came through as a logical type: a datetime.
        let ts = line["value"]["ts_ms"].as_str().unwrap_or_default();
        assert!(ts.starts_with("20") && ts.contains("+00:00"), "{line}");
    }
    let subjects = Api::new(&registry).get("/subjects").body;
    assert!(
        subjects
            .as_array()
            .is_some_and(|s| s.contains(&json!(format!("{topic}-key")))
                && s.contains(&json!(format!("{topic}-value")))),
        "{subjects}"
    );

    // Python registers a schema and writes; sluice decodes it.
    let python_topic = unique("from-python");
    let mut produce = Command::new(python());
    produce
        .arg(interop_script())
        .args(["produce", env.bootstrap(), &python_topic, &registry, "4"]);
    let output = run_bounded(produce, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "python produce failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut tail = Command::new(sluice_bin());
    tail.args([
        "tail",
        "--bootstrap-servers",
        env.bootstrap(),
        "--topic",
        &python_topic,
    ])
    .args([
        "--from-beginning",
        "--max-records",
        "4",
        "--schema-registry-url",
        &registry,
    ]);
    let tail = run_bounded(tail, Duration::from_secs(60));
    let shown = String::from_utf8_lossy(&tail.stdout);
    assert!(
        tail.status.success(),
        "sluice tail: {}",
        String::from_utf8_lossy(&tail.stderr)
    );
    assert!(
        shown.contains(r#"value={"sensor":"s0","celsius":20.5,"note":"even"}"#),
        "{shown}"
    );
    assert!(
        shown.contains(r#"value={"sensor":"s3","celsius":23.5,"note":null}"#),
        "{shown}"
    );
}

#[test]
fn incompatible_schema_stops_the_task_until_the_operator_resolves_it() {
    let env = TestEnv::load();
    let registry_port = free_port();
    let registry = Api::new(format!("http://127.0.0.1:{registry_port}"));
    let worker = Worker::start_with(
        &env,
        &["--registry-listen", &format!("127.0.0.1:{registry_port}")],
    );
    let api = worker.api();
    let topic = unique("avro-evolve");
    let name = "evolve";
    let reply = api.post(
        "/connectors",
        &datagen_avro(name, &topic, json!({"max.records": "1000"})),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_committed(&api, name, 999);

    // A required field added: BACKWARD (the default) rejects it.
    let config = |extra: Value| datagen_avro(name, &topic, extra)["config"].clone();
    let reply = api.put(
        &format!("/connectors/{name}/config"),
        &config(json!({"max.records": "2000", "value.extra.fields": "extra"})),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let failed = wait_task_state(&api, name, "FAILED");
    let trace = failed["trace"].as_str().unwrap_or_default();
    for needle in [
        "connector evolve",
        topic.as_str(),
        &format!("subject {topic}-value"),
        "BACKWARD",
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "The field 'extra'",
        &format!("/config/{topic}-value"),
    ] {
        assert!(trace.contains(needle), "trace lacks {needle:?}: {trace}");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        committed_seq(&api, name),
        Some(999),
        "the offset did not move"
    );
    let first = ids_and_seqs(&env, &topic, 1000);
    assert_eq!(
        first.len(),
        1000,
        "nothing was produced with the rejected schema"
    );
    let v1 = first[0].0;
    assert!(first.iter().all(|(id, _)| *id == v1));

    // Fixing the schema (optional field, null default) resumes on its own.
    let reply = api.put(
        &format!("/connectors/{name}/config"),
        &config(json!({"max.records": "2000", "value.extra.fields": "extra", "value.extra.fields.optional": "true"})),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    wait_committed(&api, name, 1999);

    // Another breaking change, resolved by relaxing the subject's level.
    api.put(
        &format!("/connectors/{name}/config"),
        &config(json!({"max.records": "3000", "value.extra.fields": "extra,extra2"})),
    );
    wait_task_state(&api, name, "FAILED");
    assert_eq!(committed_seq(&api, name), Some(1999));
    let level = registry.put(
        &format!("/config/{topic}-value"),
        &json!({"compatibility": "NONE"}),
    );
    assert_eq!(level.status, 200, "{}", level.text);
    let restart = api.post_empty(&format!("/connectors/{name}/tasks/0/restart"));
    assert!(restart.status < 300, "{}", restart.text);
    wait_committed(&api, name, 2999);

    let all = ids_and_seqs(&env, &topic, 3000);
    let seqs: Vec<i64> = all.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (0..3000).collect::<Vec<_>>(),
        "every record once, in order"
    );
    let ids: BTreeSet<i32> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 3, "three schema versions in use: {ids:?}");
    assert_eq!(all[999].0, v1);
    assert_ne!(
        all[1000].0, v1,
        "the evolved schema starts exactly at seq 1000"
    );
    assert_eq!(
        registry
            .get(&format!("/subjects/{topic}-value/versions"))
            .body,
        json!([1, 2, 3])
    );
}

#[test]
fn unreachable_registry_delays_records_and_drops_none() {
    let env = TestEnv::load();
    let registry_port = free_port();
    let url = format!("http://127.0.0.1:{registry_port}");
    let worker = Worker::start_with(&env, &["--schema-registry-url", &url]);
    let api = worker.api();
    let topic = unique("avro-wait");
    let reply = api.post(
        "/connectors",
        &datagen_avro("waiter", &topic, json!({"max.records": "300"})),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_for(
        "the worker to report the missing registry",
        Duration::from_secs(30),
        || {
            worker
                .logs()
                .contains("waiting for the schema registry")
                .then_some(())
        },
    );
    let waiting = wait_for(
        "the status to say what the task waits for",
        Duration::from_secs(10),
        || {
            let task = task_status(&api, "waiter");
            let trace = task["trace"].as_str().unwrap_or_default();
            trace
                .contains("waiting for the schema registry")
                .then(|| task.clone())
        },
    );
    assert_eq!(waiting["state"], "RUNNING", "waiting is not failing");
    assert!(
        waiting["trace"]
            .as_str()
            .is_some_and(|t| t.contains("schema.registry.url")),
        "{waiting}"
    );
    assert_eq!(
        committed_seq(&api, "waiter"),
        None,
        "nothing committed without the registry"
    );

    let _registry = RegistryServer::start_on(registry_port);
    wait_committed(&api, "waiter", 299);
    let seqs: Vec<i64> = ids_and_seqs(&env, &topic, 300)
        .iter()
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
}

#[test]
fn avro_without_a_registry_is_refused_naming_the_key() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let reply = worker.api().post(
        "/connectors",
        &datagen_avro("no-registry", &unique("avro-none"), json!({})),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("schema.registry.url"),
        "{}",
        reply.text
    );
    assert!(
        reply.message().contains("--registry-listen"),
        "{}",
        reply.text
    );
    let strategy = worker.api().post(
        "/connectors",
        &datagen_avro(
            "bad-strategy",
            &unique("avro-bad"),
            json!({
                "value.converter.schema.registry.url": "http://127.0.0.1:9",
                "key.converter.schema.registry.url": "http://127.0.0.1:9",
                "value.converter.value.subject.name.strategy": "SubjectByMoonPhase",
            }),
        ),
    );
    assert_eq!(strategy.status, 400, "{}", strategy.text);
    assert!(
        strategy
            .message()
            .contains("value.converter.value.subject.name.strategy"),
        "{}",
        strategy.text
    );
}
