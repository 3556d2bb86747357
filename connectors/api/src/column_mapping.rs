//! Debezium's column mappers, applied by a source connector while it builds
//! a table's schema and rows, where each column's declared type and length
//! are known:
//! - `column.mask.with.<n>.chars`: the value becomes n asterisks;
//! - `column.mask.hash.<algorithm>.with.salt.<salt>` (and the `v2.` form):
//!   the value becomes the hex digest of salt + value, cut to the column's
//!   declared length;
//! - `column.truncate.to.<n>.chars`: the value is cut to n characters;
//! - `column.propagate.source.type` / `datatype.propagate.source.type`: the
//!   field's schema carries `__debezium.source.column.type|length|scale`.
//!
//! Each key's value lists regular expressions matching the whole
//! `<schema>.<table>.<column>` (`<database>.<table>.<column>` for MySQL),
//! case-insensitively as Debezium matches them. Masks and truncations mark
//! the field's schema as Debezium does (`masked`, `truncateLength`), so the
//! registered subjects are the ones Debezium registers.

use regex_lite::Regex;

use crate::filters::patterns;

use crate::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig, Schema, Value};

/// Schema parameter naming the column's source type.
pub const TYPE_PARAMETER: &str = "__debezium.source.column.type";
/// Schema parameter with the column's declared length (or precision).
pub const LENGTH_PARAMETER: &str = "__debezium.source.column.length";
/// Schema parameter with the column's declared scale.
pub const SCALE_PARAMETER: &str = "__debezium.source.column.scale";

/// A column as the database declares it.
#[derive(Debug, Clone, Copy)]
pub struct SourceColumn<'a> {
    /// `<schema>.<table>` (`<database>.<table>` for MySQL).
    pub table: &'a str,
    /// The column name.
    pub name: &'a str,
    /// The type name as Debezium reports it (upper case, e.g. `VARCHAR`).
    pub type_name: &'a str,
    /// Declared length or precision (`varchar(20)` → 20), if any.
    pub length: Option<u32>,
    /// Declared scale (`numeric(10,2)` → 2), if any.
    pub scale: Option<u32>,
}

/// A digest algorithm `column.mask.hash` accepts, by its Java name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MD5" => Self::Md5,
            "SHA-1" | "SHA1" | "SHA" => Self::Sha1,
            "SHA-224" => Self::Sha224,
            "SHA-256" => Self::Sha256,
            "SHA-384" => Self::Sha384,
            "SHA-512" => Self::Sha512,
            _ => return None,
        })
    }

    fn digest(self, salt: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<D: sha2::Digest>(salt: &[u8], data: &[u8]) -> Vec<u8> {
            let mut d = D::new();
            d.update(salt);
            d.update(data);
            d.finalize().to_vec()
        }
        match self {
            Self::Md5 => {
                use md5::Digest as _;
                let mut d = md5::Md5::new();
                d.update(salt);
                d.update(data);
                d.finalize().to_vec()
            }
            Self::Sha1 => {
                use sha1::Digest as _;
                let mut d = sha1::Sha1::new();
                d.update(salt);
                d.update(data);
                d.finalize().to_vec()
            }
            Self::Sha224 => run::<sha2::Sha224>(salt, data),
            Self::Sha256 => run::<sha2::Sha256>(salt, data),
            Self::Sha384 => run::<sha2::Sha384>(salt, data),
            Self::Sha512 => run::<sha2::Sha512>(salt, data),
        }
    }
}

/// How Debezium turns the value into the bytes it hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashInput {
    /// V1: the Java serialization of the string (what Debezium's
    /// `ObjectOutputStream` writes), kept so hashes match existing data.
    JavaSerialized,
    /// V2: the string's UTF-8 bytes.
    Utf8,
}

