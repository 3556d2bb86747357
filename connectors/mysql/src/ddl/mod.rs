//! A small parser for the DDL that changes captured tables' columns, so the
//! schema model follows the binlog: CREATE / ALTER / DROP / RENAME /
//! TRUNCATE TABLE. What it cannot read is reported as [`Ddl::Refresh`] and
//! the table is re-read from `information_schema` instead.
//!
//! Three parts: the [`lexer`] turns text into tokens, the [`parser`]
//! reads tokens into a [`Ddl`], the [`model`] applies it to a table.

mod lexer;
mod model;
mod parser;

pub use model::{apply_alter, AlterOp, Ddl, Name, Place};
pub use parser::{is_ddl, parse};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TableDef;

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
