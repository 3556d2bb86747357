//! Column values as the text (or bytes) each target parses, and column
//! types for new tables and columns — both from the field's schema and
//! its Debezium / Connect logical name.

use sluice_connector_api::calendar::{civil, clock, MICROS_PER_DAY};
use sluice_connector_api::decimal::{decimal_text, DecimalText};
use sluice_connector_api::logical::*;
use sluice_connector_api::{Schema, SchemaKind, Value};

use crate::config::Dialect;

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// Text the target casts to the column type.
    Text(String),
    /// Raw bytes (MySQL binary columns).
    Bytes(Vec<u8>),
}

impl Param {
    /// The text form (PostgreSQL binds everything as text).
    pub fn into_text(self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Text(t) => Some(t),
            Self::Bytes(b) => Some(hex_bytes(&b)),
        }
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// An infinite timestamp as the target can hold it.
fn infinite(positive: bool, dialect: Dialect) -> String {
    match (dialect, positive) {
        (Dialect::Postgres, true) => "infinity",
        (Dialect::Postgres, false) => "-infinity",
        (Dialect::MySql, true) => "9999-12-31 23:59:59.999999",
        (Dialect::MySql, false) => "1000-01-01 00:00:00",
    }
    .to_owned()
}

/// An ISO 8601 date-time without its zone (`Z` or `±HH:MM`).
fn wall_clock(text: &str) -> &str {
    if let Some(local) = text.strip_suffix('Z') {
        return local;
    }
    let bytes = text.as_bytes();
    match bytes.len().checked_sub(6) {
        Some(at)
            if matches!(bytes[at], b'+' | b'-') && bytes[at + 3] == b':' && text.contains('T') =>
        {
            &text[..at]
        }
        _ => text,
    }
}

/// ISO-8601 date-time text as MySQL's DATETIME literal: the `T` a
/// space. Built by hand: `replacen` set up a pattern searcher per value,
/// about 300 instructions of a MySQL sink row with one zoned timestamp
/// (callgrind, `scripts/bench-sink`).
fn datetime_text(iso: &str) -> String {
    match iso.split_once('T') {
        Some((date, time)) => {
            let mut text = String::with_capacity(iso.len());
            text.push_str(date);
            text.push(' ');
            text.push_str(time);
            text
        }
        None => iso.to_owned(),
    }
}

fn date_text(days: i64) -> String {
    let (y, m, d, _) = civil(days * MICROS_PER_DAY);
    format!("{y:04}-{m:02}-{d:02}")
}

fn timestamp_text(micros: i64) -> String {
    let (y, m, d, in_day) = civil(micros);
    format!("{y:04}-{m:02}-{d:02} {}", clock(in_day))
}

/// `HH:MM:SS.ffffff` of a time of day (or duration) in microseconds.
fn time_text(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.abs();
    let seconds = micros / 1_000_000;
    format!(
        "{sign}{:02}:{:02}:{:02}.{:06}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60,
        micros % 1_000_000
    )
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        v.to_string()
    }
}

fn int_of(value: &Value) -> Option<i64> {
    Some(match value {
        Value::Int8(v) => i64::from(*v),
        Value::Int16(v) => i64::from(*v),
        Value::Int32(v) => i64::from(*v),
        Value::Int64(v) => *v,
        _ => return None,
    })
}

/// A value the target reads as it stands: written into a statement or a
/// COPY row straight from the record, with no `String` of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Direct<'v> {
    /// Text the column reads as it is.
    Text(&'v str),
    /// A plain integer.
    Int(i64),
    /// A `Decimal` that fits 128 bits, as its text.
    Decimal(DecimalText),
}

