//! Which `source.snapshot` marker each row of an initial snapshot carries,
//! decided as Debezium's relational snapshot decides it.
//!
//! Debezium marks the snapshot's first row `first`, its last `last`, each
//! table's first and last rows `first_in_data_collection` and
//! `last_in_data_collection`, and every other row `true`; where two apply,
//! `last` wins over `first`, `first` over the table's own markers, and a
//! table's last row over its first. Consumers use them to tell when a
//! table, or the whole snapshot, has been read.
//!
//! A row's marker depends on what comes after it, and readers sharing a
//! snapshot finish tables in no fixed order, so [`SnapshotMarkers`] holds
//! back the newest row of each table until the next one (or the table's
//! end) shows what it was, and the newest finished table's last row until
//! another table finishes or the snapshot ends. Both connectors' snapshots
//! decide markers here, so they cannot drift apart.

/// A row given back by [`SnapshotMarkers`] with the marker it carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Marked<T> {
    /// The index of the row's table, as given to [`SnapshotMarkers::push`].
    pub table: usize,
    /// The row.
    pub row: T,
    /// Its `source.snapshot` value.
    pub marker: &'static str,
}

/// Marks a snapshot's rows in the order they are emitted; see the module
/// comment. `T` is whatever a connector holds back: a row, or the event
/// made of it.
#[derive(Debug)]
pub struct SnapshotMarkers<T> {
    /// Whether the snapshot's `first` is still to be given.
    first_pending: bool,
    /// Per table: whether a row of it was given back already.
    started: Vec<bool>,
    /// Per table: its newest row, not yet given back.
    held: Vec<Option<T>>,
    /// Per table: the units (whole table or key ranges) still being read.
    units_left: Vec<usize>,
    /// The last row of the newest finished table.
    ended: Option<(usize, T)>,
}

impl<T> SnapshotMarkers<T> {
    /// Markers for a snapshot whose table `i` is read in
    /// `units_per_table[i]` units.
    pub fn new(units_per_table: Vec<usize>) -> Self {
        let tables = units_per_table.len();
        Self {
            first_pending: true,
            started: vec![false; tables],
            held: std::iter::repeat_with(|| None).take(tables).collect(),
            units_left: units_per_table,
            ended: None,
        }
    }

    /// Takes `row`, just read from `table`, and gives back the row of
    /// that table it held, marked now that it is known not to be the
    /// table's last.
    #[inline]
    pub fn push(&mut self, table: usize, row: T) -> Option<Marked<T>> {
        let previous = self.held_of(table).replace(row)?;
        Some(Marked {
            table,
            row: previous,
            marker: self.released(table),
        })
    }

    /// [`Self::push`] of each of `rows`, read from `table` in this order,
    /// leaving them where they are: the newest is taken out of `rows` and
    /// held, and the row held before is given back, to go out ahead of
    /// the rest of `rows`. The first row given back (that one, or else
    /// the first of `rows`) is marked through `mark` unless its marker is
    /// a plain `true`; the others are all plain.
    ///
    /// The MariaDB snapshot's events are wide: moving each through
    /// [`Self::push`] into another vector cost its coordinator ~270
    /// instructions a row, its `memcpy` included; left in place, under 1
    /// (callgrind, `scripts/bench-mysql 300000 1000`).
    pub fn push_all(
        &mut self,
        table: usize,
        rows: &mut Vec<T>,
        mut mark: impl FnMut(&mut T, &'static str),
    ) -> Option<T> {
        let newest = rows.pop()?;
        let mut previous = self.held_of(table).replace(newest);
        if let Some(first) = previous.as_mut().or(rows.first_mut()) {
            let marker = self.released(table);
            if marker != "true" {
                mark(first, marker);
            }
        }
        previous
    }

    /// The slot holding `table`'s newest row. A table the snapshot was
    /// not told of gets one too, with no units: its rows are held, and
    /// given back by [`Self::finish`], rather than lost.
    fn held_of(&mut self, table: usize) -> &mut Option<T> {
        if table >= self.held.len() {
            self.held.resize_with(table + 1, || None);
            self.started.resize(table + 1, false);
            self.units_left.resize(table + 1, 0);
        }
        &mut self.held[table]
    }

    /// The marker of a row of `table` given back by [`Self::push`]: the
    /// snapshot's first, its table's first, or a plain one.
    fn released(&mut self, table: usize) -> &'static str {
        let marker = if std::mem::take(&mut self.first_pending) {
            "first"
        } else if !self.started[table] {
            "first_in_data_collection"
        } else {
            "true"
        };
        self.started[table] = true;
        marker
    }

