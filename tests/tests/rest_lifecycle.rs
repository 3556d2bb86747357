//! The Kafka Connect REST lifecycle against a real worker and broker.

use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::Api;
use sluice_tests::env::TestEnv;
use sluice_tests::kafka::{datagen_seqs, read_topic};
use sluice_tests::worker::Worker;
use sluice_tests::{unique, wait_for};

fn datagen(topic: &str, extra: Value) -> Value {
    let mut config = json!({
        "connector.class": "datagen",
        "topic": topic,
        "rate.per.sec": "200",
        "tasks.max": 1,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

fn task_state(api: &Api, name: &str) -> Option<String> {
    api.get(&format!("/connectors/{name}/status")).body["tasks"][0]["state"]
        .as_str()
        .map(str::to_owned)
}

fn wait_task_state(api: &Api, name: &str, state: &str) {
    wait_for(
        &format!("task of {name} to be {state}"),
        Duration::from_secs(30),
        || (task_state(api, name).as_deref() == Some(state)).then_some(()),
    );
}

fn committed_seq(api: &Api, name: &str) -> Option<i64> {
    api.get(&format!("/connectors/{name}/offsets")).body["offsets"][0]["offset"]["seq"].as_i64()
}

#[test]
fn connector_lifecycle_through_the_rest_api() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let name = unique("life");
    let topic = unique("life-topic");

    let root = api.get("/");
    assert_eq!(root.status, 200);
    assert!(root.body["version"].is_string() && root.body["kafka_cluster_id"].is_string());
    let plugins = api.get("/connector-plugins");
    assert!(plugins
        .body
        .as_array()
        .expect("plugin list")
        .iter()
        .any(
            |p| p["class"] == "io.sluice.connector.datagen.DatagenConnector"
                && p["type"] == "source"
        ));

    // Create: 201 with Connect's body; the secret never comes back.
    let mut config = datagen(&topic, json!({"database.password": "s3cret"}));
    let created = api.post("/connectors", &json!({"name": name, "config": config}));
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["name"], name.as_str());
    assert_eq!(created.body["type"], "source");
    assert_eq!(
        created.body["tasks"],
        json!([{"connector": name, "task": 0}])
    );
    assert_eq!(created.body["config"]["database.password"], "[hidden]");
    assert!(!created.text.contains("s3cret"));

    assert!(api
        .get("/connectors")
        .body
        .as_array()
        .expect("names")
        .contains(&json!(name)));
    let expanded = api.get("/connectors?expand=status&expand=info");
    assert_eq!(expanded.body[&name]["info"]["name"], name.as_str());
    assert!(expanded.body[&name]["status"]["connector"]["state"].is_string());
    assert_eq!(
        api.get(&format!("/connectors/{name}")).body["config"]["topic"],
        topic.as_str()
    );
    assert_eq!(
        api.get(&format!("/connectors/{name}/config")).body["topic"],
        topic.as_str()
    );
    let tasks = api.get(&format!("/connectors/{name}/tasks"));
    assert_eq!(tasks.body[0]["id"], json!({"connector": name, "task": 0}));
    assert_eq!(tasks.body[0]["config"]["database.password"], "[hidden]");

    wait_task_state(&api, &name, "RUNNING");
    let status = api.get(&format!("/connectors/{name}/status"));
    assert_eq!(status.body["connector"]["state"], "RUNNING");
    assert_eq!(status.body["type"], "source");
    let task = api.get(&format!("/connectors/{name}/tasks/0/status"));
    assert_eq!((task.status, task.body["id"].clone()), (200, json!(0)));
    wait_for("records in the topic", Duration::from_secs(30), || {
        (!read_topic(env.bootstrap(), &topic, Duration::from_secs(2), |r| {
            !r.is_empty()
        })
        .is_empty())
        .then_some(())
    });
    let topics = api.get(&format!("/connectors/{name}/topics"));
    assert_eq!(topics.body[&name]["topics"], json!([topic]));
    let offset_before = wait_for("a committed offset", Duration::from_secs(30), || {
        committed_seq(&api, &name)
    });
    assert!(offset_before >= 0);

    // Pause: tasks PAUSED and the committed offset stops moving.
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/pause")).status,
        202
    );
    wait_task_state(&api, &name, "PAUSED");
    assert_eq!(
        api.get(&format!("/connectors/{name}/status")).body["connector"]["state"],
        "PAUSED"
    );
    let paused_at = committed_seq(&api, &name);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        committed_seq(&api, &name),
        paused_at,
        "offsets moved while paused"
    );

    // Resume: RUNNING again and the offset advances.
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/resume")).status,
        202
    );
    wait_task_state(&api, &name, "RUNNING");
    wait_for(
        "the offset to advance after resume",
        Duration::from_secs(30),
        || (committed_seq(&api, &name) > paused_at).then_some(()),
    );

    // Config update: 200, the task restarts and writes to the new topic.
    let new_topic = unique("life-topic2");
    config["topic"] = json!(new_topic);
    config["database.password"] = json!("[hidden]");
    let updated = api.put(&format!("/connectors/{name}/config"), &config);
    assert_eq!(updated.status, 200, "{}", updated.text);
    wait_for(
        "records in the reconfigured topic",
        Duration::from_secs(30),
        || {
            (!read_topic(env.bootstrap(), &new_topic, Duration::from_secs(2), |r| {
                !r.is_empty()
            })
            .is_empty())
            .then_some(())
        },
    );

    // Restarts: plain 204, with tasks 202 and a status body, one task 204.
    assert_eq!(
        api.post_empty(&format!("/connectors/{name}/restart"))
            .status,
        204
    );
    let restarted = api.post_empty(&format!(
        "/connectors/{name}/restart?includeTasks=true&onlyFailed=false"
    ));
    assert_eq!(restarted.status, 202, "{}", restarted.text);
    assert_eq!(restarted.body["name"], name.as_str());
    assert_eq!(
        api.post_empty(&format!(
            "/connectors/{name}/restart?includeTasks=true&onlyFailed=true"
        ))
        .status,
        202
    );
    assert_eq!(
        api.post_empty(&format!("/connectors/{name}/tasks/0/restart"))
            .status,
        204
    );
    wait_task_state(&api, &name, "RUNNING");

    // Offsets can only be edited on a stopped connector.
    let patch = json!({"offsets": [{"partition": {"topic": new_topic}, "offset": {"seq": 1000}}]});
    let refused = api.patch(&format!("/connectors/{name}/offsets"), &patch);
    assert_eq!(refused.status, 400);
    assert!(refused.message().contains("STOPPED"), "{}", refused.text);

    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/stop")).status,
        204
    );
    wait_for("the connector to stop", Duration::from_secs(30), || {
        let s = api.get(&format!("/connectors/{name}/status"));
        (s.body["connector"]["state"] == "STOPPED" && s.body["tasks"] == json!([])).then_some(())
    });
    let altered = api.patch(&format!("/connectors/{name}/offsets"), &patch);
    assert_eq!(altered.status, 200, "{}", altered.text);
    let offsets = api.get(&format!("/connectors/{name}/offsets")).body;
    assert!(offsets["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .any(|o| o["partition"]["topic"] == new_topic.as_str() && o["offset"]["seq"] == 1000));

    // Resuming a stopped connector continues from the altered offset.
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/resume")).status,
        202
    );
    let seqs = datagen_seqs(&read_topic(
        env.bootstrap(),
        &new_topic,
        Duration::from_secs(30),
        |r| datagen_seqs(r).contains(&1001),
    ));
    assert!(
        seqs.contains(&1001),
        "no record after the altered offset: {seqs:?}"
    );

    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/stop")).status,
        204
    );
    let reset = api.delete(&format!("/connectors/{name}/offsets"));
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(
        api.get(&format!("/connectors/{name}/offsets")).body,
        json!({"offsets": []})
    );

    assert_eq!(api.delete(&format!("/connectors/{name}")).status, 204);
    let gone = api.get(&format!("/connectors/{name}"));
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["error_code"], 404);
}