/// `value` as [`Direct`] when [`param`] would give its text unchanged (a
/// `String` per cell was a fifth of a sink's work per row: callgrind,
/// `scripts/bench-sink`); `None` for everything else, which goes through
/// [`param`].
pub fn direct<'v>(schema: &Schema, value: &'v Value, dialect: Dialect) -> Option<Direct<'v>> {
    let name = schema.name.as_deref().unwrap_or_default();
    match value {
        // Every text value is read as it is, whatever its logical type,
        // but for a zoned timestamp going into MySQL's zoneless DATETIME.
        Value::String(text) if dialect == Dialect::Postgres || name != ZONED_TIMESTAMP => {
            Some(Direct::Text(text))
        }
        // Named integers are dates, times and durations.
        _ if name.is_empty() => int_of(value).map(Direct::Int),
        Value::Bytes(b) if name == DECIMAL => {
            DecimalText::of(b, decimal_scale(schema)).map(Direct::Decimal)
        }
        _ => None,
    }
}

/// The scale a `Decimal` column's schema gives (0 when it gives none).
fn decimal_scale(schema: &Schema) -> u32 {
    schema
        .parameters
        .get(DECIMAL_SCALE)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The parameter for `value` of a field with `schema`.
pub fn param(schema: &Schema, value: &Value, dialect: Dialect) -> Result<Param, String> {
    if *value == Value::Null {
        return Ok(Param::Null);
    }
    let name = schema.name.as_deref().unwrap_or_default();
    let int = int_of(value);
    let text = match (name, value) {
        (DECIMAL, Value::Bytes(b)) => decimal_text(b, decimal_scale(schema)),
        (VARIABLE_SCALE_DECIMAL, Value::Struct(parts)) => match parts.as_slice() {
            [Value::Int32(scale), Value::Bytes(b)] => decimal_text(b, (*scale).max(0) as u32),
            _ => return Err("a VariableScaleDecimal needs scale and value".into()),
        },
        (DATE | DBZ_DATE, _) if int.is_some() => date_text(int.unwrap_or_default()),
        (TIME, _) if int.is_some() => time_text(int.unwrap_or_default() * 1000),
        (MICRO_TIME, _) if int.is_some() => time_text(int.unwrap_or_default()),
        // PostgreSQL's infinite timestamps (int64 extremes, or the words):
        // PostgreSQL keeps them, MySQL gets DATETIME's bounds, as
        // Debezium's JDBC sink writes them.
        (TIMESTAMP | DBZ_TIMESTAMP | MICRO_TIMESTAMP | NANO_TIMESTAMP, _)
            if matches!(int, Some(i64::MAX) | Some(i64::MIN)) =>
        {
            infinite(int == Some(i64::MAX), dialect)
        }
        (ZONED_TIMESTAMP, Value::String(s)) if s == "infinity" || s == "-infinity" => {
            infinite(s == "infinity", dialect)
        }
        (TIMESTAMP | DBZ_TIMESTAMP, _) if int.is_some() => {
            timestamp_text(int.unwrap_or_default() * 1000)
        }
        (MICRO_TIMESTAMP, _) if int.is_some() => timestamp_text(int.unwrap_or_default()),
        (NANO_TIMESTAMP, _) if int.is_some() => timestamp_text(int.unwrap_or_default() / 1000),
        (MICRO_DURATION, _) if int.is_some() => match dialect {
            Dialect::Postgres => format!("{} microseconds", int.unwrap_or_default()),
            Dialect::MySql => int.unwrap_or_default().to_string(),
        },
        (ZONED_TIMESTAMP, Value::String(s)) => match dialect {
            Dialect::Postgres => s.as_str().to_owned(),
            // DATETIME has no zone: the wall-clock part (UTC as Debezium
            // writes it, or use.time.zone's once converted).
            Dialect::MySql => datetime_text(wall_clock(s)),
        },
        (_, Value::Boolean(b)) => match dialect {
            Dialect::Postgres => b.to_string(),
            Dialect::MySql => u8::from(*b).to_string(),
        },
        (_, Value::Float32(f)) => float_text(f64::from(*f)),
        (_, Value::Float64(f)) => float_text(*f),
        (_, Value::String(s)) => s.as_str().to_owned(),
        (_, Value::Bytes(b)) => {
            return Ok(match dialect {
                Dialect::Postgres => Param::Text(hex_bytes(b)),
                Dialect::MySql => Param::Bytes(b.clone()),
            })
        }
        (_, Value::Array(items)) => {
            let item_schema = match &schema.kind {
                SchemaKind::Array(s) => s.clone(),
                _ => return Err("an array value without an array schema".into()),
            };
            let texts = items
                .iter()
                .map(|v| param(&item_schema, v, dialect).map(Param::into_text))
                .collect::<Result<Vec<_>, _>>()?;
            match dialect {
                Dialect::Postgres => postgres_array(&texts),
                Dialect::MySql => serde_json::Value::Array(
                    texts
                        .into_iter()
                        .map(|t| t.map_or(serde_json::Value::Null, serde_json::Value::String))
                        .collect(),
                )
                .to_string(),
            }
        }
        (_, v) if int.is_some() => {
            let _ = v;
            int.unwrap_or_default().to_string()
        }
        (_, Value::Struct(_))
            if name == "io.debezium.data.geometry.Geometry"
                || name == "io.debezium.data.geometry.Point" =>
        {
            match value {
                Value::Struct(parts) => match parts.iter().find(|p| matches!(p, Value::Bytes(_))) {
                    Some(Value::Bytes(wkb)) => {
                        return Ok(match dialect {
                            Dialect::Postgres => Param::Text(hex_bytes(wkb)),
                            Dialect::MySql => Param::Bytes(wkb.clone()),
                        })
                    }
                    _ => return Ok(Param::Null),
                },
                _ => return Ok(Param::Null),
            }
        }
        (_, other) => {
            return Err(format!(
                "cannot write a {} value ({}) to a column",
                schema.kind.connect_name(),
                if name.is_empty() { "unnamed" } else { name }.to_owned()
                    + &format!(": {other:?}").chars().take(60).collect::<String>()
            ))
        }
    };
    Ok(Param::Text(text))
}

fn postgres_array(items: &[Option<String>]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(t) => {
                out.push('"');
                for c in t.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// The column type for a field with `schema` in a new table or column.
/// Key columns in MySQL need bounded text and binary types.
pub fn column_type(schema: &Schema, dialect: Dialect, is_key: bool) -> Result<String, String> {
    let pg = dialect == Dialect::Postgres;
    let name = schema.name.as_deref().unwrap_or_default();
    let by_name = match name {
        DECIMAL => {
            let scale = schema
                .parameters
                .get(DECIMAL_SCALE)
                .cloned()
                .unwrap_or("0".into());
            Some(match schema.parameters.get(DECIMAL_PRECISION) {
                Some(p) => format!("{}({p},{scale})", if pg { "numeric" } else { "decimal" }),
                None if pg => "numeric".into(),
                None => format!("decimal(65,{scale})"),
            })
        }
        VARIABLE_SCALE_DECIMAL => Some(if pg { "numeric" } else { "decimal(65,30)" }.into()),
        DATE | DBZ_DATE => Some("date".into()),
        TIME => Some("time(3)".into()),
        MICRO_TIME => Some("time(6)".into()),
        TIMESTAMP | DBZ_TIMESTAMP => Some(if pg { "timestamp(3)" } else { "datetime(3)" }.into()),
        MICRO_TIMESTAMP | NANO_TIMESTAMP => {
            Some(if pg { "timestamp(6)" } else { "datetime(6)" }.into())
        }
        ZONED_TIMESTAMP => Some(if pg { "timestamptz" } else { "datetime(6)" }.into()),
        ZONED_TIME => Some(if pg { "timetz" } else { "varchar(64)" }.into()),
        MICRO_DURATION => Some(if pg { "interval" } else { "bigint" }.into()),
        JSON => Some(if pg { "jsonb" } else { "json" }.into()),
        UUID => Some(if pg { "uuid" } else { "varchar(36)" }.into()),
        XML => Some(if pg { "xml" } else { "longtext" }.into()),
        "io.debezium.data.geometry.Geometry" | "io.debezium.data.geometry.Point" => {
            Some(if pg { "bytea" } else { "longblob" }.into())
        }
        _ => None,
    };
    if let Some(t) = by_name {
        return Ok(t);
    }
    Ok(match &schema.kind {
        SchemaKind::Int8 => if pg { "smallint" } else { "tinyint" }.into(),
        SchemaKind::Int16 => "smallint".into(),
        SchemaKind::Int32 => if pg { "integer" } else { "int" }.into(),
        SchemaKind::Int64 => "bigint".into(),
        SchemaKind::Float32 => if pg { "real" } else { "float" }.into(),
        SchemaKind::Float64 => if pg { "double precision" } else { "double" }.into(),
        SchemaKind::Boolean => "boolean".into(),
        SchemaKind::String if pg => "text".into(),
        SchemaKind::String if is_key => "varchar(255)".into(),
        SchemaKind::String => "longtext".into(),
        SchemaKind::Bytes if pg => "bytea".into(),
        SchemaKind::Bytes if is_key => "varbinary(255)".into(),
        SchemaKind::Bytes => "longblob".into(),
        SchemaKind::Array(items) if pg => format!("{}[]", column_type(items, dialect, false)?),
        SchemaKind::Array(_) => "json".into(),
        other => {
            return Err(format!(
                "no {} column type for a {} field",
                if pg { "PostgreSQL" } else { "MySQL" },
                other.connect_name()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    /// Whatever [`direct`] writes straight is the text [`param`] binds.
    #[test]
    fn direct_values_are_the_text_param_gives() {
        let named = |schema: Schema, name: &str| Schema {
            name: Some(name.into()),
            ..schema
        };
        let cells = [
            (Schema::int8(), Value::Int8(i8::MIN)),
            (Schema::int16(), Value::Int16(-300)),
            (Schema::int32(), Value::Int32(i32::MAX)),
            (Schema::int64(), Value::Int64(i64::MIN)),
            (named(Schema::int32(), DATE), Value::Int32(19000)),
            (
                named(Schema::int64(), MICRO_TIMESTAMP),
                Value::Int64(1_700_000_000_123_456),
            ),
            (
                named(Schema::int64(), MICRO_TIMESTAMP),
                Value::Int64(i64::MAX),
            ),
            (named(Schema::int64(), MICRO_DURATION), Value::Int64(-5)),
            (
                named(Schema::string(), ZONED_TIMESTAMP),
                Value::String("2024-01-02T03:04:05Z".into()),
            ),
            (
                named(Schema::string(), ZONED_TIMESTAMP),
                Value::String("-infinity".into()),
            ),
            (
                named(Schema::string(), "io.debezium.data.Json"),
                Value::String("{\"a\": 1}".into()),
            ),
            (Schema::string(), Value::String("it's\ttab".into())),
            (Schema::boolean(), Value::Boolean(true)),
            (Schema::float64(), Value::Float64(-1.5)),
            (logical::decimal(2, Some(12)), Value::decimal(-123_456)),
            (logical::decimal(0, None), Value::decimal(i128::MIN)),
            (logical::decimal(40, None), Value::decimal(7)),
            // Wider than 128 bits, or a scale past 40: through `param`.
            (logical::decimal(2, None), Value::Bytes(vec![1; 20])),
            (logical::decimal(41, None), Value::decimal(7)),
        ];
        let mut direct_ones = 0;
        for dialect in [Dialect::Postgres, Dialect::MySql] {
            for (schema, value) in &cells {
                let Some(written) = direct(schema, value, dialect) else {
                    continue;
                };
                direct_ones += 1;
                let text = match written {
                    Direct::Text(t) => t.to_owned(),
                    Direct::Int(n) => n.to_string(),
                    Direct::Decimal(d) => d.as_str().to_owned(),
                };
                assert_eq!(
                    Param::Text(text),
                    param(schema, value, dialect).expect("param"),
                    "{schema:?} {value:?} {dialect:?}"
                );
            }
        }
        // Four plain integers, four texts and three decimals in each
        // dialect, but for the two zoned timestamps going into MySQL.
        assert_eq!(direct_ones, 8 + 6 + 6);
    }

    use std::sync::Arc;

    use super::*;
    use sluice_connector_api::logical;

    #[test]
    fn temporal_values_render_per_dialect() {
        let micro_ts = Schema::int64().named(MICRO_TIMESTAMP);
        assert_eq!(
            param(&micro_ts, &Value::Int64(1_500_000), Dialect::Postgres),
            Ok(Param::Text("1970-01-01 00:00:01.5".into()))
        );
        let zoned = Schema::string().named(ZONED_TIMESTAMP);
        let z = Value::String("2024-01-31T10:00:00.5Z".into());
        assert_eq!(
            param(&zoned, &z, Dialect::MySql),
            Ok(Param::Text("2024-01-31 10:00:00.5".into()))
        );
        let date = Schema::int32().named(DBZ_DATE);
        assert_eq!(
            param(&date, &Value::Int32(-1), Dialect::MySql),
            Ok(Param::Text("1969-12-31".into()))
        );
        let time = Schema::int64().named(MICRO_TIME);
        assert_eq!(
            param(&time, &Value::Int64(3_723_000_004), Dialect::Postgres),
            Ok(Param::Text("01:02:03.000004".into()))
        );
    }

    #[test]
    fn infinite_timestamps_stay_infinite_or_become_datetimes_bounds() {
        let micro_ts = Schema::int64().named(MICRO_TIMESTAMP);
        let zoned = Schema::string().named(ZONED_TIMESTAMP);
        assert_eq!(
            param(&micro_ts, &Value::Int64(i64::MAX), Dialect::Postgres),
            Ok(Param::Text("infinity".into()))
        );
        assert_eq!(
            param(&zoned, &Value::String("-infinity".into()), Dialect::MySql),
            Ok(Param::Text("1000-01-01 00:00:00".into()))
        );
    }

    #[test]
    fn a_zoned_timestamp_keeps_its_wall_clock_in_datetime() {
        let zoned = Schema::string().named(ZONED_TIMESTAMP);
        let paris = Value::String("2024-01-15T11:00:00.5+01:00".into());
        assert_eq!(
            param(&zoned, &paris, Dialect::MySql),
            Ok(Param::Text("2024-01-15 11:00:00.5".into()))
        );
        assert_eq!(
            param(&zoned, &paris, Dialect::Postgres),
            Ok(Param::Text("2024-01-15T11:00:00.5+01:00".into())),
            "timestamptz keeps the instant"
        );
    }

    #[test]
    fn arrays_bytes_and_booleans() {
        let arr = Schema::array(Schema::string().optional());
        let v = Value::Array(vec![Value::String("a \"b\"".into()), Value::Null]);
        assert_eq!(
            param(&arr, &v, Dialect::Postgres),
            Ok(Param::Text(r#"{"a \"b\"",NULL}"#.into()))
        );
        assert_eq!(
            param(
                &Schema::bytes(),
                &Value::Bytes(vec![0, 255]),
                Dialect::Postgres
            ),
            Ok(Param::Text("\\x00ff".into()))
        );
        assert_eq!(
            param(&Schema::boolean(), &Value::Boolean(true), Dialect::MySql),
            Ok(Param::Text("1".into()))
        );
        let decimal = Schema::bytes()
            .named(DECIMAL)
            .parameter(DECIMAL_SCALE, "2")
            .parameter(DECIMAL_PRECISION, "12");
        assert_eq!(
            column_type(&decimal, Dialect::Postgres, false),
            Ok("numeric(12,2)".into())
        );
        assert_eq!(
            column_type(&Schema::string(), Dialect::MySql, true),
            Ok("varchar(255)".into())
        );
        let _ = Arc::new(arr);
    }
}