/// The Java serialization of a `String`: stream header, then TC_STRING
/// with a 16-bit length (TC_LONGSTRING with 64 bits past 65535 bytes) of
/// its modified UTF-8.
fn java_serialized(text: &str) -> Vec<u8> {
    let mut utf = Vec::with_capacity(text.len());
    for unit in text.encode_utf16() {
        match unit {
            0x0001..=0x007f => utf.push(unit as u8),
            0x0000 | 0x0080..=0x07ff => {
                utf.push(0xc0 | (unit >> 6) as u8);
                utf.push(0x80 | (unit & 0x3f) as u8);
            }
            _ => {
                utf.push(0xe0 | (unit >> 12) as u8);
                utf.push(0x80 | ((unit >> 6) & 0x3f) as u8);
                utf.push(0x80 | (unit & 0x3f) as u8);
            }
        }
    }
    let mut out = vec![0xac, 0xed, 0x00, 0x05];
    match u16::try_from(utf.len()) {
        Ok(len) => {
            out.push(0x74);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => {
            out.push(0x7c);
            out.extend_from_slice(&(utf.len() as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&utf);
    out
}

/// What a rule does to a matching column.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Mask(usize),
    Hash {
        digest: Digest,
        salt: String,
        input: HashInput,
    },
    Truncate(usize),
    Propagate,
}

/// One configured rule: which columns (or types) and what it does.
#[derive(Debug, Clone)]
struct Rule {
    /// Matches `<table>.<column>`.
    columns: Vec<Regex>,
    /// Matches the type name or `<table>.<type>` (`datatype.propagate.source.type`).
    types: Vec<Regex>,
    action: Action,
}

impl Rule {
    fn matches(&self, column: &SourceColumn<'_>) -> bool {
        let full = format!("{}.{}", column.table, column.name);
        if self.columns.iter().any(|r| r.is_match(&full)) {
            return true;
        }
        let typed = format!("{}.{}", column.table, column.type_name);
        self.types
            .iter()
            .any(|r| r.is_match(column.type_name) || r.is_match(&typed))
    }
}

/// What happens to one column's values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ValueStep {
    Mask(String),
    Hash {
        digest: Digest,
        salt: String,
        input: HashInput,
        length: Option<usize>,
    },
    Truncate(usize),
}

/// The mappers of one column: the value steps, in configured order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMapper {
    steps: Vec<ValueStep>,
}

impl ColumnMapper {
    /// Maps one of the column's values; only text is changed, as Debezium
    /// changes only character columns.
    pub fn apply(&self, value: &mut Value) {
        let Value::String(text) = value else { return };
        let text = text.make_mut();
        for step in &self.steps {
            match step {
                ValueStep::Mask(stars) => stars.clone_into(text),
                ValueStep::Truncate(n) => truncate_chars(text, *n),
                ValueStep::Hash {
                    digest,
                    salt,
                    input,
                    length,
                } => {
                    let data = match input {
                        HashInput::JavaSerialized => java_serialized(text),
                        HashInput::Utf8 => text.as_bytes().to_vec(),
                    };
                    let mut hex = String::with_capacity(128);
                    for byte in digest.digest(salt.as_bytes(), &data) {
                        hex.push_str(&format!("{byte:02x}"));
                    }
                    if let Some(n) = length {
                        truncate_chars(&mut hex, *n);
                    }
                    *text = hex;
                }
            }
        }
    }
}

fn truncate_chars(text: &mut String, n: usize) {
    if let Some((cut, _)) = text.char_indices().nth(n) {
        text.truncate(cut);
    }
}

/// The column mapping keys of a connector config, compiled.
#[derive(Debug, Clone, Default)]
pub struct ColumnMappers {
    rules: Vec<Rule>,
}

const MASK: (&str, &str) = ("column.mask.with.", ".chars");
const TRUNCATE: (&str, &str) = ("column.truncate.to.", ".chars");
const HASH: &str = "column.mask.hash.";
const PROPAGATE_COLUMNS: &str = "column.propagate.source.type";
const PROPAGATE_TYPES: &str = "datatype.propagate.source.type";

/// The column mapping keys with fixed names, for a source connector's
/// definition (the masks and truncations carry their parameter in the key
/// name and are recognised by [`is_mapping_key`]).
pub fn definition() -> ConfigDef {
    let key = |name, doc| ConfigKey::new(name, ConfigType::List, doc).group("Events");
    ConfigDef::new()
        .define(key(PROPAGATE_COLUMNS, "Regular expressions of <schema>.<table>.<column> whose field schemas carry __debezium.source.column.type, .length and .scale (column.mask.with.<n>.chars, column.mask.hash.[v2.]<algorithm>.with.salt.<salt> and column.truncate.to.<n>.chars take such lists too)."))
        .define(key(PROPAGATE_TYPES, "Regular expressions of source type names (e.g. VARCHAR, or <schema>.<table>.<type>) whose columns' field schemas carry __debezium.source.column.type, .length and .scale."))
}

/// Whether `key` is one of the column mapping keys (they have no fixed
/// name, so they are recognised here rather than declared).
pub fn is_mapping_key(key: &str) -> bool {
    let counted = |(prefix, suffix): (&str, &str)| {
        key.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|n| !n.is_empty())
    };
    counted(MASK) || counted(TRUNCATE) || key.starts_with(HASH)
}

