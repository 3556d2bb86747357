//! `io.debezium.transforms.ExtractNewRecordState` ("unwrap"): replaces the
//! change-event envelope by the row state after the change, for consumers
//! that want plain rows. Deletes and tombstones are handled as
//! `delete.tombstone.handling.mode` (Debezium 3) or the older
//! `delete.handling.mode` + `drop.tombstones` say; chosen envelope and
//! source fields can be added as fields or headers; the topic can be taken
//! from a field. Records that are not change events (heartbeats, schema
//! changes) pass unchanged, as Debezium does.

use std::sync::Arc;

use sluice_connector_api::{Field, Schema, Value};

use crate::transforms::fields::{self, struct_like, struct_values};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// What happens to a delete event and to the tombstone after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteMode {
    /// Both are removed.
    Drop,
    /// The delete is removed, the tombstone kept (Debezium 3's default).
    Tombstone,
    /// The delete becomes its `before` row with `__deleted=true`; the
    /// tombstone is removed.
    Rewrite,
    /// As `Rewrite`, and the tombstone is kept.
    RewriteWithTombstone,
    /// The delete becomes a tombstone; the original tombstone is removed.
    DeleteToTombstone,
    /// Legacy `delete.handling.mode=none`: the delete is kept as a record
    /// with a null value; tombstones as `drop.tombstones` says.
    KeepAsNull { keep_tombstones: bool },
}

/// Where an added field's value comes from.
#[derive(Debug, Clone)]
struct FieldRef {
    /// Envelope field (`op`, `ts_ms`) or `source` field (`source.table`, or
    /// a bare source field name such as `table` or `lsn`).
    path: String,
    /// The name it gets: prefix + path with dots as underscores, or a
    /// rename given as `path:name`.
    name: String,
}

/// The configured transform.
pub struct ExtractNewRecordState {
    mode: DeleteMode,
    add_fields: Vec<FieldRef>,
    add_headers: Vec<FieldRef>,
    route_by_field: Option<String>,
    deleted_field: String,
    schemas: SchemaCache,
}

impl ExtractNewRecordState {
    /// Reads the settings.
    pub fn new(settings: &Settings) -> Result<Self, sluice_connector_api::ConfigError> {
        let mode = match settings.get("delete.tombstone.handling.mode") {
            Some(_) => match settings
                .one_of(
                    "delete.tombstone.handling.mode",
                    &[
                        "drop",
                        "tombstone",
                        "rewrite",
                        "rewrite-with-tombstone",
                        "delete-to-tombstone",
                    ],
                    "tombstone",
                )?
                .as_str()
            {
                "drop" => DeleteMode::Drop,
                "rewrite" => DeleteMode::Rewrite,
                "rewrite-with-tombstone" => DeleteMode::RewriteWithTombstone,
                "delete-to-tombstone" => DeleteMode::DeleteToTombstone,
                _ => DeleteMode::Tombstone,
            },
            None if settings.get("delete.handling.mode").is_some()
                || settings.get("drop.tombstones").is_some() =>
            {
                // Debezium 2's pair of keys, with Debezium 2's defaults.
                let keep_tombstones = !settings.bool_or("drop.tombstones", true)?;
                match settings
                    .one_of("delete.handling.mode", &["drop", "rewrite", "none"], "drop")?
                    .as_str()
                {
                    "rewrite" if keep_tombstones => DeleteMode::RewriteWithTombstone,
                    "rewrite" => DeleteMode::Rewrite,
                    "none" => DeleteMode::KeepAsNull { keep_tombstones },
                    _ if keep_tombstones => DeleteMode::Tombstone,
                    _ => DeleteMode::Drop,
                }
            }
            None => DeleteMode::Tombstone,
        };
        let prefix = settings.get_or("add.fields.prefix", "__");
        let header_prefix = settings.get_or("add.headers.prefix", "__");
        let refs = |key: &str, prefix: &str| -> Vec<FieldRef> {
            settings
                .list(key)
                .into_iter()
                .map(|item| match item.split_once(':') {
                    Some((path, name)) => FieldRef {
                        path: path.trim().to_owned(),
                        name: name.trim().to_owned(),
                    },
                    None => FieldRef {
                        name: format!("{prefix}{}", item.replace('.', "_")),
                        path: item,
                    },
                })
                .collect()
        };
        Ok(Self {
            mode,
            add_fields: refs("add.fields", prefix),
            add_headers: refs("add.headers", header_prefix),
            route_by_field: settings
                .get("route.by.field")
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned),
            deleted_field: format!("{prefix}deleted"),
            schemas: SchemaCache::default(),
        })
    }

    fn rewrites(&self) -> bool {
        matches!(
            self.mode,
            DeleteMode::Rewrite | DeleteMode::RewriteWithTombstone
        )
    }

    /// The unwrapped value's schema: the row schema plus added fields.
    fn derive_schema(&self, envelope: &Schema) -> Result<Schema, Failure> {
        let row = envelope
            .field("after")
            .or_else(|| envelope.field("before"))
            .map(|(_, f)| Arc::clone(&f.schema))
            .ok_or_else(|| Failure::new("the envelope has no after field"))?;
        let mut fields = row.fields().to_vec();
        for added in &self.add_fields {
            let schema = lookup_schema(envelope, &added.path).ok_or_else(|| {
                Failure::new(format!(
                    "add.fields names {}, which the change event does not have",
                    added.path
                ))
            })?;
            fields.push(Field {
                name: added.name.clone(),
                schema: Arc::new(fields::optional(&schema)),
            });
        }
        if self.rewrites() {
            fields.push(Field::new(&self.deleted_field, Schema::string().optional()));
        }
        let mut schema = struct_like(&row, fields);
        // The row schema is optional inside the envelope; as a whole value
        // it is not (Debezium's unwrapped value schema is required).
        schema.optional = false;
        Ok(schema)
    }
}

