//! Crashes and shutdowns lose nothing: after `kill -9` the sequence in the
//! topic has no gap; after SIGTERM it has no gap and no repeat.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{datagen_seqs, read_topic};
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

const TOTAL: i64 = 60_000;

fn counts(seqs: &[i64]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for s in seqs {
        *counts.entry(*s).or_insert(0) += 1;
    }
    counts
}

fn create(worker: &Worker, name: &str, topic: &str) {
    let reply = worker.api().post(
        "/connectors",
        &json!({"name": name, "config": {
            "connector.class": "datagen", "topic": topic,
            "rate.per.sec": "20000", "max.records": TOTAL, "payload.bytes": 32,
        }}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
}

fn produced(worker: &Worker, name: &str) -> i64 {
    worker
        .api()
        .get(&format!("/connectors/{name}/offsets"))
        .body["offsets"][0]["offset"]["seq"]
        .as_i64()
        .unwrap_or(-1)
}

/// Panics naming the first sequence numbers in `0..TOTAL` the topic lacks.
fn assert_no_gap(counts: &BTreeMap<i64, usize>, when: &str) {
    let missing: Vec<i64> = (0..TOTAL)
        .filter(|s| !counts.contains_key(s))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "records lost {when}, first missing: {missing:?} ({} distinct read)",
        counts.len()
    );
}

fn read_all(env: &TestEnv, topic: &str) -> Vec<i64> {
    let records = read_topic(env.bootstrap(), topic, Duration::from_secs(120), |r| {
        let seqs = datagen_seqs(r);
        seqs.contains(&(TOTAL - 1)) && counts(&seqs).len() as i64 == TOTAL
    });
    datagen_seqs(&records)
}

#[test]
fn kill_9_mid_stream_loses_no_record() {
    let env = TestEnv::load();
    let mut worker = Worker::start(&env);
    let (name, topic) = (unique("crash"), unique("crash-topic"));
    create(&worker, &name, &topic);
    wait_for("some committed progress", Duration::from_secs(60), || {
        (produced(&worker, &name) > 5_000).then_some(())
    });
    worker.kill9();
    worker.restart();
    let api = worker.api();
    wait_for("the restored task to run", Duration::from_secs(30), || {
        (api.get(&format!("/connectors/{name}/status")).body["tasks"][0]["state"] == "RUNNING")
            .then_some(())
    });
    wait_for("the connector to finish", Duration::from_secs(120), || {
        (produced(&worker, &name) == TOTAL - 1).then_some(())
    });
    let seqs = read_all(&env, &topic);
    let counts = counts(&seqs);
    assert_no_gap(&counts, &format!("after kill -9 (topic {topic})"));
    assert_eq!(counts.keys().next_back(), Some(&(TOTAL - 1)));
}

#[test]
fn sigterm_commits_everything_acknowledged() {
    let env = TestEnv::load();
    let mut worker = Worker::start(&env);
    let (name, topic) = (unique("term"), unique("term-topic"));
    create(&worker, &name, &topic);
    wait_for("some committed progress", Duration::from_secs(60), || {
        (produced(&worker, &name) > 5_000).then_some(())
    });
    let status = worker.terminate();
    assert!(
        status.success(),
        "worker exited with {status} after SIGTERM"
    );
    assert!(worker.logs().contains("worker stopped"));
    worker.restart();
    wait_for("the connector to finish", Duration::from_secs(120), || {
        (produced(&worker, &name) == TOTAL - 1).then_some(())
    });
    let seqs = read_all(&env, &topic);
    let counts = counts(&seqs);
    assert_no_gap(&counts, "across SIGTERM");
    let repeated: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .take(10)
        .collect();
    assert!(
        repeated.is_empty(),
        "records repeated after a graceful shutdown: {repeated:?}"
    );
}

/// Issue 19, finding 8: a second worker on a state directory in use is
/// refused at start, naming the fix, instead of overwriting the first
/// one's offsets and configs.
#[test]
fn a_second_worker_on_one_state_directory_is_refused() {
    let env = TestEnv::load();
    let first = Worker::start(&env);
    let port = sluice_tests::process::free_port();
    let mut second = std::process::Command::new(sluice_tests::worker::sluice_bin())
        .args([
            "worker",
            "--bootstrap-servers",
            env.bootstrap(),
            "--rest-listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(first.state_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("second worker starts");
    let exited = wait_for("the second worker to exit", Duration::from_secs(20), || {
        second.try_wait().ok().flatten()
    });
    let output = second.wait_with_output().expect("output");
    let text = sluice_tests::process::output_text(&output);
    assert!(!exited.success(), "{text}");
    assert!(text.contains("in use by another sluice process"), "{text}");
    assert!(text.contains("--state-dir"), "{text}");
    // The first worker is unharmed.
    assert_eq!(first.api().get("/connectors").status, 200);
}
