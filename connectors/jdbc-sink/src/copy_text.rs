//! Rows as the text PostgreSQL's `COPY … FROM STDIN` and MySQL's `LOAD
//! DATA` (with `FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED
//! BY '\n'`) both read: columns split by tabs, rows ended by newlines, `\N`
//! for NULL, and backslash escapes for the characters that would break
//! that framing. Each value is the text the column's type reads, so the
//! server parses it exactly as it would a text parameter cast to that
//! type (PostgreSQL) or the literal a statement would carry (MySQL).

use sluice_connector_api::ConnectorError;

use crate::change::Cell;
use crate::config::Dialect;
use crate::sql_value::{direct, Direct, Param};

/// Whether `bytes` may hold a byte the COPY text format frames with
/// (backslash, tab, newline, carriage return), looked for eight bytes at
/// a time: this runs for every text cell of every row, and a byte at a
/// time cost ~14 instructions a byte (callgrind, `scripts/bench-sink`).
/// Any control character counts, which only sends its text through the
/// escaping loop; none of those four is ever missed.
fn may_need_escapes(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let (words, rest) = bytes.as_chunks::<8>();
    for word in words {
        let word = u64::from_le_bytes(*word);
        // A byte below 0x20, and a byte equal to a backslash (zero once
        // the backslash is xored away): the high bit of a byte that is.
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
        let xored = word ^ (ONES * u64::from(b'\\'));
        let backslash = xored.wrapping_sub(ONES) & !xored & HIGH_BITS;
        if control | backslash != 0 {
            return true;
        }
    }
    rest.iter().any(|&b| b < 0x20 || b == b'\\')
}

/// Appends `text` to `out`, escaping what the COPY text format frames with.
fn escaped(out: &mut Vec<u8>, text: &str) {
    // Most values have nothing to escape: copied whole.
    if !may_need_escapes(text.as_bytes()) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Appends one row of `cells` to `out` as a line of text for `dialect`.
/// `Ok(false)` when a cell is raw bytes for a MySQL binary column, which
/// `LOAD DATA` would read as text in the file's character set: `out` then
/// holds part of the line, and the caller writes these rows another way.
pub fn push_row(
    out: &mut Vec<u8>,
    cells: &[Cell<'_>],
    dialect: Dialect,
) -> Result<bool, ConnectorError> {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        if !push_cell(out, cell, dialect)? {
            return Ok(false);
        }
    }
    out.push(b'\n');
    Ok(true)
}

/// Appends one cell: what [`direct`] allows straight into `out`, the rest
/// through [`Cell::param`]; false for bytes going to MySQL.
fn push_cell(out: &mut Vec<u8>, cell: &Cell<'_>, dialect: Dialect) -> Result<bool, ConnectorError> {
    match direct(&cell.schema, &cell.value, dialect) {
        Some(Direct::Text(text)) => escaped(out, text),
        Some(Direct::Int(n)) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        // Digits, a sign and a point: nothing to escape.
        Some(Direct::Decimal(d)) => out.extend_from_slice(d.as_str().as_bytes()),
        None => match cell.param(dialect)? {
            Param::Null => out.extend_from_slice(b"\\N"),
            Param::Text(text) => escaped(out, &text),
            Param::Bytes(_) if dialect == Dialect::MySql => return Ok(false),
            bytes => {
                if let Some(text) = bytes.into_text() {
                    escaped(out, &text);
                }
            }
        },
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_connector_api::{Schema, Value};
    use std::borrow::Cow;
    use std::sync::Arc;

    fn cell(schema: Schema, value: Value) -> Cell<'static> {
        Cell {
            name: "c".into(),
            schema: Cow::Owned(Arc::new(schema)),
            value: Cow::Owned(value),
        }
    }

    #[test]
    fn framing_characters_are_escaped_and_null_is_backslash_n() {
        let mut out = Vec::new();
        let loaded = push_row(
            &mut out,
            &[
                cell(Schema::int64(), Value::Int64(7)),
                cell(Schema::string(), Value::String("a\tb\nc\rd\\e \\N".into())),
                cell(Schema::string().optional(), Value::Null),
                cell(Schema::string(), Value::String(String::new().into())),
            ],
            Dialect::Postgres,
        )
        .unwrap();
        assert!(loaded);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "7\ta\\tb\\nc\\rd\\\\e \\\\N\t\\N\t\n"
        );
    }

    #[test]
    fn every_framing_byte_is_found_wherever_it_lies() {
        let plain = "abcdefghijklmnopqrstuvwxyzé€ 0123456789~!@#$%^&*()_+{}|:<>?";
        for len in 0..plain.len() {
            let Some(text) = plain.get(..len) else {
                continue;
            };
            assert!(!may_need_escapes(text.as_bytes()), "{text:?}");
            for at in 0..=len {
                for framing in [b'\\', b'\t', b'\n', b'\r'] {
                    let mut bytes = text.as_bytes().to_vec();
                    bytes.insert(at, framing);
                    assert!(may_need_escapes(&bytes), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn bytes_are_hex_with_the_backslash_escaped() {
        let mut out = Vec::new();
        let row = [cell(Schema::bytes(), Value::Bytes(vec![0, 0xff]))];
        assert!(push_row(&mut out, &row, Dialect::Postgres).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), "\\\\x00ff\n");
        // LOAD DATA would read them as text: MySQL rows with bytes are
        // written another way.
        assert!(!push_row(&mut Vec::new(), &row, Dialect::MySql).unwrap());
    }

    #[test]
    fn mysql_rows_read_as_the_literals_a_statement_would_carry() {
        let mut out = Vec::new();
        let row = [
            cell(Schema::int32(), Value::Int32(-3)),
            cell(Schema::string(), Value::String("it's \\N\tx".into())),
            cell(Schema::string().optional(), Value::Null),
            cell(Schema::boolean(), Value::Boolean(true)),
        ];
        assert!(push_row(&mut out, &row, Dialect::MySql).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-3\tit's \\\\N\\tx\t\\N\t1\n"
        );
    }
}
