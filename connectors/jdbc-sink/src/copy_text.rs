//! Rows as PostgreSQL's `COPY … FROM STDIN` text format: columns split by
//! tabs, rows ended by newlines, `\N` for NULL, and backslash escapes for
//! the characters that would break that framing. Each value is the text
//! the column's type reads, so the server parses it exactly as it would a
//! text parameter cast to that type.

use sluice_connector_api::ConnectorError;

use crate::change::Cell;
use crate::config::Dialect;
use crate::sql_value::{direct, Direct};

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

/// Appends one row of `cells` to `out` as a COPY text line.
pub fn push_row(out: &mut Vec<u8>, cells: &[Cell<'_>]) -> Result<(), ConnectorError> {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        push_cell(out, cell)?;
    }
    out.push(b'\n');
    Ok(())
}

/// Appends one cell: what [`direct`] allows straight into `out`, the rest
/// through [`Cell::param`].
fn push_cell(out: &mut Vec<u8>, cell: &Cell<'_>) -> Result<(), ConnectorError> {
    match direct(&cell.schema, &cell.value, Dialect::Postgres) {
        Some(Direct::Text(text)) => escaped(out, text),
        Some(Direct::Int(n)) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        None => match cell.param(Dialect::Postgres)?.into_text() {
            Some(text) => escaped(out, &text),
            None => out.extend_from_slice(b"\\N"),
        },
    }
    Ok(())
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
        push_row(
            &mut out,
            &[
                cell(Schema::int64(), Value::Int64(7)),
                cell(Schema::string(), Value::String("a\tb\nc\rd\\e \\N".into())),
                cell(Schema::string().optional(), Value::Null),
                cell(Schema::string(), Value::String(String::new().into())),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "7\ta\\tb\\nc\\rd\\\\e \\\\N\t\\N\t\n"
        );
    }

    #[test]
    fn bytes_are_hex_with_the_backslash_escaped() {
        let mut out = Vec::new();
        push_row(
            &mut out,
            &[cell(Schema::bytes(), Value::Bytes(vec![0, 0xff]))],
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\\\\x00ff\n");
    }
}
