//! The REST API fuzzed by schemathesis (from PyPI, an independent tool)
//! through its own OpenAPI document: whatever is sent, no 5xx, every error
//! in Connect's shape, and the worker alive after.

use std::process::Command;

use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::worker::Worker;

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
    let python = sluice_tests::process::python();
    let schemathesis = python.with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
        .args(["run", &format!("{}/openapi.json", worker.url())])
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
    assert_eq!(api.get("/health").status, 200, "the worker is alive after");
}

#[test]
fn schemathesis_finds_no_server_error_in_the_embedded_registry() {
    let env = TestEnv::load();
    let (worker, registry) = Worker::with_registry(&env);
    let python = sluice_tests::process::python();
    let schemathesis = python.with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
        .args(["run", &format!("{registry}/openapi.json")])
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
    let alive = sluice_tests::api::Api::new(&registry).get("/subjects");
    assert_eq!(
        alive.status, 200,
        "the registry answers after: {}",
        alive.text
    );
    assert_eq!(worker.api().get("/health").status, 200);
}