/// The schema of an envelope field, or of a `source` field.
fn lookup_schema(envelope: &Schema, path: &str) -> Option<Arc<Schema>> {
    let (_, source) = envelope.field("source")?;
    match path.strip_prefix("source.") {
        Some(inner) => source
            .schema
            .field(inner)
            .map(|(_, f)| Arc::clone(&f.schema)),
        None => envelope
            .field(path)
            .map(|(_, f)| Arc::clone(&f.schema))
            .or_else(|| {
                source
                    .schema
                    .field(path)
                    .map(|(_, f)| Arc::clone(&f.schema))
            }),
    }
}

/// The value of an envelope field, or of a `source` field.
fn lookup_value(envelope: &Schema, values: &[Value], path: &str) -> Value {
    let source = || {
        let (i, f) = envelope.field("source")?;
        Some((f.schema.clone(), values.get(i)?))
    };
    let from_source = |name: &str| -> Option<Value> {
        let (schema, value) = source()?;
        let inner = struct_values(&schema, value).ok()?;
        schema.field(name).and_then(|(i, _)| inner.get(i).cloned())
    };
    let found = match path.strip_prefix("source.") {
        Some(inner) => from_source(inner),
        None => envelope
            .field(path)
            .and_then(|(i, _)| values.get(i).cloned())
            .or_else(|| from_source(path)),
    };
    found.unwrap_or(Value::Null)
}

/// Whether a schema is a Debezium change-event envelope.
fn is_envelope(schema: &Schema) -> bool {
    schema
        .name
        .as_deref()
        .is_some_and(|n| n.ends_with(".Envelope"))
        && schema.field("op").is_some()
        && schema.field("after").is_some()
}

