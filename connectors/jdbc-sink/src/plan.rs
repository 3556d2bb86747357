//! A batch of changes as steps for one target transaction: split at
//! truncates, grouped by table, and collapsed to the last change per key —
//! inside one transaction only the final state of a row matters, and it
//! lets each table take one statement per kind (and `ON CONFLICT` never
//! meets the same key twice).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::change::{same_name, Cell, Change, TableName};
use crate::config::Dialect;
use crate::sql_value::{direct, param, Direct};

/// A row to write with its key columns.
pub type KeyedRow<'r> = (Vec<Cell<'r>>, Vec<Cell<'r>>);

/// Rows of one table with the same columns: one statement's worth.
#[derive(Debug)]
pub struct ColumnGroup<'a, 'r> {
    /// Stored column names, in row order.
    pub names: Vec<String>,
    /// Stored key column names.
    pub key: Vec<String>,
    /// The rows.
    pub rows: Vec<&'a KeyedRow<'r>>,
}

/// The table's rows grouped by their column sets (schema changes inside a
/// batch give rows of one table different columns). Rows are matched by
/// the names the records carry; each group's stored names are made once
/// (this ran per row and cell, a lower-casing allocation each).
pub fn by_columns<'a, 'r>(
    writes: &'a TableWrites<'r>,
    stored: impl Fn(&str) -> String,
) -> Vec<ColumnGroup<'a, 'r>> {
    let mut groups: Vec<(&[Cell<'r>], ColumnGroup<'a, 'r>)> = Vec::new();
    let same = |a: &[Cell<'_>], b: &[Cell<'_>]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_name(&x.name, &y.name))
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
pub struct TableWrites<'r> {
    /// Target table.
    pub table: TableName,
    /// Keys to delete.
    pub deletes: Vec<Vec<Cell<'r>>>,
    /// Rows to write, with their keys.
    pub rows: Vec<KeyedRow<'r>>,
}

/// A step of the transaction, in order.
#[derive(Debug)]
pub enum Step<'r> {
    /// Empty a table.
    Truncate(TableName),
    /// Write and delete rows of a table.
    Write(TableWrites<'r>),
}

fn key_text(key: &[Cell<'_>]) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    // Room for a key of a few short columns without growing.
    let mut out = String::with_capacity(32);
    // Each part as `<length>:<text>`, so no two keys read the same. Not
    // through `to_string` or `write!`, nor a `String` per part: each cost
    // more than the rest of a one-column key (callgrind).
    let part = |out: &mut String, text: &str| {
        out.push_str(itoa::Buffer::new().format(text.len()));
        out.push(':');
        out.push_str(text);
    };
    for cell in key {
        match direct(&cell.schema, &cell.value, Dialect::Postgres) {
            Some(Direct::Text(text)) => part(&mut out, text),
            Some(Direct::Int(n)) => part(&mut out, itoa::Buffer::new().format(n)),
            Some(Direct::Decimal(d)) => part(&mut out, d.as_str()),
            None => match param(&cell.schema, &cell.value, Dialect::Postgres)
                .ok()?
                .into_text()
            {
                Some(text) => part(&mut out, &text),
                None => out.push('-'),
            },
        }
    }
    Some(out)
}

/// How the batch's key texts are hashed: seeded at random per process as
/// std's SipHash is (record keys come from outside, so they must not be
/// able to aim at one bucket), for a tenth of its instructions: SipHash
/// took ~200 instructions a row of the sink's ~14,000, this ~20
/// (callgrind, `scripts/bench-sink 200000`).
type KeyHashing = foldhash::quality::RandomState;

enum Last<'r> {
    Row(Vec<Cell<'r>>, Vec<Cell<'r>>),
    Delete(Vec<Cell<'r>>),
}

/// One table's changes since the last truncate: the last change per key
/// in the order keys were first seen, and the rows without a key.
struct Pending<'r> {
    table: TableName,
    slot_of_key: HashMap<String, usize, KeyHashing>,
    last: Vec<Last<'r>>,
    unkeyed: Vec<Vec<Cell<'r>>>,
}

impl<'r> Pending<'r> {
    /// A table's changes, with room for `expected` keys.
    fn new(table: TableName, expected: usize) -> Self {
        Self {
            table,
            // Sized up front to the table's changes in the batch: growing
            // it rehashed every key once more, a quarter of what planning
            // cost (callgrind, `scripts/bench-sink`).
            slot_of_key: HashMap::with_capacity_and_hasher(expected, KeyHashing::default()),
            last: Vec::with_capacity(expected),
            unkeyed: Vec::new(),
        }
    }

    fn into_writes(self) -> TableWrites<'r> {
        let mut writes = TableWrites {
            table: self.table,
            deletes: Vec::new(),
            rows: Vec::with_capacity(self.last.len() + self.unkeyed.len()),
        };
        for last in self.last {
            match last {
                Last::Row(key, row) => writes.rows.push((key, row)),
                Last::Delete(key) => writes.deletes.push(key),
            }
        }
        writes
            .rows
            .extend(self.unkeyed.into_iter().map(|row| (Vec::new(), row)));
        writes
    }
}

