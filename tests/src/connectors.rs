//! Helpers for driving connectors through the REST API in tests.

use std::time::Duration;

use serde_json::{json, Value};

use crate::api::Api;
use crate::wait_for;

/// The status of task 0 of connector `name`.
pub fn task_status(api: &Api, name: &str) -> Value {
    api.get(&format!("/connectors/{name}/status")).body["tasks"][0].clone()
}

/// Creates connector `name`, waits for its task to fail, deletes it, and
/// returns the failure's trace.
pub fn failure_trace(api: &Api, name: &str, config: &Value, waiting_for: &str) -> String {
    let reply = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let failed = wait_for(waiting_for, Duration::from_secs(60), || {
        let task = task_status(api, name);
        (task["state"] == "FAILED").then_some(task)
    });
    api.delete(&format!("/connectors/{name}"));
    failed["trace"].as_str().unwrap_or_default().to_owned()
}

/// Checks that `examples/<file>` validates with no errors for its plugin
/// on a worker, so the examples cannot rot.
pub fn assert_example_validates(env: &crate::env::TestEnv, file: &str) {
    let worker =
        crate::worker::Worker::start_with(env, &["--schema-registry-url", "http://127.0.0.1:9"]);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let example: Value = serde_json::from_str(&text).expect("the example is JSON");
    let mut config = example["config"].clone();
    config["name"] = example["name"].clone();
    let class = config["connector.class"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reply = worker.api().put(
        &format!("/connector-plugins/{class}/config/validate"),
        &config,
    );
    assert_eq!(reply.status, 200, "{file}: {}", reply.text);
    assert_eq!(reply.body["error_count"], 0, "{file}: {}", reply.text);
}

/// A throwaway CA certificate that signed nothing the test servers use.
pub fn unrelated_ca(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.crt", crate::unique(name)));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=unrelated CA", "-keyout", "/dev/null", "-out"])
        .arg(&path)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    path
}
