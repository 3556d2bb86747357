//! Debezium's column masking and truncation on source connectors:
//! `column.mask.with.<n>.chars` replaces the values of the matching
//! character columns by n asterisks, `column.truncate.to.<n>.chars` cuts
//! them to n characters. Each key's value is a list of regular expressions
//! of `<schema>.<table>.<column>` (`<database>.<table>.<column>` for MySQL),
//! matching the whole name. Applied to `before` and `after` of change
//! events first, ahead of any configured transform, so nothing unmasked
//! reaches a transform, a converter or Kafka.

use std::sync::{Arc, Mutex};

use regex_lite::Regex;
use sluice_connector_api::{ConfigError, ConnectorConfig, Schema, Value};

use super::fields::struct_values;
use super::{Failure, Record, Transform};

/// What happens to a matching column's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Mask(usize),
    Truncate(usize),
}

impl Rule {
    fn apply(self, text: &mut String) {
        match self {
            Self::Mask(n) => *text = "*".repeat(n),
            Self::Truncate(n) => {
                if let Some((cut, _)) = text.char_indices().nth(n) {
                    text.truncate(cut);
                }
            }
        }
    }
}

/// The key prefixes this module handles.
pub const KEY_PATTERNS: &[(&str, &str)] = &[
    ("column.mask.with.", ".chars"),
    ("column.truncate.to.", ".chars"),
];

/// Whether `key` is one of the column rule keys.
pub fn is_rule_key(key: &str) -> bool {
    KEY_PATTERNS.iter().any(|(prefix, suffix)| {
        key.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|n| !n.is_empty())
    })
}

/// The row positions of one table's matching columns, with their rules.
type TableRules = Arc<Vec<(usize, Rule)>>;

/// The configured rules.
pub struct ColumnRules {
    rules: Vec<(Regex, Rule)>,
    /// Per envelope schema (one per table): the `before`/`after` column
    /// positions and their rules.
    resolved: Mutex<Vec<(Arc<Schema>, TableRules)>>,
}

impl ColumnRules {
    /// The rules `config` sets; `None` when it sets none.
    pub fn from_config(config: &ConnectorConfig) -> Result<Option<Self>, ConfigError> {
        let mut rules = Vec::new();
        for (key, _) in config.iter() {
            let parsed = KEY_PATTERNS.iter().find_map(|(prefix, suffix)| {
                let n = key.strip_prefix(prefix)?.strip_suffix(suffix)?;
                Some((*prefix, n))
            });
            let Some((prefix, n)) = parsed else { continue };
            let n: usize = n.parse().map_err(|_| {
                ConfigError::new(
                    key.as_str(),
                    format!("{n:?} is not a number of characters; write e.g. {prefix}10.chars"),
                )
            })?;
            let rule = if prefix == "column.mask.with." {
                Rule::Mask(n)
            } else {
                Rule::Truncate(n)
            };
            for pattern in config.list(key) {
                let regex = Regex::new(&format!("(?i)^(?:{pattern})$")).map_err(|e| {
                    ConfigError::new(
                        key.as_str(),
                        format!("{pattern} is not a valid regular expression: {e}"),
                    )
                })?;
                rules.push((regex, rule));
            }
        }
        Ok((!rules.is_empty()).then(|| Self {
            rules,
            resolved: Mutex::new(Vec::new()),
        }))
    }

    /// The rules for the columns of the table an envelope belongs to.
    fn resolve(&self, envelope: &Arc<Schema>, values: &[Value]) -> Result<TableRules, Failure> {
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, found)) = resolved.iter().find(|(s, _)| Arc::ptr_eq(s, envelope)) {
            return Ok(Arc::clone(found));
        }
        let (source_index, source_field) = envelope
            .field("source")
            .ok_or_else(|| Failure::new("a change event without a source block"))?;
        let source = struct_values(&source_field.schema, &values[source_index])?;
        let text = |name: &str| -> Option<String> {
            let (i, _) = source_field.schema.field(name)?;
            match source.get(i)? {
                Value::String(s) => Some(s.clone()),
                _ => None,
            }
        };
        // PostgreSQL names columns schema.table.column, MySQL database.table.column.
        let container = text("schema").or_else(|| text("db")).unwrap_or_default();
        let table = text("table").unwrap_or_default();
        let row = envelope
            .field("after")
            .map(|(_, f)| Arc::clone(&f.schema))
            .ok_or_else(|| Failure::new("a change event without an after field"))?;
        let columns: Vec<(usize, Rule)> = row
            .fields()
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                let name = format!("{container}.{table}.{}", f.name);
                self.rules
                    .iter()
                    .filter(move |(regex, _)| regex.is_match(&name))
                    .map(move |(_, rule)| (i, *rule))
            })
            .collect();
        let columns = Arc::new(columns);
        if resolved.len() >= 256 {
            resolved.remove(0);
        }
        resolved.push((Arc::clone(envelope), Arc::clone(&columns)));
        Ok(columns)
    }
}

