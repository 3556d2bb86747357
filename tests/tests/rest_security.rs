//! The REST API against strangers: basic auth as Kafka Connect's
//! `BasicAuthSecurityRestExtension` does it, a stored password that does
//! not follow a changed host, and a `tasks.max` that would exhaust the
//! worker refused at validation.

use base64::Engine;
use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::postgres::Pg;
use sluice_tests::unique;
use sluice_tests::worker::Worker;

/// A worker process with `args`, for settings `Worker` cannot start with
/// (it waits for plain HTTP on loopback); the caller waits for it and kills it.
fn spawn_worker(
    env: &TestEnv,
    state: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> std::process::Child {
    std::process::Command::new(sluice_tests::process::sluice_bin())
        .args(["worker", "--bootstrap-servers", env.bootstrap()])
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("worker starts")
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn basic_auth_keeps_strangers_out_and_lets_the_operator_in() {
    let env = TestEnv::load();
    let dir = tempfile::tempdir().expect("temp dir");
    let users = dir.path().join("rest-users.properties");
    std::fs::write(&users, "# user: password, role\nadmin: s3cret, admin\n").expect("write");
    let tokens = dir.path().join("rest-tokens");
    std::fs::write(&tokens, "# one per line\nci-7f3a9c\n").expect("write");
    let worker = Worker::start_with(
        &env,
        &[
            "--rest-basic-auth-file",
            users.to_str().expect("utf-8"),
            "--rest-bearer-tokens-file",
            tokens.to_str().expect("utf-8"),
        ],
    );
    let api = worker.api();
    let anonymous = api.get("/connectors");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(anonymous.body["error_code"], 401);
    assert_eq!(
        api.get_as("/connectors", &basic("admin", "wrong")).status,
        401
    );
    assert_eq!(
        api.get_as("/connectors", &basic("root", "s3cret")).status,
        401
    );
    let config =
        json!({"connector.class": "datagen", "topic": unique("auth-topic"), "max.records": "1"});
    let refused = api.post("/connectors", &json!({"name": "sneaky", "config": config}));
    assert_eq!(refused.status, 401);
    let created = api.post_as(
        "/connectors",
        &json!({"name": "allowed", "config": config}),
        &basic("admin", "s3cret"),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let listed = api.get_as("/connectors", &basic("admin", "s3cret"));
    assert_eq!(listed.body, json!(["allowed"]));
    // A bearer token of the tokens file is let in; another is not.
    assert_eq!(api.get_as("/connectors", "Bearer ci-7f3a9c").status, 200);
    assert_eq!(api.get_as("/connectors", "Bearer ci-7f3a9").status, 401);
    // Orchestrators probe /health without credentials.
    assert_eq!(api.get("/health").status, 200);
    // `sluice status` names what it lacks, and shows the connector with it.
    let status = |extra: &[&str]| {
        let out = std::process::Command::new(sluice_tests::process::sluice_bin())
            .args(["status", "--rest", &worker.url()])
            .args(extra)
            .output()
            .expect("sluice status runs");
        (
            out.status.success(),
            sluice_tests::process::output_text(&out),
        )
    };
    let (ok, text) = status(&[]);
    assert!(!ok && text.contains("--rest-auth"), "{text}");
    let (ok, text) = status(&["--rest-auth", "admin:s3cret"]);
    assert!(ok && text.contains("allowed"), "{text}");
    let (ok, text) = status(&["--rest-token", "ci-7f3a9c"]);
    assert!(ok && text.contains("allowed"), "{text}");
}

#[test]
fn a_stored_password_is_never_sent_to_a_new_host() {
    let env = TestEnv::load();
    let pg = Pg::from_env(&env);
    let worker = Worker::start(&env);
    let api = worker.api();
    let slot = unique("slot").replace('-', "_");
    let mut config = pg.connector_config("srv", "nothing_here", &slot);
    config["snapshot.mode"] = json!("no_data");
    let created = api.post("/connectors", &json!({"name": "pg", "config": config}));
    assert_eq!(created.status, 201, "{}", created.text);
    // What a stranger does: fetch the config (password hidden), point the
    // host elsewhere, PUT it back expecting the stored password to follow.
    let mut shown = api.get("/connectors/pg/config").body;
    assert_eq!(shown["database.password"], "[hidden]");
    shown["database.hostname"] = json!("attacker.invalid");
    let moved = api.put("/connectors/pg/config", &shown);
    assert_eq!(moved.status, 400, "{}", moved.text);
    assert!(
        moved.message().contains("database.hostname"),
        "{}",
        moved.message()
    );
    // The same with the password given again is the operator's own choice.
    shown["database.hostname"] = json!(env.get("SLUICE_PG_HOST"));
    let kept = api.put("/connectors/pg/config", &shown);
    assert_eq!(
        kept.status, 200,
        "an unchanged host keeps the stored password: {}",
        kept.text
    );
    api.delete("/connectors/pg");
    pg.drop_slot(&slot);
}

#[test]
fn sizes_that_would_exhaust_the_worker_are_refused_at_validation() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let config =
        json!({"connector.class": "datagen", "topic": unique("huge"), "tasks.max": "2147483647"});
    let reply = api.post("/connectors", &json!({"name": "huge", "config": config}));
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.message().contains("tasks.max"), "{}", reply.message());
    let pg = Pg::from_env(&env);
    let mut config = pg.connector_config("srv", "public", "unused_slot");
    config["snapshot.max.threads"] = json!("100000");
    let reply = api.post("/connectors", &json!({"name": "threads", "config": config}));
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("snapshot.max.threads"),
        "{}",
        reply.message()
    );
    // The worker is still there.
    assert_eq!(api.get("/health").status, 200);
}

