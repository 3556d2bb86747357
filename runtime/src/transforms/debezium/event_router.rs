//! `io.debezium.transforms.outbox.EventRouter`: the outbox pattern. Inserts
//! into an outbox table become events on a topic chosen by a column
//! (`route.by.field`, default `aggregatetype`, through `route.topic.regex`
//! and `route.topic.replacement`, default `outbox.event.${routedByValue}`),
//! keyed by another (`aggregateid`), whose value is the payload column,
//! optionally expanded from JSON text into a structure. The event id goes
//! to the `id` header; more columns can be placed in headers, beside the
//! payload, or used as the partition. Deletes of outbox rows are dropped;
//! updates are dropped with a warning, or fail the record, as
//! `debezium.op.invalid.behavior` says.

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Field, Schema, SchemaKind, Value};

use crate::transforms::fields::{self, text_of};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// Where an additional column goes.
#[derive(Debug, Clone, PartialEq)]
enum Placement {
    Header,
    Envelope,
    Partition,
}

/// One `table.fields.additional.placement` entry.
#[derive(Debug, Clone)]
struct Additional {
    column: String,
    placement: Placement,
    name: String,
}

/// The configured transform.
pub struct EventRouter {
    id: String,
    key: String,
    payload: String,
    timestamp: Option<String>,
    route_by: String,
    route_regex: regex_lite::Regex,
    route_replacement: String,
    tombstone_on_empty: bool,
    expand_json: bool,
    fail_on_update: bool,
    additional: Vec<Additional>,
    /// Envelope value schemas by payload schema (when columns are placed
    /// beside the payload).
    envelopes: SchemaCache,
}

