//! A small parser for the DDL that changes captured tables' columns, so the
//! schema model follows the binlog: CREATE / ALTER / DROP / RENAME /
//! TRUNCATE TABLE. What it cannot read is reported as [`Ddl::Refresh`] and
//! the table is re-read from `information_schema` instead.

use crate::catalog::{ColumnDef, TableDef};

/// A token of MySQL SQL.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare word: keyword, identifier or number.
    Word(String),
    /// A `backquoted` identifier.
    Ident(String),
    /// A '...' or "..." string.
    Str(String),
    /// One punctuation character.
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<Token> {
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

/// Where an added or changed column goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// At the end (or, for CHANGE/MODIFY, where it was).
    Default,
    /// First.
    First,
    /// After the named column.
    After(String),
}

/// One ALTER TABLE operation that matters to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    /// ADD COLUMN.
    Add(ColumnDef, Place, bool),
    /// DROP COLUMN.
    Drop(String),
    /// CHANGE old new-definition / MODIFY name definition.
    Change(String, ColumnDef, Place, bool),
    /// RENAME COLUMN a TO b.
    RenameColumn(String, String),
    /// RENAME TO other (database, table).
    RenameTable(Option<String>, String),
    /// ADD PRIMARY KEY (columns).
    AddPrimaryKey(Vec<String>),
    /// DROP PRIMARY KEY.
    DropPrimaryKey,
    /// ALTER COLUMN x SET DEFAULT v / DROP DEFAULT.
    Default(String, Option<String>),
}

/// A table name as written: optional database and the table.
pub type Name = (Option<String>, String);

