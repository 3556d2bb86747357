//! Java's `SimpleDateFormat` patterns, the subset transforms need: the
//! letters y M d H m s S as numbers, quoted text, other characters as
//! themselves; always UTC, as Connect's transforms use it.

use sluice_connector_api::calendar;

/// One piece of a date pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text written as is.
    Literal(String),
    /// A field letter and how many times it was repeated.
    Field(char, usize),
}

/// Splits a `SimpleDateFormat` pattern into fields and literal text.
pub fn parse_pattern(pattern: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => text.push(other),
                        None => return Err("an unterminated quote".to_owned()),
                    }
                }
                if text.is_empty() {
                    text.push('\'');
                }
                pieces.push(Piece::Literal(text));
            }
            'y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S' => {
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                pieces.push(Piece::Field(c, count));
            }
            c if c.is_ascii_alphabetic() => {
                return Err(format!(
                    "the pattern letter {c:?} is not supported; use y, M, d, H, m, s and S"
                ))
            }
            other => pieces.push(Piece::Literal(other.to_string())),
        }
    }
    Ok(pieces)
}

/// `millis` since the epoch in UTC, written with `pattern`.
pub fn format_millis(pattern: &[Piece], millis: i64) -> String {
    let (year, month, day, in_day) = calendar::civil(millis.saturating_mul(1000));
    let ms = in_day / 1000;
    let mut out = String::new();
    for piece in pattern {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Field(letter, width) => {
                let value = match letter {
                    'y' if *width == 2 => year.rem_euclid(100),
                    'y' => year,
                    'M' => month,
                    'd' => day,
                    'H' => ms / 3_600_000,
                    'm' => (ms / 60_000) % 60,
                    's' => (ms / 1000) % 60,
                    _ => ms % 1000,
                };
                out.push_str(&format!("{value:0width$}"));
            }
        }
    }
    out
}

/// The milliseconds since the epoch `text` stands for under `pattern`, if
/// it matches: numeric fields take as many digits as the pattern repeats
/// the letter (a year of `yyyy` up to 4, `S` up to 3), literals must match.
pub fn parse_millis(pattern: &[Piece], text: &str) -> Option<i64> {
    let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut milli) = (0i64, 0i64, 0i64, 0i64);
    let mut rest = text;
    for piece in pattern {
        match piece {
            Piece::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
            Piece::Field(letter, width) => {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                // Repeated letters are fixed widths; a single letter takes
                // up to two digits, a year up to four.
                let most = match (letter, width) {
                    ('y', 2) => 2,
                    ('y', w) => (*w).max(4),
                    (_, 1) => 2,
                    (_, w) => *w,
                };
                let take = digits.min(most);
                if take == 0 {
                    return None;
                }
                let value: i64 = rest[..take].parse().ok()?;
                rest = &rest[take..];
                match letter {
                    'y' if *width == 2 => year = 2000 + value,
                    'y' => year = value,
                    'M' => month = value,
                    'd' => day = value,
                    'H' => hour = value,
                    'm' => minute = value,
                    's' => second = value,
                    _ => milli = value,
                }
            }
        }
    }
    if !rest.is_empty() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = calendar::days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let pattern = parse_pattern("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        let text = format_millis(&pattern, 1_700_000_000_123);
        assert_eq!(text, "2023-11-14 22:13:20.123");
        assert_eq!(parse_millis(&pattern, &text), Some(1_700_000_000_123));
        assert_eq!(parse_millis(&pattern, "2023-13-14 22:13:20.123"), None);
        assert_eq!(
            parse_millis(&parse_pattern("yyyyMMdd").unwrap(), "20231114"),
            Some(1_699_920_000_000)
        );
    }
}
