//! The embedded schema registry through its REST API, as Confluent
//! clients see it: bodies, status and error codes, the compatibility
//! matrix with its messages, and durability across `kill -9`.

use serde_json::{json, Value};
use sluice_tests::api::{Api, Reply};
use sluice_tests::registry::RegistryServer;

fn record(name: &str, fields: Value) -> String {
    json!({"type": "record", "name": name, "fields": fields}).to_string()
}

fn register(api: &Api, subject: &str, schema: &str) -> Reply {
    api.post(
        &format!("/subjects/{subject}/versions"),
        &json!({ "schema": schema }),
    )
}

fn registered_id(api: &Api, subject: &str, schema: &str) -> i64 {
    let reply = register(api, subject, schema);
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["id"].as_i64().expect("id")
}

fn assert_error(reply: &Reply, status: u16, code: i64) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error_code"], code, "{}", reply.text);
    assert!(!reply.message().is_empty(), "{}", reply.text);
}

#[test]
fn registry_endpoints_answer_like_confluent() {
    let registry = RegistryServer::start();
    let api = registry.api();
    let v1 = record("Row", json!([{"name": "a", "type": "int"}]));
    let v2 = record(
        "Row",
        json!([{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}]),
    );

    assert_eq!(api.get("/subjects").body, json!([]));
    assert_eq!(api.get("/schemas/types").body, json!(["AVRO"]));
    let id1 = registered_id(&api, "t-value", &v1);
    assert_eq!(
        registered_id(&api, "t-value", &v1),
        id1,
        "same schema, same id"
    );
    assert_eq!(
        registered_id(&api, "other-value", &v1),
        id1,
        "same schema under another subject keeps its id"
    );
    let id2 = registered_id(&api, "t-value", &v2);
    assert_ne!(id1, id2);
    assert_eq!(api.get("/subjects").body, json!(["other-value", "t-value"]));
    assert_eq!(api.get("/subjects/t-value/versions").body, json!([1, 2]));

    let latest = api.get("/subjects/t-value/versions/latest");
    assert_eq!(latest.body["subject"], "t-value");
    assert_eq!(latest.body["version"], 2);
    assert_eq!(latest.body["id"], id2);
    let schema_only = api.get("/subjects/t-value/versions/1/schema");
    assert_eq!(schema_only.body["name"], "Row");
    assert_eq!(api.get(&format!("/schemas/ids/{id1}")).body["schema"], v1);
    assert_eq!(
        api.get(&format!("/schemas/ids/{id1}/subjects")).body,
        json!(["other-value", "t-value"])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id2}/versions")).body,
        json!([{"subject": "t-value", "version": 2}])
    );

    let found = api.post("/subjects/t-value", &json!({ "schema": v1 }));
    assert_eq!(found.body["version"], 1, "{}", found.text);
    assert_eq!(found.body["id"], id1);
    let unknown = record("Row", json!([{"name": "z", "type": "long"}]));
    assert_error(
        &api.post("/subjects/t-value", &json!({ "schema": unknown })),
        404,
        40403,
    );
    assert_error(
        &api.post("/subjects/nope", &json!({ "schema": v1 })),
        404,
        40401,
    );

    // Error codes clients match on.
    assert_error(
        &register(&api, "t-value", "{\"type\": \"record\"}"),
        422,
        42201,
    );
    assert_error(&register(&api, "t-value", "not json"), 422, 42201);
    assert_error(&api.get("/subjects/t-value/versions/zero"), 422, 42202);
    assert_error(&api.get("/subjects/t-value/versions/0"), 422, 42202);
    assert_error(&api.get("/subjects/t-value/versions/9"), 404, 40402);
    assert_error(&api.get("/subjects/nope/versions"), 404, 40401);
    assert_error(&api.get("/schemas/ids/999"), 404, 40403);
    let protobuf = api.post(
        "/subjects/p/versions",
        &json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}),
    );
    assert_error(&protobuf, 422, 42201);

    // normalize=true maps cosmetic differences to one id.
    let spaced = "{ \"namespace\": \"n\", \"name\": \"N\", \"type\": \"record\", \"fields\": [{\"name\": \"a\", \"type\": {\"type\": \"int\"}}] }";
    let plain = r#"{"type":"record","name":"n.N","fields":[{"name":"a","type":"int"}]}"#;
    let a = api.post(
        "/subjects/norm/versions?normalize=true",
        &json!({ "schema": spaced }),
    );
    let b = api.post(
        "/subjects/norm/versions?normalize=true",
        &json!({ "schema": plain }),
    );
    assert_eq!(a.body["id"], b.body["id"], "{} / {}", a.text, b.text);
    assert_eq!(api.get("/subjects/norm/versions").body, json!([1]));

    // Compatibility configuration.
    assert_eq!(
        api.get("/config").body,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        api.put("/config/t-value", &json!({"compatibility": "FULL"}))
            .body,
        json!({"compatibility": "FULL"})
    );
    assert_eq!(
        api.get("/config/t-value").body,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_error(&api.get("/config/other-value"), 404, 40408);
    assert_eq!(
        api.get("/config/other-value?defaultToGlobal=true").body,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_error(
        &api.put("/config/t-value", &json!({"compatibility": "SIDEWAYS"})),
        422,
        42203,
    );
    assert_eq!(
        api.delete("/config/t-value").body,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_error(&api.get("/config/t-value"), 404, 40408);

    // Mode.
    assert_eq!(api.get("/mode").body, json!({"mode": "READWRITE"}));
    assert_eq!(
        api.put("/mode", &json!({"mode": "READONLY"})).body,
        json!({"mode": "READONLY"})
    );
    let v3 = record(
        "Row",
        json!([{"name": "a", "type": "int"}, {"name": "c", "type": "int", "default": 0}]),
    );
    assert_error(&register(&api, "t-value", &v3), 422, 42205);
    assert_error(&api.put("/mode", &json!({"mode": "WRITEONLY"})), 422, 42204);
    api.put("/mode", &json!({"mode": "READWRITE"}));
    assert_eq!(register(&api, "t-value", &v3).status, 200);

    // Deletes: soft first, then permanent.
    assert_error(
        &api.delete("/subjects/t-value/versions/1?permanent=true"),
        404,
        40407,
    );
    assert_eq!(api.delete("/subjects/t-value/versions/1").body, json!(1));
    assert_error(&api.delete("/subjects/t-value/versions/1"), 404, 40406);
    assert_eq!(api.get("/subjects/t-value/versions").body, json!([2, 3]));
    assert_eq!(
        api.get("/subjects/t-value/versions?deleted=true").body,
        json!([1, 2, 3])
    );
    assert_error(&api.get("/subjects/t-value/versions/1"), 404, 40402);
    assert_eq!(
        api.get("/subjects/t-value/versions/1?deleted=true").body["id"],
        id1
    );
    assert_eq!(
        api.delete("/subjects/t-value/versions/1?permanent=true")
            .body,
        json!(1)
    );
    assert_error(
        &api.delete("/subjects/other-value?permanent=true"),
        404,
        40405,
    );
    assert_eq!(api.delete("/subjects/other-value").body, json!([1]));
    assert_error(&api.delete("/subjects/other-value"), 404, 40404);
    assert_eq!(
        api.get("/subjects?deleted=true").body,
        json!(["norm", "other-value", "t-value"])
    );
    assert_eq!(api.get("/subjects").body, json!(["norm", "t-value"]));
    assert_eq!(
        api.delete("/subjects/other-value?permanent=true").body,
        json!([1])
    );
    assert_eq!(
        api.get("/subjects?deleted=true").body,
        json!(["norm", "t-value"])
    );
    // The id outlives its subjects: readers of old messages still need it.
    assert_eq!(api.get(&format!("/schemas/ids/{id1}")).status, 200);
}

/// One compatibility case: earlier versions, the candidate, the expected
/// verdict and (when incompatible) a fragment of the message.
struct Case {
    name: &'static str,
    level: &'static str,
    old: Vec<Value>,
    new: Value,
    expected: Result<(), &'static str>,
}

fn fields(fields: Value) -> Value {
    json!({"type": "record", "name": "R", "fields": fields})
}

fn single(field_type: Value) -> Value {
    fields(json!([{"name": "f", "type": field_type}]))
}

fn matrix() -> Vec<Case> {
    let a = json!({"name": "a", "type": "int"});
    let b_plain = json!({"name": "b", "type": "string"});
    let b_default = json!({"name": "b", "type": "string", "default": "x"});
    let color = |symbols: Value| json!({"type": "enum", "name": "Color", "symbols": symbols});
    let nested = |inner: Value| {
        fields(json!([{"name": "n", "type": {"type": "record", "name": "Inner", "fields": inner}}]))
    };
    vec![
        Case { name: "added field without default", level: "BACKWARD", old: vec![fields(json!([a]))], new: fields(json!([a, b_plain])),
            expected: Err("{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'b' at path '/fields/1' in the new schema has no default value and is missing in the old schema', additionalInfo:'b'}") },
        Case { name: "added field with default", level: "BACKWARD", old: vec![fields(json!([a]))], new: fields(json!([a, b_default])), expected: Ok(()) },
        Case { name: "removed field", level: "BACKWARD", old: vec![fields(json!([a, b_plain]))], new: fields(json!([a])), expected: Ok(()) },
        Case { name: "removed field old readers need", level: "FORWARD", old: vec![fields(json!([a, b_plain]))], new: fields(json!([a])),
            expected: Err("The field 'b' at path '/fields/1' in the old schema has no default value and is missing in the new schema") },
        Case { name: "added field, old readers ignore it", level: "FORWARD", old: vec![fields(json!([a]))], new: fields(json!([a, b_plain])), expected: Ok(()) },
        Case { name: "added field with default both ways", level: "FULL", old: vec![fields(json!([a]))], new: fields(json!([a, b_default])), expected: Ok(()) },
        Case { name: "added field without default both ways", level: "FULL", old: vec![fields(json!([a]))], new: fields(json!([a, b_plain])), expected: Err("READER_FIELD_MISSING_DEFAULT_VALUE") },
        Case { name: "int promoted to long", level: "BACKWARD", old: vec![single(json!("int"))], new: single(json!("long")), expected: Ok(()) },
        Case { name: "long narrowed to int", level: "BACKWARD", old: vec![single(json!("long"))], new: single(json!("int")),
            expected: Err("{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type') of a field in the new schema does not match with the old schema', additionalInfo:'reader type: INT not compatible with writer type: LONG'}") },
        Case { name: "int promoted to float", level: "BACKWARD", old: vec![single(json!("int"))], new: single(json!("float")), expected: Ok(()) },
        Case { name: "float promoted to double", level: "BACKWARD", old: vec![single(json!("float"))], new: single(json!("double")), expected: Ok(()) },
        Case { name: "double narrowed to float", level: "BACKWARD", old: vec![single(json!("double"))], new: single(json!("float")), expected: Err("TYPE_MISMATCH") },
        Case { name: "string read as bytes", level: "BACKWARD", old: vec![single(json!("string"))], new: single(json!("bytes")), expected: Ok(()) },
        Case { name: "bytes read as string", level: "BACKWARD", old: vec![single(json!("bytes"))], new: single(json!("string")), expected: Ok(()) },
        Case { name: "enum symbol added", level: "BACKWARD", old: vec![single(color(json!(["RED"])))], new: single(color(json!(["RED", "BLUE"]))), expected: Ok(()) },
        Case { name: "enum symbol removed", level: "BACKWARD", old: vec![single(color(json!(["RED", "BLUE"])))], new: single(color(json!(["RED"]))),
            expected: Err("{errorType:'MISSING_ENUM_SYMBOLS', description:'The new schema is missing enum symbols '[BLUE]' at path '/fields/0/type/symbols' in the old schema', additionalInfo:'[BLUE]'}") },
        Case { name: "value made nullable", level: "BACKWARD", old: vec![single(json!("int"))], new: single(json!(["null", "int"])), expected: Ok(()) },
        Case { name: "nullable made required", level: "BACKWARD", old: vec![single(json!(["null", "int"]))], new: single(json!("int")), expected: Err("TYPE_MISMATCH") },
        Case { name: "union widened", level: "BACKWARD", old: vec![single(json!(["null", "int"]))], new: single(json!(["null", "int", "string"])), expected: Ok(()) },
        Case { name: "union narrowed", level: "BACKWARD", old: vec![single(json!(["null", "int", "string"]))], new: single(json!(["null", "int"])),
            expected: Err("{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type inside a union field at path '/fields/0/type/2' in the old schema', additionalInfo:'reader union lacking writer type: STRING'}") },
        Case { name: "nested record field without default", level: "BACKWARD", old: vec![nested(json!([a]))], new: nested(json!([a, b_plain])),
            expected: Err("The field 'b' at path '/fields/0/type/fields/1' in the new schema") },
        Case { name: "field renamed with alias", level: "BACKWARD", old: vec![fields(json!([a]))], new: fields(json!([{"name": "alpha", "type": "int", "aliases": ["a"]}])), expected: Ok(()) },
        Case { name: "field renamed without alias", level: "BACKWARD", old: vec![fields(json!([a]))], new: fields(json!([{"name": "alpha", "type": "int"}])), expected: Err("The field 'alpha'") },
        Case { name: "record renamed with alias", level: "BACKWARD", old: vec![fields(json!([a]))], new: json!({"type": "record", "name": "S", "aliases": ["R"], "fields": [a]}), expected: Ok(()) },
        Case { name: "record renamed without alias", level: "BACKWARD", old: vec![fields(json!([a]))], new: json!({"type": "record", "name": "S", "fields": [a]}),
            expected: Err("{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path '/name')', additionalInfo:'expected: R'}") },
        Case { name: "only the latest is checked", level: "BACKWARD", old: vec![fields(json!([a])), fields(json!([a, b_default]))], new: fields(json!([a, b_plain])), expected: Ok(()) },
        Case { name: "every version is checked", level: "BACKWARD_TRANSITIVE", old: vec![fields(json!([a])), fields(json!([a, b_default]))], new: fields(json!([a, b_plain])),
            expected: Err("{oldSchemaVersion: 1}") },
        Case { name: "old readers: latest only", level: "FORWARD", old: vec![fields(json!([a, b_plain])), fields(json!([a, b_default]))], new: fields(json!([a])), expected: Ok(()) },
        Case { name: "old readers: all of them", level: "FORWARD_TRANSITIVE", old: vec![fields(json!([a, b_plain])), fields(json!([a, b_default]))], new: fields(json!([a])),
            expected: Err("in the old schema has no default value") },
        Case { name: "full against the latest", level: "FULL", old: vec![fields(json!([a])), fields(json!([a, b_default]))], new: fields(json!([a, b_plain])), expected: Ok(()) },
        Case { name: "full against all", level: "FULL_TRANSITIVE", old: vec![fields(json!([a])), fields(json!([a, b_default]))], new: fields(json!([a, b_plain])), expected: Err("{compatibility: 'FULL_TRANSITIVE'}") },
        Case { name: "anything goes", level: "NONE", old: vec![single(json!("int"))], new: single(json!("string")), expected: Ok(()) },
    ]
}

#[test]
fn compatibility_matrix_follows_avro_resolution_rules() {
    let registry = RegistryServer::start();
    let api = registry.api();
    for (i, case) in matrix().into_iter().enumerate() {
        let subject = format!("case{i}-value");
        api.put(
            &format!("/config/{subject}"),
            &json!({"compatibility": "NONE"}),
        );
        for old in &case.old {
            registered_id(&api, &subject, &old.to_string());
        }
        api.put(
            &format!("/config/{subject}"),
            &json!({"compatibility": case.level}),
        );
        let body = json!({ "schema": case.new.to_string() });
        let verdict = api.post(
            &format!("/compatibility/subjects/{subject}/versions/latest?verbose=true"),
            &body,
        );
        assert_eq!(verdict.status, 200, "{}: {}", case.name, verdict.text);
        let messages = verdict.body["messages"].to_string();
        let registered = api.post(&format!("/subjects/{subject}/versions"), &body);
        match case.expected {
            Ok(()) => {
                assert_eq!(
                    verdict.body["is_compatible"], true,
                    "{} ({}): {messages}",
                    case.name, case.level
                );
                assert_eq!(registered.status, 200, "{}: {}", case.name, registered.text);
            }
            Err(fragment) => {
                assert_eq!(
                    verdict.body["is_compatible"], false,
                    "{} ({}) should be incompatible",
                    case.name, case.level
                );
                let listed = verdict.body["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .any(|m| m.as_str().is_some_and(|m| m.contains(fragment)));
                assert!(
                    listed,
                    "{} ({}): expected {fragment:?} in {messages}",
                    case.name, case.level
                );
                assert_eq!(registered.status, 409, "{}: {}", case.name, registered.text);
                assert_eq!(registered.body["error_code"], 409);
                assert!(
                    registered.message().contains(fragment),
                    "{}: 409 message lacks {fragment:?}: {}",
                    case.name,
                    registered.message()
                );
            }
        }
    }
}

#[test]
fn ids_and_versions_survive_kill9() {
    let mut registry = RegistryServer::start();
    let api = registry.api();
    let mut expected = Vec::new();
    for n in 0..5 {
        let fields: Vec<Value> = (0..=n)
            .map(|i| json!({"name": format!("f{i}"), "type": "long", "default": 0}))
            .collect();
        let schema = json!({"type": "record", "name": "Grow", "fields": fields}).to_string();
        for subject in ["a-value", "b-value"] {
            let id = registered_id(&api, subject, &schema);
            expected.push((subject, n + 1, id, schema.clone()));
        }
    }
    api.put("/config/b-value", &json!({"compatibility": "FULL"}));
    api.delete("/subjects/a-value/versions/2");

    registry.process.kill9();
    registry.process.restart();

    for (subject, version, id, schema) in &expected {
        let found = api.get(&format!(
            "/subjects/{subject}/versions/{version}?deleted=true"
        ));
        assert_eq!(found.status, 200, "{}", found.text);
        assert_eq!(found.body["id"], *id, "{subject} v{version}");
        assert_eq!(found.body["schema"], *schema);
    }
    assert_eq!(
        api.get("/subjects/a-value/versions").body,
        json!([1, 3, 4, 5])
    );
    assert_eq!(
        api.get("/config/b-value").body["compatibilityLevel"],
        "FULL"
    );
    let newest = expected.iter().map(|e| e.2).max().expect("ids");
    let fresh = registered_id(&api, "c-value", "\"string\"");
    assert_eq!(
        fresh,
        newest + 1,
        "ids continue after the restart, none reused"
    );
}
