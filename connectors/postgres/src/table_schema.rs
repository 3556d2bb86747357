//! A captured table's key, value and envelope schemas with Debezium's
//! names (`<topic>.Key`, `<topic>.Value`, `<topic>.Envelope`), and the
//! shared `source` and transaction blocks (the contracts in
//! `schemas/blocks/`).

use std::sync::{Arc, OnceLock};

use sluice_connector_api::column_mapping::{ColumnMapper, ColumnMappers, SourceColumn};
use sluice_connector_api::topic_naming::TopicNaming;
use sluice_connector_api::{debezium, Field, Schema, Text, Value};

use crate::types::{Mapping, PgType};

/// One emitted column.
#[derive(Debug, Clone)]
pub struct EmittedColumn {
    /// Column name.
    pub name: String,
    /// Position in the table's full row (as pgoutput and the snapshot send it).
    pub position: usize,
    /// The resolved type.
    pub pg_type: PgType,
    /// NULL allowed; a required column's missing value becomes its
    /// type's fallback, as Debezium does.
    pub nullable: bool,
    /// What `column.mask.*` / `column.truncate.*` do to its values.
    pub mapper: Option<ColumnMapper>,
}

/// The value Debezium puts in a required field that has no value (for
/// example non-key columns of a delete under REPLICA IDENTITY DEFAULT).
fn fallback(schema: &Schema) -> Value {
    use sluice_connector_api::SchemaKind as K;
    if let Some(default) = &schema.default {
        return default.clone();
    }
    match &schema.kind {
        K::Int8 => Value::Int8(0),
        K::Int16 => Value::Int16(0),
        K::Int32 => Value::Int32(0),
        K::Int64 => Value::Int64(0),
        K::Float32 => Value::Float32(0.0),
        K::Float64 => Value::Float64(0.0),
        K::Boolean => Value::Boolean(false),
        K::String => Value::String(String::new().into()),
        K::Bytes => Value::Bytes(vec![0]),
        K::Array(_) => Value::Array(Vec::new()),
        K::Map(..) => Value::Map(Vec::new()),
        K::Struct(fields) => Value::Struct(fields.iter().map(|f| fallback(&f.schema)).collect()),
    }
}

/// Everything needed to turn a table's rows into events.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// `<prefix>.<schema>.<table>` (shared text: every event carries it).
    pub topic: Text,
    /// Schema name (shared text: every event's `source` block carries it).
    pub schema: Text,
    /// Table name (shared text, as `schema`).
    pub table: Text,
    /// Emitted columns, in table order.
    pub columns: Vec<EmittedColumn>,
    /// Indexes into `columns` of the key columns.
    pub key: Vec<usize>,
    /// The key schema, `None` for a keyless table.
    pub key_schema: Option<Arc<Schema>>,
    /// The change event schema.
    pub envelope: Arc<Schema>,
}

/// A column as the table schema builder needs it.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// Resolved type.
    pub pg_type: PgType,
    /// NULL allowed.
    pub nullable: bool,
    /// The DEFAULT expression, as PostgreSQL prints it.
    pub default: Option<String>,
    /// Emitted (column include/exclude lists).
    pub included: bool,
}

/// The constant text of a DEFAULT expression as `pg_get_expr` prints it
/// (`7`, `'-1'::integer`, `'it''s'::text`, `true`, `(-1.5)`), or `None`
/// when it is computed (`nextval(...)`, `now()`, `CURRENT_TIMESTAMP`).
pub fn default_literal(expr: &str) -> Option<String> {
    let expr = expr.trim();
    if let Some(rest) = expr.strip_prefix('\'') {
        // A quoted literal, then optional casts.
        let mut text = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    text.push('\'');
                    continue;
                }
                let tail: String = chars.collect();
                return (tail.is_empty() || tail.starts_with("::")).then_some(text);
            }
            text.push(c);
        }
        return None;
    }
    let bare = expr.split("::").next().unwrap_or(expr).trim();
    let bare = bare
        .strip_prefix('(')
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or(bare);
    let numeric = !bare.is_empty()
        && bare
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E');
    (numeric || bare == "true" || bare == "false").then(|| bare.to_owned())
}

/// The Debezium `source` block for PostgreSQL.
pub fn source_schema() -> Arc<Schema> {
    static SOURCE: OnceLock<Arc<Schema>> = OnceLock::new();
    Arc::clone(SOURCE.get_or_init(|| {
        let optional_long = || Schema::int64().optional();
        Arc::new(Schema::structure(
            "io.debezium.connector.postgresql.Source",
            vec![
                Field::new("version", Schema::string()),
                Field::new("connector", Schema::string()),
                Field::new("name", Schema::string()),
                Field::new("ts_ms", Schema::int64()),
                debezium::snapshot_field(),
                Field::new("db", Schema::string()),
                Field::new("sequence", Schema::string().optional()),
                Field::new("ts_us", optional_long()),
                Field::new("ts_ns", optional_long()),
                Field::new("schema", Schema::string()),
                Field::new("table", Schema::string()),
                Field::new("txId", optional_long()),
                Field::new("lsn", optional_long()),
                Field::new("xmin", optional_long()),
            ],
        ))
    }))
}