impl EventRouter {
    /// Reads the settings, with Debezium's defaults.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let regex_text = settings.get_or("route.topic.regex", "(?<routedByValue>.*)");
        let route_regex = regex_lite::Regex::new(&format!("^(?:{regex_text})$")).map_err(|e| {
            settings.error(
                "route.topic.regex",
                format!("is not a valid regular expression: {e}"),
            )
        })?;
        let additional = settings
            .list("table.fields.additional.placement")
            .into_iter()
            .map(|entry| {
                let parts: Vec<&str> = entry.split(':').map(str::trim).collect();
                let placement = match parts.get(1).copied() {
                    Some("header") => Placement::Header,
                    Some("envelope") => Placement::Envelope,
                    Some("partition") => Placement::Partition,
                    _ => {
                        return Err(settings.error(
                            "table.fields.additional.placement",
                            format!("{entry:?} is not column:header|envelope|partition[:alias]"),
                        ))
                    }
                };
                Ok(Additional {
                    column: parts[0].to_owned(),
                    name: parts.get(2).unwrap_or(&parts[0]).to_string(),
                    placement,
                })
            })
            .collect::<Result<_, _>>()?;
        let invalid = settings.one_of(
            "debezium.op.invalid.behavior",
            &["warn", "error", "fatal"],
            "warn",
        )?;
        let optional = |key: &str| {
            settings
                .get(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(Self {
            id: settings.get_or("table.field.event.id", "id").to_owned(),
            key: settings
                .get_or("table.field.event.key", "aggregateid")
                .to_owned(),
            payload: settings
                .get_or("table.field.event.payload", "payload")
                .to_owned(),
            timestamp: optional("table.field.event.timestamp"),
            route_by: settings
                .get_or("route.by.field", "aggregatetype")
                .to_owned(),
            route_regex,
            route_replacement: settings
                .get_or("route.topic.replacement", "outbox.event.${routedByValue}")
                .to_owned(),
            tombstone_on_empty: settings.bool_or("route.tombstone.on.empty.payload", false)?,
            expand_json: settings.bool_or("table.expand.json.payload", false)?,
            fail_on_update: invalid != "warn",
            additional,
            envelopes: SchemaCache::default(),
        })
    }

    fn topic_for(&self, routed_by: &str) -> String {
        if self.route_regex.is_match(routed_by) {
            self.route_regex
                .replace(routed_by, self.route_replacement.as_str())
                .into_owned()
        } else {
            routed_by.to_owned()
        }
    }
}

/// The outbox row of a change event.
struct OutboxRow {
    op: String,
    schema: Arc<Schema>,
    values: Vec<Value>,
}

/// The outbox row of a change event; `None` for a tombstone.
fn outbox_row(record: &Record) -> Result<Option<OutboxRow>, Failure> {
    let (Some(schema), Some(value)) = (&record.value_schema, &record.value) else {
        return Ok(None);
    };
    if schema.field("op").is_none() || schema.field("after").is_none() {
        return Err(Failure::new(
            "EventRouter expects Debezium change events of an outbox table",
        ));
    }
    let values = fields::struct_values(schema, value)?;
    let get = |name: &str| schema.field(name).map(|(i, f)| (&f.schema, &values[i]));
    let op = match get("op") {
        Some((_, Value::String(op))) => op.as_str().to_owned(),
        _ => return Err(Failure::new("a change event without op")),
    };
    let (schema, values) = match get("after") {
        Some((row_schema, Value::Struct(row))) => (Arc::clone(row_schema), row.clone()),
        _ => (Arc::clone(schema), Vec::new()),
    };
    Ok(Some(OutboxRow { op, schema, values }))
}

impl Transform for EventRouter {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let Some(OutboxRow {
            op,
            schema: row_schema,
            values: row,
        }) = outbox_row(&record)?
        else {
            // Tombstones of deleted outbox rows mean nothing downstream.
            return Ok(None);
        };
        match op.as_str() {
            "c" | "r" => {}
            "d" => return Ok(None),
            other if self.fail_on_update => {
                return Err(Failure::new(format!(
                    "an outbox row was changed (op {other}); outbox rows should only be inserted"
                )))
            }
            other => {
                tracing::warn!(topic = %record.topic, op = %other, "an outbox row was changed, not inserted; the change is ignored");
                return Ok(None);
            }
        }
        let column = |name: &str| -> Option<(Arc<Schema>, Value)> {
            let (i, f) = row_schema.field(name)?;
            Some((Arc::clone(&f.schema), row.get(i)?.clone()))
        };
        let required = |name: &str, key: &str| {
            column(name).ok_or_else(|| {
                Failure::new(format!(
                    "the outbox table has no column {name} (set transforms.<alias>.{key})"
                ))
            })
        };
        let (_, routed) = required(&self.route_by, "route.by.field")?;
        record.topic = self.topic_for(&text_of(&routed)).into();
        let (_, id) = required(&self.id, "table.field.event.id")?;
        record
            .headers
            .push(("id".to_owned(), text_of(&id).into_bytes()));
        match column(&self.key) {
            Some((schema, key)) if !key.is_null() => {
                record.key_schema = Some(schema);
                record.key = Some(key);
            }
            _ => {
                record.key_schema = None;
                record.key = None;
            }
        }
        if let Some(ts) = &self.timestamp {
            match column(ts) {
                Some((_, Value::Int64(t))) => record.timestamp_ms = Some(t / 1000),
                Some((_, Value::Int32(t))) => record.timestamp_ms = Some(i64::from(t)),
                _ => {}
            }
        }
        let (payload_schema, payload) = required(&self.payload, "table.field.event.payload")?;
        let (mut payload_schema, payload) = match (&payload, self.expand_json) {
            (Value::String(text), true) => expand(text)?,
            _ => (payload_schema, payload),
        };
        let mut envelope_fields = Vec::new();
        for extra in &self.additional {
            let (schema, value) = required(&extra.column, "table.fields.additional.placement")?;
            match extra.placement {
                Placement::Header => record
                    .headers
                    .push((extra.name.clone(), text_of(&value).into_bytes())),
                Placement::Partition => {
                    if let Value::Int32(p) = value {
                        record.kafka_partition = Some(p);
                    } else {
                        return Err(Failure::new(format!(
                            "column {} placed as the partition is not an int32",
                            extra.column
                        )));
                    }
                }
                Placement::Envelope => envelope_fields.push((extra.name.clone(), schema, value)),
            }
        }
        if payload.is_null() && self.tombstone_on_empty {
            record.value_schema = None;
            record.value = None;
            return Ok(Some(record));
        }
        let value = if envelope_fields.is_empty() {
            payload
        } else {
            let mut values = vec![payload];
            values.extend(envelope_fields.iter().map(|(_, _, v)| v.clone()));
            let inner = Arc::clone(&payload_schema);
            payload_schema = self.envelopes.get_or(&inner, |s| {
                let mut fields = vec![Field {
                    name: "payload".into(),
                    schema: Arc::new(s.clone()),
                }];
                fields.extend(envelope_fields.iter().map(|(n, s, _)| Field {
                    name: n.clone(),
                    schema: Arc::clone(s),
                }));
                Ok::<_, Failure>(Schema::new(SchemaKind::Struct(fields)))
            })?;
            Value::Struct(values)
        };
        record.value_schema = Some(payload_schema);
        record.value = Some(value);
        Ok(Some(record))
    }
}

/// A JSON text payload as a structure, with a schema inferred from it.
fn expand(text: &str) -> Result<(Arc<Schema>, Value), Failure> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Failure::new(format!(
            "the payload is not JSON ({e}); table.expand.json.payload needs JSON text"
        ))
    })?;
    let (schema, value) = infer(&json);
    Ok((Arc::new(schema), value))
}

