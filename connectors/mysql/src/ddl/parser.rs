//! DDL statements read from tokens into the [`Ddl`] they mean: CREATE /
//! ALTER / DROP / RENAME / TRUNCATE TABLE. What cannot be read becomes
//! [`Ddl::Other`], or the caller's refresh of the table.

use super::lexer::{tokenize, Token};
use super::model::{AlterOp, Ddl, Name, Place};
use crate::catalog::{ColumnDef, TableDef};

/// A cursor over one statement's tokens.
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
