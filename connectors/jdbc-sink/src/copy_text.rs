//! Rows as PostgreSQL's `COPY … FROM STDIN` text format: columns split by
//! tabs, rows ended by newlines, `\N` for NULL, and backslash escapes for
//! the characters that would break that framing. Each value is the text
//! the column's type reads, so the server parses it exactly as it would a
//! text parameter cast to that type.

use sluice_connector_api::{ConnectorError, Value};

use crate::change::Cell;
use crate::config::Dialect;

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

/// Appends one cell: text and plain integers straight into `out`, the
/// rest through [`Cell::param`]. A `String` per cell was a fifth of a
/// sink's work per row (callgrind, `scripts/bench-sink`).
fn push_cell(out: &mut Vec<u8>, cell: &Cell<'_>) -> Result<(), ConnectorError> {
    let plain = cell.schema.name.as_deref().is_none_or(str::is_empty);
    match &*cell.value {
        Value::Null => out.extend_from_slice(b"\\N"),
        // PostgreSQL reads every text value as it is, whatever its logical
        // type (zoned timestamps, JSON, UUIDs, enums, "infinity").
        Value::String(text) => escaped(out, text),
        Value::Int8(v) if plain => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Value::Int16(v) if plain => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes())
        }
        Value::Int32(v) if plain => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes())
        }
        Value::Int64(v) if plain => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes())
        }
        _ => match cell.param(Dialect::Postgres)?.into_text() {
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

    /// What is written straight and what goes through `param` read the
    /// same: each cell as the text PostgreSQL would be bound.
    #[test]
    fn cells_written_straight_are_the_text_param_binds() {
        use sluice_connector_api::logical::{DATE, MICRO_TIMESTAMP, ZONED_TIMESTAMP};
        let named = |schema: Schema, name: &str| Schema {
            name: Some(name.into()),
            ..schema
        };
        let cells = [
            cell(Schema::int8(), Value::Int8(i8::MIN)),
            cell(Schema::int16(), Value::Int16(-300)),
            cell(Schema::int32(), Value::Int32(i32::MAX)),
            cell(Schema::int64(), Value::Int64(i64::MIN)),
            cell(Schema::int64(), Value::Int64(0)),
            cell(named(Schema::int32(), DATE), Value::Int32(19000)),
            cell(
                named(Schema::int64(), MICRO_TIMESTAMP),
                Value::Int64(1_700_000_000_123_456),
            ),
            cell(
                named(Schema::int64(), MICRO_TIMESTAMP),
                Value::Int64(i64::MAX),
            ),
            cell(
                named(Schema::string(), ZONED_TIMESTAMP),
                Value::String("2024-01-02T03:04:05Z".into()),
            ),
            cell(
                named(Schema::string(), ZONED_TIMESTAMP),
                Value::String("-infinity".into()),
            ),
            cell(
                named(Schema::string(), "io.debezium.data.Json"),
                Value::String("{\"a\":\"b\\tc\"}".into()),
            ),
            cell(Schema::string(), Value::String("plain\ttab".into())),
            cell(Schema::boolean(), Value::Boolean(true)),
            cell(Schema::float64(), Value::Float64(-1.5)),
            cell(Schema::int64().optional(), Value::Null),
        ];
        for c in &cells {
            let mut straight = Vec::new();
            push_cell(&mut straight, c).unwrap();
            let mut bound = Vec::new();
            match c.param(Dialect::Postgres).unwrap().into_text() {
                Some(text) => escaped(&mut bound, &text),
                None => bound.extend_from_slice(b"\\N"),
            }
            assert_eq!(
                String::from_utf8(straight).unwrap(),
                String::from_utf8(bound).unwrap(),
                "{c:?}"
            );
        }
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
