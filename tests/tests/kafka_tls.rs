//! Reaching a secured broker: the test environment's second broker sits
//! behind a TLS terminator that presents a certificate for `localhost`
//! from the test CA and demands a client certificate. A worker configured
//! the Kafka Connect way (`security.protocol`, `ssl.truststore.location`,
//! `ssl.keystore.location`) produces through it; a wrong CA, a missing
//! client certificate and a Java keystore are refused, each naming why.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::worker::{sluice_bin, Worker};
use sluice_tests::{unique, wait_for};

fn tls_flags(ca: &str, client: Option<&str>) -> Vec<String> {
    let mut flags = vec![
        "--kafka-property".to_owned(),
        "security.protocol=SSL".to_owned(),
        "--kafka-property".to_owned(),
        format!("ssl.truststore.location={ca}"),
    ];
    if let Some(client) = client {
        flags.push("--kafka-property".to_owned());
        flags.push(format!("ssl.keystore.location={client}"));
    }
    flags
}

/// Runs a worker that is expected to give up; its exit status and output.
fn failing_worker(bootstrap: &str, flags: &[String]) -> (bool, String) {
    let state = tempfile::tempdir().expect("temp dir");
    let output = Command::new(sluice_bin())
        .args([
            "worker",
            "--bootstrap-servers",
            bootstrap,
            "--rest-listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(state.path())
        .args(flags)
        .output()
        .expect("sluice runs");
    (
        output.status.success(),
        sluice_tests::process::output_text(&output),
    )
}

#[test]
fn a_worker_produces_through_mutual_tls_configured_as_in_connect() {
    let env = TestEnv::load();
    let bootstrap = env.get("SLUICE_KAFKA_TLS_BOOTSTRAP");
    let flags = tls_flags(
        env.get("SLUICE_KAFKA_TLS_CA"),
        Some(env.get("SLUICE_KAFKA_TLS_CLIENT")),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let worker = Worker::start_against(bootstrap, &flags);
    let api = worker.api();
    assert!(api.get("/").body["kafka_cluster_id"].is_string());
    let topic = unique("tls-topic");
    let config = json!({"connector.class": "datagen", "topic": topic, "max.records": "100", "rate.per.sec": "1000"});
    let reply = api.post(
        "/connectors",
        &json!({"name": "over-tls", "config": config}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    // Offsets are stored only for records the broker acknowledged: the
    // topic was created and written over TLS.
    wait_for(
        "100 records acknowledged over TLS",
        Duration::from_secs(60),
        || {
            let offsets = api.get("/connectors/over-tls/offsets").body;
            (offsets["offsets"][0]["offset"]["seq"].as_i64() >= Some(99)).then_some(())
        },
    );
    let topics = api.get("/connectors/over-tls/topics").body;
    assert_eq!(topics["over-tls"]["topics"], json!([topic]));
}

#[test]
fn a_wrong_ca_or_a_missing_client_certificate_is_refused_with_the_reason() {
    let env = TestEnv::load();
    let bootstrap = env.get("SLUICE_KAFKA_TLS_BOOTSTRAP").to_owned();
    // The PostgreSQL server's CA is another CA: the broker's certificate
    // does not chain to it.
    let wrong_ca = tls_flags(
        env.get("SLUICE_PG_CA"),
        Some(env.get("SLUICE_KAFKA_TLS_CLIENT")),
    );
    let no_client = tls_flags(env.get("SLUICE_KAFKA_TLS_CA"), None);
    let (b1, b2) = (bootstrap.clone(), bootstrap);
    let wrong = std::thread::spawn(move || failing_worker(&b1, &wrong_ca));
    let anonymous = std::thread::spawn(move || failing_worker(&b2, &no_client));
    let (ok, text) = wrong.join().expect("thread");
    assert!(!ok, "{text}");
    assert!(text.contains("certificate verify failed"), "{text}");
    // Named as a refused handshake (at once), not as a broker that never
    // answered.
    assert!(
        text.contains("the TLS handshake with the broker"),
        "the error names TLS: {text}"
    );
    assert!(text.contains("ssl.truststore.location"), "{text}");
    assert!(!text.contains("cannot reach Kafka"), "{text}");
    let (ok, text) = anonymous.join().expect("thread");
    assert!(!ok, "{text}");
    assert!(text.contains("certificate required"), "{text}");
    assert!(!text.contains("cannot reach Kafka"), "{text}");
}

#[test]
fn a_java_keystore_is_refused_at_once_with_the_conversion_command() {
    let env = TestEnv::load();
    let dir = tempfile::tempdir().expect("temp dir");
    let jks = dir.path().join("truststore.jks");
    std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).expect("write");
    let flags = tls_flags(jks.to_str().expect("utf-8 path"), None);
    let started = std::time::Instant::now();
    let (ok, text) = failing_worker(env.get("SLUICE_KAFKA_TLS_BOOTSTRAP"), &flags);
    assert!(!ok, "{text}");
    assert!(
        text.contains("ssl.truststore.location") && text.contains("keytool -importkeystore"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refused before any connection attempt"
    );
}

/// stunnel terminating TLS (the test CA's certificate for `localhost`) in
/// front of a plain port, for as long as it lives.
struct TlsFront {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    fn start(env: &TestEnv, backend: u16) -> Self {
        let tls = std::path::Path::new(env.get("SLUICE_KAFKA_TLS_CA"))
            .parent()
            .expect("the CA's directory")
            .to_owned();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = sluice_tests::process::free_port();
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\noutput = {}\n[registry]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
                dir.path().join("stunnel.log").display(),
                tls.join("server.crt").display(),
                tls.join("server.key").display(),
            ),
        )
        .expect("write stunnel.conf");
        let child = Command::new("stunnel4")
            .arg(&conf)
            .spawn()
            .expect("stunnel4 runs");
        wait_for("stunnel to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_https_registry_is_trusted_by_its_ca_and_a_wrong_ca_fails_the_task_by_name() {
    let env = TestEnv::load();
    let registry_port = sluice_tests::process::free_port();
    let worker = Worker::start_with(
        &env,
        &["--registry-listen", &format!("127.0.0.1:{registry_port}")],
    );
    let front = TlsFront::start(&env, registry_port);
    let api = worker.api();
    let avro = |name: &str, ca: &str| {
        let config = json!({
            "connector.class": "datagen",
            "topic": unique("https-registry"),
            "max.records": "20",
            "value.converter": "io.confluent.connect.avro.AvroConverter",
            "value.converter.schema.registry.url": format!("https://localhost:{}", front.port),
            "value.converter.schema.registry.ssl.truststore.location": ca,
        });
        let reply = api.post("/connectors", &json!({"name": name, "config": config}));
        assert_eq!(reply.status, 201, "{}", reply.text);
    };
    avro("trusted", env.get("SLUICE_KAFKA_TLS_CA"));
    wait_for(
        "records encoded with schemas registered over HTTPS",
        Duration::from_secs(60),
        || {
            let offsets = api.get("/connectors/trusted/offsets").body;
            (offsets["offsets"][0]["offset"]["seq"].as_i64() >= Some(19)).then_some(())
        },
    );
    // Another CA: the task fails saying why, instead of waiting for ever
    // for a registry it takes for unreachable.
    avro("distrustful", env.get("SLUICE_PG_CA"));
    let trace = wait_for(
        "the task to fail naming TLS",
        Duration::from_secs(60),
        || {
            let task = api.get("/connectors/distrustful/status").body["tasks"][0].clone();
            (task["state"] == "FAILED")
                .then(|| task["trace"].as_str().unwrap_or_default().to_owned())
        },
    );
    assert!(trace.contains("TLS to the schema registry"), "{trace}");
}
