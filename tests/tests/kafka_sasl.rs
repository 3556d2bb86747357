//! Logging in to a broker with SASL/SCRAM: the test environment's third
//! broker (Tansu with `--authentication`, which offers SCRAM-SHA-256 only)
//! admits the user `sluice`. A worker configured the Kafka Connect way
//! (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config` with
//! Kafka's ScramLoginModule) creates its topic and produces through it
//! with every client it makes, and `sluice tail` reads it back logged in;
//! a wrong password is refused at start, naming the login as the cause,
//! by the worker and by `sluice tail` alike.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::worker::{sluice_bin, Worker};
use sluice_tests::{unique, wait_for};

fn sasl_flags(user: &str, password: &str) -> Vec<String> {
    [
        "security.protocol=SASL_PLAINTEXT".to_owned(),
        "sasl.mechanism=SCRAM-SHA-256".to_owned(),
        format!(
            r#"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";"#
        ),
    ]
    .into_iter()
    .flat_map(|p| ["--kafka-property".to_owned(), p])
    .collect()
}

#[test]
fn a_worker_logs_in_with_scram_configured_as_in_connect() {
    let env = TestEnv::load();
    let flags = sasl_flags(
        env.get("SLUICE_KAFKA_SASL_USER"),
        env.get("SLUICE_KAFKA_SASL_PASSWORD"),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let worker = Worker::start_against(env.get("SLUICE_KAFKA_SASL_BOOTSTRAP"), &flags);
    let api = worker.api();
    assert!(api.get("/").body["kafka_cluster_id"].is_string());
    let topic = unique("sasl-topic");
    let config = json!({"connector.class": "datagen", "topic": topic, "max.records": "100", "rate.per.sec": "1000"});
    let reply = api.post(
        "/connectors",
        &json!({"name": "over-sasl", "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    // Offsets are stored only for records the broker acknowledged: the
    // topic was created (admin client) and written (producer) logged in.
    wait_for(
        "100 records acknowledged over SASL",
        Duration::from_secs(60),
        || {
            let offsets = api.get("/connectors/over-sasl/offsets").body;
            (offsets["offsets"][0]["offset"]["seq"].as_i64() >= Some(99)).then_some(())
        },
    );
    // `sluice tail` logs in the same way, with the same settings.
    let tail = Command::new(sluice_bin())
        .args([
            "tail",
            "--bootstrap-servers",
            env.get("SLUICE_KAFKA_SASL_BOOTSTRAP"),
        ])
        .args(["--topic", &topic, "--from-beginning", "--max-records", "3"])
        .args(&flags)
        .output()
        .expect("sluice tail runs");
    let text = sluice_tests::process::output_text(&tail);
    assert!(tail.status.success(), "{text}");
    assert_eq!(text.matches(&format!("{topic}[0]@")).count(), 3, "{text}");
}

#[test]
fn a_wrong_password_is_refused_naming_the_login() {
    let env = TestEnv::load();
    let state = tempfile::tempdir().expect("temp dir");
    let output = Command::new(sluice_bin())
        .args([
            "worker",
            "--bootstrap-servers",
            env.get("SLUICE_KAFKA_SASL_BOOTSTRAP"),
            "--rest-listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(state.path())
        .args(sasl_flags(
            env.get("SLUICE_KAFKA_SASL_USER"),
            "not-the-password",
        ))
        .output()
        .expect("sluice runs");
    let text = sluice_tests::process::output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("SASL"), "{text}");
    // Named as a refused login (at once), not as a broker that never answered.
    assert!(text.contains("refused this worker's SASL login"), "{text}");
    assert!(
        text.contains("sasl.jaas.config"),
        "says what to fix: {text}"
    );
    assert!(!text.contains("cannot reach Kafka"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password leaked: {text}"
    );
    // `sluice tail` says the same instead of waiting for a topic it cannot see.
    let tail = Command::new(sluice_bin())
        .args([
            "tail",
            "--bootstrap-servers",
            env.get("SLUICE_KAFKA_SASL_BOOTSTRAP"),
        ])
        .args(["--topic", "anything", "--max-records", "1"])
        .args(sasl_flags(
            env.get("SLUICE_KAFKA_SASL_USER"),
            "not-the-password",
        ))
        .output()
        .expect("sluice tail runs");
    let text = sluice_tests::process::output_text(&tail);
    assert!(!tail.status.success(), "{text}");
    assert!(text.contains("refused this worker's SASL login"), "{text}");
    assert!(!text.contains("waiting for topic"), "{text}");
}