impl Transform for ExtractNewRecordState {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let Some(value) = record.value.take() else {
            let keep = matches!(
                self.mode,
                DeleteMode::Tombstone
                    | DeleteMode::RewriteWithTombstone
                    | DeleteMode::KeepAsNull {
                        keep_tombstones: true
                    }
            );
            return Ok(keep.then_some(record));
        };
        let Some(envelope) = record.value_schema.clone().filter(|s| is_envelope(s)) else {
            record.value = Some(value);
            return Ok(Some(record));
        };
        let Value::Struct(values) = value else {
            return Err(Failure::new("a change event's value is not a struct"));
        };
        let field = |name: &str| envelope.field(name).and_then(|(i, _)| values.get(i));
        let op = match field("op") {
            Some(Value::String(op)) => op.clone(),
            _ => return Err(Failure::new("a change event without op")),
        };
        let row = if op == "d" {
            match self.mode {
                DeleteMode::Drop | DeleteMode::Tombstone => return Ok(None),
                DeleteMode::DeleteToTombstone | DeleteMode::KeepAsNull { .. } => {
                    // The key stays; the value (and its schema) go.
                    record.value_schema = None;
                    self.add_headers_to(&mut record, &envelope, &values);
                    return Ok(Some(record));
                }
                DeleteMode::Rewrite | DeleteMode::RewriteWithTombstone => field("before"),
            }
        } else {
            field("after")
        };
        let row = match row {
            Some(Value::Struct(row)) => row.clone(),
            // A truncate (op t) has no row: nothing to unwrap, as Debezium.
            _ if op == "t" => return Ok(None),
            _ => {
                return Err(Failure::new(format!(
                    "a change event (op {op}) without its row"
                )))
            }
        };
        let schema = self.schemas.get_or(&envelope, |e| self.derive_schema(e))?;
        let mut out = row;
        for added in &self.add_fields {
            out.push(lookup_value(&envelope, &values, &added.path));
        }
        if self.rewrites() {
            out.push(Value::String((op == "d").to_string().into()));
        }
        if let Some(route) = &self.route_by_field {
            let (i, _) = schema.field(route).ok_or_else(|| {
                Failure::new(format!(
                    "route.by.field names {route}, which the row does not have"
                ))
            })?;
            match &out[i] {
                Value::Null => {}
                other => record.topic = fields::text_of(other).into(),
            }
        }
        self.add_headers_to(&mut record, &envelope, &values);
        record.value_schema = Some(schema);
        record.value = Some(Value::Struct(out));
        Ok(Some(record))
    }
}

