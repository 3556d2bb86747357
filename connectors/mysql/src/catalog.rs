//! The captured tables as the server describes them in
//! `information_schema`: columns in order, their types, defaults and
//! primary keys. This is the starting point of the schema history.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use sluice_connector_api::filters::Filters;

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// `DATA_TYPE`, e.g. `int`.
    pub data_type: String,
    /// `COLUMN_TYPE`, e.g. `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default as the server shows it (MariaDB quotes literals).
    #[serde(default)]
    pub default: Option<String>,
    /// Character set of text columns.
    #[serde(default)]
    pub charset: Option<String>,
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Database (schema) name.
    pub database: String,
    /// Table name.
    pub name: String,
    /// Columns in ordinal order.
    pub columns: Vec<ColumnDef>,
    /// Primary-key column names in key order.
    pub primary_key: Vec<String>,
}

impl TableDef {
    /// `database.table`, the key of the schema model.
    pub fn id(&self) -> String {
        table_id(&self.database, &self.name)
    }
}

/// `database.table`.
pub fn table_id(database: &str, table: &str) -> String {
    format!("{database}.{table}")
}

/// Captured tables by `database.table`.
pub type Tables = BTreeMap<String, TableDef>;

type ColumnRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// MySQL's ER_UNKNOWN_TABLE: an `information_schema` table the server
/// does not have.
const ER_UNKNOWN_TABLE: u16 = 1109;

/// The captured base tables, or only those of `only` (`database`, `table`)
/// when given.
pub async fn read_tables(
    conn: &mut mysql_async::Conn,
    filters: &Filters,
    only: Option<(&str, &str)>,
    mariadb: bool,
) -> Result<Tables, mysql_async::Error> {
    let mut sql = String::from(
        "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, \
         c.COLUMN_DEFAULT, c.CHARACTER_SET_NAME \
         FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
         ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
         WHERE t.TABLE_TYPE = 'BASE TABLE'",
    );
    if let Some((db, table)) = only {
        sql.push_str(&format!(
            " AND c.TABLE_SCHEMA = {} AND c.TABLE_NAME = {}",
            quote_literal(db),
            quote_literal(table)
        ));
    }
    sql.push_str(" ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION");
    let rows: Vec<ColumnRow> = conn.query(sql).await?;
    let mut tables = Tables::new();
    for (db, table, name, data_type, column_type, nullable, default, charset) in rows {
        if !filters.table(&db, &table) {
            continue;
        }
        let entry = tables
            .entry(table_id(&db, &table))
            .or_insert_with(|| TableDef {
                database: db.clone(),
                name: table.clone(),
                columns: Vec::new(),
                primary_key: Vec::new(),
            });
        entry.columns.push(ColumnDef {
            name,
            data_type,
            column_type,
            nullable: nullable == "YES",
            default: if mariadb {
                default
            } else {
                default.map(quote_mysql_default)
            },
            charset,
        });
    }
    let mut sql = String::from(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
         WHERE CONSTRAINT_NAME = 'PRIMARY'",
    );
    if let Some((db, table)) = only {
        sql.push_str(&format!(
            " AND TABLE_SCHEMA = {} AND TABLE_NAME = {}",
            quote_literal(db),
            quote_literal(table)
        ));
    }
    sql.push_str(" ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION");
    let keys: Vec<(String, String, String)> = conn.query(sql).await?;
    for (db, table, column) in keys {
        if let Some(t) = tables.get_mut(&table_id(&db, &table)) {
            t.primary_key.push(column);
        }
    }
    // MariaDB's JSON is LONGTEXT with a json_valid() check: find those
    // columns so they map to io.debezium.data.Json as on MySQL.
    if mariadb {
        let checks: Vec<(String, String, String)> = match conn
            .query(
                "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CHECK_CLAUSE LIKE 'json_valid(%'",
            )
            .await
        {
            Ok(checks) => checks,
            // A server without the table (before MariaDB 10.2) has no JSON
            // type either. Any other failure fails the read, as the reads
            // above do: taken as "no checks", a JSON column would be
            // registered as plain text, and the JSON schema refused later.
            Err(mysql_async::Error::Server(e)) if e.code == ER_UNKNOWN_TABLE => Vec::new(),
            Err(e) => return Err(e),
        };
        for (db, table, clause) in checks {
            let column = clause
                .trim_start_matches("json_valid(")
                .trim_end_matches(')')
                .trim_matches('`');
            if let Some(t) = tables.get_mut(&table_id(&db, &table)) {
                if let Some(c) = t.columns.iter_mut().find(|c| c.name == column) {
                    c.data_type = "json".into();
                }
            }
        }
    }
    Ok(tables)
}

/// A string literal with `'` and `\` escaped.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// An identifier in backquotes.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Whether a default is an expression rather than a constant.
fn is_expression(default: &str) -> bool {
    let lower = default.trim().to_ascii_lowercase();
    lower.contains('(') || lower.starts_with("current_timestamp") || lower == "now"
}

/// A default in MariaDB's form (`'text'`, a bare number, an expression)
/// from MySQL's bare value, so the model holds one form.
fn quote_mysql_default(default: String) -> String {
    if is_expression(&default) {
        default
    } else {
        quote_literal(&default)
    }
}

/// The literal text of a column default in MariaDB's form, when it is a
/// constant: `'text'` or a number. `NULL` and expressions
/// (`current_timestamp()`, `uuid()`) have none.
pub fn default_literal(default: &str) -> Option<String> {
    let d = default.trim();
    if let Some(inner) = d.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Some(inner.replace("''", "'").replace("\\\\", "\\"));
    }
    if is_expression(d) {
        return None;
    }
    let numeric = !d.is_empty()
        && d.trim_start_matches(['-', '+'])
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E');
    numeric.then(|| d.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_constants_only() {
        assert_eq!(default_literal("'abc'").as_deref(), Some("abc"));
        assert_eq!(default_literal("'it''s'").as_deref(), Some("it's"));
        assert_eq!(default_literal("12").as_deref(), Some("12"));
        assert_eq!(default_literal("-1.5").as_deref(), Some("-1.5"));
        assert_eq!(default_literal("NULL"), None);
        assert_eq!(default_literal("current_timestamp()"), None);
        assert_eq!(default_literal("CURRENT_TIMESTAMP"), None);
        assert_eq!(quote_mysql_default("abc".into()), "'abc'");
        assert_eq!(
            quote_mysql_default("CURRENT_TIMESTAMP".into()),
            "CURRENT_TIMESTAMP"
        );
        assert_eq!(quote_literal("a'b\\"), "'a''b\\\\'");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }
}
