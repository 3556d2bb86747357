//! What a record asks of the target: upsert a row, delete a key, truncate
//! a table — from a Debezium envelope or a flat record, with key columns
//! chosen by `primary.key.mode` and the table named by `table.name.format`.

use std::borrow::Cow;
use std::sync::Arc;

use sluice_connector_api::{ConnectorError, Schema, SchemaKind, SinkRecord, Value};

use crate::config::{KeyMode, SinkConfig};
use crate::table_format::{LastTable, TableFormat};
use crate::time_zone::WriteZone;

/// One column value with its schema, borrowed from the record it came
/// from where it can be: a batch's changes live only while the sink
/// applies it, and copying every name and value of every row (as the
/// cells did) was a fifth of the sink's own work and a second copy of the
/// batch in memory.
#[derive(Debug, Clone)]
pub struct Cell<'r> {
    /// Column name as the record names it.
    pub name: Cow<'r, str>,
    /// The field's schema (type, logical name, parameters).
    pub schema: Cow<'r, Arc<Schema>>,
    /// The value.
    pub value: Cow<'r, Value>,
}

impl Cell<'_> {
    /// The cell's value as the target binds it; a value its schema cannot
    /// give one is the record's fault (fatal, dead-lettered if tolerated).
    pub fn param(
        &self,
        dialect: crate::config::Dialect,
    ) -> Result<crate::sql_value::Param, ConnectorError> {
        crate::sql_value::param(&self.schema, &self.value, dialect)
            .map_err(|e| ConnectorError::fatal(format!("column {}: {e}", self.name)))
    }
}

/// Whether two cells' column names are the same: cells read from one
/// schema borrow their names from it, the same text at the same address,
/// told apart without comparing bytes (a byte comparison per cell and row
/// was a measurable part of planning; callgrind, `scripts/bench-sink`).
pub fn same_name(x: &str, y: &str) -> bool {
    std::ptr::eq(x, y) || x == y
}

/// A target table's name as a change carries it: one text shared by the
/// batch's changes to that table, rendered once (see
/// [`TableFormat::render_reusing`]).
pub type TableName = Arc<str>;

/// The change one record makes, borrowing from the record.
#[derive(Debug, Clone)]
pub enum Change<'r> {
    /// Write the row (insert, upsert or update per `insert.mode`).
    Upsert {
        /// Target table name (unquoted, possibly `schema.table`), shared
        /// by the changes of a batch that go to it.
        table: TableName,
        /// Key columns (also in `row`).
        key: Vec<Cell<'r>>,
        /// Every column written.
        row: Vec<Cell<'r>>,
    },
    /// Delete the row with this key.
    Delete {
        /// Target table.
        table: TableName,
        /// Key columns.
        key: Vec<Cell<'r>>,
    },
    /// Empty the table.
    Truncate {
        /// Target table.
        table: TableName,
    },
    /// Nothing to do (deletes or truncates disabled, messages, ...).
    Skip,
}

