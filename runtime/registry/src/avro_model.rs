//! A light model of an Avro schema, just what schema resolution needs:
//! types, full names with namespaces, aliases, field defaults, enum
//! symbols and fixed sizes. Validation proper is apache-avro's job; this
//! model is built only from text it has accepted.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

/// One node of a schema tree; named types live in [`AvroModel::named`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`
    Null,
    /// `boolean`
    Boolean,
    /// `int` (also `date`, `time-millis`)
    Int,
    /// `long` (also timestamps)
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `bytes` (also `decimal`)
    Bytes,
    /// `string` (also `uuid`)
    String,
    /// `array` of items.
    Array(Box<Node>),
    /// `map` of values.
    Map(Box<Node>),
    /// A union of branches.
    Union(Vec<Node>),
    /// A record, enum or fixed, by index into [`AvroModel::named`].
    Named(usize),
}

impl Node {
    /// The Avro type name used in messages.
    pub fn type_name<'a>(&self, model: &'a AvroModel) -> &'a str {
        match self {
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Long => "long",
            Self::Float => "float",
            Self::Double => "double",
            Self::Bytes => "bytes",
            Self::String => "string",
            Self::Array(_) => "array",
            Self::Map(_) => "map",
            Self::Union(_) => "union",
            Self::Named(i) => match model.named[*i].kind {
                NamedKind::Record(_) => "record",
                NamedKind::Enum { .. } => "enum",
                NamedKind::Fixed { .. } => "fixed",
            },
        }
    }
}

/// A record, enum or fixed type.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedType {
    /// The full name, e.g. `io.sluice.Value`.
    pub full_name: String,
    /// Full names this type also answers to.
    pub aliases: Vec<String>,
    /// What the type is.
    pub kind: NamedKind,
}

impl NamedType {
    /// The unqualified name.
    pub fn simple_name(&self) -> &str {
        self.full_name.rsplit('.').next().unwrap_or(&self.full_name)
    }
}

/// The body of a named type.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedKind {
    /// A record's fields in order.
    Record(Vec<FieldDef>),
    /// An enum's symbols and its default symbol.
    Enum {
        /// The symbols.
        symbols: Vec<String>,
        /// The symbol a reader uses for writer symbols it lacks.
        default: Option<String>,
    },
    /// A fixed-size byte string.
    Fixed {
        /// The size in bytes.
        size: u64,
    },
}

/// One record field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// The field name.
    pub name: String,
    /// Other names a reader matches writer fields by.
    pub aliases: Vec<String>,
    /// Whether the field declares a default.
    pub has_default: bool,
    /// The field's type.
    pub node: Node,
}

/// A parsed schema: the root node and its named types.
#[derive(Debug, Clone, PartialEq)]
pub struct AvroModel {
    /// The top-level type.
    pub root: Node,
    /// Every record, enum and fixed, in definition order.
    pub named: Vec<NamedType>,
}

/// The schema JSON does not describe a type this model understands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

impl AvroModel {
    /// Builds the model from schema JSON.
    pub fn from_json(schema: &Json) -> Result<Self, ModelError> {
        let mut builder = Builder::default();
        let root = builder.node(schema, "")?;
        Ok(Self {
            root,
            named: builder.named,
        })
    }
}

#[derive(Default)]
struct Builder {
    named: Vec<NamedType>,
    by_name: HashMap<String, usize>,
}

