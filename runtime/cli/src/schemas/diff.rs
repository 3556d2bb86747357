//! A field-level diff of two Avro schemas (as JSON), for telling a person
//! what changed between a contract and what a connector emits.

use serde_json::Value as Json;

/// One difference, as a line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A field only the live schema has.
    Added {
        /// Dotted path of the field.
        path: String,
        /// Its type.
        field_type: String,
    },
    /// A field only the contract has.
    Removed {
        /// Dotted path of the field.
        path: String,
        /// Its type.
        field_type: String,
    },
    /// A field whose type or default differs.
    Changed {
        /// Dotted path of the field.
        path: String,
        /// The contract's definition.
        contract: String,
        /// The live definition.
        live: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Added { path, field_type } => write!(f, "+ {path}: {field_type}  (live only)"),
            Self::Removed { path, field_type } => {
                write!(f, "- {path}: {field_type}  (contract only)")
            }
            Self::Changed {
                path,
                contract,
                live,
            } => write!(f, "~ {path}: {contract} -> {live}"),
        }
    }
}

/// The record a schema is (or the one record inside a nullable union).
fn as_record(schema: &Json) -> Option<&Json> {
    match schema {
        Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("record") => Some(schema),
        Json::Object(o) => o.get("type").and_then(as_record),
        Json::Array(branches) => {
            let records: Vec<&Json> = branches.iter().filter_map(as_record).collect();
            (records.len() == 1).then(|| records[0])
        }
        _ => None,
    }
}

fn fields(record: &Json) -> Vec<(&str, &Json)> {
    record
        .get("fields")
        .and_then(Json::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| Some((f.get("name")?.as_str()?, f)))
                .collect()
        })
        .unwrap_or_default()
}

fn describe(field: &Json) -> String {
    let mut text = field.get("type").map(Json::to_string).unwrap_or_default();
    if let Some(default) = field.get("default") {
        text.push_str(&format!(" = {default}"));
    }
    text
}

/// The differences from `contract` to `live`.
pub fn diff(contract: &Json, live: &Json) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", contract, live, &mut changes);
    changes
}

fn walk(path: &str, contract: &Json, live: &Json, out: &mut Vec<Change>) {
    let (Some(old), Some(new)) = (as_record(contract), as_record(live)) else {
        if contract != live {
            out.push(Change::Changed {
                path: if path.is_empty() {
                    "<root>".into()
                } else {
                    path.into()
                },
                contract: contract.to_string(),
                live: live.to_string(),
            });
        }
        return;
    };
    let old_fields = fields(old);
    let new_fields = fields(new);
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    for (name, old_field) in &old_fields {
        match new_fields.iter().find(|(n, _)| n == name) {
            None => out.push(Change::Removed {
                path: join(name),
                field_type: describe(old_field),
            }),
            Some((_, new_field)) if old_field != new_field => {
                let (old_type, new_type) = (&old_field["type"], &new_field["type"]);
                if old_field.get("default") == new_field.get("default")
                    && as_record(old_type).is_some()
                    && as_record(new_type).is_some()
                {
                    walk(&join(name), old_type, new_type, out);
                } else {
                    out.push(Change::Changed {
                        path: join(name),
                        contract: describe(old_field),
                        live: describe(new_field),
                    });
                }
            }
            Some(_) => {}
        }
    }
    for (name, new_field) in &new_fields {
        if !old_fields.iter().any(|(n, _)| n == name) {
            out.push(Change::Added {
                path: join(name),
                field_type: describe(new_field),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_added_removed_and_changed_fields_in_nested_records() {
        let contract = json!({"type": "record", "name": "R", "fields": [
            {"name": "a", "type": "int"},
            {"name": "gone", "type": "string"},
            {"name": "inner", "type": ["null", {"type": "record", "name": "I", "fields": [
                {"name": "x", "type": "int"}]}], "default": null}
        ]});
        let live = json!({"type": "record", "name": "R", "fields": [
            {"name": "a", "type": "long"},
            {"name": "inner", "type": ["null", {"type": "record", "name": "I", "fields": [
                {"name": "x", "type": "int"}, {"name": "y", "type": "int"}]}], "default": null},
            {"name": "new", "type": "string"}
        ]});
        let lines: Vec<String> = diff(&contract, &live)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            vec![
                "~ a: \"int\" -> \"long\"",
                "- gone: \"string\"  (contract only)",
                "+ inner.y: \"int\"  (live only)",
                "+ new: \"string\"  (live only)",
            ]
        );
    }
}