fn struct_cells<'r>(schema: &'r Schema, value: &'r Value) -> Vec<Cell<'r>> {
    match (&schema.kind, value) {
        (SchemaKind::Struct(fields), Value::Struct(values)) => fields
            .iter()
            .zip(values)
            .map(|(f, v)| Cell {
                name: Cow::Borrowed(&f.name),
                schema: Cow::Borrowed(&f.schema),
                value: Cow::Borrowed(v),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a value schema is Debezium's change envelope.
pub fn is_envelope(schema: &Schema) -> bool {
    schema.field("op").is_some()
        && schema.field("after").is_some()
        && schema.field("before").is_some()
}

fn no_source(format: &TableFormat, record: &SinkRecord) -> String {
    format!(
        "table.name.format={format} names a source field, but the record at {}[{}]@{} has no Debezium source block; use ${{topic}} for flat records",
        record.topic, record.kafka_partition, record.kafka_offset
    )
}

/// Where an envelope schema keeps the fields [`interpret_with`] reads.
#[derive(Debug)]
struct Envelope {
    op: usize,
    after: usize,
    source: Option<usize>,
    /// The source block's fields `table.name.format` names
    /// ([`TableFormat::source_indices`]).
    table_fields: Vec<Option<usize>>,
}

impl Envelope {
    /// The layout of `schema`; `None` when it is not an envelope.
    fn of(schema: &Schema, format: &TableFormat) -> Option<Self> {
        if !is_envelope(schema) {
            return None;
        }
        let source = schema.field("source");
        Some(Self {
            op: schema.field("op")?.0,
            after: schema.field("after")?.0,
            source: source.map(|(index, _)| index),
            table_fields: source.map_or_else(Vec::new, |(_, f)| format.source_indices(&f.schema)),
        })
    }
}

/// What [`interpret_with`] keeps from one record to the next of a batch:
/// the envelope layout of the last value schema it met, and the table it
/// named last.
///
/// The layout: found by name for every record (whether it is an
/// envelope, then `op`, `source`, `after` and the source fields
/// `table.name.format` names), the fields took about a third of reading a
/// record into its change (callgrind, `scripts/bench-sink`), and a
/// batch's records mostly share one schema. The table: see
/// [`TableFormat::render_reusing`].
#[derive(Debug, Default)]
pub struct Layouts {
    /// The schema (held, so its address cannot be reused by another) and
    /// its layout.
    last: Option<(Arc<Schema>, Option<Envelope>)>,
    /// The table named last, with what named it.
    table: LastTable,
}

/// The envelope layout of `schema`, kept in `last` (a field of
/// [`Layouts`], borrowed alone so its table can be named meanwhile).
fn envelope_of<'l>(
    last: &'l mut Option<(Arc<Schema>, Option<Envelope>)>,
    schema: &Arc<Schema>,
    format: &TableFormat,
) -> Option<&'l Envelope> {
    if !matches!(last, Some((kept, _)) if Arc::ptr_eq(kept, schema)) {
        *last = Some((Arc::clone(schema), Envelope::of(schema, format)));
    }
    last.as_ref().and_then(|(_, layout)| layout.as_ref())
}

/// The change `record` asks for, with the envelope layouts of the records
/// before it.
pub fn interpret_with<'r>(
    config: &SinkConfig,
    layouts: &mut Layouts,
    record: &'r SinkRecord,
) -> Result<Change<'r>, String> {
    let Some(value) = &record.value else {
        // A tombstone: the delete itself came before it.
        // Under a format naming source fields the table is unknown, and
        // the delete event just before the tombstone already removed the row.
        return match config
            .table_format
            .render_reusing(&mut layouts.table, &record.topic, None)
        {
            Some(table) if config.delete_enabled => Ok(Change::Delete {
                table,
                key: key_cells(config, record, &[])?,
            }),
            _ => Ok(Change::Skip),
        };
    };
    let Some(schema) = &record.value_schema else {
        return Err(format!(
            "the record at {}[{}]@{} has no schema; the JDBC sink needs schemas to build tables: use the Avro converter or JSON with value.converter.schemas.enable=true",
            record.topic, record.kafka_partition, record.kafka_offset
        ));
    };
    let (row_schema, row_value, table) =
        if let Some(envelope) = envelope_of(&mut layouts.last, schema, &config.table_format) {
            let at = |index: usize| match (schema.fields().get(index), value) {
                (Some(f), Value::Struct(values)) => values.get(index).map(|v| (&f.schema, v)),
                _ => None,
            };
            let op = match at(envelope.op) {
                Some((_, Value::String(op))) => op.as_ref(),
                _ => "",
            };
            let source = envelope
                .source
                .and_then(at)
                .map(|(_, v)| (envelope.table_fields.as_slice(), v));
            let table = config
                .table_format
                .render_reusing(&mut layouts.table, &record.topic, source)
                .ok_or_else(|| no_source(&config.table_format, record))?;
            match op {
                "c" | "r" | "u" => {}
                "d" if config.delete_enabled => {
                    return Ok(Change::Delete {
                        table,
                        key: key_cells(config, record, &[])?,
                    })
                }
                "t" if config.truncate_enabled => return Ok(Change::Truncate { table }),
                _ => return Ok(Change::Skip),
            }
            match at(envelope.after) {
                Some((s, v)) if *v != Value::Null => (s.as_ref(), v, table),
                _ => return Ok(Change::Skip),
            }
        } else {
            let table = config
                .table_format
                .render_reusing(&mut layouts.table, &record.topic, None)
                .ok_or_else(|| no_source(&config.table_format, record))?;
            (schema.as_ref(), value, table)
        };
    let mut row: Vec<Cell> = struct_cells(row_schema, row_value);
    if row.is_empty() && !matches!(row_schema.kind, SchemaKind::Struct(_)) {
        return Err(format!(
            "the value at {}[{}]@{} is a {}, not a struct of columns",
            record.topic,
            record.kafka_partition,
            record.kafka_offset,
            row_schema.kind.connect_name()
        ));
    }
    let mut key = key_cells(config, record, &row)?;
    if !config.write_zone.is_utc() {
        for cell in row.iter_mut().chain(key.iter_mut()) {
            in_write_zone(&config.write_zone, cell);
        }
    }
    if config.filters_fields() {
        row.retain(|c| {
            key.iter().any(|k| same_name(&k.name, &c.name))
                || config.keeps_field(&record.topic, &c.name)
        });
    }
    for k in &key {
        if !row.iter().any(|c| same_name(&c.name, &k.name)) {
            row.push(k.clone());
        }
    }
    Ok(Change::Upsert { table, key, row })
}

