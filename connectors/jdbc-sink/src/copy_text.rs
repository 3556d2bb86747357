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

/// Appends `text` to `out`, escaping what the COPY text format frames with.
fn escaped(out: &mut Vec<u8>, text: &str) {
    let framing = |b: &u8| matches!(b, b'\\' | b'\t' | b'\n' | b'\r');
    // Most values have nothing to escape: copied whole.
    if !text.as_bytes().iter().any(framing) {
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
