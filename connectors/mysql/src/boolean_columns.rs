//! Which `TINYINT(1)` columns are emitted as booleans. Debezium writes
//! `TINYINT(1)` (and `BOOLEAN`, its alias) as INT16 unless the connector
//! lists Debezium's `TinyIntOneToBooleanConverter` under `converters`:
//! `converters=boolean`, `boolean.type=…TinyIntOneToBooleanConverter`,
//! optionally `boolean.selector` (regular expressions of
//! `database.table.column`) and `boolean.length.checker=false` (any
//! TINYINT, not only TINYINT(1)).

use regex_lite::Regex;
use sluice_connector_api::{ConfigError, ConnectorConfig};

use crate::types::Kind;

/// The converter classes understood, as Debezium names them.
pub const CONVERTER_CLASSES: &[&str] = &[
    "io.debezium.connector.mysql.converters.TinyIntOneToBooleanConverter",
    "io.debezium.connector.binlog.converters.TinyIntOneToBooleanConverter",
];

/// The configured boolean columns.
#[derive(Debug, Clone, Default)]
pub struct BooleanColumns {
    /// `None`: no converter, every TINYINT stays an integer.
    converter: Option<Converter>,
}

#[derive(Debug, Clone)]
struct Converter {
    /// Empty: every column the length check allows.
    selectors: Vec<Regex>,
    only_width_one: bool,
}

impl BooleanColumns {
    /// Reads `converters` and each converter's keys. Errors are reported
    /// on `converters` (the converter's own keys have no definition to
    /// carry them), naming the key at fault.
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        Self::parse(config)
            .map_err(|e| ConfigError::new("converters", format!("{}: {}", e.key, e.message)))
    }

    fn parse(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let mut converter = None;
        for name in config.list("converters") {
            let type_key = format!("{name}.type");
            let class = config.required(&type_key)?;
            if !CONVERTER_CLASSES.contains(&class.trim()) {
                return Err(ConfigError::new(
                    type_key,
                    format!(
                        "{class} is a Java class sluice cannot load; the one custom converter sluice implements is {}",
                        CONVERTER_CLASSES[0]
                    ),
                ));
            }
            let selector_key = format!("{name}.selector");
            let selectors = config
                .list(&selector_key)
                .iter()
                .map(|p| {
                    Regex::new(&format!("(?i)^(?:{p})$")).map_err(|e| {
                        ConfigError::new(
                            selector_key.as_str(),
                            format!("{p} is not a valid regular expression: {e}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            converter = Some(Converter {
                selectors,
                only_width_one: config.bool_or(&format!("{name}.length.checker"), true)?,
            });
        }
        Ok(Self { converter })
    }

    /// The kind a column is emitted as: `kind`, or boolean when the
    /// converter selects this TINYINT column.
    pub fn kind_of(
        &self,
        database: &str,
        table: &str,
        column: &crate::catalog::ColumnDef,
        kind: Kind,
    ) -> Kind {
        let Some(converter) = &self.converter else {
            return kind;
        };
        let Kind::Int { bits: 8, .. } = kind else {
            return kind;
        };
        let ty = column.column_type.to_ascii_lowercase();
        let width_one = ty.starts_with("tinyint(1)") || ty == "bool" || ty == "boolean";
        if converter.only_width_one && !width_one {
            return kind;
        }
        let name = format!("{database}.{table}.{}", column.name);
        if converter.selectors.is_empty() || converter.selectors.iter().any(|s| s.is_match(&name)) {
            Kind::Bool
        } else {
            kind
        }
    }
}