#[test]
fn put_config_creates_a_connector_with_201() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let name = unique("put");
    let reply = api.put(
        &format!("/connectors/{name}/config"),
        &datagen(&unique("put-topic"), json!({})),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["name"], name.as_str());
    wait_task_state(&api, &name, "RUNNING");
}

#[test]
fn metrics_and_health_report_the_running_task() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let name = unique("metrics");
    let reply = api.post(
        "/connectors",
        &json!({"name": name, "config": datagen(&unique("metrics-topic"), json!({}))}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(api.get("/health").body["status"], "healthy");
    let produced =
        format!("sluice_source_records_produced_total{{connector=\"{name}\",task=\"0\"}} ");
    let count = wait_for(
        "produced records in /metrics",
        Duration::from_secs(30),
        || {
            let text = api.get("/metrics").text;
            text.lines()
                .find_map(|l| l.strip_prefix(&produced))
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|n| *n > 0)
        },
    );
    assert!(count > 0);
    let running =
        format!("sluice_task_state{{connector=\"{name}\",task=\"0\",state=\"RUNNING\"}} 1");
    assert!(api.get("/metrics").text.contains(&running));
}

#[test]
fn connect_3_endpoints_initial_state_patch_and_plugin_configs() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let name = unique("seeded");
    let topic = unique("seeded-topic");

    // Created STOPPED: nothing runs, and offsets can be seeded first.
    let created = api.post(
        "/connectors",
        &json!({"name": name, "config": datagen(&topic, json!({})), "initial_state": "STOPPED"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let status = api.get(&format!("/connectors/{name}/status")).body;
    assert_eq!(status["connector"]["state"], "STOPPED", "{status}");
    let seed = json!({"offsets": [{"partition": {"topic": topic}, "offset": {"seq": 499}}]});
    let seeded = api.patch(&format!("/connectors/{name}/offsets"), &seed);
    assert_eq!(seeded.status, 200, "{}", seeded.text);
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/resume")).status,
        202
    );
    let records = read_topic(env.bootstrap(), &topic, Duration::from_secs(30), |r| {
        !r.is_empty()
    });
    assert_eq!(
        datagen_seqs(&records).first(),
        Some(&500),
        "resumed after the seeded offset"
    );
    let refused = api.post(
        "/connectors",
        &json!({"name": unique("bad"), "config": datagen(&topic, json!({})), "initial_state": "SLEEPING"}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);

    // A PUT of the config it already has restarts nothing; a changed one
    // restarts the task (which the log shows, so the first check can fail).
    let starts = || {
        worker
            .logs()
            .lines()
            .filter(|l| l.contains("task started") && l.contains(&format!("connector={name}")))
            .count()
    };
    let before = starts();
    assert!(before >= 1, "the task started once: {}", worker.logs());
    let config = datagen(&topic, json!({}));
    let same = api.put(&format!("/connectors/{name}/config"), &config);
    assert_eq!(same.status, 200, "{}", same.text);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(starts(), before, "an unchanged config restarted the task");
    let changed = api.put(
        &format!("/connectors/{name}/config"),
        &datagen(&topic, json!({"max.records": "100000000"})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text);
    wait_for(
        "the changed config to restart the task",
        Duration::from_secs(30),
        || (starts() > before).then_some(()),
    );

    // PATCH changes some keys and removes null ones; the rest stays.
    let patched = api.patch(
        &format!("/connectors/{name}/config"),
        &json!({"rate.per.sec": "50", "tasks.max": null}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    let config = api.get(&format!("/connectors/{name}/config")).body;
    assert_eq!(config["rate.per.sec"], "50");
    assert_eq!(config["topic"], topic.as_str());
    assert!(config.get("tasks.max").is_none(), "{config}");
    assert_eq!(
        api.patch("/connectors/nobody/config", &json!({"a": "b"}))
            .status,
        404
    );

    // A PUT of the same config is answered 200 with the connector as is.
    let same = api.put(&format!("/connectors/{name}/config"), &config);
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.body["config"]["rate.per.sec"], "50");

    // The recorded topics can be forgotten, as in Connect: once stopped,
    // nothing records them again.
    wait_for("the topic recorded", Duration::from_secs(30), || {
        (api.get(&format!("/connectors/{name}/topics")).body[&name]["topics"] == json!([topic]))
            .then_some(())
    });
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/stop")).status,
        204
    );
    assert_eq!(
        api.put_empty(&format!("/connectors/{name}/topics/reset"))
            .status,
        200
    );
    let forgotten = api.get(&format!("/connectors/{name}/topics")).body;
    assert_eq!(forgotten[&name]["topics"], json!([]), "{forgotten}");

    // The keys of a plugin, and the other plugin types.
    let keys = api.get("/connector-plugins/PostgresConnector/config");
    assert_eq!(keys.status, 200, "{}", keys.text);
    let names: Vec<&str> = keys
        .body
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(
        names.contains(&"slot.name") && names.contains(&"transforms"),
        "{names:?}"
    );
    let all = api.get("/connector-plugins?connectorsOnly=false").body;
    let kinds: Vec<&str> = all
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["type"].as_str())
        .collect();
    for kind in ["source", "sink", "transformation", "predicate", "converter"] {
        assert!(kinds.contains(&kind), "{kind} missing: {all}");
    }
    api.delete(&format!("/connectors/{name}"));
}

#[test]
fn log_levels_change_while_the_worker_runs() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let create = |name: &str| {
        let config = datagen(&unique("log-topic"), json!({"max.records": "1"}));
        let reply = api.post("/connectors", &json!({"name": name, "config": config}));
        assert_eq!(reply.status, 201, "{}", reply.text);
    };
    create("loud");
    wait_for("the creation logged", Duration::from_secs(10), || {
        worker.logs().contains("connector=loud").then_some(())
    });
    let set = api.put("/admin/loggers/sluice_runtime", &json!({"level": "OFF"}));
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.body, json!(["sluice_runtime"]));
    let levels = api.get("/admin/loggers").body;
    assert_eq!(levels["sluice_runtime"]["level"], "OFF", "{levels}");
    assert_eq!(levels["root"]["level"], "INFO", "{levels}");
    assert_eq!(
        api.get("/admin/loggers/sluice_runtime").body["level"],
        "OFF"
    );
    assert_eq!(api.get("/admin/loggers/never.set").status, 404);
    assert_eq!(
        api.put("/admin/loggers/x", &json!({"level": "LOUD"}))
            .status,
        400
    );
    create("quiet");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !worker.logs().contains("connector=quiet"),
        "the runtime's log is off"
    );
}

