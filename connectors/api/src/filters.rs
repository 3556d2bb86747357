//! Which schemas (databases, for MySQL), tables and columns a source
//! captures, from Debezium's include/exclude lists: comma-separated regular
//! expressions that must match the whole name (`schema`, `schema.table`,
//! `schema.table.column`), ignoring case as Debezium's do.

use std::collections::HashMap;

use regex_lite::Regex;

use crate::{ConfigError, ConnectorConfig};

/// Compiled include/exclude lists.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Schemas (databases) the server keeps for itself; never captured.
    system: &'static [&'static str],
    schema_include: Vec<Regex>,
    schema_exclude: Vec<Regex>,
    table_include: Vec<Regex>,
    table_exclude: Vec<Regex>,
    column_include: Vec<Regex>,
    column_exclude: Vec<Regex>,
    message_include: Vec<Regex>,
    message_exclude: Vec<Regex>,
    /// `snapshot.include.collection.list`: the captured tables the snapshot
    /// reads (all when empty).
    snapshot_include: Vec<Regex>,
    /// `message.key.columns` by `schema.table`.
    key_columns: HashMap<String, Vec<String>>,
}

/// The regular expressions listed in `key`, each anchored to match a whole
/// name and ignoring case, as Debezium compiles its lists.
pub(crate) fn patterns(config: &ConnectorConfig, key: &str) -> Result<Vec<Regex>, ConfigError> {
    config
        .list(key)
        .iter()
        .map(|p| {
            Regex::new(&format!("(?i)^(?:{p})$")).map_err(|e| {
                ConfigError::new(key, format!("{p} is not a valid regular expression: {e}"))
            })
        })
        .collect()
}

fn any(patterns: &[Regex], name: &str) -> bool {
    patterns.iter().any(|p| p.is_match(name))
}