impl ExtractNewRecordState {
    fn add_headers_to(&self, record: &mut Record, envelope: &Schema, values: &[Value]) {
        for added in &self.add_headers {
            let value = lookup_value(envelope, values, &added.path);
            record
                .headers
                .push((added.name.clone(), fields::text_of(&value).into_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{envelope_with, row, row_record};

    fn envelope_schema() -> Arc<Schema> {
        let source = Schema::structure(
            "io.debezium.connector.postgresql.Source",
            vec![
                Field::new("table", Schema::string()),
                Field::new("lsn", Schema::int64().optional()),
            ],
        );
        envelope_with(vec![
            Field::new("source", source),
            Field::new("op", Schema::string()),
            Field::new("ts_ms", Schema::int64().optional()),
        ])
    }

    /// A change event of `op` with the given rows, on a shared schema.
    fn event(
        schema: &Arc<Schema>,
        op: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Record {
        let mut record = row_record(1, "", "");
        record.value_schema = Some(Arc::clone(schema));
        record.value = Some(Value::Struct(vec![
            before.unwrap_or(Value::Null),
            after.unwrap_or(Value::Null),
            Value::Struct(vec![Value::String("customers".into()), Value::Int64(42)]),
            Value::String(op.into()),
            Value::Int64(1_700_000_000_123),
        ]));
        record
    }

    fn tombstone() -> Record {
        let mut record = row_record(1, "", "");
        record.value_schema = None;
        record.value = None;
        record
    }

    fn unwrap(pairs: &[(&str, &str)]) -> ExtractNewRecordState {
        ExtractNewRecordState::new(&Settings::from_pairs("transforms.unwrap.", pairs)).unwrap()
    }

    #[test]
    fn an_update_becomes_its_after_row_with_the_row_schema_name() {
        let schema = envelope_schema();
        let t = unwrap(&[]);
        let out = t
            .apply(event(
                &schema,
                "u",
                Some(row(1, "old", "o@x")),
                Some(row(1, "new", "n@x")),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(out.value, Some(row(1, "new", "n@x")));
        let value_schema = out.value_schema.unwrap();
        assert_eq!(
            value_schema.name.as_deref(),
            Some("db.inventory.customers.Value")
        );
        assert!(!value_schema.optional);
        // The key is untouched.
        assert_eq!(out.key, Some(Value::Struct(vec![Value::Int32(1)])));
    }

    #[test]
    fn by_default_a_delete_is_dropped_and_its_tombstone_kept() {
        let schema = envelope_schema();
        let t = unwrap(&[]);
        assert!(t
            .apply(event(&schema, "d", Some(row(1, "a", "b")), None))
            .unwrap()
            .is_none());
        assert!(t.apply(tombstone()).unwrap().is_some());
    }

    #[test]
    fn rewrite_marks_deletes_and_drops_tombstones() {
        let schema = envelope_schema();
        let t = unwrap(&[("delete.tombstone.handling.mode", "rewrite")]);
        let out = t
            .apply(event(&schema, "d", Some(row(1, "a", "b")), None))
            .unwrap()
            .unwrap();
        let Some(Value::Struct(values)) = out.value else {
            panic!()
        };
        assert_eq!(values.last(), Some(&Value::String("true".into())));
        assert_eq!(values[1], Value::String("a".into()));
        let created = t
            .apply(event(&schema, "c", None, Some(row(2, "c", "d"))))
            .unwrap()
            .unwrap();
        let Some(Value::Struct(values)) = created.value else {
            panic!()
        };
        assert_eq!(values.last(), Some(&Value::String("false".into())));
        assert_eq!(
            created.value_schema.unwrap().fields().last().unwrap().name,
            "__deleted"
        );
        assert!(t.apply(tombstone()).unwrap().is_none());
    }

    #[test]
    fn the_debezium_2_keys_keep_their_meaning() {
        let schema = envelope_schema();
        let legacy = unwrap(&[
            ("drop.tombstones", "false"),
            ("delete.handling.mode", "rewrite"),
        ]);
        assert!(legacy.apply(tombstone()).unwrap().is_some());
        assert!(legacy
            .apply(event(&schema, "d", Some(row(1, "a", "b")), None))
            .unwrap()
            .is_some());
        let none = unwrap(&[("delete.handling.mode", "none")]);
        let out = none
            .apply(event(&schema, "d", Some(row(1, "a", "b")), None))
            .unwrap()
            .unwrap();
        assert!(out.value.is_none() && out.key.is_some());
        // drop.tombstones defaults to true in Debezium 2.
        assert!(none.apply(tombstone()).unwrap().is_none());
    }

    #[test]
    fn delete_to_tombstone_turns_the_delete_into_the_tombstone() {
        let schema = envelope_schema();
        let t = unwrap(&[("delete.tombstone.handling.mode", "delete-to-tombstone")]);
        let out = t
            .apply(event(&schema, "d", Some(row(1, "a", "b")), None))
            .unwrap()
            .unwrap();
        assert!(out.value.is_none() && out.value_schema.is_none());
        assert!(t.apply(tombstone()).unwrap().is_none());
    }

    #[test]
    fn added_fields_and_headers_come_from_the_envelope_and_source() {
        let schema = envelope_schema();
        let t = unwrap(&[
            ("add.fields", "op,table,source.lsn"),
            ("add.headers", "op"),
            ("add.headers.prefix", "dbz."),
        ]);
        let first = t
            .apply(event(&schema, "c", None, Some(row(1, "a", "b"))))
            .unwrap()
            .unwrap();
        let derived = first.value_schema.clone().unwrap();
        let names: Vec<&str> = derived.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "name", "email", "__op", "__table", "__source_lsn"]
        );
        let Some(Value::Struct(values)) = &first.value else {
            panic!()
        };
        assert_eq!(
            values[3..],
            [
                Value::String("c".into()),
                Value::String("customers".into()),
                Value::Int64(42)
            ]
        );
        assert_eq!(first.header("dbz.op"), Some(&b"c"[..]));
        // The same envelope schema gives the very same derived schema, so
        // the registry is asked once.
        let second = t
            .apply(event(&schema, "u", None, Some(row(1, "a", "b"))))
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&derived, second.value_schema.as_ref().unwrap()));
    }

    #[test]
    fn route_by_field_sets_the_topic() {
        let schema = envelope_schema();
        let t = unwrap(&[("route.by.field", "name")]);
        let out = t
            .apply(event(&schema, "c", None, Some(row(1, "shard_7", "b"))))
            .unwrap()
            .unwrap();
        assert_eq!(out.topic, "shard_7");
    }

    #[test]
    fn records_that_are_not_change_events_pass_unchanged() {
        let t = unwrap(&[]);
        let heartbeat = row_record(1, "a", "b");
        assert_eq!(t.apply(heartbeat.clone()).unwrap(), Some(heartbeat));
    }

    #[test]
    fn a_bad_mode_names_the_key() {
        let e = ExtractNewRecordState::new(&Settings::from_pairs(
            "transforms.unwrap.",
            &[("delete.tombstone.handling.mode", "sometimes")],
        ))
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.unwrap.delete.tombstone.handling.mode");
    }
}