#[test]
fn placeholders_read_only_what_the_operator_allows() {
    let env = TestEnv::load();
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = dir.path().join("db.properties");
    std::fs::write(&secrets, "password=from-the-file\n").expect("write");
    // By default no placeholder is resolved: a stranger cannot read the
    // worker's files or environment through a config.
    let worker = Worker::start(&env);
    let api = worker.api();
    for (key, value) in [
        ("topic", "${env:HOME}".to_owned()),
        ("database.password", "${file:/etc/passwd:root}".to_owned()),
    ] {
        let mut config = json!({"connector.class": "datagen", "topic": unique("ph")});
        config[key] = json!(value);
        let reply = api.post("/connectors", &json!({"name": "ph", "config": config}));
        assert_eq!(reply.status, 400, "{key}: {}", reply.text);
        assert!(
            reply.message().contains(key) && reply.message().contains("--config-provider"),
            "{}",
            reply.message()
        );
    }
    drop(worker);
    // The operator allows one directory and some variables: those work,
    // and nothing outside them.
    let worker = Worker::start_with(
        &env,
        &[
            "--config-provider-file-allowed-paths",
            dir.path().to_str().expect("utf-8"),
            "--config-provider-env-allowlist",
            "SLUICE_ALLOWED_.*",
        ],
    );
    let api = worker.api();
    let allowed = json!({
        "connector.class": "datagen",
        "topic": unique("ph"),
        "database.password": format!("${{file:{}:password}}", secrets.display()),
    });
    let reply = api.post("/connectors", &json!({"name": "ok", "config": allowed}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let outside = json!({"connector.class": "datagen", "topic": unique("ph"), "database.password": "${file:/etc/passwd:root}"});
    assert_eq!(
        api.post("/connectors", &json!({"name": "no", "config": outside}))
            .status,
        400
    );
    let env_outside = json!({"connector.class": "datagen", "topic": "${env:PATH}"});
    assert_eq!(
        api.post(
            "/connectors",
            &json!({"name": "no2", "config": env_outside})
        )
        .status,
        400
    );
}

#[test]
fn a_slow_or_oversized_request_cannot_hold_the_worker() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let address = worker.url().trim_start_matches("http://").to_owned();
    // Slowloris: headers trickle in and never end. The server hangs up
    // after its header timeout (10 s) instead of waiting for ever.
    let mut slow = std::net::TcpStream::connect(&address).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let started = Instant::now();
    slow.write_all(b"GET /connectors HTTP/1.1\r\nHost: x\r\n")
        .expect("partial headers");
    let mut buffer = [0u8; 512];
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        if slow.write_all(b"X-Slow: 1\r\n").is_err() {
            break;
        }
    }
    let read = slow.read(&mut buffer);
    let waited = started.elapsed();
    let timed_out = matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    assert!(
        !timed_out && waited < Duration::from_secs(25),
        "the server kept the slow client for {waited:?}: {read:?}"
    );
    assert!(
        waited >= Duration::from_secs(9),
        "cut off by the header timeout, not at once: {waited:?}"
    );
    // Meanwhile the API answers others.
    assert_eq!(worker.api().get("/connectors").status, 200);
    // A body past the limit (4 MiB) is refused with 413, not read whole.
    // The server answers and hangs up before the client has sent it all,
    // so the answer is read while the body is still being written (an
    // HTTP client that finishes writing first sees only a broken pipe).
    let huge = format!(
        "{{\"name\": \"big\", \"config\": {{\"x\": \"{}\"}}}}",
        "a".repeat(5 * 1024 * 1024)
    );
    let mut client = std::net::TcpStream::connect(&address).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut writer = client.try_clone().expect("a second handle");
    let request = format!(
        "POST /connectors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        huge.len()
    );
    let sending = std::thread::spawn(move || {
        // Fails once the server has hung up; that is expected.
        let _ = writer
            .write_all(request.as_bytes())
            .and_then(|()| writer.write_all(huge.as_bytes()));
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = client.read(&mut chunk) {
        if n == 0 || answer.len() > 64 * 1024 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    drop(client);
    let _ = sending.join();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "an oversized body is refused with 413: {answer:?}"
    );
    assert_eq!(worker.api().get("/connectors").status, 200, "still serving");
}

#[test]
fn the_rest_api_and_the_registry_serve_https_with_the_given_certificate() {
    use std::time::Duration;
    let env = TestEnv::load();
    // The test PostgreSQL's certificate names localhost and is signed by
    // the CA the other TLS tests trust.
    let ca = env.get("SLUICE_PG_CA").to_owned();
    let tls_dir = std::path::Path::new(&ca).parent().expect("CA directory");
    let (cert, key) = (tls_dir.join("server.crt"), tls_dir.join("server.key"));
    let (rest_port, registry_port) = (
        sluice_tests::process::free_port(),
        sluice_tests::process::free_port(),
    );
    let state = tempfile::tempdir().expect("state dir");
    let (rest, registry) = (
        format!("127.0.0.1:{rest_port}"),
        format!("127.0.0.1:{registry_port}"),
    );
    let mut worker = spawn_worker(
        &env,
        state.path(),
        &[
            "--rest-listen".as_ref(),
            rest.as_ref(),
            "--registry-listen".as_ref(),
            registry.as_ref(),
            "--rest-tls-cert".as_ref(),
            cert.as_os_str(),
            "--rest-tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .args(args)
            .output()
            .expect("curl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let rest = format!("https://localhost:{rest_port}/connectors");
    let listed = sluice_tests::wait_for("the HTTPS REST API", Duration::from_secs(30), || {
        let (ok, text) = curl(&["--cacert", &ca, &rest]);
        ok.then_some(text)
    });
    assert_eq!(listed.trim(), "[]");
    let (ok, text) = curl(&[
        "--cacert",
        &ca,
        &format!("https://localhost:{registry_port}/subjects"),
    ]);
    assert!(ok && text.trim() == "[]", "the registry over HTTPS: {text}");
    // `sluice status` trusts the worker's CA when given it.
    let status = std::process::Command::new(sluice_tests::process::sluice_bin())
        .args([
            "status",
            "--rest",
            &format!("https://localhost:{rest_port}"),
        ])
        .args(["--rest-ca", &ca])
        .output()
        .expect("sluice status runs");
    let text = sluice_tests::process::output_text(&status);
    assert!(status.status.success(), "sluice status over HTTPS: {text}");
    // Without the CA the client refuses the certificate; plain HTTP gets
    // no API from the TLS port.
    let (ok, text) = curl(&[&rest]);
    assert!(!ok, "an untrusted certificate was accepted: {text}");
    let (ok, text) = curl(&[&format!("http://localhost:{rest_port}/connectors")]);
    assert!(!ok || !text.contains("[]"), "plain HTTP was served: {text}");
    let _ = worker.kill();
    let _ = worker.wait();
    // A certificate without its key is refused at start, naming both flags.
    let refused = std::process::Command::new(sluice_tests::process::sluice_bin())
        .args(["worker", "--bootstrap-servers", env.bootstrap()])
        .arg("--rest-tls-cert")
        .arg(&cert)
        .output()
        .expect("worker runs");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("rest-tls-key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn health_warns_when_the_api_listens_beyond_loopback_without_auth() {
    use std::time::Duration;
    let env = TestEnv::load();
    let quiet = Worker::start(&env);
    assert_eq!(quiet.api().get("/health").body["warnings"], json!([]));
    let port = sluice_tests::process::free_port();
    let state = tempfile::tempdir().expect("state dir");
    let listen = format!("0.0.0.0:{port}");
    let mut open = spawn_worker(
        &env,
        state.path(),
        &["--rest-listen".as_ref(), listen.as_ref()],
    );
    let api = sluice_tests::api::Api::new(format!("http://127.0.0.1:{port}"));
    let warnings =
        sluice_tests::wait_for("the open worker's health", Duration::from_secs(30), || {
            let health = api.try_get("/health")?;
            (health.status == 200).then(|| health.body["warnings"].to_string())
        });
    let _ = open.kill();
    let _ = open.wait();
    assert!(warnings.contains("WITHOUT authentication"), "{warnings}");
}

/// The embedded schema registry keeps strangers out like the REST API
/// (its own files, Confluent's 401 body), while the worker's own Avro
/// converters log in as the file's first user and register their schemas.
#[test]
fn the_embedded_registry_requires_its_login_and_the_worker_still_writes_avro() {
    let env = TestEnv::load();
    let dir = tempfile::tempdir().expect("temp dir");
    let users = dir.path().join("registry-users.properties");
    std::fs::write(&users, "sluice: r3gistry, admin\nreader: only-reads\n").expect("write");
    let tokens = dir.path().join("registry-tokens");
    std::fs::write(&tokens, "reg-9d2e\n").expect("write");
    let port = sluice_tests::process::free_port();
    let worker = Worker::start_with(
        &env,
        &[
            "--registry-listen",
            &format!("127.0.0.1:{port}"),
            "--registry-basic-auth-file",
            users.to_str().expect("utf-8"),
            "--registry-bearer-tokens-file",
            tokens.to_str().expect("utf-8"),
        ],
    );
    let registry = sluice_tests::api::Api::new(format!("http://127.0.0.1:{port}"));
    let anonymous = registry.get("/subjects");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(anonymous.body["error_code"], 401);
    assert!(
        anonymous.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--registry-basic-auth-file")),
        "{}",
        anonymous.text
    );
    let schema = json!({"schema": "\"string\""});
    assert_eq!(
        registry
            .post("/subjects/stranger-value/versions", &schema)
            .status,
        401
    );
    assert_eq!(
        registry
            .get_as("/subjects", &basic("reader", "wrong"))
            .status,
        401
    );
    assert_eq!(registry.get_as("/subjects", "Bearer reg-9d2e").status, 200);
    // The REST API is not guarded by the registry's files.
    assert_eq!(worker.api().get("/connectors").status, 200);

    // An Avro source: its converter reaches the guarded registry.
    let topic = unique("guarded-avro");
    let config = json!({
        "connector.class": "datagen", "topic": topic, "max.records": "10",
        "value.converter": "io.confluent.connect.avro.AvroConverter",
    });
    let created = worker.api().post(
        "/connectors",
        &json!({"name": "avro-behind-auth", "config": config}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let subject = format!("{topic}-value");
    sluice_tests::wait_for(
        "the source's schema registered through the login",
        std::time::Duration::from_secs(60),
        || {
            let listed = registry.get_as("/subjects", &basic("reader", "only-reads"));
            listed
                .body
                .as_array()?
                .iter()
                .any(|s| s == &json!(subject))
                .then_some(())
        },
    );
    // The login never shows in the connector's config.
    let shown = worker.api().get("/connectors/avro-behind-auth/config").text;
    assert!(!shown.contains("r3gistry"), "{shown}");
    // `sluice tail` decodes the Avro through the guarded registry when
    // given a login, and cannot without one.
    let tail = |login: &[&str]| {
        let out = std::process::Command::new(sluice_tests::process::sluice_bin())
            .args([
                "tail",
                "--bootstrap-servers",
                env.bootstrap(),
                "--topic",
                &topic,
            ])
            .args([
                "--from-beginning",
                "--max-records",
                "1",
                "--schema-registry-url",
            ])
            .arg(format!("http://127.0.0.1:{port}"))
            .args(login)
            .output()
            .expect("sluice tail runs");
        sluice_tests::process::output_text(&out)
    };
    let decoded = tail(&["--schema-registry-auth", "reader:only-reads"]);
    assert!(decoded.contains("\"seq\""), "{decoded}");
    let refused = tail(&[]);
    assert!(!refused.contains("\"seq\""), "{refused}");
}

/// `sluice registry` (the registry alone) takes the same login files (it
/// now serves through the worker's hardened server loop too).
#[test]
fn the_standalone_registry_requires_its_login() {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = dir.path().join("users.properties");
    std::fs::write(&users, "ops: 0ps-pass\n").expect("write");
    let port = sluice_tests::process::free_port();
    let mut child = std::process::Command::new(sluice_tests::process::sluice_bin())
        .args(["registry", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--basic-auth-file")
        .arg(&users)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice registry starts");
    let registry = sluice_tests::api::Api::new(format!("http://127.0.0.1:{port}"));
    let anonymous = sluice_tests::wait_for(
        "the registry to answer",
        std::time::Duration::from_secs(30),
        || registry.try_get("/subjects"),
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(
        registry
            .get_as("/subjects", &basic("ops", "0ps-pass"))
            .status,
        200
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Workers of a group whose REST API serves HTTPS forward to each other
/// over HTTPS, trusting the private CA given with `--rest-forward-ca`: a
/// restart sent to the worker that does not run the connector reaches the
/// one that does.
#[test]
fn a_group_serving_https_forwards_over_https() {
    use std::time::Duration;
    let env = TestEnv::load();
    let ca = env.get("SLUICE_PG_CA").to_owned();
    let tls_dir = std::path::Path::new(&ca).parent().expect("CA directory");
    let (cert, key) = (tls_dir.join("server.crt"), tls_dir.join("server.key"));
    let group = sluice_tests::group::Group::new();
    let states = [
        tempfile::tempdir().expect("state"),
        tempfile::tempdir().expect("state"),
    ];
    let ports = [
        sluice_tests::process::free_port(),
        sluice_tests::process::free_port(),
    ];
    let mut workers: Vec<std::process::Child> = ports
        .iter()
        .zip(&states)
        .map(|(port, state)| {
            let (listen, advertised) = (format!("127.0.0.1:{port}"), format!("localhost:{port}"));
            let mut args: Vec<&std::ffi::OsStr> = vec![
                "--rest-listen".as_ref(),
                listen.as_ref(),
                "--rest-advertised".as_ref(),
                advertised.as_ref(),
                "--rest-tls-cert".as_ref(),
                cert.as_os_str(),
                "--rest-tls-key".as_ref(),
                key.as_os_str(),
                "--rest-forward-ca".as_ref(),
                ca.as_ref(),
            ];
            let group_args = group.args();
            args.extend(group_args.iter().map(std::ffi::OsStr::new));
            spawn_worker(&env, state.path(), &args)
        })
        .collect();
    let curl = |args: &[&str]| -> (bool, String) {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert", &ca])
            .args(args)
            .output()
            .expect("curl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let url = |i: usize, path: &str| format!("https://localhost:{}{path}", ports[i]);
    for i in 0..2 {
        sluice_tests::wait_for("the HTTPS REST API", Duration::from_secs(60), || {
            curl(&[&url(i, "/connectors")]).0.then_some(())
        });
    }
    let name = unique("tls-forward");
    let config = json!({"name": name, "config": {
        "connector.class": "datagen", "topic": name, "rate.per.sec": "10",
    }});
    let (ok, text) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &config.to_string(),
        &url(0, "/connectors"),
    ]);
    assert!(ok && text.contains(&name), "{text}");
    let owner = sluice_tests::wait_for("the task RUNNING", Duration::from_secs(60), || {
        let (_, text) = curl(&[&url(0, &format!("/connectors/{name}/status"))]);
        let status: serde_json::Value = serde_json::from_str(&text).ok()?;
        (status["tasks"][0]["state"] == "RUNNING")
            .then(|| status["tasks"][0]["worker_id"].as_str().map(str::to_owned))
            .flatten()
    });
    let other = if owner == format!("localhost:{}", ports[0]) {
        1
    } else {
        0
    };
    let (ok, text) = curl(&[
        "-X",
        "POST",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url(other, &format!("/connectors/{name}/tasks/0/restart")),
    ]);
    assert!(ok, "{text}");
    assert_eq!(text, "204", "forwarded over HTTPS to {owner}");
    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
}