/// `name` qualified by `namespace` unless it already carries one.
fn qualify(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

impl Builder {
    fn node(&mut self, schema: &Json, namespace: &str) -> Result<Node, ModelError> {
        match schema {
            Json::String(name) => self.by_type_name(name, namespace),
            Json::Array(branches) => Ok(Node::Union(
                branches
                    .iter()
                    .map(|b| self.node(b, namespace))
                    .collect::<Result<_, _>>()?,
            )),
            Json::Object(object) => self.object(object, namespace),
            other => Err(ModelError(format!("not a schema: {other}"))),
        }
    }

    fn by_type_name(&self, name: &str, namespace: &str) -> Result<Node, ModelError> {
        Ok(match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int,
            "long" => Node::Long,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes,
            "string" => Node::String,
            reference => {
                let index = self
                    .by_name
                    .get(&qualify(reference, namespace))
                    .or_else(|| self.by_name.get(reference))
                    .ok_or_else(|| ModelError(format!("unknown type {reference}")))?;
                Node::Named(*index)
            }
        })
    }

    fn object(&mut self, object: &Map<String, Json>, namespace: &str) -> Result<Node, ModelError> {
        let Some(type_field) = object.get("type") else {
            return Err(ModelError("a schema object needs a \"type\"".to_owned()));
        };
        let Json::String(kind) = type_field else {
            // {"type": {...}} or {"type": [...]} wraps another schema.
            return self.node(type_field, namespace);
        };
        match kind.as_str() {
            "array" => {
                let items = object
                    .get("items")
                    .ok_or_else(|| ModelError("array without items".to_owned()))?;
                Ok(Node::Array(Box::new(self.node(items, namespace)?)))
            }
            "map" => {
                let values = object
                    .get("values")
                    .ok_or_else(|| ModelError("map without values".to_owned()))?;
                Ok(Node::Map(Box::new(self.node(values, namespace)?)))
            }
            "record" | "error" | "enum" | "fixed" => self.named_type(kind, object, namespace),
            other => self.by_type_name(other, namespace),
        }
    }

    fn named_type(
        &mut self,
        kind: &str,
        object: &Map<String, Json>,
        namespace: &str,
    ) -> Result<Node, ModelError> {
        let name = object
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| ModelError(format!("a {kind} needs a name")))?;
        let own_namespace = object
            .get("namespace")
            .and_then(Json::as_str)
            .unwrap_or(namespace);
        let full_name = qualify(name, own_namespace);
        let inner_namespace = full_name
            .rsplit_once('.')
            .map_or(String::new(), |(ns, _)| ns.to_owned());
        let aliases = strings(object.get("aliases"))
            .into_iter()
            .map(|a| qualify(&a, &inner_namespace))
            .collect();
        let index = self.named.len();
        // Registered before the fields so a record may refer to itself.
        self.named.push(NamedType {
            full_name: full_name.clone(),
            aliases,
            kind: NamedKind::Fixed { size: 0 },
        });
        self.by_name.insert(full_name, index);
        let body = match kind {
            "enum" => NamedKind::Enum {
                symbols: strings(object.get("symbols")),
                default: object
                    .get("default")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
            },
            "fixed" => NamedKind::Fixed {
                size: object.get("size").and_then(Json::as_u64).unwrap_or(0),
            },
            _ => {
                let fields = object
                    .get("fields")
                    .and_then(Json::as_array)
                    .ok_or_else(|| ModelError(format!("record {name} needs fields")))?;
                let mut defs = Vec::with_capacity(fields.len());
                for field in fields {
                    let field_name = field
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or_else(|| ModelError(format!("a field of {name} has no name")))?;
                    let field_type = field.get("type").ok_or_else(|| {
                        ModelError(format!("field {field_name} of {name} has no type"))
                    })?;
                    defs.push(FieldDef {
                        name: field_name.to_owned(),
                        aliases: strings(field.get("aliases")),
                        has_default: field.get("default").is_some(),
                        node: self.node(field_type, &inner_namespace)?,
                    });
                }
                NamedKind::Record(defs)
            }
        };
        self.named[index].kind = body;
        Ok(Node::Named(index))
    }
}

fn strings(value: Option<&Json>) -> Vec<String> {
    value
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaces_aliases_and_self_reference() {
        let model = AvroModel::from_json(&json!({
            "type": "record", "name": "Node", "namespace": "a.b", "aliases": ["Old"],
            "fields": [
                {"name": "next", "type": ["null", "Node"], "default": null},
                {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}}
            ]
        }))
        .expect("model");
        assert_eq!(model.named[0].full_name, "a.b.Node");
        assert_eq!(model.named[0].aliases, vec!["a.b.Old"]);
        let NamedKind::Record(fields) = &model.named[0].kind else {
            panic!("record expected")
        };
        assert_eq!(
            fields[0].node,
            Node::Union(vec![Node::Null, Node::Named(0)])
        );
        assert!(fields[0].has_default);
        assert_eq!(fields[1].node, Node::Long);
    }
}
