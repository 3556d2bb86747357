//! `table.name.format` parsed once: literal text and placeholders
//! (`${topic}`, `${source.db}`, `${source.schema}`, `${source.table}`),
//! rendered per record without searching the format text again (it ran
//! per record and was 8% of the sink's instructions under callgrind).

use std::fmt;

use sluice_connector_api::{Schema, Value};

/// A piece of the format.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Text written as is (an unknown `${…}` stays literal, as before).
    Literal(String),
    /// The record's topic, dots as underscores.
    Topic,
    /// A text field of the Debezium source block (`db`, `schema`, `table`).
    Source(&'static str),
}

/// The parsed `table.name.format`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFormat {
    text: String,
    parts: Vec<Part>,
}

const PLACEHOLDERS: [(&str, Option<&str>); 4] = [
    ("${topic}", None),
    ("${source.db}", Some("db")),
    ("${source.schema}", Some("schema")),
    ("${source.table}", Some("table")),
];

impl TableFormat {
    /// Parses `text`; every string is a valid format.
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            match PLACEHOLDERS.iter().find(|(p, _)| rest.starts_with(p)) {
                Some((placeholder, field)) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(field.map_or(Part::Topic, Part::Source));
                    rest = &rest[placeholder.len()..];
                }
                None => {
                    let c = rest.chars().next().unwrap_or_default();
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Self {
            text: text.to_owned(),
            parts,
        }
    }

    /// The source-block fields the format names (`db`, `schema`, `table`).
    pub fn source_fields(&self) -> Vec<&'static str> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Source(name) => Some(*name),
                _ => None,
            })
            .collect()
    }

    /// The table for a record of `topic` with Debezium source block
    /// `source`; `None` when the format names a source field the record
    /// does not carry as text.
    pub fn render(&self, topic: &str, source: Option<(&Schema, &Value)>) -> Option<String> {
        match source {
            None => self.render_indexed(topic, None),
            Some((schema, value)) => {
                self.render_indexed(topic, Some((&self.source_indices(schema), value)))
            }
        }
    }

    /// Where a source block of schema `source` holds each source field
    /// the format names, in the format's order (for
    /// [`Self::render_indexed`]); `None` for a field it lacks.
    pub fn source_indices(&self, source: &Schema) -> Vec<Option<usize>> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Source(name) => Some(source.field(name).map(|(index, _)| index)),
                _ => None,
            })
            .collect()
    }

    /// [`Self::render`] with the source fields found beforehand by
    /// [`Self::source_indices`]: a batch's records mostly share one
    /// schema, and finding a field by name for every record cost more
    /// than the rest of the rendering.
    pub fn render_indexed(
        &self,
        topic: &str,
        source: Option<(&[Option<usize>], &Value)>,
    ) -> Option<String> {
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut sources = 0;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Topic => out.extend(topic.chars().map(|c| if c == '.' { '_' } else { c })),
                Part::Source(_) => {
                    let (indices, value) = source?;
                    let index = (*indices.get(sources)?)?;
                    sources += 1;
                    match value {
                        Value::Struct(values) => match values.get(index)? {
                            Value::String(text) => out.push_str(text),
                            _ => return None,
                        },
                        _ => return None,
                    }
                }
            }
        }
        Some(out)
    }
}

impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_connector_api::Field;

    fn source(db: &str, table: &str) -> (Schema, Value) {
        let schema = Schema::structure(
            "io.debezium.connector.postgresql.Source",
            vec![
                Field::new("db", Schema::string()),
                Field::new("schema", Schema::string().optional()),
                Field::new("table", Schema::string()),
            ],
        );
        let value = Value::Struct(vec![
            Value::String(db.into()),
            Value::Null,
            Value::String(table.into()),
        ]);
        (schema, value)
    }

    #[test]
    fn placeholders_are_filled_from_the_topic_and_the_source_block() {
        let (schema, value) = source("shop", "orders");
        let format = TableFormat::parse("archive_${source.db}.${source.table}_${topic}");
        assert_eq!(
            format.render("srv.public.orders", Some((&schema, &value))),
            Some("archive_shop.orders_srv_public_orders".into())
        );
        assert_eq!(
            TableFormat::parse("${topic}").render("a.b.c", None),
            Some("a_b_c".into())
        );
        assert_eq!(
            TableFormat::parse("fixed").render("t", None),
            Some("fixed".into())
        );
    }

    #[test]
    fn a_missing_or_null_source_field_gives_no_table() {
        let (schema, value) = source("shop", "orders");
        let schema_format = TableFormat::parse("${source.schema}.${source.table}");
        assert_eq!(schema_format.render("t", Some((&schema, &value))), None);
        assert_eq!(
            TableFormat::parse("${source.table}").render("t", None),
            None
        );
    }

    #[test]
    fn unknown_placeholders_and_non_ascii_text_stay_literal() {
        let format = TableFormat::parse("t_${nope}_é_${topic}");
        assert_eq!(format.render("x.y", None), Some("t_${nope}_é_x_y".into()));
        assert_eq!(format.to_string(), "t_${nope}_é_${topic}");
    }
}
