//! The row images of a rows event, read into values that borrow the
//! event's bytes, with the table map's column types and metadata resolved
//! once per event.
//!
//! mysql_common's own reader (`RowsEventData::rows`) builds a column
//! description for every column of every row (schema, table and column
//! names copied, optional metadata walked again, each column's metadata
//! found by walking all before it) and copies every value twice; under
//! callgrind (`scripts/bench-mysql` with `SLUICE_BENCH_WRAP`) that was
//! about 6,300 instructions per row of a three-column table, half of the
//! connector's own work per streamed change. The bytes are read the same
//! way (each value by mysql_common's `BinlogValue` parser), so what a row
//! decodes to does not change.
//!
//! Each image holds one slot per table column, `None` for a column the
//! image leaves out (`binlog_row_image=MINIMAL` / `NOBLOB`), so a value
//! always lands at its column's position.
//!
//! Integers and VARCHAR text, most of the values of most tables, are read
//! here straight from the bytes ([`Cell`]): mysql_common's parser copies
//! every text value into a vector of its own (freed again at once for
//! short text) and dispatches each value through its generic reader. On
//! `scripts/bench-mysql`'s three-column rows that was ~255 instructions a
//! change of the worker's ~12,000 (callgrind); reading them here took the
//! worker's total down by ~250 (2 %). They are read as mysql_common reads them,
//! which a test checks value for value on random bytes.

use std::io;

use mysql_async::binlog::events::{RowsEventData, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value as MyValue;
use mysql_common::io::ParseBuf;

/// One row image: a value per table column, `None` where the image does
/// not carry the column.
pub type Image<'a> = Vec<Option<Cell<'a>>>;

/// One value of a row image.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// An integer column's value (TINYINT to BIGINT) as mysql_common
    /// reads it without the signedness metadata; the table model masks
    /// the bits to the column's width and reinterprets them.
    Int(i64),
    /// A VARCHAR's bytes, borrowed from the event.
    Bytes(&'a [u8]),
    /// Any other value, as mysql_common parses it.
    Parsed(BinlogValue<'a>),
}

impl<'a> Cell<'a> {
    /// The value as mysql_common's parser gives it.
    pub fn into_binlog(self) -> BinlogValue<'a> {
        match self {
            Self::Null => BinlogValue::Value(MyValue::NULL),
            Self::Int(v) => BinlogValue::Value(MyValue::Int(v)),
            Self::Bytes(b) => BinlogValue::Value(MyValue::Bytes(b.to_vec())),
            Self::Parsed(v) => v,
        }
    }
}

/// The value-options flag of a partial update's after image: its JSON
/// columns may hold diffs (MySQL's `PARTIAL_JSON_UPDATES`).
const PARTIAL_JSON_UPDATES: u64 = 1;

/// The rows of one rows event, before and after images in order.
pub struct RowImages<'a> {
    layout: Layout<'a>,
    /// Which columns the before image carries, if it has one.
    before: Option<Vec<bool>>,
    /// Which columns the after image carries, if it has one.
    after: Option<Vec<bool>>,
    /// A partial update: the after image starts with its value options.
    partial_update: bool,
    data: ParseBuf<'a>,
}

/// How a table's values are laid out in its row images.
struct Layout<'a> {
    /// Per table column: its type and metadata.
    columns: Vec<(ColumnType, &'a [u8])>,
    /// The JSON columns of the table (the partial-column bitmap's width).
    json_columns: usize,
}

impl<'a> RowImages<'a> {
    /// The rows of `rows`, laid out by `tme` (checked first with
    /// [`crate::binlog_guard::check_table_map`]).
    pub fn new(rows: &'a RowsEventData<'a>, tme: &'a TableMapEvent<'a>) -> io::Result<Self> {
        let count = usize::try_from(rows.num_columns()).map_err(|_| invalid("column count"))?;
        let columns = (0..count)
            .map(|i| match tme.get_column_type(i) {
                Ok(Some(kind)) => Ok((kind, tme.get_column_metadata(i).unwrap_or(&[]))),
                _ => Err(invalid(&format!("no type for column {i}"))),
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            layout: Layout {
                columns,
                json_columns: tme.json_column_count(),
            },
            before: rows
                .columns_before_image()
                .map(|bits| bits.iter().map(|b| *b).collect()),
            after: rows
                .columns_after_image()
                .map(|bits| bits.iter().map(|b| *b).collect()),
            partial_update: matches!(rows, RowsEventData::PartialUpdateRowsEvent(_)),
            data: ParseBuf(rows.rows_data()),
        })
    }