/// A header as a key column, typed as Connect's SimpleHeaderConverter
/// reads header text: a whole number is an int64, `true` / `false` a
/// boolean, another number a double, anything else text.
fn header_cell<'r>(name: &'r str, bytes: &[u8]) -> Cell<'r> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    let (schema, value) = if let Ok(n) = trimmed.parse::<i64>() {
        (Schema::int64(), Value::Int64(n))
    } else if trimmed == "true" || trimmed == "false" {
        (Schema::boolean(), Value::Boolean(trimmed == "true"))
    } else if let Some(f) = trimmed.parse::<f64>().ok().filter(|f| f.is_finite()) {
        (Schema::float64(), Value::Float64(f))
    } else {
        (Schema::string(), Value::String(text.into_owned().into()))
    };
    Cell {
        name: Cow::Borrowed(name),
        schema: Cow::Owned(Arc::new(schema)),
        value: Cow::Owned(value),
    }
}

/// A zoned timestamp as the wall-clock time of `use.time.zone`, with its
/// offset (the instant is unchanged).
fn in_write_zone(zone: &WriteZone, cell: &mut Cell) {
    if cell.schema.name.as_deref() != Some(sluice_connector_api::logical::ZONED_TIMESTAMP) {
        return;
    }
    if let Value::String(instant) = cell.value.as_ref() {
        if let Some(local) = zone.local(instant) {
            cell.value = Cow::Owned(Value::String(local.into()));
        }
    }
}