/// Whether two changes name the same table: mostly the very same shared
/// text, told apart without comparing it.
fn same_table(a: &TableName, b: &TableName) -> bool {
    std::sync::Arc::ptr_eq(a, b) || a == b
}

/// The position of `table` in `tables` (first-seen order), added if new.
/// A batch mostly holds one table's changes in runs, so the previous
/// change's table (`current`) is tried first.
fn table_slot<T>(
    tables: &mut Vec<T>,
    current: usize,
    table: &TableName,
    name: impl Fn(&T) -> &TableName,
    new: impl FnOnce() -> T,
) -> usize {
    if tables
        .get(current)
        .is_some_and(|t| same_table(name(t), table))
    {
        return current;
    }
    match tables.iter().position(|t| same_table(name(t), table)) {
        Some(i) => i,
        None => {
            tables.push(new());
            tables.len() - 1
        }
    }
}

/// How many keyed changes each table has in `changes`, in first-seen
/// order: the room each table's key map needs.
fn changes_per_table(changes: &[Change<'_>]) -> Vec<(TableName, usize)> {
    let mut counts: Vec<(TableName, usize)> = Vec::new();
    let mut current = 0;
    for change in changes {
        let (Change::Upsert { table, .. } | Change::Delete { table, .. }) = change else {
            continue;
        };
        current = table_slot(
            &mut counts,
            current,
            table,
            |(t, _)| t,
            || (table.clone(), 0),
        );
        counts[current].1 += 1;
    }
    counts
}

/// The steps for `changes`, in record order.
pub fn plan(changes: Vec<Change<'_>>) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    let counts = changes_per_table(&changes);
    let expected = |table: &TableName| {
        counts
            .iter()
            .find(|(t, _)| same_table(t, table))
            .map_or(0, |(_, n)| *n)
    };
    let mut pending: Vec<Pending<'_>> = Vec::new();
    let mut current = 0;
    for change in changes {
        let (table, key, last) = match change {
            Change::Skip => continue,
            Change::Truncate { table } => {
                steps.extend(pending.drain(..).map(|p| Step::Write(p.into_writes())));
                steps.push(Step::Truncate(table));
                continue;
            }
            Change::Upsert { table, key, row } => (table, key_text(&key), Last::Row(key, row)),
            Change::Delete { table, key } => (table, key_text(&key), Last::Delete(key)),
        };
        current = table_slot(
            &mut pending,
            current,
            &table,
            |p| &p.table,
            || Pending::new(table.clone(), expected(&table)),
        );
        let p = &mut pending[current];
        match key {
            // One lookup, not a get and then an insert: hashing the key
            // text is most of what planning a change costs.
            Some(text) => match p.slot_of_key.entry(text) {
                Entry::Occupied(slot) => p.last[*slot.get()] = last,
                Entry::Vacant(slot) => {
                    slot.insert(p.last.len());
                    p.last.push(last);
                }
            },
            None => {
                if let Last::Row(_, row) = last {
                    p.unkeyed.push(row);
                }
            }
        }
    }
    steps.extend(pending.into_iter().map(|p| Step::Write(p.into_writes())));
    steps
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use sluice_connector_api::{Schema, Value};

    use super::*;

    fn cell(name: &str, v: i32) -> Cell<'_> {
        Cell {
            name: name.into(),
            schema: Cow::Owned(Arc::new(Schema::int32())),
            value: Cow::Owned(Value::Int32(v)),
        }
    }

    fn upsert(id: i32, qty: i32) -> Change<'static> {
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
        assert_eq!(*first.rows[0].1[1].value, Value::Int32(11));
        assert_eq!(first.deletes.len(), 1);
        assert!(matches!(&steps[1], Step::Truncate(t) if &**t == "t"));
        let Step::Write(last) = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!(*last.rows[0].1[0].value, Value::Int32(3));
    }

    #[test]
    fn interleaved_tables_keep_their_first_seen_order_and_keys() {
        let on = |table: &str, id: i32, qty: i32| Change::Upsert {
            table: table.into(),
            key: vec![cell("id", id)],
            row: vec![cell("id", id), cell("qty", qty)],
        };
        let steps = plan(vec![
            on("a", 1, 10),
            on("b", 1, 100),
            on("a", 2, 20),
            on("b", 1, 101),
            on("a", 1, 11),
        ]);
        let tables: Vec<(&str, Vec<(Value, Value)>)> = steps
            .iter()
            .map(|step| match step {
                Step::Write(w) => (
                    &*w.table,
                    w.rows
                        .iter()
                        .map(|(_, row)| {
                            (
                                row[0].value.clone().into_owned(),
                                row[1].value.clone().into_owned(),
                            )
                        })
                        .collect(),
                ),
                Step::Truncate(t) => panic!("a truncate of {t}"),
            })
            .collect();
        assert_eq!(
            tables,
            [
                (
                    "a",
                    vec![
                        (Value::Int32(1), Value::Int32(11)),
                        (Value::Int32(2), Value::Int32(20))
                    ]
                ),
                ("b", vec![(Value::Int32(1), Value::Int32(101))]),
            ]
        );
    }
}