    /// The next row's images, or why it cannot be read.
    fn row(&mut self) -> io::Result<(Option<Image<'a>>, Option<Image<'a>>)> {
        let (layout, data) = (&self.layout, &mut self.data);
        let before = match &self.before {
            Some(present) => Some(layout.image(data, present, false)?),
            None => None,
        };
        let after = match &self.after {
            Some(present) => Some(layout.image(data, present, self.partial_update)?),
            None => None,
        };
        Ok((before, after))
    }
}

impl<'a> Layout<'a> {
    /// One image, read from `data`, of the columns `present` says it
    /// carries.
    fn image(
        &self,
        data: &mut ParseBuf<'a>,
        present: &[bool],
        shared: bool,
    ) -> io::Result<Image<'a>> {
        // The partial-column bitmap of a partial update's after image: one
        // bit per JSON column, for those that hold a diff.
        let mut partial: Option<&'a [u8]> = None;
        if shared {
            let options = data
                .checked_eat_lenenc_int()
                .ok_or_else(|| invalid("value options cut short"))?;
            if options & PARTIAL_JSON_UPDATES != 0 {
                partial = Some(eat(data, self.json_columns.div_ceil(8))?);
            }
        }
        let carried = present.iter().filter(|p| **p).count();
        let nulls = eat(data, carried.div_ceil(8))?;
        let mut image = Vec::with_capacity(self.columns.len());
        let (mut slot, mut json) = (0usize, 0usize);
        for (i, &(kind, metadata)) in self.columns.iter().enumerate() {
            let is_partial = kind == ColumnType::MYSQL_TYPE_JSON && {
                json += 1;
                partial.is_some_and(|bits| bit(bits, json - 1))
            };
            if !present.get(i).copied().unwrap_or(false) {
                image.push(None);
                continue;
            }
            let value = if bit(nulls, slot) {
                Cell::Null
            } else {
                cell(data, kind, metadata, is_partial)?
            };
            image.push(Some(value));
            slot += 1;
        }
        Ok(image)
    }
}

impl<'a> Iterator for RowImages<'a> {
    type Item = io::Result<(Option<Image<'a>>, Option<Image<'a>>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let left = self.data.len();
        let row = self.row();
        // A row that takes no bytes would be read for ever.
        if row.is_ok() && self.data.len() == left {
            self.data = ParseBuf(&[]);
            return Some(Err(invalid("a row image of no bytes")));
        }
        if row.is_err() {
            // Nothing after a bad row can be placed.
            self.data = ParseBuf(&[]);
        }
        Some(row)
    }
}

/// The next value, of a column of `kind` with `metadata`, from `data`.
fn cell<'a>(
    data: &mut ParseBuf<'a>,
    kind: ColumnType,
    metadata: &'a [u8],
    is_partial: bool,
) -> io::Result<Cell<'a>> {
    use ColumnType::*;
    // Signedness is left to the table model (Kind::Int masks and
    // reinterprets the bits), as it was with mysql_common's reader, whose
    // optional metadata is absent on some servers: integers are read as
    // mysql_common reads them without it.
    Ok(match (kind, metadata) {
        (MYSQL_TYPE_TINY, _) => Cell::Int(i64::from(i8::from_le_bytes(array(data)?))),
        (MYSQL_TYPE_SHORT, _) => Cell::Int(i64::from(i16::from_le_bytes(array(data)?))),
        // mysql_common reads a signed INT24's three bytes unextended.
        (MYSQL_TYPE_INT24, _) => {
            let [a, b, c] = array(data)?;
            Cell::Int(i64::from(u32::from_le_bytes([a, b, c, 0])))
        }
        (MYSQL_TYPE_LONG, _) => Cell::Int(i64::from(i32::from_le_bytes(array(data)?))),
        (MYSQL_TYPE_LONGLONG, _) => Cell::Int(i64::from_le_bytes(array(data)?)),
        // The declared length in bytes decides how wide the value's own
        // length is.
        (MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING, &[low, high, ..]) => {
            let length = if u16::from_le_bytes([low, high]) < 256 {
                usize::from(u8::from_le_bytes(array(data)?))
            } else {
                usize::from(u16::from_le_bytes(array(data)?))
            };
            Cell::Bytes(eat(data, length)?)
        }
        _ => Cell::Parsed(data.parse::<BinlogValue<'a>>((kind, metadata, false, is_partial))?),
    })
}

