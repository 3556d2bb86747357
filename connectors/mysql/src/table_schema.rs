//! The key, row and envelope schemas of one captured table, and rows in
//! them built from snapshot text or binlog row images.

use std::sync::{Arc, OnceLock};

use sluice_connector_api::column_mapping::{ColumnMapper, ColumnMappers, SourceColumn};
use sluice_connector_api::filters::Filters;
use sluice_connector_api::topic_naming::TopicNaming;
use sluice_connector_api::{debezium, logical, Field, Schema, SchemaKind, Text, Value};

use crate::boolean_columns::BooleanColumns;
use crate::catalog::{default_literal, ColumnDef, TableDef};
use crate::flavor::Flavor;
use crate::row_images::Cell;
use crate::types::{Kind, Mapping, Read};

/// A column that is emitted.
#[derive(Debug, Clone)]
pub struct EmittedColumn {
    /// Name.
    pub name: String,
    /// Index in the table's full column list (and row images).
    pub position: usize,
    /// How its values are read.
    pub kind: Kind,
    /// NULL allowed.
    pub nullable: bool,
    /// What `column.mask.*` / `column.truncate.*` do to its values.
    pub mapper: Option<ColumnMapper>,
}

/// Schemas and column layout of one table at one schema version.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// `<prefix>.<database>.<table>` (shared text: every event carries it).
    pub topic: Text,
    /// The table's definition these schemas were built from.
    pub def: TableDef,
    /// Emitted columns in table order.
    pub columns: Vec<EmittedColumn>,
    /// Indices into `columns` of the key columns.
    pub key: Vec<usize>,
    /// The key schema; `None` for a keyless table.
    pub key_schema: Option<Arc<Schema>>,
    /// The envelope schema.
    pub envelope: Arc<Schema>,
    /// The database and table names as every event's `source` block
    /// carries them (shared text).
    pub names: (Text, Text),
    mapping: Mapping,
}

/// The Debezium `source` block for MySQL (or MariaDB).
pub fn source_schema(flavor: Flavor) -> Arc<Schema> {
    static SOURCE: [OnceLock<Arc<Schema>>; 2] = [OnceLock::new(), OnceLock::new()];
    Arc::clone(SOURCE[flavor.index()].get_or_init(|| {
        Arc::new(Schema::structure(
            format!("{}.Source", flavor.namespace()),
            vec![
                Field::new("version", Schema::string()),
                Field::new("connector", Schema::string()),
                Field::new("name", Schema::string()),
                Field::new("ts_ms", Schema::int64()),
                debezium::snapshot_field(),
                Field::new("db", Schema::string()),
                Field::new("sequence", Schema::string().optional()),
                Field::new("ts_us", Schema::int64().optional()),
                Field::new("ts_ns", Schema::int64().optional()),
                Field::new("table", Schema::string().optional()),
                Field::new("server_id", Schema::int64()),
                Field::new("gtid", Schema::string().optional()),
                Field::new("file", Schema::string()),
                Field::new("pos", Schema::int64()),
                Field::new("row", Schema::int32()),
                Field::new("thread", Schema::int64().optional()),
                Field::new("query", Schema::string().optional()),
            ],
        ))
    }))
}

/// The column's type as `column.propagate.source.type` reports it: the
/// upper-case type name (with `UNSIGNED`), and the length (or precision)
/// and scale declared in `COLUMN_TYPE` (`decimal(10,2)` → 10, 2).
fn source_type(column: &ColumnDef) -> (String, Option<u32>, Option<u32>) {
    let mut name = column.data_type.to_uppercase();
    if column.column_type.to_ascii_lowercase().contains("unsigned") {
        name.push_str(" UNSIGNED");
    }
    let declared = column
        .column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside);
    let number = |text: &str| text.trim().parse::<u32>().ok();
    let (length, scale) = match declared {
        // enum('a','b') and set(...) declare labels, not a length.
        Some(inside) if !inside.contains('\'') => match inside.split_once(',') {
            Some((length, scale)) => (number(length), number(scale)),
            None => (number(inside), None),
        },
        _ => (None, None),
    };
    (name, length, scale)
}

