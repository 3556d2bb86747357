//! A batch of changes as steps for one target transaction: split at
//! truncates, grouped by table, and collapsed to the last change per key —
//! inside one transaction only the final state of a row matters, and it
//! lets each table take one statement per kind (and `ON CONFLICT` never
//! meets the same key twice).

use std::collections::HashMap;

use crate::change::{Cell, Change};
use crate::config::Dialect;
use crate::sql_value::param;

/// A row to write with its key columns.
pub type KeyedRow = (Vec<Cell>, Vec<Cell>);

/// Rows of one table with the same columns: one statement's worth.
#[derive(Debug)]
pub struct ColumnGroup<'a> {
    /// Stored column names, in row order.
    pub names: Vec<String>,
    /// Stored key column names.
    pub key: Vec<String>,
    /// The rows.
    pub rows: Vec<&'a KeyedRow>,
}

/// The table's rows grouped by their column sets (schema changes inside a
/// batch give rows of one table different columns). Rows are matched by
/// the names the records carry; each group's stored names are made once
/// (this ran per row and cell, a lower-casing allocation each).
pub fn by_columns(writes: &TableWrites, stored: impl Fn(&str) -> String) -> Vec<ColumnGroup<'_>> {
    let mut groups: Vec<(&[Cell], ColumnGroup<'_>)> = Vec::new();
    let same = |a: &[Cell], b: &[Cell]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.name == y.name)
    };
    for pair in &writes.rows {
        match groups.iter_mut().find(|(first, _)| same(first, &pair.1)) {
            Some((_, g)) => g.rows.push(pair),
            None => groups.push((
                &pair.1,
                ColumnGroup {
                    key: pair.0.iter().map(|c| stored(&c.name)).collect(),
                    names: pair.1.iter().map(|c| stored(&c.name)).collect(),
                    rows: vec![pair],
                },
            )),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// One table's writes.
#[derive(Debug, Default)]
pub struct TableWrites {
    /// Target table.
    pub table: String,
    /// Keys to delete.
    pub deletes: Vec<Vec<Cell>>,
    /// Rows to write, with their keys.
    pub rows: Vec<KeyedRow>,
}

/// A step of the transaction, in order.
#[derive(Debug)]
pub enum Step {
    /// Empty a table.
    Truncate(String),
    /// Write and delete rows of a table.
    Write(TableWrites),
}

fn key_text(key: &[Cell]) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out = String::new();
    for cell in key {
        match param(&cell.schema, &cell.value, Dialect::Postgres)
            .ok()?
            .into_text()
        {
            Some(t) => {
                out.push_str(&t.len().to_string());
                out.push(':');
                out.push_str(&t);
            }
            None => out.push('-'),
        }
    }
    Some(out)
}

enum Last {
    Row(Vec<Cell>, Vec<Cell>),
    Delete(Vec<Cell>),
}

/// The steps for `changes`, in record order.
pub fn plan(changes: Vec<Change>) -> Vec<Step> {
    let mut steps = Vec::new();
    // Per table in first-seen order: keyed last changes, and rows without keys.
    let mut order: Vec<String> = Vec::new();
    let mut keyed: HashMap<String, (Vec<String>, HashMap<String, Last>)> = HashMap::new();
    let mut unkeyed: HashMap<String, Vec<Vec<Cell>>> = HashMap::new();
    let flush = |order: &mut Vec<String>,
                 keyed: &mut HashMap<String, (Vec<String>, HashMap<String, Last>)>,
                 unkeyed: &mut HashMap<String, Vec<Vec<Cell>>>,
                 steps: &mut Vec<Step>| {
        for table in order.drain(..) {
            let mut writes = TableWrites {
                table: table.clone(),
                ..TableWrites::default()
            };
            if let Some((keys, mut last)) = keyed.remove(&table) {
                for k in keys {
                    match last.remove(&k) {
                        Some(Last::Row(key, row)) => writes.rows.push((key, row)),
                        Some(Last::Delete(key)) => writes.deletes.push(key),
                        None => {}
                    }
                }
            }
            for row in unkeyed.remove(&table).unwrap_or_default() {
                writes.rows.push((Vec::new(), row));
            }
            steps.push(Step::Write(writes));
        }
    };
    for change in changes {
        let table = match change.table() {
            Some(t) => t.to_owned(),
            None => continue,
        };
        if let Change::Truncate { .. } = change {
            flush(&mut order, &mut keyed, &mut unkeyed, &mut steps);
            steps.push(Step::Truncate(table));
            continue;
        }
        if !order.contains(&table) {
            order.push(table.clone());
        }
        let (key, last) = match change {
            Change::Upsert { key, row, .. } => (key.clone(), Last::Row(key, row)),
            Change::Delete { key, .. } => (key.clone(), Last::Delete(key)),
            _ => continue,
        };
        match key_text(&key) {
            Some(text) => {
                let (keys, map) = keyed.entry(table).or_default();
                if map.insert(text.clone(), last).is_none() {
                    keys.push(text);
                }
            }
            None => {
                if let Last::Row(_, row) = last {
                    unkeyed.entry(table).or_default().push(row);
                }
            }
        }
    }
    flush(&mut order, &mut keyed, &mut unkeyed, &mut steps);
    steps
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_connector_api::{Schema, Value};

    use super::*;

    fn cell(name: &str, v: i32) -> Cell {
        Cell {
            name: name.into(),
            schema: Arc::new(Schema::int32()),
            value: Value::Int32(v),
        }
    }

    fn upsert(id: i32, qty: i32) -> Change {
        Change::Upsert {
            table: "t".into(),
            key: vec![cell("id", id)],
            row: vec![cell("id", id), cell("qty", qty)],
        }
    }

    #[test]
    fn the_last_change_per_key_wins_and_truncate_splits() {
        let steps = plan(vec![
            upsert(1, 10),
            upsert(2, 20),
            upsert(1, 11),
            Change::Delete {
                table: "t".into(),
                key: vec![cell("id", 2)],
            },
            Change::Truncate { table: "t".into() },
            upsert(3, 30),
            Change::Skip,
        ]);
        assert_eq!(steps.len(), 3);
        let Step::Write(first) = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(first.rows.len(), 1);
        assert_eq!(first.rows[0].1[1].value, Value::Int32(11));
        assert_eq!(first.deletes.len(), 1);
        assert!(matches!(&steps[1], Step::Truncate(t) if t == "t"));
        let Step::Write(last) = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!(last.rows[0].1[0].value, Value::Int32(3));
    }
}