fn count(key: &str, n: &str, example: &str) -> Result<usize, ConfigError> {
    match n.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::new(
            key,
            format!("{n:?} is not a number of characters; write e.g. {example}"),
        )),
    }
}

/// `<algorithm>.with.salt.<salt>` after `column.mask.hash.` (or `v2.`).
fn hash_action(key: &str) -> Result<Action, ConfigError> {
    let rest = key.strip_prefix(HASH).unwrap_or(key);
    let (input, rest) = match rest.strip_prefix("v2.") {
        Some(rest) => (HashInput::Utf8, rest),
        None => (
            HashInput::JavaSerialized,
            rest.strip_prefix("v1.").unwrap_or(rest),
        ),
    };
    let shape = || {
        ConfigError::new(
            key,
            "is not column.mask.hash.[v2.]<algorithm>.with.salt.<salt>, e.g. column.mask.hash.v2.SHA-256.with.salt.CzQMA0cB5K",
        )
    };
    let (algorithm, salt) = rest.split_once(".with.salt.").ok_or_else(shape)?;
    if salt.is_empty() {
        return Err(shape());
    }
    let digest = Digest::parse(algorithm).ok_or_else(|| {
        ConfigError::new(
            key,
            format!("{algorithm} is not a supported digest; use MD5, SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512"),
        )
    })?;
    Ok(Action::Hash {
        digest,
        salt: salt.to_owned(),
        input,
    })
}

