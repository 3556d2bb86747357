//! Request body parsing with Connect-style 400 errors that say what is wrong.

use std::collections::BTreeMap;

use axum::body::Bytes;
use serde_json::Value as Json;

use super::ApiError;

/// Parses `body` as JSON, or explains why it is not.
pub fn json(body: &Bytes) -> Result<Json, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "Request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}")))
}

/// A connector config object: string values, with numbers and booleans
/// accepted and stringified as Connect does.
pub fn config_map(value: &Json, what: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Json::Object(map) = value else {
        return Err(ApiError::bad_request(format!(
            "{what} must be a JSON object of string keys and values"
        )));
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{what}: value of {k} must be a string, number or boolean, not {other}"
                    )))
                }
            };
            Ok((k.clone(), text))
        })
        .collect()
}
