//! Parsing Avro schema text from outside (a registry request, a writer
//! schema fetched by id) with apache-avro, without its panics: 0.21
//! unwraps an invalid type name (`"name": "a."`) instead of returning an
//! error, so names are checked here first, and a panic that still escapes
//! becomes an error rather than a dropped request or a dead task.

use serde_json::Value as Json;

/// The Avro schema in `json`, or why it is not one.
pub fn parse_schema(json: &Json) -> Result<apache_avro::Schema, String> {
    check_names(json)?;
    std::panic::catch_unwind(|| apache_avro::Schema::parse(json))
        .map_err(|_| "the schema could not be read (the Avro parser failed on it)".to_owned())?
        .map_err(|e| e.to_string())
}

/// [`parse_schema`] of schema text.
pub fn parse_schema_text(text: &str) -> Result<apache_avro::Schema, String> {
    let json: Json = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    parse_schema(&json)
}

/// Whether `name` is an Avro full name: dot-separated parts, each a
/// letter or `_` followed by letters, digits or `_`.
fn valid_full_name(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Walks the schema (not defaults or custom properties) checking every
/// `name`, `namespace` and alias.
fn check_names(json: &Json) -> Result<(), String> {
    match json {
        Json::Array(branches) => branches.iter().try_for_each(check_names),
        Json::Object(object) => {
            if let Some(name) = object.get("name") {
                match name.as_str() {
                    Some(n) if valid_full_name(n) => {}
                    _ => return Err(format!("invalid name {name}: Avro names are letters, digits and _, not starting with a digit, joined by dots")),
                }
            }
            if let Some(namespace) = object.get("namespace") {
                match namespace.as_str() {
                    Some("") => {}
                    Some(n) if valid_full_name(n) => {}
                    _ => return Err(format!("invalid namespace {namespace}")),
                }
            }
            if let Some(aliases) = object.get("aliases").and_then(Json::as_array) {
                for alias in aliases {
                    if !alias.as_str().is_some_and(valid_full_name) {
                        return Err(format!("invalid alias {alias}"));
                    }
                }
            }
            for key in ["type", "items", "values"] {
                if let Some(inner @ (Json::Object(_) | Json::Array(_))) = object.get(key) {
                    check_names(inner)?;
                }
            }
            if let Some(fields) = object.get("fields").and_then(Json::as_array) {
                fields.iter().try_for_each(check_names)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_are_errors_not_panics() {
        for text in [
            r#"{"type":"enum","name":"a.","symbols":["X"]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"e","type":{"type":"enum","name":"1x","symbols":[]}}]}"#,
            r#"{"type":"fixed","name":"F","namespace":"n..m","size":1}"#,
            r#"{"type":"record","name":"R","aliases":["ok","not ok"],"fields":[]}"#,
        ] {
            let error = parse_schema_text(text).expect_err(text);
            assert!(error.contains("invalid"), "{error}");
        }
        // Names inside defaults and custom properties are data.
        let fine = r#"{"type":"record","name":"R","connect.parameters":{"name":"any thing"},"fields":[{"name":"a","type":{"type":"map","values":"string"},"default":{"name":"x y"}}]}"#;
        parse_schema_text(fine).expect("valid");
    }
}
