//! `sluice schemas check|register`: contracts in git against what a
//! connector emits and against a registry, through the CLI.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sluice_tests::process::sluice_bin;
use sluice_tests::registry::RegistryServer;

/// Runs `sluice schemas <args>`: (exit success, stdout + stderr).
fn schemas(args: &[&str]) -> (bool, String) {
    let output = Command::new(sluice_bin())
        .arg("schemas")
        .args(args)
        .output()
        .expect("run sluice schemas");
    let text = sluice_tests::process::output_text(&output);
    (output.status.success(), text)
}

fn write_connector(dir: &Path, extra: Value) -> String {
    let mut config = json!({"connector.class": "datagen", "topic": "contracts.demo"});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let path = dir.join("connector.json");
    std::fs::write(&path, json!({"name": "c", "config": config}).to_string()).expect("write");
    path.display().to_string()
}

#[test]
fn check_reports_drift_field_by_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let contracts = dir.path().join("schemas");
    let contracts = contracts.to_str().expect("utf-8 path");
    let connector = write_connector(dir.path(), json!({}));

    let (ok, out) = schemas(&["check", "--dir", contracts, "--connector", &connector]);
    assert!(!ok, "missing contracts are drift: {out}");
    assert!(out.contains("MISSING contract"), "{out}");

    let (ok, out) = schemas(&[
        "check",
        "--dir",
        contracts,
        "--connector",
        &connector,
        "--write",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = schemas(&["check", "--dir", contracts, "--connector", &connector]);
    assert!(ok, "{out}");
    assert!(out.contains("contracts.demo-value: ok, identical"), "{out}");

    // An optional field is a compatible change: reported, accepted.
    let connector = write_connector(
        dir.path(),
        json!({"value.extra.fields": "note", "value.extra.fields.optional": "true"}),
    );
    let (ok, out) = schemas(&["check", "--dir", contracts, "--connector", &connector]);
    assert!(ok, "{out}");
    assert!(out.contains("compatible under BACKWARD"), "{out}");
    assert!(
        out.contains("+ note: [\"null\",\"long\"] = null  (live only)"),
        "{out}"
    );

    // A required field breaks BACKWARD: named, with the rule.
    let connector = write_connector(dir.path(), json!({"value.extra.fields": "note"}));
    let (ok, out) = schemas(&["check", "--dir", contracts, "--connector", &connector]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("contracts.demo-value: INCOMPATIBLE under BACKWARD"),
        "{out}"
    );
    assert!(out.contains("+ note: \"long\"  (live only)"), "{out}");
    assert!(out.contains("READER_FIELD_MISSING_DEFAULT_VALUE"), "{out}");
    // ... which FORWARD accepts: old readers ignore the new field.
    let (ok, out) = schemas(&[
        "check",
        "--dir",
        contracts,
        "--connector",
        &connector,
        "--level",
        "FORWARD",
    ]);
    assert!(ok, "{out}");

    // Shared blocks are compared wherever a schema embeds them.
    let blocks = dir.path().join("schemas/blocks");
    std::fs::create_dir_all(&blocks).expect("mkdir");
    let block = json!({"type": "record", "name": "io.sluice.datagen.Key", "fields": [{"name": "id", "type": "int"}]});
    std::fs::write(blocks.join("io.sluice.datagen.Key.avsc"), block.to_string()).expect("write");
    let (ok, out) = schemas(&[
        "check",
        "--dir",
        contracts,
        "--connector",
        &connector,
        "--level",
        "FORWARD",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("block io.sluice.datagen.Key: INCOMPATIBLE"),
        "{out}"
    );
    assert!(out.contains("~ id: \"int\" -> \"long\""), "{out}");
}

#[test]
fn repository_contracts_match_the_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (ok, out) = schemas(&[
        "check",
        "--dir",
        root.join("schemas").to_str().expect("path"),
        "--connector",
        root.join("examples/datagen.json").to_str().expect("path"),
    ]);
    assert!(
        ok,
        "schemas/ drifted from what examples/datagen.json emits:\n{out}"
    );
    assert!(
        !out.contains("compatible under"),
        "contracts should be identical:\n{out}"
    );
}

#[test]
fn register_refuses_incompatible_contracts_with_the_registry_reason() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let contracts = dir.path().to_str().expect("path");
    let v1 = json!({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]});
    std::fs::write(dir.path().join("orders-value.avsc"), v1.to_string()).expect("write");
    let (ok, out) = schemas(&[
        "register",
        "--dir",
        contracts,
        "--registry",
        &registry.url(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("orders-value: registered, id 1"), "{out}");

    let v2 = json!({"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "int"}, {"name": "b", "type": "string"}]});
    std::fs::write(dir.path().join("orders-value.avsc"), v2.to_string()).expect("write");
    let (ok, out) = schemas(&[
        "register",
        "--dir",
        contracts,
        "--registry",
        &registry.url(),
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("orders-value: REFUSED by the registry (error 409)"),
        "{out}"
    );
    assert!(out.contains("The field 'b'"), "{out}");
    assert_eq!(
        registry.api().get("/subjects/orders-value/versions").body,
        json!([1])
    );

    let (ok, out) = schemas(&[
        "register",
        "--dir",
        contracts,
        "--registry",
        "http://127.0.0.1:9",
    ]);
    assert!(!ok);
    assert!(out.contains("unreachable"), "{out}");
}