fn is_envelope(schema: &Schema) -> bool {
    schema.field("before").is_some()
        && schema.field("after").is_some()
        && schema.field("source").is_some()
}

impl Transform for ColumnRules {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let Some(envelope) = record.value_schema.clone().filter(|s| is_envelope(s)) else {
            return Ok(Some(record));
        };
        let Some(Value::Struct(values)) = &mut record.value else {
            return Ok(Some(record));
        };
        let columns = self.resolve(&envelope, values)?;
        if columns.is_empty() {
            return Ok(Some(record));
        }
        for side in ["before", "after"] {
            let Some((i, _)) = envelope.field(side) else {
                continue;
            };
            if let Some(Value::Struct(row)) = values.get_mut(i) {
                for (column, rule) in columns.iter() {
                    if let Some(Value::String(text)) = row.get_mut(*column) {
                        rule.apply(text);
                    }
                }
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use sluice_connector_api::Field;

    use super::*;
    use crate::transforms::record::tests_support::{envelope_with, record_on, row};

    fn event(schema: &Arc<Schema>) -> Record {
        let mut record = record_on("db.inventory.customers");
        record.value_schema = Some(Arc::clone(schema));
        record.value = Some(Value::Struct(vec![
            row(1, "Ann Smith", "ann@example.com"),
            row(1, "Ann Jones", "ann.jones@example.com"),
            Value::Struct(vec![
                Value::String("inventory".into()),
                Value::String("customers".into()),
            ]),
        ]));
        record
    }

    fn envelope() -> Arc<Schema> {
        envelope_with(vec![Field::new(
            "source",
            Schema::structure(
                "io.debezium.connector.postgresql.Source",
                vec![
                    Field::new("schema", Schema::string()),
                    Field::new("table", Schema::string()),
                ],
            ),
        )])
    }

    #[test]
    fn masks_and_truncates_matching_columns_in_before_and_after() {
        let config: ConnectorConfig = [
            ("column.mask.with.6.chars", "inventory.customers.email"),
            ("column.truncate.to.3.chars", r"inventory\.cust.*\.name"),
        ]
        .into_iter()
        .collect();
        let rules = ColumnRules::from_config(&config).unwrap().unwrap();
        let out = rules.apply(event(&envelope())).unwrap().unwrap();
        let Some(Value::Struct(values)) = out.value else {
            panic!()
        };
        for side in &values[..2] {
            let Value::Struct(row) = side else { panic!() };
            assert_eq!(row[1], Value::String("Ann".into()));
            assert_eq!(row[2], Value::String("******".into()));
        }
    }

    #[test]
    fn other_tables_and_non_events_are_untouched() {
        let config: ConnectorConfig = [("column.mask.with.4.chars", "other.customers.email")]
            .into_iter()
            .collect();
        let rules = ColumnRules::from_config(&config).unwrap().unwrap();
        let input = event(&envelope());
        assert_eq!(rules.apply(input.clone()).unwrap(), Some(input));
        assert!(ColumnRules::from_config(&ConnectorConfig::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_bad_length_names_the_key() {
        let config: ConnectorConfig = [("column.mask.with.x.chars", "a.b.c")]
            .into_iter()
            .collect();
        let e = ColumnRules::from_config(&config).err().unwrap();
        assert_eq!(e.key, "column.mask.with.x.chars");
        assert!(is_rule_key("column.truncate.to.20.chars"));
        assert!(!is_rule_key("column.truncate.to..chars"));
    }
}