    /// One of `table`'s units was read to its end. When it was the table's
    /// last, the table's last row is held as the newest finished table's,
    /// and the one held before it (another table's last row, not the
    /// snapshot's) is given back.
    pub fn unit_done(&mut self, table: usize) -> Option<Marked<T>> {
        let left = self.units_left.get_mut(table)?;
        *left = left.saturating_sub(1);
        if *left > 0 {
            return None;
        }
        let last = self.held[table].take()?;
        let (table, row) = self.ended.replace((table, last))?;
        let marker = if std::mem::take(&mut self.first_pending) {
            "first"
        } else {
            "last_in_data_collection"
        };
        Some(Marked { table, row, marker })
    }

    /// Every unit was read: the snapshot's last row, marked `last`
    /// (with rows still held by a table whose units were not all reported
    /// done given back first, so nothing is lost).
    pub fn finish(mut self) -> Vec<Marked<T>> {
        let mut out = Vec::new();
        for table in 0..self.held.len() {
            if self.held[table].is_some() {
                self.units_left[table] = 1;
                out.extend(self.unit_done(table));
            }
        }
        out.extend(self.ended.map(|(table, row)| Marked {
            table,
            row,
            marker: "last",
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks `reads` (table, unit done after this row?) in order and gives
    /// back "table:row marker" lines in emission order.
    fn run(units: Vec<usize>, reads: &[(usize, u32, bool)]) -> Vec<String> {
        let mut markers = SnapshotMarkers::new(units);
        let mut out = Vec::new();
        let show = |m: Marked<u32>| format!("{}:{} {}", m.table, m.row, m.marker);
        for &(table, row, unit_done) in reads {
            out.extend(markers.push(table, row).map(show));
            if unit_done {
                out.extend(markers.unit_done(table).map(show));
            }
        }
        out.extend(markers.finish().into_iter().map(show));
        out
    }

    #[test]
    fn tables_read_one_after_another_are_marked_as_debezium_marks_them() {
        let out = run(
            vec![1, 1, 1],
            &[
                (0, 1, false),
                (0, 2, false),
                (0, 3, true),
                (1, 1, false),
                (1, 2, true),
                (2, 1, false),
                (2, 2, false),
                (2, 3, true),
            ],
        );
        assert_eq!(
            out,
            [
                "0:1 first",
                "0:2 true",
                "1:1 first_in_data_collection",
                // A finished table's last row waits until another table
                // finishes: it could still have been the snapshot's last.
                "0:3 last_in_data_collection",
                "2:1 first_in_data_collection",
                "2:2 true",
                "1:2 last_in_data_collection",
                "2:3 last",
            ]
        );
    }

    #[test]
    fn one_row_alone_is_last_and_a_one_row_table_ends_as_it_begins() {
        assert_eq!(run(vec![1], &[(0, 7, true)]), ["0:7 last"]);
        // A first table of one row is the snapshot's first; a later one
        // is its table's last (Debezium checks the table's end first).
        assert_eq!(
            run(vec![1, 1, 1], &[(0, 1, true), (1, 1, true), (2, 1, true)]),
            ["0:1 first", "1:1 last_in_data_collection", "2:1 last"]
        );
    }

    #[test]
    fn readers_interleaving_tables_and_units_mark_each_table_once() {
        // Table 1 in three units, read between and around the others.
        let out = run(
            vec![1, 3, 1],
            &[
                (1, 10, false),
                (0, 1, false),
                (1, 11, true),
                (2, 1, false),
                (0, 2, true),
                (1, 12, true),
                (2, 2, true),
                (1, 13, true),
            ],
        );
        let count = |m: &str| out.iter().filter(|l| l.ends_with(&format!(" {m}"))).count();
        assert_eq!(count("first"), 1, "{out:?}");
        assert_eq!(count("last"), 1, "{out:?}");
        assert_eq!(count("first_in_data_collection"), 2, "{out:?}");
        assert_eq!(count("last_in_data_collection"), 2, "{out:?}");
        assert_eq!(out.len(), 8, "every row given back once: {out:?}");
        assert_eq!(out[0], "1:10 first");
        assert_eq!(out.last().map(String::as_str), Some("1:13 last"));
        // A table's markers bracket its rows.
        for table in 0..3 {
            let rows: Vec<&String> = out
                .iter()
                .filter(|l| l.starts_with(&format!("{table}:")))
                .collect();
            assert!(!rows[0].ends_with(" true"), "{rows:?}");
            assert!(rows[1..rows.len() - 1].iter().all(|l| l.ends_with(" true")));
        }
    }

    #[test]
    fn tables_without_rows_mark_nothing_and_hold_nothing_back() {
        assert!(run(vec![1, 1], &[]).is_empty());
        let mut markers = SnapshotMarkers::<u32>::new(vec![1, 1]);
        assert_eq!(markers.unit_done(0), None);
        assert_eq!(markers.push(1, 5), None);
        assert_eq!(markers.unit_done(1), None);
        let last = markers.finish();
        assert_eq!(
            last,
            [Marked {
                table: 1,
                row: 5,
                marker: "last"
            }]
        );
    }

    #[test]
    fn rows_of_a_table_never_reported_done_are_still_given_back() {
        let out = run(vec![2, 1], &[(0, 1, false), (0, 2, true), (1, 1, true)]);
        // Table 0's second unit never reported: its rows still come out.
        assert_eq!(
            out,
            ["0:1 first", "1:1 last_in_data_collection", "0:2 last"]
        );
    }

    #[test]
    fn a_piece_at_a_time_marks_as_a_row_at_a_time() {
        // Random pieces of random tables, with units ending at random:
        // push_all must give back the same rows, in the same order, with
        // the same markers as push row by row.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let tables = 1 + next(4) as usize;
            let units: Vec<usize> = (0..tables).map(|_| 1 + next(3) as usize).collect();
            let mut by_row = SnapshotMarkers::new(units.clone());
            let mut by_piece = SnapshotMarkers::new(units.clone());
            let (mut rows_out, mut pieces_out) = (Vec::new(), Vec::new());
            let mut left = units.clone();
            let mut id = 0u32;
            while left.iter().any(|l| *l > 0) {
                let table = next(tables as u64) as usize;
                if left[table] == 0 {
                    continue;
                }
                let piece: Vec<(usize, u32, &str)> = (0..next(5))
                    .map(|_| {
                        id += 1;
                        (table, id, "true")
                    })
                    .collect();
                for row in piece.clone() {
                    rows_out.extend(
                        by_row
                            .push(table, row)
                            .map(|m| (m.row.0, m.row.1, m.marker)),
                    );
                }
                let mut piece = piece;
                let ahead = by_piece.push_all(table, &mut piece, |row, marker| row.2 = marker);
                pieces_out.extend(ahead);
                pieces_out.append(&mut piece);
                if next(2) == 0 {
                    left[table] -= 1;
                    let show = |m: Marked<(usize, u32, &'static str)>| (m.row.0, m.row.1, m.marker);
                    rows_out.extend(by_row.unit_done(table).map(show));
                    pieces_out.extend(by_piece.unit_done(table).map(show));
                }
            }
            let show = |m: Marked<(usize, u32, &'static str)>| (m.row.0, m.row.1, m.marker);
            rows_out.extend(by_row.finish().into_iter().map(show));
            pieces_out.extend(by_piece.finish().into_iter().map(show));
            assert_eq!(rows_out, pieces_out, "units {units:?}");
            assert_eq!(rows_out.len(), id as usize, "every row given back once");
        }
    }

    #[test]
    fn rows_of_a_table_the_snapshot_was_not_told_of_are_given_back() {
        let out = run(
            vec![1],
            &[(0, 1, false), (3, 1, false), (3, 2, false), (0, 2, true)],
        );
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out.last().map(String::as_str), Some("3:2 last"), "{out:?}");
    }
}