/// The value a NOT NULL column gets for a zero date or a missing value:
/// the epoch / zero of its type, as Debezium does.
fn zero_of(schema: &Schema) -> Value {
    match &schema.kind {
        SchemaKind::Boolean => Value::Boolean(false),
        SchemaKind::Int8 => Value::Int8(0),
        SchemaKind::Int16 => Value::Int16(0),
        SchemaKind::Int32 => Value::Int32(0),
        SchemaKind::Int64 => Value::Int64(0),
        SchemaKind::Float32 => Value::Float32(0.0),
        SchemaKind::Float64 => Value::Float64(0.0),
        SchemaKind::String if schema.name.as_deref() == Some(logical::ZONED_TIMESTAMP) => {
            Value::String("1970-01-01T00:00:00Z".into())
        }
        SchemaKind::String => Value::String(String::new().into()),
        SchemaKind::Bytes if schema.name.as_deref() == Some(logical::DECIMAL) => Value::decimal(0),
        SchemaKind::Bytes => Value::Bytes(Vec::new()),
        SchemaKind::Struct(fields) => {
            Value::Struct(fields.iter().map(|f| zero_of(&f.schema)).collect())
        }
        _ => Value::Null,
    }
}

impl TableSchema {
    /// Builds the schemas of `def` under `topic_prefix`.
    pub fn build(
        topics: &TopicNaming,
        def: &TableDef,
        filters: &Filters,
        booleans: &BooleanColumns,
        flavor: Flavor,
        mapping: Mapping,
        mappers: &ColumnMappers,
    ) -> Self {
        let topic = topics.data(&def.database, &def.name);
        let qualified = format!("{}.{}", def.database, def.name);
        let mapped = |c: &ColumnDef, field: Schema| {
            let (type_name, length, scale) = source_type(c);
            mappers.map(
                &SourceColumn {
                    table: &qualified,
                    name: &c.name,
                    type_name: &type_name,
                    length,
                    scale,
                },
                field,
            )
        };
        let key_names: Vec<String> = filters
            .key_columns(&def.database, &def.name)
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| def.primary_key.clone());
        let columns: Vec<EmittedColumn> = def
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                filters.column(&def.database, &def.name, &c.name) || key_names.contains(&c.name)
            })
            .map(|(position, c)| EmittedColumn {
                name: c.name.clone(),
                position,
                kind: booleans.kind_of(&def.database, &def.name, c, Kind::of(c)),
                nullable: c.nullable,
                mapper: if mappers.is_empty() {
                    None
                } else {
                    mapped(c, Schema::string()).1
                },
            })
            .collect();
        let field = |c: &EmittedColumn, force_required: bool| {
            let mut schema = c.kind.schema(mapping);
            if !mappers.is_empty() {
                schema = mapped(&def.columns[c.position], schema).0;
            }
            if c.nullable && !force_required {
                schema = schema.optional();
            }
            let default = def.columns[c.position]
                .default
                .as_deref()
                .and_then(default_literal)
                .map(|text| c.kind.from_text(text.as_bytes(), mapping));
            if let Some(Read::Value(value)) = default {
                schema = schema.with_default(value);
            }
            Field::new(c.name.clone(), schema)
        };
        let (key_schema, envelope, key) = debezium::table_schemas(
            &topic,
            &columns,
            |c| c.name.as_str(),
            &key_names,
            field,
            source_schema(flavor),
        );
        Self {
            topic: Text::from(std::sync::Arc::<str>::from(topic)),
            def: def.clone(),
            columns,
            key,
            key_schema,
            envelope,
            names: (
                Text::from(Arc::<str>::from(def.database.as_str())),
                Text::from(Arc::<str>::from(def.name.as_str())),
            ),
            mapping,
        }
    }

    /// The column's value from what its kind read. Inlined into the row
    /// loops: called once per value, it cost ~28 instructions a call out
    /// of line, because its error arms format text; those arms are
    /// [`Self::finish_rare`]'s.
    #[inline]
    fn finish(&self, column: &EmittedColumn, read: Read) -> Result<Value, String> {
        match read {
            Read::Value(v) => Ok(mapped(column, v)),
            Read::Null if column.nullable => Ok(Value::Null),
            read => self.finish_rare(column, read),
        }
    }

    /// [`Self::finish`] of the reads that are neither a value nor a
    /// nullable column's NULL.
    #[cold]
    #[inline(never)]
    fn finish_rare(&self, column: &EmittedColumn, read: Read) -> Result<Value, String> {
        match read {
            Read::Value(v) => Ok(mapped(column, v)),
            Read::Null | Read::Zero if column.nullable => Ok(Value::Null),
            Read::Null | Read::Zero => Ok(zero_of(&column.kind.schema(self.mapping))),
            Read::PartialJson => Err(format!(
                "column {}.{}.{} arrived as a partial JSON update, which cannot be turned into the document; set binlog_row_value_options='' on the server",
                self.def.database, self.def.name, column.name
            )),
            Read::Bad => Err(format!(
                "column {}.{}.{}: the value does not fit its type {:?}",
                self.def.database, self.def.name, column.name, column.kind
            )),
        }
    }

    /// The row struct from text-protocol values of every table column.
    pub fn row_from_text(&self, values: &[Option<&[u8]>]) -> Result<Value, String> {
        let mut out = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let read = match values.get(column.position).copied().flatten() {
                None => Read::Null,
                Some(raw) => column.kind.from_text(raw, self.mapping),
            };
            out.push(self.finish(column, read)?);
        }
        Ok(Value::Struct(out))
    }

    /// The row struct from a binlog row image of every table column. The
    /// image's values are taken (each slot left `None`): text moves into
    /// the row rather than being copied.
    pub fn row_from_binlog(&self, values: &mut [Option<Cell<'_>>]) -> Result<Value, String> {
        let mut out = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let read = match values.get_mut(column.position).and_then(Option::take) {
                Some(v) => column.kind.from_cell(v, self.mapping),
                _ => {
                    return Err(format!(
                        "column {}.{}.{} is missing from the row image; set binlog_row_image=FULL",
                        self.def.database, self.def.name, column.name
                    ))
                }
            };
            out.push(self.finish(column, read)?);
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

/// `v` through the column's mapper (`column.mask.*`, `column.truncate.to.*`), if it has one.
#[inline]
fn mapped(column: &EmittedColumn, mut v: Value) -> Value {
    if let Some(mapper) = &column.mapper {
        mapper.apply(&mut v);
    }
    v
}

/// A table's schemas for the crate's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use sluice_connector_api::filters::Filters;

    use super::TableSchema;
    use crate::catalog::{ColumnDef, TableDef};
    use crate::config::{BigintUnsignedMode, BinaryMode, DecimalMode, TimePrecision};
    use crate::types::Mapping;

    /// `inventory.items (id int primary key, name varchar(40))` under the
    /// prefix `shop`.
    pub fn items() -> TableSchema {
        let column = |name: &str, data_type: &str, column_type: &str, nullable| ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable,
            default: None,
            charset: (data_type == "varchar").then(|| "utf8mb4".into()),
        };
        let def = TableDef {
            database: "inventory".into(),
            name: "items".into(),
            columns: vec![
                column("id", "int", "int(11)", false),
                column("name", "varchar", "varchar(40)", true),
            ],
            primary_key: vec!["id".into()],
        };
        let mapping = Mapping {
            decimal: DecimalMode::Precise,
            time: TimePrecision::Adaptive,
            bigint_unsigned: BigintUnsignedMode::Long,
            binary: BinaryMode::Bytes,
        };
        TableSchema::build(
            &sluice_connector_api::topic_naming::TopicNaming::with_prefix("shop"),
            &def,
            &Filters::default(),
            &crate::boolean_columns::BooleanColumns::default(),
            crate::flavor::Flavor::MySql,
            mapping,
            &sluice_connector_api::column_mapping::ColumnMappers::default(),
        )
    }
}
