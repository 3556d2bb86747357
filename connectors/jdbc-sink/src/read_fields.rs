//! The fields of a change event the sink reads — `op`, `after`, and the
//! source-block fields `table.name.format` names — so the runtime can
//! step over the rest (`before`, the rest of the source block, the
//! transaction block) instead of decoding them. Flat records are read
//! whole: every field of theirs is a column.

use sluice_connector_api::{FieldSelection, FieldSelector, Schema};

use crate::change::is_envelope;
use crate::table_format::TableFormat;

/// What [`interpret_with`](crate::change::interpret_with) reads of a value.
#[derive(Debug)]
pub struct ReadFields {
    /// Source-block fields the table name is made of.
    source: Vec<&'static str>,
}

impl ReadFields {
    /// The fields read under `format`.
    pub fn new(format: &TableFormat) -> Self {
        Self {
            source: format.source_fields(),
        }
    }
}

impl FieldSelector for ReadFields {
    fn select(&self, schema: &Schema) -> Option<FieldSelection> {
        if !is_envelope(schema) {
            return None;
        }
        let read = FieldSelection::default().whole("op").whole("after");
        if self.source.is_empty() {
            // Not even an empty struct: a source block of nulls cost an
            // allocation, a push per field and a free per record.
            return Some(read);
        }
        let source = self
            .source
            .iter()
            .fold(FieldSelection::default(), |s, name| s.whole(name));
        Some(read.part("source", source))
    }
}

#[cfg(test)]
mod tests {
    use sluice_connector_api::{Field, SchemaKind};

    use super::*;

    fn envelope() -> Schema {
        let row = Schema::structure("t.Value", vec![Field::new("id", Schema::int32())]).optional();
        Schema::structure(
            "t.Envelope",
            vec![
                Field::new("before", row.clone()),
                Field::new("after", row),
                Field::new("source", Schema::structure("s", vec![])),
                Field::new("op", Schema::string()),
            ],
        )
    }

    #[test]
    fn envelopes_are_read_in_part_and_flat_records_whole() {
        let by_table = ReadFields::new(&TableFormat::parse("${source.schema}_${source.table}"));
        let selection = by_table.select(&envelope()).expect("an envelope");
        let names: Vec<&str> = selection.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["op", "after", "source"]);
        let source = selection.fields[2].1.as_ref().expect("part of the source");
        let inner: Vec<&str> = source.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(inner, ["schema", "table"]);
        let by_topic = ReadFields::new(&TableFormat::parse("${topic}"));
        let selection = by_topic.select(&envelope()).expect("an envelope");
        let names: Vec<&str> = selection.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["op", "after"], "no source field named: none read");
        let flat = Schema::structure("t.Value", vec![Field::new("op", Schema::string())]);
        assert!(by_topic.select(&flat).is_none());
        assert!(by_topic.select(&Schema::new(SchemaKind::String)).is_none());
    }
}
