//! MySQL SQL as tokens: words, `quoted` identifiers, strings and
//! punctuation, with comments dropped — what the DDL parser reads.

/// A token of MySQL SQL.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// A bare word: keyword, identifier or number.
    Word(String),
    /// A `backquoted` identifier.
    Ident(String),
    /// A '...' or "..." string.
    Str(String),
    /// One punctuation character.
    Punct(char),
}

/// The tokens of `sql`; never fails (what it cannot read becomes
/// punctuation the parser will not accept).
pub(super) fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '-' && chars.get(i + 1) == Some(&'-')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // `/*!50100 ... */` carries options we do not need either.
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '`' || c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                if d == c && chars.get(i + 1) == Some(&c) {
                    text.push(c);
                    i += 2;
                } else if d == c {
                    i += 1;
                    break;
                } else if d == '\\' && c != '`' {
                    if let Some(next) = chars.get(i + 1) {
                        text.push(match next {
                            'n' => '\n',
                            't' => '\t',
                            '0' => '\0',
                            other => *other,
                        });
                    }
                    i += 2;
                } else {
                    text.push(d);
                    i += 1;
                }
            }
            out.push(if c == '`' {
                Token::Ident(text)
            } else {
                Token::Str(text)
            });
        } else if c.is_alphanumeric()
            || c == '_'
            || c == '$'
            || (c == '.'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && matches!(out.last(), Some(Token::Punct(_)) | None))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '$'
                    || (chars[i] == '.' && chars[start].is_ascii_digit()))
            {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}
