//! The rows of `COPY (SELECT …) TO STDOUT`, PostgreSQL's text format: one
//! row per line, fields split by tabs, `\N` for null, and a backslash
//! before a backslash or a control character. The server writes each
//! field with the type's output function, as it writes a simple query's
//! results, so a field reads as the same text a `SELECT` would give.
//!
//! The snapshot reads this rather than a cursor's rows: tokio-postgres
//! builds each simple-query row as an index of ranges, checks every field
//! as UTF-8 on its own and collects them again into a vector, about 2,100
//! instructions a row of five columns (callgrind, `scripts/bench-postgres`);
//! a line checked once and split here costs a fraction of that.

use std::borrow::Cow;

use sluice_connector_api::text::utf8;

/// The fields of one line of COPY text output (with or without its
/// newline), room made for `columns` of them: `None` for a null, the text
/// otherwise, borrowed from `line` unless it held an escape.
pub fn split_row(line: &[u8], columns: usize) -> Result<Vec<Option<Cow<'_, str>>>, String> {
    let mut fields = Vec::with_capacity(columns);
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    // Tabs and backslashes are ASCII and never inside a multi-byte
    // character, so the line is checked once and cut anywhere at them.
    let text = utf8(line).map_err(|e| format!("a COPY row that is not UTF-8: {e}"))?;
    // One pass over the bytes: `str::split` and a `contains` per field
    // set up a character search for every field, about 700 instructions a
    // row of five columns (callgrind, `scripts/bench-postgres`).
    let mut start = 0;
    let mut escaped = false;
    for (i, byte) in text.bytes().enumerate() {
        match byte {
            b'\t' => {
                fields.push(field(&text[start..i], escaped));
                start = i + 1;
                escaped = false;
            }
            b'\\' => escaped = true,
            _ => {}
        }
    }
    fields.push(field(&text[start..], escaped));
    Ok(fields)
}

/// One field's text: borrowed when it holds no escape, `None` for `\N`.
fn field(text: &str, escaped: bool) -> Option<Cow<'_, str>> {
    match (escaped, text) {
        (false, plain) => Some(Cow::Borrowed(plain)),
        (true, "\\N") => None,
        (true, escaped) => Some(Cow::Owned(unescape(escaped))),
    }
}

/// A field's text without COPY's escapes: `\b \f \n \r \t \v` are the
/// control characters; a backslash before anything else stands for that
/// character (`\\` is a backslash). The server writes no other escape.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            // A trailing backslash is not written by the server; kept as is.
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Vec<Option<String>> {
        split_row(line, 4)
            .expect("splits")
            .into_iter()
            .map(|f| f.map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn plain_fields_and_nulls() {
        assert_eq!(
            split(b"1\t\\N\tnote 1\t1.25\t2024-01-01 00:00:01+00\n"),
            [
                Some("1".into()),
                None,
                Some("note 1".into()),
                Some("1.25".into()),
                Some("2024-01-01 00:00:01+00".into()),
            ]
        );
    }

    #[test]
    fn an_empty_field_is_empty_text_not_null() {
        assert_eq!(split(b"\t\n"), [Some(String::new()), Some(String::new())]);
    }

    #[test]
    fn escapes_read_as_the_characters_they_stand_for() {
        // What the server writes for a tab, a newline, a carriage return, a
        // backslash, a bytea's \x prefix, and the text "\N" (not a null).
        assert_eq!(
            split(b"a\\tb\\nc\\rd\t\\\\x0102\t\\\\N\t\\b\\f\\v\n"),
            [
                Some("a\tb\nc\rd".into()),
                Some("\\x0102".into()),
                Some("\\N".into()),
                Some("\u{8}\u{c}\u{b}".into()),
            ]
        );
    }

    #[test]
    fn multi_byte_text_is_kept_whole() {
        assert_eq!(
            split("größe\tяблоко\\t🍎\n".as_bytes()),
            [Some("größe".into()), Some("яблоко\t🍎".into())]
        );
    }

    #[test]
    fn a_row_that_is_not_utf8_is_refused() {
        let err = split_row(b"ok\t\xff\n", 2).expect_err("refused");
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
