//! Every kind of bad request gets Connect's status code and a message that
//! names the cause.

use serde_json::json;
use sluice_tests::env::TestEnv;
use sluice_tests::unique;
use sluice_tests::worker::Worker;

#[test]
fn bad_requests_get_exact_statuses_and_named_causes() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();

    let malformed = api.post_raw("/connectors", "{\"name\": \"x\", \"config\": {");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error_code"], 400);
    assert!(
        malformed.message().contains("not valid JSON"),
        "{}",
        malformed.text
    );

    let no_name = api.post(
        "/connectors",
        &json!({"config": {"connector.class": "datagen", "topic": "t"}}),
    );
    assert_eq!(no_name.status, 400);
    assert!(no_name.message().contains("name"), "{}", no_name.text);

    let unknown_class = api.post(
        "/connectors",
        &json!({"name": unique("bad"), "config": {"connector.class": "com.example.Nope"}}),
    );
    assert_eq!(unknown_class.status, 400);
    assert!(
        unknown_class.message().contains("com.example.Nope")
            && unknown_class.message().contains("datagen"),
        "{}",
        unknown_class.text
    );

    let missing = api.post(
        "/connectors",
        &json!({"name": unique("bad"), "config": {"connector.class": "datagen"}}),
    );
    assert_eq!(missing.status, 400);
    assert!(missing.message().contains("topic"), "{}", missing.text);

    let wrong_type = api.post(
        "/connectors",
        &json!({"name": unique("bad"), "config": {
        "connector.class": "datagen", "topic": "t", "rate.per.sec": "fast", "tasks.max": "zero"}}),
    );
    assert_eq!(wrong_type.status, 400);
    let message = wrong_type.message();
    assert!(
        message.contains("2 error(s)")
            && message.contains("rate.per.sec")
            && message.contains("tasks.max"),
        "{message}"
    );

    let name = unique("dup");
    let config =
        json!({"connector.class": "datagen", "topic": unique("dup-topic"), "rate.per.sec": "10"});
    assert_eq!(
        api.post("/connectors", &json!({"name": name, "config": config}))
            .status,
        201
    );
    let duplicate = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(duplicate.status, 409);
    assert!(duplicate.message().contains(&name), "{}", duplicate.text);

    let mismatch = api.put(
        &format!("/connectors/{name}/config"),
        &json!({"name": "other", "connector.class": "datagen", "topic": "t"}),
    );
    assert_eq!(mismatch.status, 400);
    assert!(
        mismatch.message().contains("doesn't match"),
        "{}",
        mismatch.text
    );

    for path in [
        "/connectors/nope",
        "/connectors/nope/status",
        "/connectors/nope/config",
        "/connectors/nope/offsets",
    ] {
        let reply = api.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.message(), "Connector nope not found", "{path}");
    }
    assert_eq!(api.put_empty("/connectors/nope/pause").status, 404);
    assert_eq!(api.delete("/connectors/nope").status, 404);
    let no_task = api.get(&format!("/connectors/{name}/tasks/7/status"));
    assert_eq!(no_task.status, 404);
    assert!(no_task.message().contains("Task 7"), "{}", no_task.text);

    let value = api.post("/connectors", &json!({"name": unique("bad"), "config": {"connector.class": "datagen", "topic": {"nested": 1}}}));
    assert_eq!(value.status, 400);
    assert!(value.message().contains("topic"), "{}", value.text);

    let validated = api.put(
        "/connector-plugins/datagen/config/validate",
        &json!({"connector.class": "datagen", "rate.per.sec": "-1"}),
    );
    assert_eq!(validated.status, 200, "{}", validated.text);
    assert_eq!(validated.body["error_count"], 3, "{}", validated.text);
    let errors_of = |key: &str| {
        validated.body["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| c["value"]["name"] == key)
            .map(|c| c["value"]["errors"].clone())
            .unwrap_or_else(|| panic!("{key} missing from validation"))
    };
    assert_eq!(errors_of("topic").as_array().map(Vec::len), Some(1));
    assert_eq!(errors_of("name").as_array().map(Vec::len), Some(1));
    assert!(errors_of("rate.per.sec")[0]
        .as_str()
        .unwrap_or("")
        .contains("must not be negative"));
    assert_eq!(
        api.put("/connector-plugins/nope/config/validate", &json!({}))
            .status,
        404
    );

    let unknown_path = api.get("/no/such/path");
    assert_eq!(
        (unknown_path.status, unknown_path.body["error_code"].clone()),
        (404, json!(404))
    );
}

/// Connect's exactly-once keys: a connector that requires exactly-once
/// delivery is refused by a worker without it, and the values sluice
/// cannot honour are refused by name instead of being ignored.
#[test]
fn exactly_once_keys_a_worker_cannot_honour_are_refused_by_name() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let refused = |key: &str, value: &str, says: &str| {
        let reply = api.post(
            "/connectors",
            &json!({"name": unique("eos"), "config": {
                "connector.class": "datagen", "topic": unique("eos-topic"), key: value}}),
        );
        assert_eq!(reply.status, 400, "{key}={value}: {}", reply.text);
        let message = reply.message();
        assert!(
            message.contains(key) && message.contains(says),
            "{key}={value}: {message}"
        );
    };
    refused(
        "exactly.once.support",
        "required",
        "--exactly-once-source-support=enabled",
    );
    refused("transaction.boundary", "connector", "use poll");
    refused(
        "offsets.storage.topic",
        "my-offsets",
        "--offset-storage-topic",
    );
    let requested = api.post(
        "/connectors",
        &json!({"name": unique("eos"), "config": {
            "connector.class": "datagen", "topic": unique("eos-topic"),
            "exactly.once.support": "requested", "transaction.boundary": "interval"}}),
    );
    assert_eq!(requested.status, 201, "{}", requested.text);
}
