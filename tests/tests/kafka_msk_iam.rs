//! AWS MSK IAM configured as a Kafka Connect worker configures it
//! (`sasl.mechanism=AWS_MSK_IAM`, MSK's `IAMLoginModule`). No MSK is
//! reachable here and the test broker logs in SCRAM users only, so this shows what
//! can be shown on this machine: a worker signs its token with the
//! credentials the AWS chain gives it (here an instance role from a local
//! stand-in for the EC2 metadata service, asked the IMDSv2 way), offers it
//! to the broker as OAUTHBEARER, and names the refusal; without a region or
//! credentials it stops at once saying what to set. The token's bytes are
//! checked against AWS's own signer in the runtime's unit tests.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use sluice_tests::env::TestEnv;
use sluice_tests::worker::sluice_bin;

const IAM_FLAGS: [&str; 6] = [
    "--kafka-property",
    "security.protocol=SASL_PLAINTEXT",
    "--kafka-property",
    "sasl.mechanism=AWS_MSK_IAM",
    "--kafka-property",
    "sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;",
];

/// A stand-in for the EC2 instance metadata service: an IMDSv2 session
/// token, one role, its temporary credentials. Returns its URL and the
/// requests it answered.
fn instance_metadata() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let request = head.lines().next().unwrap_or_default().to_owned();
            let has_session = head
                .to_ascii_lowercase()
                .contains("x-aws-ec2-metadata-token: session-1");
            let (status, body) = match request.split(' ').take(2).collect::<Vec<_>>()[..] {
                ["PUT", "/latest/api/token"] => (200, "session-1".to_owned()),
                [_, _] if !has_session => (401, String::new()),
                ["GET", "/latest/meta-data/iam/security-credentials/"] => {
                    (200, "msk-writer".to_owned())
                }
                ["GET", "/latest/meta-data/iam/security-credentials/msk-writer"] => (
                    200,
                    r#"{"Code":"Success","AccessKeyId":"ASIAINSTANCEROLE","SecretAccessKey":"instance-secret-never-shown","Token":"instance-session-token","Expiration":"2099-01-01T00:00:00Z"}"#
                        .to_owned(),
                ),
                _ => (404, String::new()),
            };
            log.lock().expect("log").push(request);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

/// `sluice worker` with MSK IAM settings against `bootstrap`, with only the
/// AWS variables given (nothing of the developer's own AWS setup).
fn worker(bootstrap: &str, aws: &[(&str, &str)]) -> Output {
    let state = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(sluice_bin());
    command
        .args(["worker", "--bootstrap-servers", bootstrap])
        .args(["--rest-listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .args(IAM_FLAGS)
        .env("HOME", state.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command.env("AWS_EC2_METADATA_DISABLED", "true");
    for (key, value) in aws {
        command.env(key, value);
    }
    command.output().expect("sluice runs")
}

#[test]
fn without_a_region_or_credentials_msk_iam_stops_at_start_saying_what_to_set() {
    let env = TestEnv::load();
    let started = std::time::Instant::now();
    let output = worker(env.bootstrap(), &[]);
    let text = sluice_tests::process::output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("region is unknown") && text.contains("AWS_REGION"),
        "{text}"
    );
    let output = worker(env.bootstrap(), &[("AWS_REGION", "eu-west-1")]);
    let text = sluice_tests::process::output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("no AWS credentials found"), "{text}");
    assert!(
        text.contains("AWS_ACCESS_KEY_ID"),
        "says what to set: {text}"
    );
    assert!(
        !text.contains("cannot reach Kafka"),
        "named as the login, not the network: {text}"
    );
    // Both refusals come from the token, not from a timeout.
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_msk_iam_worker_signs_with_the_instance_role_and_offers_the_token() {
    let env = TestEnv::load();
    let (imds, seen) = instance_metadata();
    let output = worker(
        env.get("SLUICE_KAFKA_SASL_BOOTSTRAP"),
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds),
        ],
    );
    let text = sluice_tests::process::output_text(&output);
    let seen = seen.lock().expect("log").clone();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("GET /latest/meta-data/iam/security-credentials/msk-writer")),
        "the role's credentials were fetched with an IMDSv2 session: {seen:?}\n{text}"
    );
    // The test broker knows SCRAM users only: it turns the token down, and
    // the worker says so at once.
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("refused this worker's SASL login"), "{text}");
    for secret in ["instance-secret-never-shown", "instance-session-token"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}
