//! Schema text as the registry stores it: validated by apache-avro, kept as
//! compact JSON (the identity of a schema), optionally normalized.

use serde_json::{Map, Value as Json};

use super::avro_model::AvroModel;
use super::error::RegistryError;

/// A schema the registry accepted.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// Compact JSON; equal text means the same schema (and the same id).
    pub canonical: String,
    /// The model compatibility checks work on.
    pub model: AvroModel,
}

/// Validates `text` as an Avro schema; `normalize` rewrites it to a
/// canonical shape first so cosmetic differences map to one id.
pub fn parse(text: &str, normalize: bool) -> Result<ParsedSchema, RegistryError> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        RegistryError::InvalidSchema(format!("Invalid schema {text}: not valid JSON: {e}"))
    })?;
    let json = if normalize {
        normalized(&json, "")
    } else {
        json
    };
    super::untrusted::parse_schema(&json).map_err(|e| {
        RegistryError::InvalidSchema(format!("Invalid schema {text}, details: {e}"))
    })?;
    let model = AvroModel::from_json(&json)
        .map_err(|e| RegistryError::InvalidSchema(format!("Invalid schema {text}: {e}")))?;
    Ok(ParsedSchema {
        canonical: json.to_string(),
        model,
    })
}

/// Where a key goes in normalized output; unknown keys (custom properties
/// such as `connect.name`) follow in name order.
fn key_rank(key: &str) -> usize {
    const ORDER: [&str; 11] = [
        "type", "name", "doc", "fields", "symbols", "items", "values", "size", "default", "order",
        "aliases",
    ];
    ORDER.iter().position(|k| *k == key).unwrap_or(ORDER.len())
}

