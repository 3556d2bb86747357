//! `table.name.format` parsed once: literal text and placeholders
//! (`${topic}`, `${source.db}`, `${source.schema}`, `${source.table}`),
//! rendered per record without searching the format text again (it ran
//! per record and was 8% of the sink's instructions under callgrind).

use std::fmt;
use std::sync::Arc;

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
        let mut sources = self.source_texts(source);
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Topic => out.extend(topic.chars().map(|c| if c == '.' { '_' } else { c })),
                Part::Source(_) => out.push_str(sources.next()??),
            }
        }
        Some(out)
    }

    /// [`Self::render_indexed`] as shared text, reusing `last`'s table
    /// when the topic and source fields are those it was rendered from: a
    /// batch's records mostly go to one table, and a new `String` per
    /// record cost ~200 instructions where comparing the inputs costs a
    /// few dozen (callgrind, `scripts/bench-sink`).
    pub fn render_reusing(
        &self,
        last: &mut LastTable,
        topic: &str,
        source: Option<(&[Option<usize>], &Value)>,
    ) -> Option<Arc<str>> {
        if let Some(table) = &last.table {
            let same_sources = || {
                let mut kept = last.sources.iter();
                self.source_texts(source)
                    .all(|text| text.is_some_and(|t| kept.next().is_some_and(|k| k == t)))
                    && kept.next().is_none()
            };
            if last.topic == topic && same_sources() {
                return Some(Arc::clone(table));
            }
        }
        let table: Arc<str> = self.render_indexed(topic, source)?.into();
        last.topic.clear();
        last.topic.push_str(topic);
        last.sources.clear();
        last.sources
            .extend(self.source_texts(source).flatten().map(str::to_owned));
        last.table = Some(Arc::clone(&table));
        Some(table)
    }

    /// The text of each source field the format names, in its order;
    /// `None` for one the record does not carry as text.
    fn source_texts<'v>(
        &'v self,
        source: Option<(&'v [Option<usize>], &'v Value)>,
    ) -> impl Iterator<Item = Option<&'v str>> + 'v {
        let names = self
            .parts
            .iter()
            .filter(|part| matches!(part, Part::Source(_)));
        names.enumerate().map(move |(n, _)| {
            let (indices, value) = source?;
            let index = (*indices.get(n)?)?;
            match value {
                Value::Struct(values) => match values.get(index)? {
                    Value::String(text) => Some(text.as_ref()),
                    _ => None,
                },
                _ => None,
            }
        })
    }
}

/// The table [`TableFormat::render_reusing`] rendered last, with the
/// topic and source fields it was rendered from.
#[derive(Debug, Default)]
pub struct LastTable {
    topic: String,
    sources: Vec<String>,
    table: Option<Arc<str>>,
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

    /// A run of records naming one table shares one text; any change of
    /// topic or source field renders anew, exactly as `render` does.
    #[test]
    fn a_table_is_rendered_again_only_when_what_names_it_changes() {
        let (schema, _) = source("", "");
        let records = [
            ("srv.a", "shop", "orders"),
            ("srv.a", "shop", "orders"),
            ("srv.b", "shop", "orders"),
            ("srv.b", "shop", "items"),
            ("srv.b", "shop", "items"),
            ("srv.b", "shops", "items"),
            ("srv.b", "shop", "items"),
        ];
        for text in [
            "${source.db}_${source.table}",
            "${topic}",
            "x_${source.table}_${topic}",
            "fixed",
        ] {
            let format = TableFormat::parse(text);
            let indices = format.source_indices(&schema);
            let mut last = LastTable::default();
            let mut previous: Option<(Arc<str>, &str, &str, &str)> = None;
            for (topic, db, table) in records {
                let (_, value) = source(db, table);
                let shared = format
                    .render_reusing(&mut last, topic, Some((&indices, &value)))
                    .expect("every field is there");
                let fresh = format.render(topic, Some((&schema, &value)));
                assert_eq!(Some(&*shared), fresh.as_deref(), "{text} for {topic}");
                if let Some((before, ..)) = previous
                    .as_ref()
                    .filter(|(_, t, d, n)| (*t, *d, *n) == (topic, db, table))
                {
                    assert!(Arc::ptr_eq(before, &shared), "{text}: reused");
                }
                previous = Some((shared, topic, db, table));
            }
            // A record without the source fields names no table, and the
            // one before it does not stand in for it.
            let none = format.render_reusing(&mut last, "srv.b", None);
            assert_eq!(
                none.as_deref().map(str::to_owned),
                format.render("srv.b", None)
            );
        }
    }

    #[test]
    fn unknown_placeholders_and_non_ascii_text_stay_literal() {
        let format = TableFormat::parse("t_${nope}_é_${topic}");
        assert_eq!(format.render("x.y", None), Some("t_${nope}_é_x_y".into()));
        assert_eq!(format.to_string(), "t_${nope}_é_${topic}");
    }
}