fn infer(json: &serde_json::Value) -> (Schema, Value) {
    use serde_json::Value as J;
    match json {
        J::Null => (Schema::string().optional(), Value::Null),
        J::Bool(b) => (Schema::boolean().optional(), Value::Boolean(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => (Schema::int64().optional(), Value::Int64(i)),
            None => (
                Schema::float64().optional(),
                Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
            ),
        },
        J::String(s) => (Schema::string().optional(), Value::String(s.clone().into())),
        J::Array(items) => {
            let inferred: Vec<(Schema, Value)> = items.iter().map(infer).collect();
            let item_schema = inferred
                .first()
                .map_or_else(|| Schema::string().optional(), |(s, _)| s.clone());
            (
                Schema::array(item_schema).optional(),
                Value::Array(inferred.into_iter().map(|(_, v)| v).collect()),
            )
        }
        J::Object(map) => {
            let (fields, values): (Vec<Field>, Vec<Value>) = map
                .iter()
                .map(|(k, v)| {
                    let (s, v) = infer(v);
                    (Field::new(k.clone(), s), v)
                })
                .unzip();
            (
                Schema::new(SchemaKind::Struct(fields)).optional(),
                Value::Struct(values),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::record_on;

    fn outbox_schema() -> Arc<Schema> {
        let row = Arc::new(
            Schema::structure(
                "srv.public.outbox.Value",
                vec![
                    Field::new("id", Schema::string()),
                    Field::new("aggregatetype", Schema::string()),
                    Field::new("aggregateid", Schema::string()),
                    Field::new("type", Schema::string()),
                    Field::new("payload", Schema::string().optional()),
                ],
            )
            .optional(),
        );
        Arc::new(Schema::structure(
            "srv.public.outbox.Envelope",
            vec![
                Field {
                    name: "before".into(),
                    schema: Arc::clone(&row),
                },
                Field {
                    name: "after".into(),
                    schema: row,
                },
                Field::new("op", Schema::string()),
            ],
        ))
    }

    fn inserted(schema: &Arc<Schema>, op: &str, payload: Value) -> Record {
        let mut record = record_on("srv.public.outbox");
        record.value_schema = Some(Arc::clone(schema));
        record.value = Some(Value::Struct(vec![
            Value::Null,
            Value::Struct(vec![
                Value::String("e-1".into()),
                Value::String("Order".into()),
                Value::String("o-42".into()),
                Value::String("OrderCreated".into()),
                payload,
            ]),
            Value::String(op.into()),
        ]));
        record
    }

    fn router(pairs: &[(&str, &str)]) -> EventRouter {
        EventRouter::new(&Settings::from_pairs("transforms.outbox.", pairs)).unwrap()
    }

    #[test]
    fn an_insert_becomes_an_event_routed_by_aggregate_type() {
        let schema = outbox_schema();
        let out = router(&[])
            .apply(inserted(
                &schema,
                "c",
                Value::String(r#"{"total":5}"#.into()),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(out.topic, "outbox.event.Order");
        assert_eq!(out.key, Some(Value::String("o-42".into())));
        assert_eq!(out.value, Some(Value::String(r#"{"total":5}"#.into())));
        assert_eq!(out.header("id"), Some(&b"e-1"[..]));
    }

    #[test]
    fn the_payload_expands_from_json_and_columns_go_where_placed() {
        let schema = outbox_schema();
        let out = router(&[
            ("table.expand.json.payload", "true"),
            (
                "table.fields.additional.placement",
                "type:header:eventType,type:envelope",
            ),
            ("route.topic.replacement", "events.${routedByValue}"),
        ])
        .apply(inserted(
            &schema,
            "c",
            Value::String(r#"{"total":5,"lines":["a"]}"#.into()),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(out.topic, "events.Order");
        assert_eq!(out.header("eventType"), Some(&b"OrderCreated"[..]));
        let value_schema = out.value_schema.unwrap();
        let names: Vec<&str> = value_schema
            .fields()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["payload", "type"]);
        let Some(Value::Struct(values)) = out.value else {
            panic!()
        };
        assert_eq!(
            values[0],
            Value::Struct(vec![
                Value::Int64(5),
                Value::Array(vec![Value::String("a".into())])
            ])
        );
    }

    #[test]
    fn deletes_are_dropped_and_updates_warned_or_refused() {
        let schema = outbox_schema();
        assert!(router(&[])
            .apply(inserted(&schema, "d", Value::Null))
            .unwrap()
            .is_none());
        assert!(router(&[])
            .apply(inserted(&schema, "u", Value::Null))
            .unwrap()
            .is_none());
        assert!(router(&[("debezium.op.invalid.behavior", "error")])
            .apply(inserted(&schema, "u", Value::Null))
            .is_err());
    }

    #[test]
    fn an_empty_payload_can_be_a_tombstone() {
        let schema = outbox_schema();
        let out = router(&[("route.tombstone.on.empty.payload", "true")])
            .apply(inserted(&schema, "c", Value::Null))
            .unwrap()
            .unwrap();
        assert!(out.value.is_none());
        assert_eq!(out.key, Some(Value::String("o-42".into())));
    }
}