fn key_cells<'r>(
    config: &SinkConfig,
    record: &'r SinkRecord,
    row: &[Cell<'r>],
) -> Result<Vec<Cell<'r>>, String> {
    let place = || {
        format!(
            "{}[{}]@{}",
            record.topic, record.kafka_partition, record.kafka_offset
        )
    };
    match config.key_mode {
        KeyMode::None => Ok(Vec::new()),
        KeyMode::Kafka => Ok(vec![
            Cell {
                name: Cow::Borrowed("__connect_topic"),
                schema: Cow::Owned(Arc::new(Schema::string())),
                value: Cow::Owned(Value::String(record.topic.clone())),
            },
            Cell {
                name: Cow::Borrowed("__connect_partition"),
                schema: Cow::Owned(Arc::new(Schema::int32())),
                value: Cow::Owned(Value::Int32(record.kafka_partition)),
            },
            Cell {
                name: Cow::Borrowed("__connect_offset"),
                schema: Cow::Owned(Arc::new(Schema::int64())),
                value: Cow::Owned(Value::Int64(record.kafka_offset)),
            },
        ]),
        KeyMode::RecordKey => {
            let (Some(schema), Some(value)) = (&record.key_schema, &record.key) else {
                return Err(format!(
                    "the record at {} has no key (or no key schema) but primary.key.mode=record_key; give the table a primary key at the source, or use primary.key.mode=kafka",
                    place()
                ));
            };
            let cells = if matches!(schema.kind, SchemaKind::Struct(_)) {
                struct_cells(schema, value)
            } else {
                let name = config.key_fields.first().ok_or_else(|| {
                    format!(
                        "the key at {} is a single value: name its column in primary.key.fields",
                        place()
                    )
                })?;
                vec![Cell {
                    name: Cow::Owned(name.clone()),
                    schema: Cow::Borrowed(schema),
                    value: Cow::Borrowed(value),
                }]
            };
            Ok(
                if config.key_fields.is_empty() || !matches!(schema.kind, SchemaKind::Struct(_)) {
                    cells
                } else {
                    cells
                        .into_iter()
                        .filter(|c| config.key_fields.iter().any(|f| *f == c.name))
                        .collect()
                },
            )
        }
        KeyMode::RecordHeader => {
            let cells: Vec<Cell> = record
                .headers
                .iter()
                .filter(|(name, _)| {
                    config.key_fields.is_empty() || config.key_fields.contains(name)
                })
                .map(|(name, bytes)| header_cell(name, bytes))
                .collect();
            match config.key_fields.iter().find(|f| !cells.iter().any(|c| c.name == **f)) {
                Some(missing) => Err(format!(
                    "primary.key.fields names the header {missing}, which the record at {} does not have",
                    place()
                )),
                None if cells.is_empty() => Err(format!(
                    "the record at {} has no headers but primary.key.mode=record_header",
                    place()
                )),
                None => Ok(cells),
            }
        }
        KeyMode::RecordValue => config
            .key_fields
            .iter()
            .map(|name| {
                row.iter()
                    .find(|c| c.name == *name)
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "primary.key.fields names {name}, which the value at {} does not have",
                            place()
                        )
                    })
            })
            .collect(),
    }
}

