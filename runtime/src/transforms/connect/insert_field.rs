//! `InsertField$Key` / `$Value`: adds the record's topic, partition, offset,
//! timestamp and/or a static text as fields. A name ending in `!` makes the
//! field required, `?` (the default) optional.

use std::sync::Arc;

use sluice_connector_api::{logical, ConfigError, Field, Schema, Value};

use crate::transforms::fields::{map_entries, struct_like, struct_values, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// One field to insert.
#[derive(Debug, Clone)]
struct Insert {
    name: String,
    required: bool,
    what: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Topic,
    Partition,
    Offset,
    Timestamp,
    Static(String),
}

/// The configured transform.
pub struct InsertField {
    side: Side,
    inserts: Vec<Insert>,
    schemas: SchemaCache,
}

impl InsertField {
    /// Reads the `*.field` keys and `static.value`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let mut inserts = Vec::new();
        let spec = |key: &str, what: Source, inserts: &mut Vec<Insert>| {
            if let Some(raw) = settings.get(key).map(str::trim).filter(|s| !s.is_empty()) {
                let (name, required) = match (raw.strip_suffix('!'), raw.strip_suffix('?')) {
                    (Some(n), _) => (n, true),
                    (_, Some(n)) => (n, false),
                    _ => (raw, false),
                };
                inserts.push(Insert {
                    name: name.to_owned(),
                    required,
                    what,
                });
            }
        };
        spec("topic.field", Source::Topic, &mut inserts);
        spec("partition.field", Source::Partition, &mut inserts);
        spec("offset.field", Source::Offset, &mut inserts);
        spec("timestamp.field", Source::Timestamp, &mut inserts);
        if settings.get("static.field").is_some() {
            let value = settings.required("static.value")?.to_owned();
            spec("static.field", Source::Static(value), &mut inserts);
        }
        if inserts.is_empty() {
            return Err(settings.error(
                "topic.field",
                "InsertField needs at least one of topic.field, partition.field, offset.field, timestamp.field, static.field",
            ));
        }
        Ok(Self {
            side,
            inserts,
            schemas: SchemaCache::default(),
        })
    }

    fn value_of(&self, insert: &Insert, record: &Record) -> Result<Value, Failure> {
        let value = match &insert.what {
            Source::Topic => Some(Value::String(record.topic.clone())),
            Source::Partition => record.kafka_partition.map(Value::Int32),
            Source::Offset => record.kafka_offset.map(Value::Int64),
            Source::Timestamp => record.timestamp_ms.map(Value::Int64),
            Source::Static(text) => Some(Value::String(text.clone().into())),
        };
        match value {
            Some(v) => Ok(v),
            None if insert.required => Err(Failure::new(format!(
                "{} is required but the record has no {}",
                insert.name,
                match insert.what {
                    Source::Offset => "Kafka offset (offset.field only works on sink connectors)",
                    Source::Partition => "Kafka partition",
                    _ => "timestamp",
                }
            ))),
            None => Ok(Value::Null),
        }
    }
}

fn schema_of(insert: &Insert) -> Schema {
    let schema = match insert.what {
        Source::Topic | Source::Static(_) => Schema::string(),
        Source::Partition => Schema::int32(),
        Source::Offset => Schema::int64(),
        Source::Timestamp => logical::timestamp_millis(),
    };
    if insert.required {
        schema
    } else {
        schema.optional()
    }
}

impl Transform for InsertField {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |record, schema, value| {
            let added: Vec<Value> = self
                .inserts
                .iter()
                .map(|i| self.value_of(i, record))
                .collect::<Result<_, _>>()?;
            let (schema, value) = match schema {
                Some(schema) => {
                    let mut values = struct_values(&schema, &value)?.to_vec();
                    values.extend(added);
                    let derived = self.schemas.get_or(&schema, |s| {
                        let mut fields = s.fields().to_vec();
                        fields.extend(self.inserts.iter().map(|i| Field {
                            name: i.name.clone(),
                            schema: Arc::new(schema_of(i)),
                        }));
                        Ok::<_, Failure>(struct_like(s, fields))
                    })?;
                    (Some(derived), Value::Struct(values))
                }
                None => {
                    let mut entries = map_entries(&value)?.to_vec();
                    entries.extend(
                        self.inserts
                            .iter()
                            .zip(added)
                            .map(|(i, v)| (Value::String(i.name.clone().into()), v)),
                    );
                    (None, Value::Map(entries))
                }
            };
            Ok((schema, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{row_record, schemaless};

    fn insert(pairs: &[(&str, &str)]) -> InsertField {
        InsertField::new(
            Side::Value,
            &Settings::from_pairs("transforms.insert.", pairs),
        )
        .unwrap()
    }

    #[test]
    fn adds_topic_timestamp_and_static_fields_to_the_schema() {
        let t = insert(&[
            ("topic.field", "src_topic"),
            ("timestamp.field", "ts!"),
            ("static.field", "origin"),
            ("static.value", "eu"),
        ]);
        let out = t.apply(row_record(1, "a", "a@x")).unwrap().unwrap();
        let schema = out.value_schema.unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "email", "src_topic", "ts", "origin"]);
        assert_eq!(schema.name.as_deref(), Some("db.inventory.customers.Value"));
        let (_, ts) = schema.field("ts").unwrap();
        assert!(!ts.schema.optional);
        assert_eq!(
            ts.schema.name.as_deref(),
            Some("org.apache.kafka.connect.data.Timestamp")
        );
        let Some(Value::Struct(values)) = out.value else {
            panic!()
        };
        assert_eq!(values[3], Value::String("db.inventory.customers".into()));
        assert_eq!(values[4], Value::Int64(1_700_000_000_000));
        assert_eq!(values[5], Value::String("eu".into()));
    }

    #[test]
    fn works_without_a_schema_and_keeps_tombstones() {
        let t = insert(&[("topic.field", "t")]);
        let out = t
            .apply(schemaless(row_record(1, "a", "b")))
            .unwrap()
            .unwrap();
        let Some(Value::Map(entries)) = out.value else {
            panic!()
        };
        assert_eq!(entries.last().unwrap().0, Value::String("t".into()));
        let mut tombstone = row_record(1, "a", "b");
        tombstone.value = None;
        let out = t.apply(tombstone).unwrap().unwrap();
        assert!(out.value.is_none());
    }

    #[test]
    fn a_required_offset_on_a_source_record_fails_the_record() {
        let t = insert(&[("offset.field", "off!")]);
        assert!(t.apply(row_record(1, "a", "b")).is_err());
    }

    #[test]
    fn the_derived_schema_is_shared_between_records() {
        let t = insert(&[("topic.field", "t")]);
        let first = row_record(1, "a", "b");
        let mut second = row_record(2, "c", "d");
        second.value_schema = first.value_schema.clone();
        let a = t.apply(first).unwrap().unwrap();
        let b = t.apply(second).unwrap().unwrap();
        assert!(Arc::ptr_eq(
            a.value_schema.as_ref().unwrap(),
            b.value_schema.as_ref().unwrap()
        ));
    }
}