#[test]
fn client_overrides_follow_the_workers_policy_and_never_touch_delivery_safety() {
    let env = TestEnv::load();
    let worker = Worker::start(&env);
    let api = worker.api();
    let topic = unique("override-topic");
    let tuned = datagen(
        &topic,
        json!({"max.records": "50", "producer.override.linger.ms": "1", "producer.override.compression.type": "zstd"}),
    );
    let created = api.post("/connectors", &json!({"name": "tuned", "config": tuned}));
    assert_eq!(created.status, 201, "{}", created.text);
    wait_for(
        "records through the connector's own producer",
        Duration::from_secs(30),
        || (committed_seq(&api, "tuned") >= Some(49)).then_some(()),
    );
    let unsafe_acks = datagen(&unique("t"), json!({"producer.override.acks": "1"}));
    let refused = api.post(
        "/connectors",
        &json!({"name": "unsafe", "config": unsafe_acks}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.message().contains("producer.override.acks"),
        "{}",
        refused.message()
    );
    drop(worker);
    let strict = Worker::start_with(&env, &["--connector-client-config-override-policy", "None"]);
    let tuned = datagen(&unique("t"), json!({"producer.override.linger.ms": "1"}));
    let refused = strict
        .api()
        .post("/connectors", &json!({"name": "tuned", "config": tuned}));
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.message().contains("override.policy"),
        "{}",
        refused.message()
    );
}