impl Filters {
    /// Reads the lists; an include and an exclude list of one kind together
    /// are refused, as Debezium does. `container` names the first level:
    /// `schema` (PostgreSQL) or `database` (MySQL), whose lists are
    /// `<container>.include.list` / `<container>.exclude.list`; `system`
    /// names containers never captured.
    pub fn parse(
        config: &ConnectorConfig,
        container: &str,
        system: &'static [&'static str],
    ) -> Result<Self, ConfigError> {
        let container_include = format!("{container}.include.list");
        let container_exclude = format!("{container}.exclude.list");
        for (include, exclude) in [
            (container_include.as_str(), container_exclude.as_str()),
            ("table.include.list", "table.exclude.list"),
            ("column.include.list", "column.exclude.list"),
            ("message.prefix.include.list", "message.prefix.exclude.list"),
        ] {
            if !config.list(include).is_empty() && !config.list(exclude).is_empty() {
                return Err(ConfigError::new(
                    exclude,
                    format!("cannot be used together with {include}; keep one of them"),
                ));
            }
        }
        let mut key_columns = HashMap::new();
        if let Some(spec) = config.get("message.key.columns") {
            for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                let (table, columns) = entry.split_once(':').ok_or_else(|| {
                    ConfigError::new(
                        "message.key.columns",
                        format!("{entry} is not schema.table:column[,column]"),
                    )
                })?;
                let columns: Vec<String> = columns
                    .split(',')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty())
                    .collect();
                key_columns.insert(table.trim().to_owned(), columns);
            }
        }
        Ok(Self {
            system,
            schema_include: patterns(config, &container_include)?,
            schema_exclude: patterns(config, &container_exclude)?,
            table_include: patterns(config, "table.include.list")?,
            table_exclude: patterns(config, "table.exclude.list")?,
            column_include: patterns(config, "column.include.list")?,
            column_exclude: patterns(config, "column.exclude.list")?,
            message_include: patterns(config, "message.prefix.include.list")?,
            message_exclude: patterns(config, "message.prefix.exclude.list")?,
            snapshot_include: patterns(config, "snapshot.include.collection.list")?,
            key_columns,
        })
    }

    /// Whether `schema.table` is captured (`database.table` for MySQL).
    pub fn table(&self, schema: &str, table: &str) -> bool {
        if self.system.contains(&schema) || schema.starts_with("pg_temp") {
            return false;
        }
        if !self.schema_include.is_empty() && !any(&self.schema_include, schema) {
            return false;
        }
        if any(&self.schema_exclude, schema) {
            return false;
        }
        let full = format!("{schema}.{table}");
        if !self.table_include.is_empty() && !any(&self.table_include, &full) {
            return false;
        }
        !any(&self.table_exclude, &full)
    }

    /// Whether the snapshot reads the captured table `schema.table`
    /// (`snapshot.include.collection.list`; every captured table when unset).
    pub fn snapshotted(&self, schema: &str, table: &str) -> bool {
        self.snapshot_include.is_empty()
            || any(&self.snapshot_include, &format!("{schema}.{table}"))
    }

    /// Whether a column of a captured table is emitted.
    pub fn column(&self, schema: &str, table: &str, column: &str) -> bool {
        let full = format!("{schema}.{table}.{column}");
        if !self.column_include.is_empty() && !any(&self.column_include, &full) {
            return false;
        }
        !any(&self.column_exclude, &full)
    }

    /// Whether logical decoding messages with this prefix are emitted.
    pub fn message_prefix(&self, prefix: &str) -> bool {
        if !self.message_include.is_empty() && !any(&self.message_include, prefix) {
            return false;
        }
        !any(&self.message_exclude, prefix)
    }

    /// The key columns configured for `schema.table`, if any.
    pub fn key_columns(&self, schema: &str, table: &str) -> Option<&[String]> {
        self.key_columns
            .get(&format!("{schema}.{table}"))
            .map(Vec::as_slice)
    }

    /// Whether any table list narrows the capture (publication `filtered`).
    pub fn narrows_tables(&self) -> bool {
        !(self.schema_include.is_empty()
            && self.schema_exclude.is_empty()
            && self.table_include.is_empty()
            && self.table_exclude.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_whole_names() {
        let f = Filters::parse(
            &ConnectorConfig::from_pairs(&[
                ("table.include.list", "public.orders,inv\\..*"),
                ("column.exclude.list", "public.orders.secret"),
            ]),
            "schema",
            &["pg_catalog"],
        )
        .expect("valid");
        assert!(f.table("public", "orders"));
        assert!(!f.table("public", "orders_archive"), "anchored");
        assert!(f.table("PUBLIC", "Orders"), "case is ignored, as Debezium");
        assert!(f.table("inv", "anything"));
        assert!(!f.table("pg_catalog", "pg_class"));
        assert!(!f.column("public", "orders", "secret"));
        assert!(f.column("public", "orders", "id"));
    }

    #[test]
    fn the_snapshot_reads_the_listed_tables_or_all() {
        let all = Filters::parse(&ConnectorConfig::from_pairs(&[]), "schema", &[]).expect("valid");
        assert!(all.snapshotted("public", "orders"));
        let some = Filters::parse(
            &ConnectorConfig::from_pairs(&[("snapshot.include.collection.list", "public\\.ord.*")]),
            "schema",
            &[],
        )
        .expect("valid");
        assert!(some.snapshotted("public", "orders"));
        assert!(!some.snapshotted("public", "customers"));
    }

    #[test]
    fn include_with_exclude_is_refused_and_key_columns_parse() {
        let err = Filters::parse(
            &ConnectorConfig::from_pairs(&[
                ("table.include.list", "a.b"),
                ("table.exclude.list", "a.c"),
            ]),
            "schema",
            &[],
        )
        .expect_err("both lists");
        assert_eq!(err.key, "table.exclude.list");
        let f = Filters::parse(
            &ConnectorConfig::from_pairs(&[("message.key.columns", "public.t:a,b; s.u:c")]),
            "schema",
            &[],
        )
        .expect("valid");
        assert_eq!(
            f.key_columns("public", "t"),
            Some(&["a".to_owned(), "b".to_owned()][..])
        );
        assert_eq!(f.key_columns("s", "u"), Some(&["c".to_owned()][..]));
        let err = Filters::parse(
            &ConnectorConfig::from_pairs(&[
                ("database.include.list", "inventory"),
                ("database.exclude.list", "x"),
            ]),
            "database",
            &[],
        )
        .expect_err("both database lists");
        assert_eq!(err.key, "database.exclude.list");
    }
}
