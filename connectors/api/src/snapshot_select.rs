//! Debezium's `snapshot.select.statement.overrides`: the tables it lists
//! (`<schema>.<table>`, `<database>.<table>` for MySQL) are snapshotted
//! with the statement in `snapshot.select.statement.overrides.<table>`
//! instead of a read of the whole table — typically to leave old rows out.
//! The statement is read as a subquery, its columns picked by name, so it
//! may use `SELECT *`, reorder columns or add a `WHERE`.

use std::collections::HashMap;

use crate::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

const LIST: &str = "snapshot.select.statement.overrides";

/// The snapshot statements by `<schema>.<table>`.
#[derive(Debug, Clone, Default)]
pub struct SnapshotSelects {
    statements: HashMap<String, String>,
}

/// The key listing the overridden tables, for a source's definition.
pub fn definition() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::new(LIST, ConfigType::List, "Tables (<schema>.<table>) whose snapshot runs the SELECT in snapshot.select.statement.overrides.<schema>.<table> instead of reading the whole table; its columns are picked by name, so SELECT * with a WHERE works.")
            .group("Snapshot"),
    )
}

/// Whether `key` is a per-table statement key (its name holds the table).
pub fn is_statement_key(key: &str) -> bool {
    key.strip_prefix(LIST)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|table| !table.is_empty())
}

impl SnapshotSelects {
    /// Reads the list and each listed table's statement; a listed table
    /// without one, or an empty statement, is refused by key.
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let mut statements = HashMap::new();
        for table in config.list(LIST) {
            let key = format!("{LIST}.{table}");
            let statement = config
                .get(&key)
                .map(|s| s.trim().trim_end_matches(';').trim())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        LIST,
                        format!("{table} is listed but {key} has no SELECT statement; set it or take the table off the list"),
                    )
                })?;
            statements.insert(table, statement.to_owned());
        }
        Ok(Self { statements })
    }

    /// The SQL reading `columns` (already quoted and comma-joined) of
    /// `schema.table` through its override, if it has one.
    pub fn select(&self, schema: &str, table: &str, columns: &str) -> Option<String> {
        let statement = self.statements.get(&format!("{schema}.{table}"))?;
        Some(format!(
            "SELECT {columns} FROM ({statement}) AS sluice_snapshot_select"
        ))
    }

    /// Whether `schema.table` has an override (it is then read in one
    /// piece: a statement cannot be cut into key or page ranges).
    pub fn overrides(&self, schema: &str, table: &str) -> bool {
        self.statements.contains_key(&format!("{schema}.{table}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_tables_read_through_their_statement() {
        let selects = SnapshotSelects::from_config(&ConnectorConfig::from_pairs(&[
            (LIST, "inv.orders"),
            (
                "snapshot.select.statement.overrides.inv.orders",
                "SELECT * FROM inv.orders WHERE id > 10;",
            ),
        ]))
        .unwrap();
        assert_eq!(
            selects.select("inv", "orders", "\"id\", \"qty\"").as_deref(),
            Some("SELECT \"id\", \"qty\" FROM (SELECT * FROM inv.orders WHERE id > 10) AS sluice_snapshot_select")
        );
        assert!(selects.overrides("inv", "orders"));
        assert_eq!(selects.select("inv", "customers", "*"), None);
        assert!(is_statement_key(
            "snapshot.select.statement.overrides.inv.orders"
        ));
        assert!(!is_statement_key("snapshot.select.statement.overrides"));
    }

    #[test]
    fn a_listed_table_without_a_statement_is_named() {
        let err =
            SnapshotSelects::from_config(&ConnectorConfig::from_pairs(&[(LIST, "inv.orders")]))
                .unwrap_err();
        assert_eq!(err.key, LIST);
        assert!(err
            .message
            .contains("snapshot.select.statement.overrides.inv.orders"));
    }
}