/// The normalized form: names fully qualified (no `namespace` keys),
/// `{"type": "int"}` collapsed to `"int"`, keys in a fixed order.
fn normalized(json: &Json, namespace: &str) -> Json {
    match json {
        Json::Array(items) => Json::Array(items.iter().map(|i| normalized(i, namespace)).collect()),
        Json::Object(object) => {
            if object.len() == 1 {
                if let Some(Json::String(t)) = object.get("type") {
                    return Json::String(t.clone());
                }
            }
            let named = matches!(
                object.get("type").and_then(Json::as_str),
                Some("record" | "error" | "enum" | "fixed")
            );
            let own_namespace = object
                .get("namespace")
                .and_then(Json::as_str)
                .unwrap_or(namespace);
            let mut inner_namespace = namespace.to_owned();
            let mut keys: Vec<&String> = object.keys().filter(|k| *k != "namespace").collect();
            keys.sort_by(|a, b| key_rank(a).cmp(&key_rank(b)).then(a.cmp(b)));
            let mut out = Map::new();
            for key in keys {
                let value = &object[key.as_str()];
                let value = match key.as_str() {
                    "name" if named => {
                        let name = value.as_str().unwrap_or_default();
                        let full = if name.contains('.') || own_namespace.is_empty() {
                            name.to_owned()
                        } else {
                            format!("{own_namespace}.{name}")
                        };
                        inner_namespace = full
                            .rsplit_once('.')
                            .map_or(String::new(), |(ns, _)| ns.to_owned());
                        Json::String(full)
                    }
                    // `"type": "record"` (or array, map, …) is a keyword,
                    // not a name to qualify.
                    "type" if value.as_str().is_some_and(is_type_keyword) => value.clone(),
                    "type" | "items" | "values" => normalized(value, &inner_namespace),
                    "fields" => Json::Array(
                        value
                            .as_array()
                            .map(|fields| {
                                fields
                                    .iter()
                                    .map(|f| normalized_field(f, &inner_namespace))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ),
                    _ => value.clone(),
                };
                out.insert(key.clone(), value);
            }
            Json::Object(out)
        }
        Json::String(name) => {
            let primitive = matches!(
                name.as_str(),
                "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string"
            );
            if primitive || name.contains('.') || namespace.is_empty() {
                json.clone()
            } else {
                Json::String(format!("{namespace}.{name}"))
            }
        }
        other => other.clone(),
    }
}

/// The words that introduce a complex schema in its `type` attribute.
fn is_type_keyword(word: &str) -> bool {
    matches!(
        word,
        "record" | "error" | "enum" | "fixed" | "array" | "map"
    )
}

fn normalized_field(field: &Json, namespace: &str) -> Json {
    let Json::Object(object) = field else {
        return field.clone();
    };
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort_by(|a, b| key_rank(a).cmp(&key_rank(b)).then(a.cmp(b)));
    // A field's "name" precedes its "type".
    keys.sort_by_key(|k| *k != "name");
    let mut out = Map::new();
    for key in keys {
        let value = &object[key.as_str()];
        let value = if key == "type" {
            normalized(value, namespace)
        } else {
            value.clone()
        };
        out.insert(key.clone(), value);
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_change_identity() {
        let a = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            false,
        )
        .expect("valid");
        let b = parse(
            "{ \"type\": \"record\",\n \"name\": \"R\", \"fields\": [ {\"name\": \"a\", \"type\": \"int\"} ] }",
            false,
        )
        .expect("valid");
        assert_eq!(a.canonical, b.canonical);
    }

    #[test]
    fn normalize_qualifies_names_and_collapses_primitives() {
        let a = parse(
            r#"{"namespace":"x","name":"R","type":"record","fields":[{"type":{"type":"int"},"name":"a"}]}"#,
            true,
        )
        .expect("valid");
        assert_eq!(
            a.canonical,
            r#"{"type":"record","name":"x.R","fields":[{"name":"a","type":"int"}]}"#
        );
    }

    #[test]
    fn normalize_keeps_nested_records_arrays_and_maps_valid() {
        // A record nested in a namespaced record, as every Debezium
        // envelope has (`before` / `after`); its `type` is a keyword.
        let text = r#"{"type":"record","name":"a.b.Envelope","fields":[
            {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
                {"name":"tags","type":{"type":"array","items":"string"}},
                {"name":"attrs","type":{"type":"map","values":"long"}}]}]},
            {"name":"after","type":["null","Value"]}]}"#;
        let parsed = parse(text, true).expect("a valid schema stays valid when normalized");
        assert!(
            parsed.canonical.contains(r#""name":"a.b.Value""#),
            "{}",
            parsed.canonical
        );
        assert!(parsed.canonical.contains(r#""a.b.Value""#));
        assert!(
            !parsed.canonical.contains("a.b.record"),
            "{}",
            parsed.canonical
        );
    }

    #[test]
    fn invalid_schema_is_42201() {
        let err = parse(r#"{"type":"record","name":"R"}"#, false).expect_err("no fields");
        assert_eq!(err.code(), 42201);
        let err = parse("{not json", false).expect_err("not json");
        assert_eq!(err.code(), 42201);
    }

    /// Issue 19 (bad input): schema text posted to the registry is outside
    /// input. Mutations of real schemas, and nesting far deeper than any
    /// schema, parse or are refused with an error, never a panic or a
    /// stack overflow. A deterministic stand-in for `cargo fuzz`.
    #[test]
    fn mutated_and_deep_schemas_never_panic() {
        let samples = [
            r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":["null","int"],"default":null},{"name":"b","type":{"type":"array","items":{"type":"map","values":"string"}}},{"name":"c","type":{"type":"enum","name":"E","symbols":["X","Y"]}},{"name":"d","type":{"type":"fixed","name":"F","size":4}},{"name":"e","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}}]}"#,
            r#"["null",{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}]"#,
        ];
        let mut state: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> = "{}[]\":,0123456789-.eE nulltruefalse\\ü\u{0}"
            .chars()
            .collect();
        for sample in samples {
            for _ in 0..3000 {
                let mut text: Vec<char> = sample.chars().collect();
                for _ in 0..1 + next() % 3 {
                    let at = (next() as usize) % text.len();
                    match next() % 3 {
                        0 => text[at] = alphabet[(next() as usize) % alphabet.len()],
                        1 => {
                            text.remove(at);
                        }
                        _ => text.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    }
                }
                let text: String = text.into_iter().collect();
                let _ = parse(&text, next() % 2 == 0);
            }
        }
        let deep_arrays = format!(
            "{}\"int\"{}",
            "{\"type\":\"array\",\"items\":".repeat(5000),
            "}".repeat(5000)
        );
        assert!(parse(&deep_arrays, false).is_err());
        let deep_unions = format!("{}\"int\"{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep_unions, true).is_err());
    }
}
