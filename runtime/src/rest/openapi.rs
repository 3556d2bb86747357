//! The REST API as an OpenAPI 3 document, written from the same endpoint
//! table the router and the reference are built from, and served at
//! `/openapi.json` — so a client generator or a fuzzer (the test suite runs
//! schemathesis against it) sees exactly what the worker answers. Every
//! error is declared in Connect's shape, `{"error_code", "message"}`.

use serde_json::{json, Map, Value};

use super::endpoints::ENDPOINTS;

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
                "task" => (json!({"type": "integer", "minimum": 0}), json!(0)),
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

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let mut parameters = path_parameters(endpoint.path);
        parameters.extend(query_parameters(endpoint.query));
        let mut operation = json!({
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": {
                "2XX": {"description": "Done."},
                "4XX": {
                    "description": "Refused, with the cause.",
                    "content": {"application/json": {"schema": error_schema()}}
                },
                "5XX": {
                    "description": "The worker could not do it now, with the cause.",
                    "content": {"application/json": {"schema": error_schema()}}
                }
            }
        });
        if matches!(endpoint.method, "POST" | "PUT" | "PATCH") {
            operation["requestBody"] = json!({
                "required": false,
                "content": {"application/json": {"schema": {"type": "object"}}}
            });
        }
        let methods = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        methods[endpoint.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "sluice worker REST API (Kafka Connect's)",
            "version": env!("CARGO_PKG_VERSION")
        },
        "paths": paths
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_described_with_its_parameters() {
        let doc = document();
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
