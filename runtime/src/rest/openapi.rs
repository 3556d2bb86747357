//! The REST API and the embedded registry as OpenAPI 3 documents, each
//! written from the endpoint table its router is built from and served at
//! its `/openapi.json` — so a client generator or a fuzzer (the test suite
//! runs schemathesis against both) sees exactly what the worker answers.
//! Every error is declared in Connect's (and Confluent's) shape,
//! `{"error_code", "message"}`.

use serde_json::{json, Map, Value};

use super::endpoints::ENDPOINTS;

/// One method on one path, as the endpoint tables describe it.
pub struct Operation<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path with `{name}` parameters.
    pub path: &'a str,
    /// Query parameters as `a=x|y&b`.
    pub query: &'a str,
    /// What it does.
    pub summary: &'a str,
}

/// Connect's error body.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error_code", "message"],
        "properties": {
            "error_code": {"type": "integer"},
            "message": {"type": "string"}
        }
    })
}

/// `{name}`-style parameters of a path.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            // Examples name what a demo worker has, so generated requests
            // reach real connectors, not only 404s.
            let (schema, example) = match name {
                "task" | "id" => (json!({"type": "integer", "minimum": 0}), json!(1)),
                "version" => (json!({"type": "string", "minLength": 1}), json!("latest")),
                "subject" => (json!({"type": "string", "minLength": 1}), json!("dbserver1.inventory.customers-value")),
                "name" => (json!({"type": "string", "minLength": 1}), json!("inventory-postgres")),
                "plugin" => (json!({"type": "string", "minLength": 1}), json!("PostgresConnector")),
                _ => (json!({"type": "string", "minLength": 1}), json!("root")),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema, "example": example})
        })
        .collect()
}

/// `a=x|y&b=z` query descriptions as optional parameters with their values.
fn query_parameters(query: &str) -> Vec<Value> {
    query
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| {
            let (name, values) = q.split_once('=').unwrap_or((q, ""));
            let values: Vec<&str> = values.split('|').filter(|v| !v.is_empty()).collect();
            json!({
                "name": name,
                "in": "query",
                "required": false,
                "schema": {"type": "string", "enum": values}
            })
        })
        .collect()
}

/// A document of `operations`, whose bodies are JSON of `content_types`.
pub fn document<'a>(
    title: &str,
    operations: impl Iterator<Item = Operation<'a>>,
    content_types: &[&str],
) -> Value {
    let json_of = |schema: Value| -> Value {
        content_types
            .iter()
            .map(|t| ((*t).to_owned(), json!({"schema": schema.clone()})))
            .collect::<Map<String, Value>>()
            .into()
    };
    let mut paths = Map::new();
    for operation in operations {
        let mut parameters = path_parameters(operation.path);
        parameters.extend(query_parameters(operation.query));
        let mut described = json!({
            "summary": operation.summary,
            "parameters": parameters,
            "responses": {
                "2XX": {"description": "Done."},
                "4XX": {"description": "Refused, with the cause.", "content": json_of(error_schema())},
                "5XX": {
                    "description": "The worker could not do it now, with the cause.",
                    "content": json_of(error_schema())
                }
            }
        });
        if matches!(operation.method, "POST" | "PUT" | "PATCH") {
            described["requestBody"] = json!({
                "required": false,
                "content": json_of(json!({"type": "object"}))
            });
        }
        let methods = paths
            .entry(operation.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        methods[operation.method.to_ascii_lowercase()] = described;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION")},
        "paths": paths
    })
}

/// The worker's REST API.
pub fn rest_document() -> Value {
    document(
        "sluice worker REST API (Kafka Connect's)",
        ENDPOINTS.iter().map(|e| Operation {
            method: e.method,
            path: e.path,
            query: e.query,
            summary: e.summary,
        }),
        &["application/json"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_described_with_its_parameters() {
        let doc = rest_document();
        let restart = &doc["paths"]["/connectors/{name}/tasks/{task}/restart"]["post"];
        let names: Vec<&str> = restart["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["name", "task"]);
        let listed = &doc["paths"]["/connectors"]["get"]["parameters"][0];
        assert_eq!(listed["schema"]["enum"], json!(["status", "info"]));
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, ENDPOINTS.len());
    }
}
