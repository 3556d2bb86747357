//! Schemas of the record model, shaped like Kafka Connect's so that Debezium's
//! naming (`connect.name`, logical type names, parameters) carries over to
//! JSON and Avro unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::value::Value;

/// The physical type of a schema and, for containers, what they contain.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaKind {
    /// 8-bit signed integer.
    Int8,
    /// 16-bit signed integer.
    Int16,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit IEEE float.
    Float32,
    /// 64-bit IEEE float.
    Float64,
    /// true or false.
    Boolean,
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Bytes,
    /// A list of values of one schema.
    Array(Arc<Schema>),
    /// A map from key schema to value schema.
    Map(Arc<Schema>, Arc<Schema>),
    /// A record of named fields, in order.
    Struct(Vec<Field>),
}

impl SchemaKind {
    /// Kafka Connect's name for the type, as used in JSON schemas.
    pub fn connect_name(&self) -> &'static str {
        match self {
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Float32 => "float",
            Self::Float64 => "double",
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Bytes => "bytes",
            Self::Array(_) => "array",
            Self::Map(..) => "map",
            Self::Struct(_) => "struct",
        }
    }
}

/// One named field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field name as it appears in JSON and Avro.
    pub name: String,
    /// The field's schema.
    pub schema: Arc<Schema>,
}

impl Field {
    /// A field called `name` with `schema`.
    pub fn new(name: impl Into<String>, schema: Schema) -> Self {
        Self {
            name: name.into(),
            schema: Arc::new(schema),
        }
    }
}

/// A schema: a physical type plus the metadata that gives it meaning.
///
/// `name` and `parameters` carry logical types the way Connect does (for
/// example `org.apache.kafka.connect.data.Decimal` with a `scale`
/// parameter); see [`crate::logical`] for constructors.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The physical type.
    pub kind: SchemaKind,
    /// Whether the value may be null.
    pub optional: bool,
    /// A fully qualified name: a record name or a logical type name.
    pub name: Option<String>,
    /// The schema version, written as `connect.version`.
    pub version: Option<i32>,
    /// Documentation carried into the Avro schema.
    pub doc: Option<String>,
    /// Extra metadata, e.g. a decimal's `scale`.
    pub parameters: BTreeMap<String, String>,
    /// The default value, if any.
    pub default: Option<Value>,
}

impl Schema {
    /// A required schema of the given kind with no metadata.
    pub fn new(kind: SchemaKind) -> Self {
        Self {
            kind,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            default: None,
        }
    }

    /// A required 8-bit integer.
    pub fn int8() -> Self {
        Self::new(SchemaKind::Int8)
    }
    /// A required 16-bit integer.
    pub fn int16() -> Self {
        Self::new(SchemaKind::Int16)
    }
    /// A required 32-bit integer.
    pub fn int32() -> Self {
        Self::new(SchemaKind::Int32)
    }
    /// A required 64-bit integer.
    pub fn int64() -> Self {
        Self::new(SchemaKind::Int64)
    }
    /// A required 32-bit float.
    pub fn float32() -> Self {
        Self::new(SchemaKind::Float32)
    }
    /// A required 64-bit float.
    pub fn float64() -> Self {
        Self::new(SchemaKind::Float64)
    }
    /// A required boolean.
    pub fn boolean() -> Self {
        Self::new(SchemaKind::Boolean)
    }
    /// A required string.
    pub fn string() -> Self {
        Self::new(SchemaKind::String)
    }
    /// A required byte array.
    pub fn bytes() -> Self {
        Self::new(SchemaKind::Bytes)
    }
    /// A required array of `items`.
    pub fn array(items: Schema) -> Self {
        Self::new(SchemaKind::Array(Arc::new(items)))
    }
    /// A required map from `keys` to `values`.
    pub fn map(keys: Schema, values: Schema) -> Self {
        Self::new(SchemaKind::Map(Arc::new(keys), Arc::new(values)))
    }
    /// A required struct called `name` with `fields` in order.
    pub fn structure(name: impl Into<String>, fields: Vec<Field>) -> Self {
        Self::new(SchemaKind::Struct(fields)).named(name)
    }

    /// The same schema, nullable.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    /// The same schema with a name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The same schema with a version.
    pub fn versioned(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }
    /// The same schema with documentation.
    pub fn documented(mut self, doc: impl Into<String>) -> Self {
        self.doc = Some(doc.into());
        self
    }
    /// The same schema with one more parameter.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(key.into(), value.into());
        self
    }
    /// The same schema with a default value.
    pub fn with_default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    /// The fields of a struct schema; empty for any other kind.
    pub fn fields(&self) -> &[Field] {
        match &self.kind {
            SchemaKind::Struct(fields) => fields,
            _ => &[],
        }
    }

    /// The position and definition of the struct field called `name`.
    pub fn field(&self, name: &str) -> Option<(usize, &Field)> {
        self.fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
    }
}