/// What a statement does to tables.
#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    /// CREATE TABLE with its definition (database filled in by the caller).
    Create(Name, TableDef),
    /// ALTER TABLE.
    Alter(Name, Vec<AlterOp>),
    /// DROP TABLE.
    Drop(Vec<Name>),
    /// RENAME TABLE a TO b, ...
    Rename(Vec<(Name, Name)>),
    /// TRUNCATE TABLE.
    Truncate(Name),
    /// A statement on this table the parser cannot follow: re-read it.
    Refresh(Name),
    /// Not about a table's columns (CREATE DATABASE, GRANT, indexes...).
    Other,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let yes = self.is_word(word);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn eat_words(&mut self, words: &[&str]) -> bool {
        let save = self.at;
        for w in words {
            if !self.eat_word(w) {
                self.at = save;
                return false;
            }
        }
        true
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Token::Punct(c));
        if yes {
            self.at += 1;
        }
        yes
    }

    fn ident(&mut self) -> Option<String> {
        match self.next()? {
            Token::Word(w) | Token::Ident(w) | Token::Str(w) => Some(w),
            Token::Punct(_) => None,
        }
    }

    fn name(&mut self) -> Option<Name> {
        let first = self.ident()?;
        if self.eat_punct('.') {
            Some((Some(first), self.ident()?))
        } else {
            Some((None, first))
        }
    }

    /// Skips a balanced parenthesised group; the opening one is next.
    fn skip_group(&mut self) -> Option<()> {
        if !self.eat_punct('(') {
            return None;
        }
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => depth -= 1,
                _ => {}
            }
        }
        Some(())
    }

    /// The raw text of the tokens of a parenthesised group (type arguments).
    fn group_text(&mut self) -> Option<String> {
        if !self.eat_punct('(') {
            return None;
        }
        let mut parts = Vec::new();
        let mut depth = 1;
        loop {
            match self.next()? {
                Token::Punct('(') => {
                    depth += 1;
                    parts.push("(".to_owned());
                }
                Token::Punct(')') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    parts.push(")".to_owned());
                }
                Token::Punct(',') => parts.push(",".to_owned()),
                Token::Punct(c) => parts.push(c.to_string()),
                Token::Word(w) => parts.push(w),
                Token::Ident(w) => parts.push(format!("`{w}`")),
                Token::Str(s) => parts.push(format!("'{}'", s.replace('\'', "''"))),
            }
        }
        Some(parts.concat())
    }

    /// Skips to the next top-level `,` or the end (or a closing `)`).
    fn skip_clause(&mut self) {
        while let Some(t) = self.peek() {
            match t {
                Token::Punct(',') | Token::Punct(')') => return,
                Token::Punct('(') => {
                    let _ = self.skip_group();
                }
                _ => self.at += 1,
            }
        }
    }

    fn column_list(&mut self) -> Option<Vec<String>> {
        if !self.eat_punct('(') {
            return None;
        }
        let mut names = Vec::new();
        loop {
            names.push(self.ident()?);
            if self.peek() == Some(&Token::Punct('(')) {
                self.skip_group()?; // prefix length
            }
            let _ = self.eat_word("ASC") || self.eat_word("DESC");
            if self.eat_punct(')') {
                return Some(names);
            }
            if !self.eat_punct(',') {
                return None;
            }
        }
    }

    /// A default value as MariaDB shows it: `'text'`, a number, `NULL` or
    /// an expression.
    fn default_value(&mut self) -> Option<String> {
        match self.next()? {
            Token::Str(s) => Some(format!("'{}'", s.replace('\'', "''"))),
            Token::Punct('-') => match self.next()? {
                Token::Word(n) => Some(format!("-{n}")),
                _ => None,
            },
            Token::Punct('+') => match self.next()? {
                Token::Word(n) => Some(n),
                _ => None,
            },
            Token::Punct('(') => {
                self.at -= 1;
                let text = self.group_text()?;
                Some(format!("({text})"))
            }
            Token::Word(w) => {
                if self.peek() == Some(&Token::Punct('(')) {
                    let args = self.group_text()?;
                    Some(format!("{w}({args})"))
                } else {
                    Some(w)
                }
            }
            Token::Ident(_) | Token::Punct(_) => None,
        }
    }

    /// A column definition: name, type and attributes. Returns the column
    /// and whether it was declared PRIMARY KEY inline.
    fn column(&mut self, table_charset: Option<&str>) -> Option<(ColumnDef, bool)> {
        let name = self.ident()?;
        let mut base = match self.next()? {
            Token::Word(w) => w.to_ascii_lowercase(),
            _ => return None,
        };
        if base == "double" && self.eat_word("precision") {
            base = "double".into();
        }
        if base == "national" {
            base = self.ident()?.to_ascii_lowercase();
        }
        if (base == "char" || base == "character") && self.eat_word("varying") {
            base = "varchar".into();
        }
        let args = if self.peek() == Some(&Token::Punct('(')) {
            Some(self.group_text()?)
        } else {
            None
        };
        let (data_type, mut column_type) = match base.as_str() {
            "bool" | "boolean" => ("tinyint".to_owned(), "tinyint(1)".to_owned()),
            "integer" => ("int".to_owned(), format!("int{}", paren(&args))),
            "dec" | "numeric" | "fixed" => {
                ("decimal".to_owned(), format!("decimal{}", paren(&args)))
            }
            "real" => ("double".to_owned(), format!("double{}", paren(&args))),
            "character" => ("char".to_owned(), format!("char{}", paren(&args))),
            "serial" => ("bigint".to_owned(), "bigint(20) unsigned".to_owned()),
            "int1" => ("tinyint".to_owned(), format!("tinyint{}", paren(&args))),
            "int2" => ("smallint".to_owned(), format!("smallint{}", paren(&args))),
            "int3" | "middleint" => ("mediumint".to_owned(), format!("mediumint{}", paren(&args))),
            "int4" => ("int".to_owned(), format!("int{}", paren(&args))),
            "int8" => ("bigint".to_owned(), format!("bigint{}", paren(&args))),
            other => (other.to_owned(), format!("{other}{}", paren(&args))),
        };
        let mut column = ColumnDef {
            name,
            data_type,
            column_type: String::new(),
            nullable: base != "serial",
            default: None,
            charset: table_charset.map(str::to_owned),
        };
        let mut primary = false;
        loop {
            if self.eat_word("UNSIGNED") {
                column_type.push_str(" unsigned");
            } else if self.eat_word("SIGNED")
                || self.eat_word("ZEROFILL")
                || self.eat_word("BINARY")
                || self.eat_word("AUTO_INCREMENT")
                || self.eat_word("UNIQUE")
                || self.eat_word("KEY")
                || self.eat_word("VISIBLE")
                || self.eat_word("INVISIBLE")
            {
            } else if self.eat_words(&["NOT", "NULL"]) {
                column.nullable = false;
            } else if self.eat_word("NULL") {
                column.nullable = true;
            } else if self.eat_words(&["CHARACTER", "SET"]) || self.eat_word("CHARSET") {
                column.charset = Some(self.ident()?.to_ascii_lowercase());
            } else if self.eat_word("COLLATE")
                || self.eat_word("COMMENT")
                || self.eat_words(&["COLUMN_FORMAT"])
                || self.eat_word("STORAGE")
                || self.eat_word("SRID")
            {
                self.next()?;
            } else if self.eat_word("DEFAULT") {
                let value = self.default_value()?;
                column.default = (!value.eq_ignore_ascii_case("NULL")).then_some(value);
            } else if self.eat_words(&["ON", "UPDATE"]) {
                self.default_value()?;
            } else if self.eat_words(&["PRIMARY", "KEY"]) {
                primary = true;
                column.nullable = false;
            } else if self.eat_word("GENERATED")
                || self.eat_word("AS")
                || self.eat_word("CHECK")
                || self.eat_word("REFERENCES")
                || self.eat_word("CONSTRAINT")
            {
                // Computed columns, checks and references: skip their bodies.
                let _ = self.eat_word("ALWAYS") && self.eat_word("AS");
                self.skip_clause();
                break;
            } else {
                break;
            }
        }
        if column.data_type == "json" {
            column.charset = None;
        }
        column.column_type = column_type;
        Some((column, primary))
    }

    fn place(&mut self) -> Option<Place> {
        if self.eat_word("FIRST") {
            Some(Place::First)
        } else if self.eat_word("AFTER") {
            Some(Place::After(self.ident()?))
        } else {
            Some(Place::Default)
        }
    }

    fn if_exists(&mut self) -> bool {
        self.eat_words(&["IF", "EXISTS"]) || self.eat_words(&["IF", "NOT", "EXISTS"])
    }

    fn create_table(&mut self) -> Option<Ddl> {
        self.if_exists();
        let name = self.name()?;
        if self.eat_word("LIKE") || !self.eat_punct('(') {
            return Some(Ddl::Refresh(name));
        }
        if self.is_word("LIKE") {
            return Some(Ddl::Refresh(name));
        }
        // Columns first, then the table charset (it is written at the end
        // but is every column's default): parse the body twice if needed.
        let body_start = self.at;
        let charset = {
            let mut depth = 1;
            let mut i = self.at;
            while depth > 0 && i < self.tokens.len() {
                match &self.tokens[i] {
                    Token::Punct('(') => depth += 1,
                    Token::Punct(')') => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            let mut charset = None;
            while i < self.tokens.len() {
                if let Token::Word(w) = &self.tokens[i] {
                    let lw = w.to_ascii_lowercase();
                    if lw == "charset"
                        || (lw == "set"
                            && i > 0
                            && matches!(&self.tokens[i - 1], Token::Word(p) if p.eq_ignore_ascii_case("character")))
                    {
                        let mut j = i + 1;
                        if self.tokens.get(j) == Some(&Token::Punct('=')) {
                            j += 1;
                        }
                        if let Some(Token::Word(cs) | Token::Ident(cs) | Token::Str(cs)) =
                            self.tokens.get(j)
                        {
                            charset = Some(cs.to_ascii_lowercase());
                        }
                    }
                }
                i += 1;
            }
            charset
        };
        self.at = body_start;
        let mut table = TableDef {
            database: String::new(),
            name: name.1.clone(),
            columns: Vec::new(),
            primary_key: Vec::new(),
        };
        loop {
            if self.eat_words(&["PRIMARY", "KEY"]) {
                let _ = self.eat_word("USING") && self.next().is_some();
                table.primary_key = self.column_list()?;
                self.skip_clause();
            } else if self.eat_word("CONSTRAINT") {
                if !self.is_word("PRIMARY")
                    && !self.is_word("UNIQUE")
                    && !self.is_word("FOREIGN")
                    && !self.is_word("CHECK")
                {
                    self.ident()?;
                }
                continue;
            } else if [
                "KEY", "INDEX", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "PERIOD",
            ]
            .iter()
            .any(|w| self.is_word(w))
            {
                self.skip_clause();
            } else {
                let (column, primary) = self.column(charset.as_deref())?;
                if primary {
                    table.primary_key = vec![column.name.clone()];
                }
                self.skip_clause();
                table.columns.push(column);
            }
            if self.eat_punct(')') {
                break;
            }
            if !self.eat_punct(',') {
                return Some(Ddl::Refresh(name));
            }
        }
        for key in &table.primary_key {
            if let Some(c) = table.columns.iter_mut().find(|c| &c.name == key) {
                c.nullable = false;
            }
        }
        Some(Ddl::Create(name, table))
    }

    fn alter_table(&mut self) -> Option<Ddl> {
        let _ = self.eat_word("ONLINE") || self.eat_word("IGNORE");
        if !self.eat_word("TABLE") {
            return Some(Ddl::Other);
        }
        self.if_exists();
        let name = self.name()?;
        let mut ops = Vec::new();
        loop {
            let Some(op) = self.alter_op() else {
                return Some(Ddl::Refresh(name));
            };
            if let Some(op) = op {
                ops.push(op);
            }
            if self.peek().is_none() || self.eat_punct(';') {
                break;
            }
            if !self.eat_punct(',') {
                return Some(Ddl::Refresh(name));
            }
        }
        Some(Ddl::Alter(name, ops))
    }

    /// One ALTER operation: `Some(None)` for one that does not change columns.
    fn alter_op(&mut self) -> Option<Option<AlterOp>> {
        if self.eat_word("ADD") {
            if self.eat_words(&["PRIMARY", "KEY"])
                || (self.eat_word("CONSTRAINT") && {
                    if !self.is_word("PRIMARY") {
                        self.ident();
                    }
                    self.eat_words(&["PRIMARY", "KEY"])
                })
            {
                let _ = self.eat_word("USING") && self.next().is_some();
                let columns = self.column_list()?;
                self.skip_clause();
                return Some(Some(AlterOp::AddPrimaryKey(columns)));
            }
            if [
                "KEY",
                "INDEX",
                "UNIQUE",
                "FULLTEXT",
                "SPATIAL",
                "FOREIGN",
                "CHECK",
                "CONSTRAINT",
                "PARTITION",
            ]
            .iter()
            .any(|w| self.is_word(w))
            {
                self.skip_clause();
                return Some(None);
            }
            let _ = self.eat_word("COLUMN");
            let if_not_exists = self.if_exists();
            if self.peek() == Some(&Token::Punct('(')) {
                return None; // ADD (a INT, b INT): rare, re-read
            }
            let (column, _) = self.column(None)?;
            let place = self.place()?;
            self.skip_clause();
            return Some(Some(AlterOp::Add(column, place, if_not_exists)));
        }
        if self.eat_word("DROP") {
            if self.eat_words(&["PRIMARY", "KEY"]) {
                return Some(Some(AlterOp::DropPrimaryKey));
            }
            if [
                "KEY",
                "INDEX",
                "FOREIGN",
                "CHECK",
                "CONSTRAINT",
                "PARTITION",
            ]
            .iter()
            .any(|w| self.is_word(w))
            {
                self.skip_clause();
                return Some(None);
            }
            let _ = self.eat_word("COLUMN");
            self.if_exists();
            let name = self.ident()?;
            let _ = self.eat_word("RESTRICT") || self.eat_word("CASCADE");
            return Some(Some(AlterOp::Drop(name)));
        }
        if self.eat_word("CHANGE") {
            let _ = self.eat_word("COLUMN");
            let if_exists = self.if_exists();
            let old = self.ident()?;
            let (column, _) = self.column(None)?;
            let place = self.place()?;
            self.skip_clause();
            return Some(Some(AlterOp::Change(old, column, place, if_exists)));
        }
        if self.eat_word("MODIFY") {
            let _ = self.eat_word("COLUMN");
            let if_exists = self.if_exists();
            let (column, _) = self.column(None)?;
            let place = self.place()?;
            self.skip_clause();
            return Some(Some(AlterOp::Change(
                column.name.clone(),
                column,
                place,
                if_exists,
            )));
        }
        if self.eat_word("RENAME") {
            if self.eat_word("COLUMN") {
                let from = self.ident()?;
                if !self.eat_word("TO") {
                    return None;
                }
                return Some(Some(AlterOp::RenameColumn(from, self.ident()?)));
            }
            if self.is_word("INDEX") || self.is_word("KEY") {
                self.skip_clause();
                return Some(None);
            }
            let _ = self.eat_word("TO") || self.eat_word("AS");
            let (db, table) = self.name()?;
            return Some(Some(AlterOp::RenameTable(db, table)));
        }
        if self.eat_word("ALTER") {
            let _ = self.eat_word("COLUMN");
            let column = self.ident()?;
            if self.eat_words(&["SET", "DEFAULT"]) {
                let value = self.default_value()?;
                return Some(Some(AlterOp::Default(column, Some(value))));
            }
            if self.eat_words(&["DROP", "DEFAULT"]) {
                return Some(Some(AlterOp::Default(column, None)));
            }
            self.skip_clause();
            return Some(None);
        }
        if self.eat_words(&["CONVERT", "TO"]) {
            return None; // changes every text column's charset: re-read
        }
        // Table options, ALGORITHM=, LOCK=, ENGINE=, FORCE, ...
        self.skip_clause();
        Some(None)
    }
}

fn paren(args: &Option<String>) -> String {
    args.as_ref().map(|a| format!("({a})")).unwrap_or_default()
}

/// What `sql` does to tables.
pub fn parse(sql: &str) -> Ddl {
    let mut p = Parser {
        tokens: tokenize(sql),
        at: 0,
    };
    let parsed = (|| {
        if p.eat_word("CREATE") {
            let _ = p.eat_words(&["OR", "REPLACE"]);
            let _ = p.eat_word("TEMPORARY");
            if p.eat_word("TABLE") {
                return p.create_table();
            }
            return Some(Ddl::Other);
        }
        if p.eat_word("ALTER") {
            return p.alter_table();
        }
        if p.eat_word("DROP") {
            let _ = p.eat_word("TEMPORARY");
            if !p.eat_word("TABLE") && !p.eat_word("TABLES") {
                return Some(Ddl::Other);
            }
            p.if_exists();
            let mut names = vec![p.name()?];
            while p.eat_punct(',') {
                names.push(p.name()?);
            }
            return Some(Ddl::Drop(names));
        }
        if p.eat_word("RENAME") {
            if !p.eat_word("TABLE") && !p.eat_word("TABLES") {
                return Some(Ddl::Other);
            }
            let mut pairs = Vec::new();
            loop {
                let from = p.name()?;
                if !p.eat_word("TO") {
                    return None;
                }
                pairs.push((from, p.name()?));
                if !p.eat_punct(',') {
                    break;
                }
            }
            return Some(Ddl::Rename(pairs));
        }
        if p.eat_word("TRUNCATE") {
            let _ = p.eat_word("TABLE");
            return Some(Ddl::Truncate(p.name()?));
        }
        Some(Ddl::Other)
    })();
    parsed.unwrap_or(Ddl::Other)
}

/// Whether a QUERY event's text is DDL (not BEGIN/COMMIT/DML) worth parsing.
pub fn is_ddl(sql: &str) -> bool {
    let first = tokenize(sql.get(..sql.len().min(64)).unwrap_or(sql))
        .into_iter()
        .next();
    matches!(first, Some(Token::Word(w)) if ["create", "alter", "drop", "rename", "truncate"].contains(&w.to_ascii_lowercase().as_str()))
}

/// Applies ALTER operations to a table; `Err` names what could not be
/// applied (the table is then re-read).
pub fn apply_alter(table: &mut TableDef, ops: &[AlterOp]) -> Result<(), String> {
    let position = |table: &TableDef, name: &str| {
        table
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    };
    let insert = |table: &mut TableDef, column: ColumnDef, place: &Place, default_at: usize| {
        let at = match place {
            Place::Default => default_at,
            Place::First => 0,
            Place::After(name) => match position(table, name) {
                Some(i) => i + 1,
                None => return Err(format!("AFTER {name}: no such column")),
            },
        };
        table.columns.insert(at.min(table.columns.len()), column);
        Ok(())
    };
    for op in ops {
        match op {
            AlterOp::Add(column, place, if_not_exists) => {
                if position(table, &column.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(format!("column {} already exists", column.name));
                }
                let end = table.columns.len();
                let mut column = column.clone();
                if column.charset.is_none() {
                    column.charset = table.columns.iter().find_map(|c| c.charset.clone());
                }
                insert(table, column, place, end)?;
            }
            AlterOp::Drop(name) => {
                if let Some(i) = position(table, name) {
                    table.columns.remove(i);
                    table.primary_key.retain(|k| !k.eq_ignore_ascii_case(name));
                }
            }
            AlterOp::Change(old, column, place, if_exists) => {
                let Some(i) = position(table, old) else {
                    if *if_exists {
                        continue;
                    }
                    return Err(format!("no column {old} to change"));
                };
                let mut column = column.clone();
                if column.charset.is_none() {
                    column.charset = table.columns[i].charset.clone();
                }
                if table
                    .primary_key
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(old))
                {
                    column.nullable = false;
                    for k in &mut table.primary_key {
                        if k.eq_ignore_ascii_case(old) {
                            *k = column.name.clone();
                        }
                    }
                }
                table.columns.remove(i);
                insert(table, column, place, i)?;
            }
            AlterOp::RenameColumn(from, to) => {
                let Some(i) = position(table, from) else {
                    return Err(format!("no column {from} to rename"));
                };
                table.columns[i].name = to.clone();
                for k in &mut table.primary_key {
                    if k.eq_ignore_ascii_case(from) {
                        *k = to.clone();
                    }
                }
            }
            AlterOp::RenameTable(db, name) => {
                if let Some(db) = db {
                    table.database = db.clone();
                }
                table.name = name.clone();
            }
            AlterOp::AddPrimaryKey(columns) => {
                table.primary_key = columns.clone();
                for c in &mut table.columns {
                    if columns.iter().any(|k| k.eq_ignore_ascii_case(&c.name)) {
                        c.nullable = false;
                    }
                }
            }
            AlterOp::DropPrimaryKey => table.primary_key.clear(),
            AlterOp::Default(column, value) => {
                if let Some(i) = position(table, column) {
                    table.columns[i].default =
                        value.clone().filter(|v| !v.eq_ignore_ascii_case("NULL"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableDef {
        match parse("CREATE TABLE IF NOT EXISTS `inv`.`t` (\n id INT UNSIGNED NOT NULL AUTO_INCREMENT,\n name VARCHAR(20) DEFAULT 'x' COMMENT 'a, b',\n flag BOOLEAN,\n price DECIMAL(10,2) NULL DEFAULT -1.5,\n PRIMARY KEY (`id`), KEY k (name(5))\n) ENGINE=InnoDB DEFAULT CHARSET=latin1") {
            Ddl::Create(name, t) => {
                assert_eq!(name, (Some("inv".into()), "t".into()));
                t
            }
            other => panic!("not a create: {other:?}"),
        }
    }

    #[test]
    fn create_table_reads_columns_keys_and_charset() {
        let t = table();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "flag", "price"]);
        assert_eq!(t.primary_key, ["id"]);
        assert_eq!(t.columns[0].column_type, "int unsigned");
        assert!(!t.columns[0].nullable);
        assert_eq!(t.columns[1].default.as_deref(), Some("'x'"));
        assert_eq!(t.columns[1].charset.as_deref(), Some("latin1"));
        assert_eq!(t.columns[2].column_type, "tinyint(1)");
        assert_eq!(t.columns[3].column_type, "decimal(10,2)");
        assert_eq!(t.columns[3].default.as_deref(), Some("-1.5"));
    }

    #[test]
    fn alter_add_drop_change_modify_rename() {
        let mut t = table();
        let Ddl::Alter(name, ops) = parse("ALTER TABLE t ADD COLUMN note TEXT AFTER id, DROP COLUMN flag, CHANGE price cost DECIMAL(12,3) NOT NULL, MODIFY name VARCHAR(40) FIRST, RENAME COLUMN note TO remark, ADD INDEX (cost), ALGORITHM=INPLACE") else {
            panic!("not an alter");
        };
        assert_eq!(name, (None, "t".into()));
        apply_alter(&mut t, &ops).expect("applies");
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["name", "id", "remark", "cost"]);
        assert_eq!(t.columns[0].column_type, "varchar(40)");
        assert_eq!(t.columns[3].column_type, "decimal(12,3)");
        assert!(!t.columns[3].nullable);
        let Ddl::Alter(_, ops) =
            parse("alter table t drop primary key, add primary key (id, name)")
        else {
            panic!("not an alter");
        };
        apply_alter(&mut t, &ops).expect("applies");
        assert_eq!(t.primary_key, ["id", "name"]);
    }

    #[test]
    fn other_statements() {
        assert_eq!(
            parse("DROP TABLE IF EXISTS a, `b`.c"),
            Ddl::Drop(vec![(None, "a".into()), (Some("b".into()), "c".into())])
        );
        assert_eq!(
            parse("RENAME TABLE a TO b"),
            Ddl::Rename(vec![((None, "a".into()), (None, "b".into()))])
        );
        assert_eq!(parse("truncate t"), Ddl::Truncate((None, "t".into())));
        assert_eq!(
            parse("CREATE TABLE x LIKE y"),
            Ddl::Refresh((None, "x".into()))
        );
        assert_eq!(parse("CREATE DATABASE d"), Ddl::Other);
        assert_eq!(
            parse("ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4"),
            Ddl::Refresh((None, "t".into()))
        );
        assert!(is_ddl("/* c */ ALTER TABLE t ADD c INT"));
        assert!(!is_ddl("BEGIN"));
        assert!(!is_ddl("INSERT INTO t VALUES (1)"));
    }

    /// Issue 19 (bad input): DDL text from the binlog is outside input.
    /// Every prefix of real statements, and soups of their tokens and
    /// stray punctuation and non-ASCII, parse to something or to "not
    /// followed", never a panic; an ALTER the parser reads applies or is
    /// refused. A deterministic stand-in for `cargo fuzz` (nightly only).
    #[test]
    fn prefixes_and_token_soups_never_panic() {
        let statements = [
            "CREATE TABLE IF NOT EXISTS `inv`.`t` (id INT UNSIGNED NOT NULL AUTO_INCREMENT, name VARCHAR(20) DEFAULT 'x' COMMENT 'a, b', price DECIMAL(10,2) NULL DEFAULT -1.5, PRIMARY KEY (`id`), KEY k (name(5))) ENGINE=InnoDB",
            "ALTER TABLE t ADD COLUMN c ENUM('a','b') AFTER id, DROP COLUMN d, CHANGE COLUMN e f BIGINT, MODIFY g TEXT, RENAME COLUMN h TO i",
            "RENAME TABLE a TO b, `c`.`d` TO `e`.`f`",
            "DROP TABLE IF EXISTS a, b",
            "TRUNCATE TABLE `x`.`y`",
            "CREATE TABLE `ü` (`é` SET('x','y') DEFAULT 'x', j JSON, g GEOMETRY, b BIT(3) DEFAULT b'101')",
        ];
        for sql in statements {
            for end in (0..=sql.len()).filter(|i| sql.is_char_boundary(*i)) {
                let _ = parse(&sql[..end]);
                let _ = is_ddl(&sql[..end]);
            }
        }
        let tokens: Vec<&str> = statements
            .iter()
            .flat_map(|s| s.split(' '))
            .chain([
                "(", ")", ",", "`", "'", "\"", ";", "--", "/*", "*/", "\\", "é", "\u{0}", "(((",
                "''",
            ])
            .collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let words = 1 + next() % 24;
            let sql: Vec<&str> = (0..words)
                .map(|_| tokens[(next() as usize) % tokens.len()])
                .collect();
            let glue = if next() % 2 == 0 { " " } else { "" };
            let sql = sql.join(glue);
            if let Ddl::Alter(_, ops) = parse(&sql) {
                let _ = apply_alter(&mut table(), &ops);
            } else {
                let _ = parse(&sql);
            }
        }
    }
}
