//! The REST API fuzzed by schemathesis (from PyPI, an independent tool)
//! through its own OpenAPI document: whatever is sent, no 5xx, every error
//! in Connect's shape, and the worker alive after.

use std::process::Command;

use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::worker::Worker;

/// Runs schemathesis (the venv's, beside its Python) against the API whose
/// document is at `<base>/openapi.json`: no 5xx, every response as the
/// document describes it (errors in the `{"error_code", "message"}` shape).
fn fuzz(base: &str) {
    let schemathesis = sluice_tests::process::python().with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "2026",
            "--request-timeout",
            "20",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", schemathesis.display()));
    let text = sluice_tests::process::output_text(&out);
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
}

#[test]
fn schemathesis_finds_no_server_error_and_only_connect_shaped_errors() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    // The connector the document's examples name, so its paths answer
    // something besides 404 (the fuzzer pauses, reconfigures and deletes it).
    let reply = api.post(
        "/connectors",
        &json!({"name": "inventory-postgres", "config": {"connector.class": "datagen", "topic": sluice_tests::unique("fuzz"), "rate.per.sec": "5"}}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    fuzz(&worker.url());
    assert_eq!(api.get("/health").status, 200, "the worker is alive after");
}

#[test]
fn schemathesis_finds_no_server_error_in_the_embedded_registry() {
    let env = TestEnv::load();
    let (worker, registry) = Worker::with_registry(&env);
    fuzz(&registry);
    let alive = sluice_tests::api::Api::new(&registry).get("/subjects");
    assert_eq!(
        alive.status, 200,
        "the registry answers after: {}",
        alive.text
    );
    assert_eq!(worker.api().get("/health").status, 200);
}
