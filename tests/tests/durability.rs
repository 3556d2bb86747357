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

/// Creates a datagen connector writing `TOTAL` records at `rate` per second.
fn create(worker: &Worker, name: &str, topic: &str, rate: u32) {
    let reply = worker.api().post(
        "/connectors",
        &json!({"name": name, "config": {
            "connector.class": "datagen", "topic": topic,
            "rate.per.sec": rate.to_string(), "max.records": TOTAL, "payload.bytes": 32,
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
    create(&worker, &name, &topic, 20_000);
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
    create(&worker, &name, &topic, 20_000);
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

/// A small tmpfs a test fills to the last byte, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` unless running as root (mounting needs it).
    fn mount(size: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "sluice-test"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs failed");
        Some(Self { dir })
    }

    fn filler(&self) -> std::path::PathBuf {
        self.dir.path().join("filler")
    }

    /// Writes until the file system says it is full.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("filler removed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Issue 19, finding 8: a state disk that fills up stops no task and loses
/// nothing: the task stays RUNNING with the cause in its trace, its stored
/// offset stays where it was (nothing later is confirmed), and once there
/// is room the offsets move again; a kill -9 after that still loses no
/// record.
#[test]
fn a_full_state_disk_holds_the_offsets_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount("4m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let env = TestEnv::load();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut worker = Worker::start_in(&env, scratch, disk.dir.path().join("state"));
    let (name, topic) = (unique("full-disk"), unique("full-disk-topic"));
    // Slower than the other tests: the disk fills while records flow.
    create(&worker, &name, &topic, 2_000);
    wait_for("some committed progress", Duration::from_secs(60), || {
        (produced(&worker, &name) > 2_000).then_some(())
    });

    disk.fill();
    let api = worker.api();
    let trace = wait_for(
        "the full disk in the task's trace",
        Duration::from_secs(30),
        || {
            let task = sluice_tests::connectors::task_status(&api, &name);
            let trace = task["trace"].as_str().unwrap_or_default().to_owned();
            (task["state"] == "RUNNING" && trace.contains("No space left on device"))
                .then_some(trace)
        },
    );
    assert!(trace.contains("free the disk"), "{trace}");
    let held = produced(&worker, &name);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        produced(&worker, &name),
        held,
        "an offset was stored on a full disk?"
    );

    disk.free();
    wait_for("the offsets to move again", Duration::from_secs(30), || {
        let task = sluice_tests::connectors::task_status(&api, &name);
        (produced(&worker, &name) > held && task.get("trace").is_none()).then_some(())
    });
    worker.kill9();
    worker.restart();
    wait_for("the connector to finish", Duration::from_secs(120), || {
        (produced(&worker, &name) == TOTAL - 1).then_some(())
    });
    let counts = counts(&read_all(&env, &topic));
    assert_no_gap(
        &counts,
        &format!("after a full disk and kill -9 (topic {topic})"),
    );
    drop(worker);
}
