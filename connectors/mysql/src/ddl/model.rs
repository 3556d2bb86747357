//! What a DDL statement does to the schema model: the statement kinds
//! the parser recognises, and ALTER TABLE's operations applied to a
//! table's definition.

use crate::catalog::{ColumnDef, TableDef};

/// Where an added or changed column goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// At the end (or, for CHANGE/MODIFY, where it was).
    Default,
    /// First.
    First,
    /// After the named column.
    After(String),
}

/// One ALTER TABLE operation that matters to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    /// ADD COLUMN.
    Add(ColumnDef, Place, bool),
    /// DROP COLUMN.
    Drop(String),
    /// CHANGE old new-definition / MODIFY name definition.
    Change(String, ColumnDef, Place, bool),
    /// RENAME COLUMN a TO b.
    RenameColumn(String, String),
    /// RENAME TO other (database, table).
    RenameTable(Option<String>, String),
    /// ADD PRIMARY KEY (columns).
    AddPrimaryKey(Vec<String>),
    /// DROP PRIMARY KEY.
    DropPrimaryKey,
    /// ALTER COLUMN x SET DEFAULT v / DROP DEFAULT.
    Default(String, Option<String>),
}

/// A table name as written: optional database and the table.
pub type Name = (Option<String>, String);

/// What a statement does to tables.
#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    /// CREATE TABLE with its definition (database filled in by the caller).
    Create(Name, TableDef),
    /// ALTER TABLE.
    Alter(Name, Vec<AlterOp>),
    /// DROP TABLE.
    Drop(Vec<Name>),
    /// RENAME TABLE a TO b, ...
    Rename(Vec<(Name, Name)>),
    /// TRUNCATE TABLE.
    Truncate(Name),
    /// A statement on this table the parser cannot follow: re-read it.
    Refresh(Name),
    /// Not about a table's columns (CREATE DATABASE, GRANT, indexes...).
    Other,
}

/// Applies ALTER operations to a table; `Err` names what could not be
/// applied (the table is then re-read).
pub fn apply_alter(table: &mut TableDef, ops: &[AlterOp]) -> Result<(), String> {
    let position = |table: &TableDef, name: &str| {
        table
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    };
    let insert = |table: &mut TableDef, column: ColumnDef, place: &Place, default_at: usize| {
        let at = match place {
            Place::Default => default_at,
            Place::First => 0,
            Place::After(name) => match position(table, name) {
                Some(i) => i + 1,
                None => return Err(format!("AFTER {name}: no such column")),
            },
        };
        table.columns.insert(at.min(table.columns.len()), column);
        Ok(())
    };
    for op in ops {
        match op {
            AlterOp::Add(column, place, if_not_exists) => {
                if position(table, &column.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(format!("column {} already exists", column.name));
                }
                let end = table.columns.len();
                let mut column = column.clone();
                if column.charset.is_none() {
                    column.charset = table.columns.iter().find_map(|c| c.charset.clone());
                }
                insert(table, column, place, end)?;
            }
            AlterOp::Drop(name) => {
                if let Some(i) = position(table, name) {
                    table.columns.remove(i);
                    table.primary_key.retain(|k| !k.eq_ignore_ascii_case(name));
                }
            }
            AlterOp::Change(old, column, place, if_exists) => {
                let Some(i) = position(table, old) else {
                    if *if_exists {
                        continue;
                    }
                    return Err(format!("no column {old} to change"));
                };
                let mut column = column.clone();
                if column.charset.is_none() {
                    column.charset = table.columns[i].charset.clone();
                }
                if table
                    .primary_key
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(old))
                {
                    column.nullable = false;
                    for k in &mut table.primary_key {
                        if k.eq_ignore_ascii_case(old) {
                            *k = column.name.clone();
                        }
                    }
                }
                table.columns.remove(i);
                insert(table, column, place, i)?;
            }
            AlterOp::RenameColumn(from, to) => {
                let Some(i) = position(table, from) else {
                    return Err(format!("no column {from} to rename"));
                };
                table.columns[i].name = to.clone();
                for k in &mut table.primary_key {
                    if k.eq_ignore_ascii_case(from) {
                        *k = to.clone();
                    }
                }
            }
            AlterOp::RenameTable(db, name) => {
                if let Some(db) = db {
                    table.database = db.clone();
                }
                table.name = name.clone();
            }
            AlterOp::AddPrimaryKey(columns) => {
                table.primary_key = columns.clone();
                for c in &mut table.columns {
                    if columns.iter().any(|k| k.eq_ignore_ascii_case(&c.name)) {
                        c.nullable = false;
                    }
                }
            }
            AlterOp::DropPrimaryKey => table.primary_key.clear(),
            AlterOp::Default(column, value) => {
                if let Some(i) = position(table, column) {
                    table.columns[i].default =
                        value.clone().filter(|v| !v.eq_ignore_ascii_case("NULL"));
                }
            }
        }
    }
    Ok(())
}
