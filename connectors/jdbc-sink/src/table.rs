//! What the sink knows of a target table, and the columns a batch needs
//! that it lacks (added under `schema.evolution=basic`).

use std::collections::HashMap;

use crate::change::{same_name, Cell};
use crate::config::Dialect;
use crate::plan::TableWrites;
use crate::sql_value::column_type;

/// A target table's columns (name → type as the database shows it).
#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    /// Whether the table exists.
    pub exists: bool,
    /// Columns by name.
    pub columns: HashMap<String, String>,
    /// The column sets (names sorted) of the table's unique indexes that
    /// are checked at once, whole and on plain columns: what a key must be
    /// for a duplicate to be refused as it is written (read for
    /// PostgreSQL only).
    pub unique_keys: Vec<Vec<String>>,
}

impl TableInfo {
    /// Whether a row repeating a key of the columns `key` is refused the
    /// moment it is written.
    pub fn refuses_repeated(&self, key: &[String]) -> bool {
        let mut key = key.to_vec();
        key.sort();
        !key.is_empty() && self.unique_keys.contains(&key)
    }
}

/// Splits `schema.table` (the schema part is optional).
pub fn split_name(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

/// Quotes an identifier for the dialect, doubling the quote character.
pub fn quote(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        Dialect::MySql => format!("`{}`", name.replace('`', "``")),
    }
}

/// The column name as stored: unquoted PostgreSQL names fold to lower case.
pub fn stored_name(dialect: Dialect, quote_identifiers: bool, name: &str) -> String {
    if dialect == Dialect::Postgres && !quote_identifiers {
        name.to_lowercase()
    } else {
        name.to_owned()
    }
}

/// `CREATE TABLE` for the columns of `rows` with `key` as primary key.
pub fn create_table(
    dialect: Dialect,
    quote_identifiers: bool,
    qualified: &str,
    columns: &[(String, &Cell<'_>)],
    key: &[String],
) -> Result<String, String> {
    let mut parts = Vec::new();
    for (name, cell) in columns {
        let is_key = key.contains(name);
        let ty = column_type(&cell.schema, dialect, is_key)?;
        let null = if is_key { " NOT NULL" } else { "" };
        parts.push(format!("{} {ty}{null}", quote(dialect, name)));
    }
    if !key.is_empty() {
        let key: Vec<String> = key.iter().map(|k| quote(dialect, k)).collect();
        parts.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    let _ = quote_identifiers;
    Ok(format!("CREATE TABLE {qualified} ({})", parts.join(", ")))
}

/// `ALTER TABLE … ADD COLUMN` for one missing column (always nullable, so
/// existing rows stay valid).
pub fn add_column(
    dialect: Dialect,
    qualified: &str,
    name: &str,
    cell: &Cell,
) -> Result<String, String> {
    let ty = column_type(&cell.schema, dialect, false)?;
    Ok(format!(
        "ALTER TABLE {qualified} ADD COLUMN {} {ty}",
        quote(dialect, name)
    ))
}

/// The columns (stored name and a sample cell for its type) and the key
/// column names a table's writes need, in first-seen order.
pub fn wanted_columns<'a, 'r>(
    writes: &'a TableWrites<'r>,
    dialect: Dialect,
    quote_identifiers: bool,
) -> (Vec<(String, &'a Cell<'r>)>, Vec<String>) {
    let mut wanted: Vec<(String, &'a Cell<'r>)> = Vec::new();
    let mut key: Vec<String> = Vec::new();
    let mut previous: Option<&[Cell<'r>]> = None;
    for (k, row) in &writes.rows {
        // Rows of one table mostly carry the same columns: only a row
        // whose column names differ from the one before can add any.
        let same = previous.is_some_and(|p| {
            p.len() == row.len() && p.iter().zip(row).all(|(a, b)| same_name(&a.name, &b.name))
        });
        previous = Some(row);
        if same && !key.is_empty() {
            continue;
        }
        for cell in row {
            let name = stored_name(dialect, quote_identifiers, &cell.name);
            if !wanted.iter().any(|(n, _)| *n == name) {
                wanted.push((name, cell));
            }
        }
        if key.is_empty() {
            key = k
                .iter()
                .map(|c| stored_name(dialect, quote_identifiers, &c.name))
                .collect();
        }
    }
    (wanted, key)
}

/// What to run so a table has the wanted columns: `CREATE TABLE` when it
/// is missing, `ADD COLUMN` for each missing column — or the error naming
/// the fix when `schema.evolution` is off.
pub fn evolution(
    dialect: Dialect,
    quote_identifiers: bool,
    evolve: bool,
    qualified: &str,
    known: &TableInfo,
    wanted: &[(String, &Cell<'_>)],
    key: &[String],
) -> Result<Vec<String>, String> {
    if !known.exists {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        if !evolve {
            return Err(format!(
                "the target table {qualified} does not exist; create it, or set schema.evolution=basic to let the sink create it"
            ));
        }
        return Ok(vec![create_table(
            dialect,
            quote_identifiers,
            qualified,
            wanted,
            key,
        )?]);
    }
    let mut statements = Vec::new();
    for (name, cell) in wanted {
        if known.columns.contains_key(name) {
            continue;
        }
        if !evolve {
            return Err(format!(
                "the target table {qualified} has no column {name}; add it, or set schema.evolution=basic"
            ));
        }
        statements.push(add_column(dialect, qualified, name, cell)?);
    }
    Ok(statements)
}