/// The next `N` bytes of `data`.
#[inline(always)]
fn array<const N: usize>(data: &mut ParseBuf<'_>) -> io::Result<[u8; N]> {
    let bytes = eat(data, N)?;
    // `eat` gave exactly N bytes.
    bytes
        .try_into()
        .map_err(|_| invalid("a row image cut short"))
}

/// Bit `index` of a little-endian bitmap (MySQL's order); outside it, set
/// (a null, as mysql_common reads a bitmap cut short).
fn bit(bits: &[u8], index: usize) -> bool {
    bits.get(index / 8)
        .is_none_or(|byte| byte >> (index % 8) & 1 == 1)
}

#[inline(always)]
fn eat<'a>(data: &mut ParseBuf<'a>, n: usize) -> io::Result<&'a [u8]> {
    data.checked_eat(n)
        .ok_or_else(|| invalid("a row image cut short"))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use mysql_async::binlog::events::{EventData, TableMapEvent};

    use super::*;
    use crate::test_binlog::{read, TABLE_ID};

    const WRITE_ROWS: u8 = 30;
    const UPDATE_ROWS: u8 = 31;
    const DELETE_ROWS: u8 = 32;

    /// `db.t (id INT, name VARCHAR(40) NULL, qty BIGINT)`.
    fn table_map() -> TableMapEvent<'static> {
        crate::test_binlog::table_map(&[3, 15, 8], &160u16.to_le_bytes(), 0b010)
    }

    /// A row's values in an image carrying the columns `present` (bit i:
    /// column i), `None` for a null name.
    fn image(present: u8, id: i32, name: Option<&str>, qty: i64) -> Vec<u8> {
        let mut values = Vec::new();
        let mut nulls = 0u8;
        let mut slot = 0;
        for column in 0..3 {
            if present & (1 << column) == 0 {
                continue;
            }
            match (column, name) {
                (0, _) => values.extend(id.to_le_bytes()),
                (1, Some(name)) => {
                    values.push(name.len() as u8);
                    values.extend(name.as_bytes());
                }
                (1, None) => nulls |= 1 << slot,
                _ => values.extend(qty.to_le_bytes()),
            }
            slot += 1;
        }
        let mut out = vec![nulls];
        out.extend(values);
        out
    }

    /// A v2 rows event of `kind` with the given column bitmaps and rows.
    fn rows_event(bitmaps: &[u8], rows: &[Vec<u8>]) -> Vec<u8> {
        let mut b = TABLE_ID.to_vec();
        b.extend(1u16.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.push(3);
        b.extend(bitmaps);
        for row in rows {
            b.extend(row);
        }
        b
    }

    /// What this reader and mysql_common's own make of the same event:
    /// each row as (before, after), a value per column (mysql_common's
    /// images carry only the present columns, in order).
    type Decoded = Vec<(Option<Vec<Option<MyValue>>>, Option<Vec<Option<MyValue>>>)>;

    fn both(kind: u8, body: &[u8]) -> (io::Result<Decoded>, Decoded) {
        let tme = table_map();
        let event = read(kind, body);
        let rows = match event.read_data().expect("a rows event") {
            Some(EventData::RowsEvent(r)) => r,
            other => panic!("expected rows, got {other:?}"),
        };
        let plain = |v: &BinlogValue<'_>| match v {
            BinlogValue::Value(v) => v.clone(),
            other => panic!("not a plain value: {other:?}"),
        };
        let ours = RowImages::new(&rows, &tme).and_then(|images| {
            images
                .map(|row| {
                    let (before, after) = row?;
                    let values = |i: Option<Image<'_>>| {
                        i.map(|i| {
                            i.into_iter()
                                .map(|v| v.map(|cell| plain(&cell.into_binlog())))
                                .collect()
                        })
                    };
                    Ok((values(before), values(after)))
                })
                .collect()
        });
        let present = |bits: Option<Vec<bool>>| bits.unwrap_or_default();
        let (before_cols, after_cols) = (
            present(
                rows.columns_before_image()
                    .map(|b| b.iter().map(|x| *x).collect()),
            ),
            present(
                rows.columns_after_image()
                    .map(|b| b.iter().map(|x| *x).collect()),
            ),
        );
        let spread = |row: Option<mysql_common::binlog::row::BinlogRow>, cols: &[bool]| {
            row.map(|row| {
                let mut carried = (0..row.len()).map(|i| row.as_ref(i).map(plain));
                cols.iter()
                    .map(|present| {
                        if *present {
                            carried.next().flatten()
                        } else {
                            None
                        }
                    })
                    .collect()
            })
        };
        let theirs = rows
            .rows(&tme)
            .map(|row| {
                let (before, after) = row.expect("mysql_common reads it");
                (spread(before, &before_cols), spread(after, &after_cols))
            })
            .collect();
        (ours, theirs)
    }

    #[test]
    fn inserts_updates_and_deletes_read_as_mysql_common_reads_them() {
        let insert = rows_event(
            &[0b111],
            &[
                image(0b111, 1, Some("łódź"), -5),
                image(0b111, 2, None, i64::MAX),
            ],
        );
        let update = rows_event(
            &[0b111, 0b111],
            &[[image(0b111, 1, Some("a"), 1), image(0b111, 1, None, 2)].concat()],
        );
        let delete = rows_event(&[0b111], &[image(0b111, 7, Some("gone"), 0)]);
        for (kind, body) in [
            (WRITE_ROWS, insert),
            (UPDATE_ROWS, update),
            (DELETE_ROWS, delete),
        ] {
            let (ours, theirs) = both(kind, &body);
            let ours = ours.expect("read");
            assert!(!ours.is_empty());
            assert_eq!(ours, theirs, "event type {kind}");
        }
        // The values themselves, for the insert.
        let body = rows_event(&[0b111], &[image(0b111, 2, None, 9)]);
        let (ours, _) = both(WRITE_ROWS, &body);
        assert_eq!(
            ours.expect("read")[0].1,
            Some(vec![
                Some(MyValue::Int(2)),
                Some(MyValue::NULL),
                Some(MyValue::Int(9))
            ])
        );
    }

    #[test]
    fn a_minimal_image_leaves_the_columns_it_lacks_empty_in_their_places() {
        // binlog_row_image=MINIMAL: the before image carries the key
        // (column 0) only, the after image columns 1 and 2.
        let body = rows_event(
            &[0b001, 0b110],
            &[[image(0b001, 4, None, 0), image(0b110, 0, Some("x"), 3)].concat()],
        );
        let (ours, theirs) = both(UPDATE_ROWS, &body);
        let ours = ours.expect("read");
        assert_eq!(ours, theirs);
        assert_eq!(ours[0].0, Some(vec![Some(MyValue::Int(4)), None, None]));
        assert_eq!(
            ours[0].1,
            Some(vec![
                None,
                Some(MyValue::Bytes(b"x".to_vec())),
                Some(MyValue::Int(3))
            ])
        );
    }

    #[test]
    fn an_event_cut_short_is_an_error_and_ends_the_rows() {
        let mut body = rows_event(&[0b111], &[image(0b111, 1, Some("abc"), 1)]);
        body.truncate(body.len() - 4);
        let tme = table_map();
        let event = read(WRITE_ROWS, &body);
        let Some(EventData::RowsEvent(rows)) = event.read_data().expect("a rows event") else {
            panic!("expected rows");
        };
        let mut images = RowImages::new(&rows, &tme).expect("laid out");
        assert!(images.next().expect("a row").is_err());
        assert!(images.next().is_none(), "nothing is read past a bad row");
    }

    #[test]
    fn rows_that_take_no_bytes_are_refused_not_read_for_ever() {
        // No column in the image: every row would be zero bytes long.
        let body = rows_event(&[0b000], &[vec![0xAA]]);
        let tme = table_map();
        let event = read(WRITE_ROWS, &body);
        let Some(EventData::RowsEvent(rows)) = event.read_data().expect("a rows event") else {
            panic!("expected rows");
        };
        let mut images = RowImages::new(&rows, &tme).expect("laid out");
        let why = images.next().expect("a row").expect_err("refused");
        assert!(why.to_string().contains("no bytes"), "{why}");
        assert!(images.next().is_none());
    }

    /// Integers and VARCHAR text read here as mysql_common's parser reads
    /// them, and map to the same column values: random values, random
    /// bytes (cut short too), every integer width and both VARCHAR length
    /// widths, through every kind such a column can have.
    #[test]
    fn cells_read_and_map_as_mysql_common_values_do() {
        use std::sync::Arc;

        use crate::config::{BigintUnsignedMode, BinaryMode, DecimalMode, TimePrecision};
        use crate::types::{Kind, Mapping};

        // A fixed xorshift sequence: the same inputs every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let types = [
            (ColumnType::MYSQL_TYPE_TINY, vec![]),
            (ColumnType::MYSQL_TYPE_SHORT, vec![]),
            (ColumnType::MYSQL_TYPE_INT24, vec![]),
            (ColumnType::MYSQL_TYPE_LONG, vec![]),
            (ColumnType::MYSQL_TYPE_LONGLONG, vec![]),
            (ColumnType::MYSQL_TYPE_VARCHAR, 40u16.to_le_bytes().to_vec()),
            (
                ColumnType::MYSQL_TYPE_VARCHAR,
                255u16.to_le_bytes().to_vec(),
            ),
            (
                ColumnType::MYSQL_TYPE_VARCHAR,
                256u16.to_le_bytes().to_vec(),
            ),
            (
                ColumnType::MYSQL_TYPE_VAR_STRING,
                1000u16.to_le_bytes().to_vec(),
            ),
        ];
        let mut kinds = vec![
            Kind::Bool,
            Kind::Text { latin1: false },
            Kind::Text { latin1: true },
            Kind::Binary { fixed: None },
            Kind::Binary { fixed: Some(20) },
            Kind::Decimal {
                precision: 10,
                scale: 2,
            },
            Kind::Year,
            Kind::Enum(Arc::from(vec!["a".to_owned(), "b".to_owned()])),
            Kind::Set(Arc::from(vec!["x".to_owned(), "y".to_owned()])),
            Kind::Bits(12),
        ];
        for bits in [8, 16, 24, 32, 64] {
            for unsigned in [false, true] {
                kinds.push(Kind::Int { bits, unsigned });
            }
        }
        let mappings =
            [BigintUnsignedMode::Long, BigintUnsignedMode::Precise].map(|unsigned| Mapping {
                decimal: DecimalMode::Precise,
                time: TimePrecision::Adaptive,
                bigint_unsigned: unsigned,
                binary: BinaryMode::Bytes,
            });
        let texts: [&[u8]; 6] = [
            b"",
            b"a",
            b"15 bytes inline",
            b"sixteen bytes!!!",
            "łódź".as_bytes(),
            b"\xe9t\xe9",
        ];
        let mut checked = 0;
        for round in 0..4000 {
            let (kind, metadata) = &types[round % types.len()];
            let mut bytes: Vec<u8> = match kind {
                ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING => {
                    let long = u16::from_le_bytes([metadata[0], metadata[1]]) >= 256;
                    let text: Vec<u8> = match next() % 3 {
                        0 => texts[(next() % texts.len() as u64) as usize].to_vec(),
                        1 => (0..next() % 300).map(|_| next() as u8).collect(),
                        _ => std::iter::repeat_n(b'x', (next() % 300) as usize).collect(),
                    };
                    let mut out = if long {
                        (text.len() as u16).to_le_bytes().to_vec()
                    } else {
                        vec![text.len() as u8]
                    };
                    out.extend(&text);
                    out
                }
                _ => next().to_le_bytes().to_vec(),
            };
            // Now and then cut short, and now and then with bytes after.
            match next() % 8 {
                0 => bytes.truncate((next() % (bytes.len() as u64 + 1)) as usize),
                1 => bytes.extend([7, 7, 7]),
                _ => {}
            }
            let mut ours_buf = ParseBuf(&bytes);
            let mut theirs_buf = ParseBuf(&bytes);
            let ours = cell(&mut ours_buf, *kind, metadata, false);
            let theirs = theirs_buf.parse::<BinlogValue<'_>>((*kind, &metadata[..], false, false));
            let (ours, theirs) = match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => (ours, theirs),
                (Err(_), Err(_)) => continue,
                (ours, theirs) => panic!("{kind:?} {bytes:?}: ours {ours:?}, theirs {theirs:?}"),
            };
            assert_eq!(
                ours_buf.len(),
                theirs_buf.len(),
                "{kind:?} {bytes:?}: bytes taken"
            );
            assert_eq!(ours.clone().into_binlog(), theirs, "{kind:?} {bytes:?}");
            assert!(!matches!(ours, Cell::Parsed(_)), "{kind:?} is read here");
            for model in &kinds {
                for mapping in mappings {
                    assert_eq!(
                        model.from_cell(ours.clone(), mapping),
                        model.from_binlog(theirs.clone(), mapping),
                        "{model:?} from {kind:?} {bytes:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000, "only {checked} values compared");
    }

    #[test]
    fn bits_are_read_least_significant_first() {
        assert!(bit(&[0b0000_0010], 1));
        assert!(!bit(&[0b0000_0010], 0));
        assert!(bit(&[0, 0b1000_0000], 15));
        assert!(
            bit(&[], 3),
            "past the bitmap reads as null, as mysql_common does"
        );
    }
}