impl ColumnMappers {
    /// The rules `config` sets, in the order of its keys; every problem
    /// names its key.
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let mut rules = Vec::new();
        for (key, _) in config.iter() {
            let key = key.as_str();
            let action = if let Some(n) = key
                .strip_prefix(MASK.0)
                .and_then(|r| r.strip_suffix(MASK.1))
            {
                Action::Mask(count(key, n, "column.mask.with.10.chars")?)
            } else if let Some(n) = key
                .strip_prefix(TRUNCATE.0)
                .and_then(|r| r.strip_suffix(TRUNCATE.1))
            {
                Action::Truncate(count(key, n, "column.truncate.to.20.chars")?)
            } else if key.starts_with(HASH) {
                hash_action(key)?
            } else if key == PROPAGATE_COLUMNS {
                Action::Propagate
            } else if key == PROPAGATE_TYPES {
                rules.push(Rule {
                    columns: Vec::new(),
                    types: patterns(config, key)?,
                    action: Action::Propagate,
                });
                continue;
            } else {
                continue;
            };
            rules.push(Rule {
                columns: patterns(config, key)?,
                types: Vec::new(),
                action,
            });
        }
        Ok(Self { rules })
    }

    /// Whether no rule is configured (the usual case: nothing to do).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The field schema of `column` with the parameters its rules add, and
    /// the mapper of its values (`None` when its values are unchanged).
    pub fn map(
        &self,
        column: &SourceColumn<'_>,
        mut schema: Schema,
    ) -> (Schema, Option<ColumnMapper>) {
        let mut mapper = ColumnMapper::default();
        for rule in self.rules.iter().filter(|r| r.matches(column)) {
            match &rule.action {
                Action::Mask(n) => {
                    mapper.steps.push(ValueStep::Mask("*".repeat(*n)));
                    schema = schema.parameter("masked", "true");
                }
                Action::Hash {
                    digest,
                    salt,
                    input,
                } => {
                    mapper.steps.push(ValueStep::Hash {
                        digest: *digest,
                        salt: salt.clone(),
                        input: *input,
                        length: column.length.map(|n| n as usize).filter(|n| *n > 0),
                    });
                    schema = schema.parameter("masked", "true");
                }
                Action::Truncate(n) => {
                    // Debezium leaves a column alone that cannot exceed n.
                    if column.length.is_none_or(|len| len as usize > *n) {
                        mapper.steps.push(ValueStep::Truncate(*n));
                        schema = schema.parameter("truncateLength", n.to_string());
                    }
                }
                Action::Propagate => {
                    schema = schema.parameter(TYPE_PARAMETER, column.type_name);
                    if let Some(length) = column.length {
                        schema = schema.parameter(LENGTH_PARAMETER, length.to_string());
                    }
                    if let Some(scale) = column.scale {
                        schema = schema.parameter(SCALE_PARAMETER, scale.to_string());
                    }
                }
            }
        }
        let mapper = (!mapper.steps.is_empty()).then_some(mapper);
        (schema, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column<'a>(name: &'a str, type_name: &'a str, length: Option<u32>) -> SourceColumn<'a> {
        SourceColumn {
            table: "inventory.customers",
            name,
            type_name,
            length,
            scale: None,
        }
    }

    fn mapped(mappers: &ColumnMappers, c: SourceColumn<'_>, text: &str) -> (Schema, Value) {
        let (schema, mapper) = mappers.map(&c, Schema::string());
        let mut value = Value::String(text.into());
        if let Some(m) = mapper {
            m.apply(&mut value);
        }
        (schema, value)
    }

    #[test]
    fn masks_truncates_and_marks_the_schema_as_debezium() {
        let m = ColumnMappers::from_config(&ConnectorConfig::from_pairs(&[
            ("column.mask.with.6.chars", "inventory.customers.email"),
            ("column.truncate.to.3.chars", r"INVENTORY\.cust.*\.name"),
        ]))
        .unwrap();
        let (schema, value) = mapped(&m, column("email", "VARCHAR", Some(255)), "ann@example.com");
        assert_eq!(value, Value::String("******".into()));
        assert_eq!(
            schema.parameters.get("masked").map(String::as_str),
            Some("true")
        );
        let (schema, value) = mapped(&m, column("name", "VARCHAR", Some(255)), "Ann Smith");
        assert_eq!(value, Value::String("Ann".into()));
        assert_eq!(
            schema.parameters.get("truncateLength").map(String::as_str),
            Some("3")
        );
        // A column that cannot be longer than n is not a truncation.
        let (schema, value) = mapped(&m, column("name", "CHAR", Some(2)), "An");
        assert_eq!(value, Value::String("An".into()));
        assert!(schema.parameters.is_empty());
        let (schema, value) = mapped(&m, column("id", "INT4", None), "7");
        assert_eq!(
            (schema, value),
            (Schema::string(), Value::String("7".into()))
        );
    }

    #[test]
    fn hashes_match_debezium_v1_and_v2() {
        // Expected digests computed with Python's hashlib over the bytes
        // Debezium hashes: salt + value (V2), salt + the Java
        // serialization of the string (V1, the default).
        let m = ColumnMappers::from_config(&ConnectorConfig::from_pairs(&[
            (
                "column.mask.hash.v2.SHA-256.with.salt.CzQMA0cB5K",
                "inventory.customers.email",
            ),
            (
                "column.mask.hash.SHA-256.with.salt.CzQMA0cB5K",
                "inventory.customers.name",
            ),
        ]))
        .unwrap();
        let (_, value) = mapped(&m, column("email", "TEXT", None), "John Doe");
        assert_eq!(
            value,
            Value::String(
                "d815b70abadddd9e1eb3607b08f023e930fe0c9af4ad688b46b6e727fa56c90b".into()
            )
        );
        let (_, value) = mapped(&m, column("name", "TEXT", None), "John Doe");
        assert_eq!(
            value,
            Value::String(
                "a497b2ef4a0304e372b127cc4c53f29e2a9755f92b0cdc452bb7bce873a4ca3a".into()
            )
        );
    }

    #[test]
    fn java_serialization_of_strings() {
        assert_eq!(
            java_serialized("ab"),
            vec![0xac, 0xed, 0, 5, 0x74, 0, 2, b'a', b'b']
        );
        // NUL and characters past the BMP use Java's modified UTF-8.
        assert_eq!(&java_serialized("\0")[5..], &[0, 2, 0xc0, 0x80]);
        assert_eq!(
            &java_serialized("\u{1F600}")[5..],
            &[0, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]
        );
    }

    #[test]
    fn hashes_are_cut_to_the_column_length() {
        let m = ColumnMappers::from_config(&ConnectorConfig::from_pairs(&[(
            "column.mask.hash.MD5.with.salt.pepper",
            "inventory.customers.email",
        )]))
        .unwrap();
        let (schema, value) = mapped(&m, column("email", "VARCHAR", Some(10)), "x@y.z");
        let Value::String(hash) = value else { panic!() };
        assert_eq!(hash.len(), 10);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            schema.parameters.get("masked").map(String::as_str),
            Some("true")
        );
        let (_, value) = mapped(&m, column("email", "TEXT", None), "x@y.z");
        let Value::String(full) = value else { panic!() };
        assert_eq!(full.len(), 32, "MD5 in hex");
        assert!(full.starts_with(hash.as_str()));
    }

    #[test]
    fn propagates_source_types_by_column_or_type() {
        let m = ColumnMappers::from_config(&ConnectorConfig::from_pairs(&[
            ("column.propagate.source.type", "inventory.customers.email"),
            ("datatype.propagate.source.type", "numeric"),
        ]))
        .unwrap();
        let (schema, _) = m.map(&column("email", "VARCHAR", Some(255)), Schema::string());
        assert_eq!(
            schema.parameters.get(TYPE_PARAMETER).map(String::as_str),
            Some("VARCHAR")
        );
        assert_eq!(
            schema.parameters.get(LENGTH_PARAMETER).map(String::as_str),
            Some("255")
        );
        let price = SourceColumn {
            scale: Some(2),
            ..column("price", "NUMERIC", Some(10))
        };
        let (schema, mapper) = m.map(&price, Schema::string());
        assert!(mapper.is_none());
        assert_eq!(
            schema.parameters.get(SCALE_PARAMETER).map(String::as_str),
            Some("2")
        );
        let (schema, _) = m.map(&column("id", "INT4", None), Schema::int32());
        assert!(schema.parameters.is_empty());
    }

    #[test]
    fn bad_keys_are_named() {
        for key in [
            "column.mask.with.x.chars",
            "column.mask.hash.SHA-999.with.salt.s",
            "column.mask.hash.SHA-256",
        ] {
            let err = ColumnMappers::from_config(&ConnectorConfig::from_pairs(&[(key, "a.b.c")]))
                .unwrap_err();
            assert_eq!(err.key, key);
        }
        assert!(is_mapping_key("column.truncate.to.20.chars"));
        assert!(is_mapping_key("column.mask.hash.v2.MD5.with.salt.x"));
        assert!(!is_mapping_key("column.truncate.to..chars"));
        assert!(ColumnMappers::from_config(&ConnectorConfig::default())
            .unwrap()
            .is_empty());
    }
}