impl TableSchema {
    /// Builds the schemas of `schema.table` with `columns` (all of the
    /// table's, in order) keyed by `key_names`.
    pub fn build(
        topics: &TopicNaming,
        schema: &str,
        table: &str,
        columns: &[ColumnSpec],
        key_names: &[String],
        mapping: Mapping,
        mappers: &ColumnMappers,
    ) -> Self {
        let topic = topics.data(schema, table);
        let qualified = format!("{schema}.{table}");
        let source_column = |c: &ColumnSpec| {
            let (type_name, length, scale) = c.pg_type.source_type();
            (c.name.clone(), type_name, length, scale)
        };
        let mapped = |c: &ColumnSpec, field: Schema| {
            let (name, type_name, length, scale) = source_column(c);
            mappers.map(
                &SourceColumn {
                    table: &qualified,
                    name: &name,
                    type_name: &type_name,
                    length,
                    scale,
                },
                field,
            )
        };
        let emitted: Vec<EmittedColumn> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.included || key_names.contains(&c.name))
            .map(|(position, c)| EmittedColumn {
                name: c.name.clone(),
                position,
                pg_type: c.pg_type.clone(),
                nullable: c.nullable,
                mapper: if mappers.is_empty() {
                    None
                } else {
                    mapped(c, Schema::string()).1
                },
            })
            .collect();
        let field = |c: &EmittedColumn, force_required: bool| {
            let spec = &columns[c.position];
            let mut schema = c.pg_type.schema(mapping);
            if !mappers.is_empty() {
                schema = mapped(spec, schema).0;
            }
            if spec.nullable && !force_required {
                schema = schema.optional();
            }
            // Constant defaults become the field's default, as Debezium
            // does; expressions (nextval, now()) have none.
            if let Some(value) = spec
                .default
                .as_deref()
                .and_then(default_literal)
                .and_then(|text| c.pg_type.value(&text, mapping))
            {
                schema = schema.with_default(value);
            }
            Field::new(c.name.clone(), schema)
        };
        let (key_schema, envelope, key) = sluice_connector_api::debezium::table_schemas(
            &topic,
            &emitted,
            |c| c.name.as_str(),
            key_names,
            field,
            source_schema(),
        );
        Self {
            topic: Text::from(std::sync::Arc::<str>::from(topic)),
            schema: Text::from(Arc::<str>::from(schema)),
            table: Text::from(Arc::<str>::from(table)),
            columns: emitted,
            key,
            key_schema,
            envelope,
        }
    }

    /// The row struct from a full row of text values (`None` = NULL);
    /// `Err` names the column whose text does not fit its type.
    pub fn row<S: AsRef<str>>(
        &self,
        values: &[Option<S>],
        mapping: Mapping,
    ) -> Result<Value, String> {
        let mut out = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let text = values
                .get(column.position)
                .and_then(Option::as_ref)
                .map(AsRef::as_ref);
            let mut value = match text {
                None if column.nullable => Value::Null,
                None => fallback(&column.pg_type.schema(mapping)),
                Some(text) => column.pg_type.value(text, mapping).ok_or_else(|| {
                    format!(
                        "column {}.{}.{}: cannot read {text:?} as {:?}",
                        self.schema, self.table, column.name, column.pg_type
                    )
                })?,
            };
            if let Some(mapper) = &column.mapper {
                mapper.apply(&mut value);
            }
            out.push(value);
        }
        Ok(Value::Struct(out))
    }
}

impl debezium::EventTable for TableSchema {
    fn topic(&self) -> debezium::TableTopic<'_> {
        debezium::TableTopic {
            topic: &self.topic,
            key_schema: self.key_schema.as_ref(),
            envelope: &self.envelope,
        }
    }

    fn key_columns(&self) -> &[usize] {
        &self.key
    }
}

#[cfg(test)]
mod default_tests {
    use super::default_literal;

    #[test]
    fn constant_defaults_are_read_and_expressions_are_not() {
        assert_eq!(default_literal("7").as_deref(), Some("7"));
        assert_eq!(default_literal("(-1.5)").as_deref(), Some("-1.5"));
        assert_eq!(default_literal("'-1'::integer").as_deref(), Some("-1"));
        assert_eq!(default_literal("'it''s'::text").as_deref(), Some("it's"));
        assert_eq!(
            default_literal("'2020-01-02'::date").as_deref(),
            Some("2020-01-02")
        );
        assert_eq!(default_literal("true").as_deref(), Some("true"));
        assert_eq!(default_literal("now()"), None);
        assert_eq!(default_literal("CURRENT_TIMESTAMP"), None);
        assert_eq!(default_literal("nextval('s'::regclass)"), None);
        assert_eq!(default_literal("('a'::text || 'b'::text)"), None);
    }
}
