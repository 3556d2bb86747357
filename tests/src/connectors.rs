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