/// A cell is held per column of every row of a batch: its size is the
/// batch's (a `Schema` held by value made cells three times larger).
const _: () = assert!(std::mem::size_of::<Cell<'static>>() <= 80);

#[cfg(test)]
mod tests {
    use sluice_connector_api::{ConnectorConfig, Field};

    use super::*;

    fn row_schema() -> Schema {
        Schema::structure(
            "srv.inv.items.Value",
            vec![
                Field::new("id", Schema::int32()),
                Field::new("name", Schema::string().optional()),
                Field::new("secret", Schema::string().optional()),
            ],
        )
        .optional()
    }

    fn envelope(op: &str, before: Value, after: Value) -> (Arc<Schema>, Value) {
        let source = Schema::structure(
            "io.debezium.connector.postgresql.Source",
            vec![
                Field::new("db", Schema::string()),
                Field::new("schema", Schema::string()),
                Field::new("table", Schema::string()),
            ],
        );
        let schema = Schema::structure(
            "srv.inv.items.Envelope",
            vec![
                Field::new("before", row_schema()),
                Field::new("after", row_schema()),
                Field::new("source", source),
                Field::new("op", Schema::string()),
            ],
        );
        let value = Value::Struct(vec![
            before,
            after,
            Value::Struct(vec![
                Value::String("shop".into()),
                Value::String("inv".into()),
                Value::String("items".into()),
            ]),
            Value::String(op.into()),
        ]);
        (Arc::new(schema), value)
    }

    fn item(id: i32, name: &str) -> Value {
        Value::Struct(vec![
            Value::Int32(id),
            Value::String(name.into()),
            Value::String("s3cret".into()),
        ])
    }

    fn record(value: Option<(Arc<Schema>, Value)>, key: i32) -> SinkRecord {
        let key_schema = Arc::new(Schema::structure(
            "srv.inv.items.Key",
            vec![Field::new("id", Schema::int32())],
        ));
        SinkRecord {
            topic: "srv.inv.items".into(),
            kafka_partition: 2,
            kafka_offset: 40,
            key_schema: Some(key_schema),
            key: Some(Value::Struct(vec![Value::Int32(key)])),
            value_schema: value.as_ref().map(|(s, _)| s.clone()),
            value: value.map(|(_, v)| v),
            timestamp_ms: None,
            headers: Vec::new(),
        }
    }

    fn config(extra: &[(&str, &str)]) -> SinkConfig {
        let base = [
            ("connection.url", "jdbc:postgresql://h/db"),
            ("connection.username", "u"),
        ];
        let c: ConnectorConfig = base.iter().chain(extra).map(|(k, v)| (*k, *v)).collect();
        SinkConfig::parse(&c).expect("valid config")
    }

    /// A record's change, met first.
    fn interpret<'r>(config: &SinkConfig, record: &'r SinkRecord) -> Result<Change<'r>, String> {
        interpret_with(config, &mut Layouts::default(), record)
    }

    fn names<'a>(cells: &'a [Cell<'_>]) -> Vec<&'a str> {
        cells.iter().map(|c| c.name.as_ref()).collect()
    }

    #[test]
    fn envelopes_become_upserts_deletes_and_truncates() {
        let c = config(&[
            ("insert.mode", "upsert"),
            ("primary.key.mode", "record_key"),
            ("delete.enabled", "true"),
            ("truncate.enabled", "true"),
            ("table.name.format", "${source.schema}_${source.table}"),
            ("field.exclude.list", "srv.inv.items:secret"),
        ]);
        let r = record(Some(envelope("u", Value::Null, item(7, "a"))), 7);
        let up = interpret(&c, &r).expect("upsert");
        let Change::Upsert { table, key, row } = up else {
            panic!("{up:?}")
        };
        assert_eq!(&*table, "inv_items");
        assert_eq!(names(&key), ["id"]);
        assert_eq!(names(&row), ["id", "name"], "secret is excluded");
        let r = record(Some(envelope("d", item(7, "a"), Value::Null)), 7);
        let del = interpret(&c, &r).expect("delete");
        assert!(
            matches!(del, Change::Delete { ref table, .. } if &**table == "inv_items"),
            "{del:?}"
        );
        let r = record(Some(envelope("t", Value::Null, Value::Null)), 7);
        let trunc = interpret(&c, &r).expect("truncate");
        assert!(matches!(trunc, Change::Truncate { .. }), "{trunc:?}");
        // A tombstone cannot name its table under a source-field format;
        // the delete before it did the work.
        let r = record(None, 7);
        let tomb = interpret(&c, &r).expect("tombstone");
        assert!(matches!(tomb, Change::Skip), "{tomb:?}");
    }

    #[test]
    fn each_schema_of_a_batch_is_read_by_its_own_layout() {
        let c = config(&[
            ("primary.key.mode", "record_key"),
            ("delete.enabled", "true"),
            ("table.name.format", "${source.table}"),
        ]);
        let (schema, value) = envelope("d", item(2, "b"), Value::Null);
        // The same envelope with its fields the other way round, from
        // another table.
        let mut fields = schema.fields().to_vec();
        fields.reverse();
        let reversed = Arc::new(Schema::structure("srv.inv.other.Envelope", fields));
        let Value::Struct(mut values) = value else {
            panic!("a struct")
        };
        values.reverse();
        values[1] = Value::Struct(vec![
            Value::String("shop".into()),
            Value::String("inv".into()),
            Value::String("other".into()),
        ]);
        let records = [
            record(Some(envelope("c", Value::Null, item(1, "a"))), 1),
            record(Some((reversed, Value::Struct(values))), 2),
            record(Some(envelope("u", Value::Null, item(3, "c"))), 3),
        ];
        let mut layouts = Layouts::default();
        let read: Vec<(String, &str)> = records
            .iter()
            .map(
                |r| match interpret_with(&c, &mut layouts, r).expect("readable") {
                    Change::Upsert { table, .. } => (table.to_string(), "upsert"),
                    Change::Delete { table, .. } => (table.to_string(), "delete"),
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(
            read,
            [
                ("items".to_owned(), "upsert"),
                ("other".to_owned(), "delete"),
                ("items".to_owned(), "upsert")
            ]
        );
    }

    #[test]
    fn record_header_keys_are_typed_like_simple_header_converter() {
        let c = config(&[
            ("primary.key.mode", "record_header"),
            ("primary.key.fields", "tenant,region"),
            ("insert.mode", "upsert"),
        ]);
        let mut r = record(Some(envelope("c", Value::Null, item(1, "a"))), 1);
        r.headers = vec![
            ("tenant".into(), b"42".to_vec()),
            ("region".into(), b"eu-west".to_vec()),
            ("trace".into(), b"x".to_vec()),
        ];
        let Change::Upsert { key, row, .. } = interpret(&c, &r).expect("upsert") else {
            panic!()
        };
        assert_eq!(names(&key), ["tenant", "region"]);
        assert_eq!(*key[0].value, Value::Int64(42));
        assert_eq!(*key[1].value, Value::String("eu-west".into()));
        assert!(names(&row).contains(&"tenant"), "key columns are written");
        r.headers.remove(1);
        let err = interpret(&c, &r).expect_err("missing header");
        assert!(err.contains("region"), "{err}");
    }

    #[test]
    fn key_modes_and_defaults() {
        // Defaults: deletes and truncates are skipped; topic dots become underscores.
        let c = config(&[]);
        let r = record(Some(envelope("d", item(1, "a"), Value::Null)), 1);
        let del = interpret(&c, &r).expect("skip");
        assert!(matches!(del, Change::Skip));
        let r = record(Some(envelope("c", Value::Null, item(1, "a"))), 1);
        let up = interpret(&c, &r).expect("insert");
        let Change::Upsert { table, key, .. } = up else {
            panic!()
        };
        assert_eq!((&*table, key.len()), ("srv_inv_items", 0));
        // kafka: coordinates as key columns.
        let c = config(&[("primary.key.mode", "kafka"), ("insert.mode", "upsert")]);
        let r = record(Some(envelope("r", Value::Null, item(1, "a"))), 1);
        let Change::Upsert { key, row, .. } = interpret(&c, &r).expect("kafka") else {
            panic!()
        };
        assert_eq!(
            names(&key),
            ["__connect_topic", "__connect_partition", "__connect_offset"]
        );
        assert_eq!(row.len(), 6);
        assert_eq!(*key[2].value, Value::Int64(40));
        // record_value: named fields of the value.
        let c = config(&[
            ("primary.key.mode", "record_value"),
            ("primary.key.fields", "name"),
        ]);
        let r = record(Some(envelope("c", Value::Null, item(1, "a"))), 1);
        let Change::Upsert { key, .. } = interpret(&c, &r).expect("value key") else {
            panic!()
        };
        assert_eq!(*key[0].value, Value::String("a".into()));
        // A value without a schema cannot shape a table.
        let mut schemaless = record(Some(envelope("c", Value::Null, item(1, "a"))), 1);
        schemaless.value_schema = None;
        assert!(interpret(&c, &schemaless)
            .expect_err("no schema")
            .contains("schemas"));
    }
}
