//! MySQL / MariaDB column types as Debezium maps them: the Connect schema
//! of each column and its values, read both from the snapshot's text
//! protocol and from binlog row images.

use std::sync::Arc;

use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value as MyValue;
use sluice_connector_api::calendar::{
    days_from_civil, iso_utc_digits, iso_utc_from_text, parse_decimal, rescale, MICROS_PER_DAY,
};
use sluice_connector_api::text::{utf8, Inline};
use sluice_connector_api::{logical, Schema, Text, Value};

use crate::catalog::ColumnDef;
use crate::config::{BigintUnsignedMode, BinaryMode, DecimalMode, MySqlConfig, TimePrecision};
use crate::row_images::Cell;

/// The modes that change how values are represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// `decimal.handling.mode`
    pub decimal: DecimalMode,
    /// `time.precision.mode`
    pub time: TimePrecision,
    /// `bigint.unsigned.handling.mode`
    pub bigint_unsigned: BigintUnsignedMode,
    /// `binary.handling.mode`
    pub binary: BinaryMode,
}

impl Mapping {
    /// The mapping a connector's settings ask for.
    pub fn of(config: &MySqlConfig) -> Self {
        Self {
            decimal: config.common.decimal_mode,
            time: config.time_precision,
            bigint_unsigned: config.bigint_unsigned,
            binary: config.common.binary_mode,
        }
    }
}

/// A column's type, reduced to what decides its schema and decoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// BOOLEAN (`tinyint(1)`) and BIT(1).
    Bool,
    /// An integer of `bits` (8, 16, 24, 32, 64).
    Int {
        /// Storage size in bits.
        bits: u32,
        /// UNSIGNED.
        unsigned: bool,
    },
    /// DECIMAL / NUMERIC.
    Decimal {
        /// Digits in all.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// FLOAT (4 bytes).
    Float,
    /// DOUBLE / REAL / FLOAT(M,D).
    Double,
    /// CHAR, VARCHAR, TEXT types; `latin1` when the bytes are ISO-8859-1.
    Text {
        /// The column's character set is single-byte latin1.
        latin1: bool,
    },
    /// BINARY, VARBINARY, BLOB types.
    Binary {
        /// BINARY(n)'s length: the binlog leaves out trailing zero bytes,
        /// which are put back (as Debezium does, DBZ-254).
        fixed: Option<u32>,
    },
    /// DATE.
    Date,
    /// TIME(fsp).
    Time,
    /// DATETIME(fsp).
    DateTime {
        /// Fractional-second digits.
        fsp: u32,
    },
    /// TIMESTAMP(fsp): a UTC instant.
    Timestamp {
        /// Fractional-second digits, written in full (Debezium 2.2+).
        fsp: u32,
    },
    /// YEAR.
    Year,
    /// JSON (MySQL binary JSON, MariaDB text).
    Json,
    /// ENUM with its values in order.
    Enum(Arc<[String]>),
    /// SET with its values in order.
    Set(Arc<[String]>),
    /// BIT(n > 1).
    Bits(u32),
    /// GEOMETRY and its subtypes but POINT: SRID + WKB.
    Geometry,
    /// POINT: x, y, SRID + WKB (Debezium's `io.debezium.data.geometry.Point`).
    Point,
    /// MariaDB's UUID, INET6 and INET4: text, as a client reads them; the
    /// binlog holds their bytes.
    Address(Address),
}

/// The number inside the first parentheses of a type, e.g. `decimal(10,2)` → 10.
fn type_args(column_type: &str) -> Vec<u32> {
    column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(args, _)| {
            args.split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The quoted values of an `enum('a','b')` or `set(...)` type.
pub fn quoted_values(column_type: &str) -> Vec<String> {
    let Some((_, rest)) = column_type.split_once('(') else {
        return Vec::new();
    };
    let mut values = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            if c == ')' {
                break;
            }
            continue;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(next) = chars.next() {
                        value.push(next);
                    }
                }
                c => value.push(c),
            }
        }
        values.push(value);
    }
    values
}

impl Kind {
    /// The kind of a column from its `information_schema` description.
    pub fn of(column: &ColumnDef) -> Self {
        let ty = column.column_type.to_ascii_lowercase();
        let unsigned = ty.contains("unsigned");
        let args = type_args(&ty);
        let latin1 = column.charset.as_deref() == Some("latin1");
        match column.data_type.to_ascii_lowercase().as_str() {
            // TINYINT(1) and its alias BOOLEAN are small integers, as in
            // Debezium; `converters` can make them booleans
            // (boolean_columns.rs).
            "tinyint" | "bool" | "boolean" => Self::Int { bits: 8, unsigned },
            "smallint" => Self::Int { bits: 16, unsigned },
            "mediumint" => Self::Int { bits: 24, unsigned },
            "int" | "integer" => Self::Int { bits: 32, unsigned },
            "bigint" => Self::Int { bits: 64, unsigned },
            "decimal" | "numeric" | "dec" | "fixed" => Self::Decimal {
                precision: args.first().copied().unwrap_or(10),
                scale: args.get(1).copied().unwrap_or(0),
            },
            "float" if args.len() < 2 => Self::Float,
            "float" | "double" | "real" | "double precision" => Self::Double,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                Self::Text { latin1 }
            }
            "binary" => Self::Binary {
                fixed: Some(args.first().copied().unwrap_or(1)),
            },
            "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Self::Binary { fixed: None }
            }
            "date" => Self::Date,
            "time" => Self::Time,
            "datetime" => Self::DateTime {
                fsp: args.first().copied().unwrap_or(0),
            },
            "timestamp" => Self::Timestamp {
                fsp: args.first().copied().unwrap_or(0),
            },
            "year" => Self::Year,
            "json" => Self::Json,
            "enum" => Self::Enum(quoted_values(&column.column_type).into()),
            "set" => Self::Set(quoted_values(&column.column_type).into()),
            "bit" if args.first().copied().unwrap_or(1) <= 1 => Self::Bool,
            "bit" => Self::Bits(args.first().copied().unwrap_or(1)),
            "point" => Self::Point,
            "uuid" => Self::Address(Address::Uuid),
            "inet6" => Self::Address(Address::Inet6),
            "inet4" => Self::Address(Address::Inet4),
            "geometry" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => Self::Geometry,
            _ => Self::Text { latin1 },
        }
    }

    /// The Connect schema of a non-null value of this kind.
    pub fn schema(&self, mapping: Mapping) -> Schema {
        match self {
            Self::Bool => Schema::boolean(),
            Self::Int { bits: 8, .. } => Schema::int16(),
            Self::Int { bits: 16, unsigned } if !unsigned => Schema::int16(),
            Self::Int { bits: 16 | 24, .. } => Schema::int32(),
            Self::Int { bits: 32, unsigned } if !unsigned => Schema::int32(),
            Self::Int { bits: 32, .. } => Schema::int64(),
            Self::Int { unsigned: true, .. }
                if mapping.bigint_unsigned == BigintUnsignedMode::Precise =>
            {
                logical::decimal(0, Some(20))
            }
            Self::Int { .. } => Schema::int64(),
            Self::Decimal { precision, scale } => match mapping.decimal {
                DecimalMode::Precise => logical::decimal(*scale, Some(*precision)),
                DecimalMode::Double => Schema::float64(),
                DecimalMode::String => Schema::string(),
            },
            Self::Float => Schema::float32(),
            Self::Double => Schema::float64(),
            Self::Text { .. } => Schema::string(),
            Self::Binary { .. } => mapping.binary.schema(),
            Self::Date => match mapping.time {
                TimePrecision::Connect => logical::date(),
                TimePrecision::Adaptive => Schema::int32().named(logical::DBZ_DATE).versioned(1),
            },
            Self::Time => match mapping.time {
                TimePrecision::Connect => logical::time_millis(),
                TimePrecision::Adaptive => Schema::int64().named(logical::MICRO_TIME).versioned(1),
            },
            Self::DateTime { fsp } => match mapping.time {
                TimePrecision::Connect => logical::timestamp_millis(),
                TimePrecision::Adaptive if *fsp <= 3 => {
                    Schema::int64().named(logical::DBZ_TIMESTAMP).versioned(1)
                }
                TimePrecision::Adaptive => logical::micro_timestamp(),
            },
            Self::Timestamp { .. } => logical::zoned_timestamp(),
            Self::Year => Schema::int32().named(logical::YEAR).versioned(1),
            Self::Json => logical::json(),
            Self::Enum(values) => Schema::string()
                .named(logical::ENUM)
                .versioned(1)
                .parameter("allowed", values.join(",")),
            Self::Set(values) => Schema::string()
                .named("io.debezium.data.EnumSet")
                .versioned(1)
                .parameter("allowed", values.join(",")),
            Self::Bits(n) => Schema::bytes()
                .named(logical::BITS)
                .versioned(1)
                .parameter("length", n.to_string()),
            Self::Geometry => logical::geometry("io.debezium.data.geometry.Geometry", "Geometry"),
            Self::Point => logical::geometry_point(),
            Self::Address(_) => Schema::string(),
        }
    }

    /// The value of this kind from the text protocol (the snapshot reads
    /// with `time_zone = '+00:00'`, so TIMESTAMP text is UTC). `None` when
    /// the text does not fit; zero dates give [`Read::Zero`].
    pub fn from_text(&self, raw: &[u8], mapping: Mapping) -> Read {
        let text = || utf8(raw).ok();
        let read = |v: Option<Value>| v.map_or(Read::Bad, Read::Value);
        match self {
            Self::Bool => match raw {
                [0] | b"0" => Read::Value(Value::Boolean(false)),
                [1] => Read::Value(Value::Boolean(true)),
                _ => read(
                    text()
                        .and_then(|t| t.parse::<i64>().ok())
                        .map(|v| Value::Boolean(v != 0)),
                ),
            },
            Self::Int { bits, unsigned } => {
                let Some(t) = text() else { return Read::Bad };
                if *unsigned {
                    read(
                        t.parse::<u64>()
                            .ok()
                            .map(|v| self.unsigned_value(v, mapping)),
                    )
                } else {
                    read(t.parse::<i64>().ok().map(|v| signed_value(*bits, v)))
                }
            }
            Self::Decimal { .. } => read(text().and_then(|t| self.decimal_value(t, mapping))),
            Self::Float => read(text().and_then(|t| t.parse().ok()).map(Value::Float32)),
            Self::Double => read(text().and_then(|t| t.parse().ok()).map(Value::Float64)),
            // The session's character set is UTF-8: the server converts.
            Self::Text { .. } => Read::Value(Value::String(decode_text(raw, false))),
            Self::Binary { fixed: Some(n) } if raw.len() < *n as usize => {
                let mut padded = raw.to_vec();
                padded.resize(*n as usize, 0);
                Read::Value(mapping.binary.value(&padded))
            }
            Self::Binary { .. } => Read::Value(mapping.binary.value(raw)),
            Self::Date => match text().and_then(parse_date) {
                Some(Some(days)) => Read::Value(date_value(days)),
                Some(None) => Read::Zero,
                None => Read::Bad,
            },
            Self::Time => read(
                text()
                    .and_then(parse_time)
                    .map(|us| time_value(us, mapping)),
            ),
            Self::DateTime { fsp } => match text().and_then(parse_datetime) {
                Some(Some(us)) => Read::Value(datetime_value(us, *fsp, mapping)),
                Some(None) => Read::Zero,
                None => Read::Bad,
            },
            Self::Timestamp { fsp } => {
                // The session is in UTC, and the server writes exactly the
                // column's fraction digits: moved, not parsed and printed.
                if let Some(iso) = iso_utc_from_text(raw, i32::try_from(*fsp).unwrap_or(-1)) {
                    return Read::Value(Value::String(iso.into()));
                }
                match text().and_then(parse_datetime) {
                    Some(Some(us)) => Read::Value(Value::String(iso_utc_digits(us, *fsp).into())),
                    Some(None) => Read::Zero,
                    None => Read::Bad,
                }
            }
            Self::Year => read(text().and_then(|t| t.parse().ok()).map(Value::Int32)),
            Self::Json => Read::Value(Value::String(decode_text(raw, false))),
            Self::Enum(_) | Self::Set(_) => Read::Value(Value::String(decode_text(raw, false))),
            Self::Bits(n) => Read::Value(bits_value(raw, *n)),
            Self::Geometry => read(geometry_value(raw)),
            Self::Point => read(point_value(raw)),
            Self::Address(_) => Read::Value(Value::String(decode_text(raw, false))),
        }
    }

    /// The value of this kind from a value of a binlog row image: text
    /// straight from the event's bytes, anything else as
    /// [`Kind::from_binlog`] reads mysql_common's value of it.
    pub fn from_cell(&self, cell: Cell<'_>, mapping: Mapping) -> Read {
        match (self, cell) {
            (Self::Text { latin1 }, Cell::Bytes(b)) => {
                Read::Value(Value::String(decode_text(b, *latin1)))
            }
            (_, Cell::Null) => Read::Null,
            (_, cell) => self.from_binlog(cell.into_binlog(), mapping),
        }
    }

    /// The value of this kind from a binlog row image, taken by value so
    /// that text keeps the bytes the image was read into rather than
    /// being copied out of them.
    pub fn from_binlog(&self, value: BinlogValue<'_>, mapping: Mapping) -> Read {
        let read = |v: Option<Value>| v.map_or(Read::Bad, Read::Value);
        let value = match value {
            BinlogValue::Value(v) => v,
            BinlogValue::Jsonb(j) => {
                return match serde_json::Value::try_from(j) {
                    Ok(json) => Read::Value(Value::String(json.to_string().into())),
                    Err(_) => Read::Bad,
                }
            }
            BinlogValue::JsonDiff(_) => return Read::PartialJson,
        };
        let value = match (self, value) {
            // Row images hold text in the column's own character set.
            (Self::Text { latin1 }, MyValue::Bytes(b)) => {
                return Read::Value(Value::String(owned_text(b, *latin1)))
            }
            (_, other) => other,
        };
        match (self, &value) {
            (_, MyValue::NULL) => Read::Null,
            (Self::Bool, MyValue::Int(v)) => Read::Value(Value::Boolean(*v != 0)),
            (Self::Bool, MyValue::UInt(v)) => Read::Value(Value::Boolean(*v != 0)),
            (Self::Bool, MyValue::Bytes(b)) => {
                Read::Value(Value::Boolean(b.iter().any(|byte| *byte != 0)))
            }
            (Self::Int { bits, unsigned }, MyValue::Int(_) | MyValue::UInt(_)) => {
                // The parser's signedness comes from optional row metadata
                // (absent when minimal, misaligned on some servers): take
                // the bits at the column's width and read them as the
                // model's type says.
                let raw = match &value {
                    MyValue::Int(v) => *v as u64,
                    MyValue::UInt(v) => *v,
                    _ => 0,
                };
                let masked = if *bits >= 64 {
                    raw
                } else {
                    raw & ((1u64 << bits) - 1)
                };
                if *unsigned {
                    Read::Value(self.unsigned_value(masked, mapping))
                } else {
                    let shift = 64 - bits;
                    Read::Value(signed_value(*bits, ((masked << shift) as i64) >> shift))
                }
            }
            (Self::Decimal { .. }, MyValue::Bytes(b)) => {
                read(utf8(b).ok().and_then(|t| self.decimal_value(t, mapping)))
            }
            (Self::Float, MyValue::Float(f)) => Read::Value(Value::Float32(*f)),
            (Self::Float, MyValue::Double(f)) => Read::Value(Value::Float32(*f as f32)),
            (Self::Double, MyValue::Double(f)) => Read::Value(Value::Float64(*f)),
            (Self::Double, MyValue::Float(f)) => Read::Value(Value::Float64(f64::from(*f))),
            (Self::Date, MyValue::Date(y, m, d, ..)) => {
                if *y == 0 || *m == 0 || *d == 0 {
                    Read::Zero
                } else {
                    let days = days_from_civil(i64::from(*y), i64::from(*m), i64::from(*d));
                    Read::Value(date_value(days))
                }
            }
            (Self::DateTime { fsp }, MyValue::Date(y, mo, d, h, mi, s, us)) => {
                if *y == 0 || *mo == 0 || *d == 0 {
                    Read::Zero
                } else {
                    let days = days_from_civil(i64::from(*y), i64::from(*mo), i64::from(*d));
                    let micros = days * MICROS_PER_DAY
                        + ((i64::from(*h) * 60 + i64::from(*mi)) * 60 + i64::from(*s)) * 1_000_000
                        + i64::from(*us);
                    Read::Value(datetime_value(micros, *fsp, mapping))
                }
            }
            (Self::Time, MyValue::Time(negative, days, h, m, s, us)) => {
                let micros = (((i64::from(*days) * 24 + i64::from(*h)) * 60 + i64::from(*m)) * 60
                    + i64::from(*s))
                    * 1_000_000
                    + i64::from(*us);
                Read::Value(time_value(
                    if *negative { -micros } else { micros },
                    mapping,
                ))
            }
            (Self::Timestamp { fsp }, MyValue::Bytes(b)) => {
                // "seconds[.micros]" since the epoch, from TIMESTAMP2.
                let text = String::from_utf8_lossy(b);
                let (secs, frac) = text.split_once('.').unwrap_or((&text, "0"));
                match (secs.parse::<i64>(), frac.parse::<i64>()) {
                    (Ok(0), Ok(0)) => Read::Zero,
                    (Ok(secs), Ok(frac)) => Read::Value(Value::String(
                        iso_utc_digits(secs * 1_000_000 + frac, *fsp).into(),
                    )),
                    _ => Read::Bad,
                }
            }
            (Self::Timestamp { fsp }, MyValue::Int(secs)) => {
                if *secs == 0 {
                    Read::Zero
                } else {
                    Read::Value(Value::String(iso_utc_digits(secs * 1_000_000, *fsp).into()))
                }
            }
            (Self::Year, MyValue::Bytes(b)) => {
                let year: i32 = String::from_utf8_lossy(b).parse().unwrap_or(0);
                // The binlog stores YEAR as years since 1900; 0 is year 0000.
                Read::Value(Value::Int32(if year == 1900 { 0 } else { year }))
            }
            (Self::Enum(values), MyValue::Int(index)) => {
                // 1-based; 0 is the empty string MySQL stores for bad input.
                let text = usize::try_from(*index)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| values.get(i))
                    .cloned()
                    .unwrap_or_default();
                Read::Value(Value::String(text.into()))
            }
            (Self::Set(values), MyValue::Bytes(bitmap)) => {
                let mut bits: u64 = 0;
                for (i, byte) in bitmap.iter().enumerate().take(8) {
                    bits |= u64::from(*byte) << (8 * i);
                }
                let members: Vec<&str> = values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1u64 << i) != 0)
                    .map(|(_, v)| v.as_str())
                    .collect();
                Read::Value(Value::String(members.join(",").into()))
            }
            (Self::Bits(n), MyValue::Bytes(b)) => Read::Value(bits_value(b, *n)),
            (Self::Address(address), MyValue::Bytes(b)) => {
                read(address.text(b).map(|s| Value::String(s.into())))
            }
            // Text, binary, JSON text (MariaDB), geometry: the raw bytes are
            // what the text protocol would give.
            (_, MyValue::Bytes(b)) => self.from_text(b, mapping),
            _ => Read::Bad,
        }
    }

    fn unsigned_value(&self, v: u64, mapping: Mapping) -> Value {
        match self {
            Self::Int { bits: 8, .. } => Value::Int16(v as i16),
            Self::Int { bits: 16 | 24, .. } => Value::Int32(v as i32),
            Self::Int { bits: 32, .. } => Value::Int64(v as i64),
            _ if mapping.bigint_unsigned == BigintUnsignedMode::Precise => {
                Value::decimal(i128::from(v))
            }
            _ => Value::Int64(v as i64),
        }
    }

    fn decimal_value(&self, text: &str, mapping: Mapping) -> Option<Value> {
        let Self::Decimal { scale, .. } = self else {
            return None;
        };
        match mapping.decimal {
            DecimalMode::Precise => {
                let (unscaled, at) = parse_decimal(text.trim())?;
                Some(Value::decimal(rescale(unscaled, at, *scale)?))
            }
            DecimalMode::Double => text.trim().parse().ok().map(Value::Float64),
            DecimalMode::String => Some(Value::String(text.trim().into())),
        }
    }
}

/// What reading one value gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// A value.
    Value(Value),
    /// SQL NULL.
    Null,
    /// A zero date (`0000-00-00`): null, or the epoch in a NOT NULL column.
    Zero,
    /// A partial JSON update (MySQL `binlog_row_value_options=PARTIAL_JSON`),
    /// which cannot be turned into the full document.
    PartialJson,
    /// Bytes that do not fit the column's type.
    Bad,
}

fn signed_value(bits: u32, v: i64) -> Value {
    match bits {
        8 | 16 => Value::Int16(v as i16),
        24 | 32 => Value::Int32(v as i32),
        _ => Value::Int64(v),
    }
}

/// [`decode_text`] of bytes the caller gives up: long UTF-8 text keeps
/// them rather than being copied (short text is held in place anyway). A
/// binlog text column's bytes were already copied once, out of the event
/// into the row image; copying them again into the value cost an
/// allocation, a copy and a free per text column per row.
fn owned_text(raw: Vec<u8>, latin1: bool) -> Text {
    if raw.len() <= Inline::MAX || (latin1 && !raw.is_ascii()) {
        return decode_text(&raw, latin1);
    }
    match String::from_utf8(raw) {
        Ok(text) => Text::Owned(text),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
    }
}

fn decode_text(raw: &[u8], latin1: bool) -> Text {
    // ASCII reads the same in Latin-1 as in UTF-8, and is copied whole;
    // only other Latin-1 text is widened byte by byte.
    if latin1 && !raw.is_ascii() {
        return raw.iter().map(|b| char::from(*b)).collect();
    }
    // The plain check first: the lossy reading's machinery costs more,
    // and is only needed for bytes that are not UTF-8.
    match utf8(raw) {
        Ok(text) => Text::from(text),
        Err(_) => String::from_utf8_lossy(raw).into_owned().into(),
    }
}

/// MariaDB's address-like types, stored as bytes and shown as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// UUID: 16 bytes in the text's order.
    Uuid,
    /// INET6: 16 bytes, network order.
    Inet6,
    /// INET4: 4 bytes, network order.
    Inet4,
}

impl Address {
    /// The text a client reads for a binlog value: the binlog leaves out
    /// trailing zero bytes, which are put back first.
    fn text(self, raw: &[u8]) -> Option<String> {
        let width = match self {
            Self::Uuid | Self::Inet6 => 16,
            Self::Inet4 => 4,
        };
        if raw.len() > width {
            return None;
        }
        let mut bytes = raw.to_vec();
        bytes.resize(width, 0);
        Some(match self {
            Self::Uuid => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
            Self::Inet6 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string(),
            Self::Inet4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string(),
        })
    }
}

/// BIT(n) as Debezium's Bits: little-endian bytes, `ceil(n/8)` long. The
/// server sends big-endian bytes.
fn bits_value(raw: &[u8], n: u32) -> Value {
    let len = n.div_ceil(8) as usize;
    let mut out: Vec<u8> = raw.iter().rev().copied().collect();
    out.resize(len, 0);
    Value::Bytes(out)
}

/// Debezium's Date and Connect's Date are both int32 days since the epoch.
fn date_value(days: i64) -> Value {
    Value::Int32(days as i32)
}

fn time_value(micros: i64, mapping: Mapping) -> Value {
    match mapping.time {
        TimePrecision::Connect => Value::Int32((micros / 1000) as i32),
        TimePrecision::Adaptive => Value::Int64(micros),
    }
}

fn datetime_value(micros: i64, fsp: u32, mapping: Mapping) -> Value {
    match mapping.time {
        TimePrecision::Adaptive if fsp > 3 => Value::Int64(micros),
        _ => Value::Int64(micros.div_euclid(1000)),
    }
}

/// Days since the epoch of `YYYY-MM-DD`; `Some(None)` for a zero date.
fn parse_date(text: &str) -> Option<Option<i64>> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.get(..2)?.parse().ok()?;
    if year == 0 || month == 0 || day == 0 {
        return Some(None);
    }
    Some(Some(days_from_civil(year, month, day)))
}

/// Microseconds of `[-]HHH:MM:SS[.ffffff]` (TIME may exceed a day or be negative).
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut parts = text.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds = parts.next()?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole: i64 = whole.parse().ok()?;
    let mut micros: i64 = 0;
    for (i, c) in fraction.chars().take(6).enumerate() {
        micros += i64::from(c.to_digit(10)?) * 10i64.pow(5 - i as u32);
    }
    let total = ((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros;
    Some(if negative { -total } else { total })
}

/// Microseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff]` read as
/// UTC; `Some(None)` for a zero date.
fn parse_datetime(text: &str) -> Option<Option<i64>> {
    canonical_datetime(text.as_bytes()).or_else(|| parse_datetime_loosely(text))
}

/// The number `bytes` spell in ASCII digits, if they all are.
fn ascii_number(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// The form MySQL's text protocol writes every DATETIME and TIMESTAMP in,
/// `YYYY-MM-DD HH:MM:SS` with up to six fraction digits, read in place;
/// `None` for anything else (read by [`parse_datetime_loosely`]). The
/// general reader split and trimmed its way through ~1,500 instructions
/// per value under callgrind, for each timestamp of each snapshot row.
fn canonical_datetime(b: &[u8]) -> Option<Option<i64>> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (
        ascii_number(&b[0..4])?,
        ascii_number(&b[5..7])?,
        ascii_number(&b[8..10])?,
    );
    let (hours, minutes, seconds) = (
        ascii_number(&b[11..13])?,
        ascii_number(&b[14..16])?,
        ascii_number(&b[17..19])?,
    );
    let micros = match &b[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=6).contains(&fraction.len()) => {
            ascii_number(fraction)? * 10i64.pow(6 - fraction.len() as u32)
        }
        _ => return None,
    };
    if year == 0 || month == 0 || day == 0 {
        return Some(None);
    }
    let in_day = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    Some(Some(
        days_from_civil(year, month, day) * MICROS_PER_DAY + in_day,
    ))
}

/// [`parse_datetime`] of any spacing and field widths MySQL accepts.
fn parse_datetime_loosely(text: &str) -> Option<Option<i64>> {
    let (date, time) = text
        .trim()
        .split_once(' ')
        .unwrap_or((text.trim(), "00:00:00"));
    match parse_date(date)? {
        None => Some(None),
        Some(days) => Some(Some(days * MICROS_PER_DAY + parse_time(time)?)),
    }
}

/// MySQL stores geometry as a 4-byte little-endian SRID (0: none) then WKB.
fn srid_and_wkb(raw: &[u8]) -> Option<(Value, &[u8])> {
    let (srid, wkb) = raw.split_first_chunk::<4>()?;
    let srid = match i32::from_le_bytes(*srid) {
        0 => Value::Null,
        srid => Value::Int32(srid),
    };
    Some((srid, wkb))
}

fn geometry_value(raw: &[u8]) -> Option<Value> {
    let (srid, wkb) = srid_and_wkb(raw)?;
    Some(Value::Struct(vec![Value::Bytes(wkb.to_vec()), srid]))
}

/// A 2D point's WKB is 21 bytes: byte order, type 1, x, y. Anything else in
/// a POINT column is unreadable, as it is to Debezium.
fn point_value(raw: &[u8]) -> Option<Value> {
    let (srid, wkb) = srid_and_wkb(raw)?;
    let [order, rest @ ..] = wkb else { return None };
    let (kind, rest) = rest.split_first_chunk::<4>()?;
    let (x, rest) = rest.split_first_chunk::<8>()?;
    let (y, rest) = rest.split_first_chunk::<8>()?;
    let little = *order != 0;
    let kind = if little {
        u32::from_le_bytes(*kind)
    } else {
        u32::from_be_bytes(*kind)
    };
    let float = |b: &[u8; 8]| {
        if little {
            f64::from_le_bytes(*b)
        } else {
            f64::from_be_bytes(*b)
        }
    };
    if kind != 1 || !rest.is_empty() {
        return None;
    }
    Some(Value::Struct(vec![
        Value::Float64(float(x)),
        Value::Float64(float(y)),
        Value::Bytes(wkb.to_vec()),
        srid,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_text_reads_as_each_byte_s_character_ascii_or_not() {
        // Every byte value, alone and inside ASCII text.
        for b in 0..=255u8 {
            let expected: String = [char::from(b)].into_iter().collect();
            assert_eq!(decode_text(&[b], true), expected, "byte {b:#x}");
            let raw = [b'a', b, b'z'];
            assert_eq!(
                decode_text(&raw, true),
                format!("a{expected}z"),
                "byte {b:#x}"
            );
        }
        assert_eq!(decode_text(b"note 123", true), "note 123");
        assert_eq!(decode_text(&[0x63, 0x61, 0x66, 0xe9], true), "caf\u{e9}");
        // UTF-8 columns are read as UTF-8, with replacement only for bytes
        // that are not.
        assert_eq!(decode_text("café".as_bytes(), false), "café");
        assert_eq!(decode_text(&[0x63, 0xe9], false), "c\u{fffd}");
    }

    #[test]
    fn datetimes_read_in_place_equal_the_general_reading() {
        let mut texts = vec![
            "0000-00-00 00:00:00".to_owned(),
            "2024-00-10 10:00:00".to_owned(),
            "1970-01-01 00:00:00".to_owned(),
            "9999-12-31 23:59:59.999999".to_owned(),
            "2024-02-29 12:34:56.5".to_owned(),
            "1000-01-01 00:00:00.000001".to_owned(),
        ];
        for i in 0..2_000i64 {
            let (y, mo, d) = (1900 + i % 200, 1 + i % 12, 1 + i % 28);
            let (h, mi, se) = (i % 24, (i * 7) % 60, (i * 13) % 60);
            let fraction = match i % 4 {
                0 => String::new(),
                1 => format!(".{}", i % 10),
                2 => format!(".{:03}", i % 1000),
                _ => format!(".{:06}", i * 37 % 1_000_000),
            };
            texts.push(format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02}{fraction}"
            ));
        }
        for text in &texts {
            let fast = canonical_datetime(text.as_bytes());
            assert!(fast.is_some(), "{text} is in the canonical form");
            assert_eq!(fast, parse_datetime_loosely(text), "{text}");
        }
        // Other forms are left to the general reading.
        for text in [
            "2024-01-31",
            " 2024-01-31 10:00:00",
            "2024-01-31 10:00:00.1234567",
            "2024-1-31 10:00:00",
            "2024-01-31T10:00:00",
            "2024-01-3x 10:00:00",
        ] {
            assert_eq!(canonical_datetime(text.as_bytes()), None, "{text}");
        }
        assert_eq!(
            parse_datetime("2024-01-31"),
            Some(Some(days_from_civil(2024, 1, 31) * MICROS_PER_DAY))
        );
    }

    fn mapping() -> Mapping {
        Mapping {
            decimal: DecimalMode::Precise,
            time: TimePrecision::Adaptive,
            bigint_unsigned: BigintUnsignedMode::Long,
            binary: BinaryMode::Bytes,
        }
    }

    fn column(data_type: &str, column_type: &str) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: true,
            default: None,
            charset: Some("utf8mb4".into()),
        }
    }

    #[test]
    fn kinds_follow_debezium() {
        assert_eq!(
            Kind::of(&column("tinyint", "tinyint(1)")),
            Kind::Int {
                bits: 8,
                unsigned: false
            }
        );
        assert_eq!(Kind::of(&column("bit", "bit(1)")), Kind::Bool);
        assert_eq!(Kind::of(&column("bit", "bit(10)")), Kind::Bits(10));
        assert_eq!(
            Kind::of(&column("int", "int(10) unsigned")),
            Kind::Int {
                bits: 32,
                unsigned: true
            }
        );
        assert_eq!(
            Kind::of(&column("decimal", "decimal(12,3)")),
            Kind::Decimal {
                precision: 12,
                scale: 3
            }
        );
        assert_eq!(Kind::of(&column("float", "float")), Kind::Float);
        assert_eq!(Kind::of(&column("float", "float(7,2)")), Kind::Double);
        assert_eq!(
            Kind::of(&column("enum", "enum('a','it''s','c')")),
            Kind::Enum(vec!["a".into(), "it's".into(), "c".into()].into())
        );
    }

    #[test]
    fn points_carry_their_coordinates_as_debeziums_point() {
        let m = mapping();
        assert_eq!(Kind::of(&column("point", "point")), Kind::Point);
        assert_eq!(
            Kind::of(&column("linestring", "linestring")),
            Kind::Geometry
        );
        // SRID 4326, then POINT(1.5 -2) in little-endian WKB.
        let mut raw = 4326i32.to_le_bytes().to_vec();
        let mut wkb = vec![1u8];
        wkb.extend(1u32.to_le_bytes());
        wkb.extend(1.5f64.to_le_bytes());
        wkb.extend((-2f64).to_le_bytes());
        raw.extend(&wkb);
        let expected = Value::Struct(vec![
            Value::Float64(1.5),
            Value::Float64(-2.0),
            Value::Bytes(wkb.clone()),
            Value::Int32(4326),
        ]);
        assert_eq!(Kind::Point.from_text(&raw, m), Read::Value(expected));
        // The same point in big-endian WKB, without SRID.
        let mut big = vec![0u8; 4];
        big.push(0);
        big.extend(1u32.to_be_bytes());
        big.extend(1.5f64.to_be_bytes());
        big.extend((-2f64).to_be_bytes());
        let Read::Value(Value::Struct(parts)) = Kind::Point.from_text(&big, m) else {
            panic!("a big-endian point is a point");
        };
        assert_eq!(parts[..2], [Value::Float64(1.5), Value::Float64(-2.0)]);
        assert_eq!(parts[3], Value::Null);
        // A line string where a point should be is unreadable.
        let mut line = vec![0u8; 4];
        line.push(1);
        line.extend(2u32.to_le_bytes());
        line.extend([0u8; 36]);
        assert_eq!(Kind::Point.from_text(&line, m), Read::Bad);
        let fields: Vec<String> = match &Kind::Point.schema(m).kind {
            sluice_connector_api::SchemaKind::Struct(fields) => {
                fields.iter().map(|f| f.name.to_string()).collect()
            }
            other => panic!("a point is a struct, not {other:?}"),
        };
        assert_eq!(fields, ["x", "y", "wkb", "srid"]);
    }

    #[test]
    fn mariadb_addresses_read_from_the_binlog_as_a_client_sees_them() {
        let m = mapping();
        let binlog = |kind: &Kind, bytes: &[u8]| {
            kind.from_binlog(BinlogValue::Value(MyValue::Bytes(bytes.to_vec())), m)
        };
        let text = |s: &str| Read::Value(Value::String(s.into()));
        let uuid = Kind::of(&column("uuid", "uuid"));
        // Bytes as MariaDB 10.11 writes them to the binlog: the trailing
        // zero bytes of 550e8400-...-446655440000 are left out.
        let mut bytes = vec![0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16];
        bytes.extend([0x44, 0x66, 0x55, 0x44]);
        assert_eq!(
            binlog(&uuid, &bytes),
            text("550e8400-e29b-41d4-a716-446655440000")
        );
        let inet6 = Kind::of(&column("inet6", "inet6"));
        let mut mapped = vec![0u8; 10];
        mapped.extend([0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(binlog(&inet6, &mapped), text("::ffff:10.0.0.1"));
        let mut documentation = vec![0x20, 0x01, 0x0d, 0xb8];
        documentation.extend([0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]);
        assert_eq!(
            binlog(&inet6, &documentation),
            text("2001:db8::ff00:42:8329")
        );
        let inet4 = Kind::of(&column("inet4", "inet4"));
        assert_eq!(binlog(&inet4, &[192, 168, 1, 20]), text("192.168.1.20"));
        assert_eq!(binlog(&inet4, &[]), text("0.0.0.0"));
        assert_eq!(binlog(&inet4, &[1, 2, 3, 4, 5]), Read::Bad);
        // The snapshot reads their text.
        assert_eq!(inet4.from_text(b"10.0.0.1", m), text("10.0.0.1"));
    }

    #[test]
    fn binary_n_gets_back_the_trailing_zeros_the_binlog_leaves_out() {
        let m = mapping();
        let kind = Kind::of(&column("binary", "binary(4)"));
        assert_eq!(kind, Kind::Binary { fixed: Some(4) });
        let bytes = |b: &[u8]| Read::Value(Value::Bytes(b.to_vec()));
        assert_eq!(kind.from_text(&[1, 0], m), bytes(&[1, 0, 0, 0]));
        assert_eq!(kind.from_text(&[1, 2, 3, 4], m), bytes(&[1, 2, 3, 4]));
        let varbinary = Kind::of(&column("varbinary", "varbinary(4)"));
        assert_eq!(varbinary.from_text(&[1, 0], m), bytes(&[1, 0]));
    }

    #[test]
    fn text_values_decode() {
        let m = mapping();
        let date = Kind::Date;
        assert_eq!(
            date.from_text(b"1970-01-02", m),
            Read::Value(Value::Int32(1))
        );
        assert_eq!(date.from_text(b"0000-00-00", m), Read::Zero);
        assert_eq!(
            Kind::Time.from_text(b"-838:59:59.000000", m),
            Read::Value(Value::Int64(-3_020_399_000_000))
        );
        assert_eq!(
            Kind::DateTime { fsp: 6 }.from_text(b"1970-01-01 00:00:01.5", m),
            Read::Value(Value::Int64(1_500_000))
        );
        assert_eq!(
            Kind::DateTime { fsp: 0 }.from_text(b"1970-01-01 00:00:01", m),
            Read::Value(Value::Int64(1000))
        );
        assert_eq!(
            Kind::Timestamp { fsp: 3 }.from_text(b"2024-01-31 10:00:00.5", m),
            Read::Value(Value::String("2024-01-31T10:00:00.500Z".into()))
        );
        assert_eq!(
            Kind::Int {
                bits: 64,
                unsigned: true
            }
            .from_text(b"18446744073709551615", m),
            Read::Value(Value::Int64(-1))
        );
        let precise = Mapping {
            bigint_unsigned: BigintUnsignedMode::Precise,
            ..m
        };
        assert_eq!(
            Kind::Int {
                bits: 64,
                unsigned: true
            }
            .from_text(b"18446744073709551615", precise),
            Read::Value(Value::decimal(18_446_744_073_709_551_615))
        );
        assert_eq!(
            Kind::Int {
                bits: 16,
                unsigned: true
            }
            .from_text(b"65535", m),
            Read::Value(Value::Int32(65535))
        );
        assert_eq!(
            Kind::Int {
                bits: 8,
                unsigned: true
            }
            .from_text(b"255", m),
            Read::Value(Value::Int16(255))
        );
        assert_eq!(
            Kind::Decimal {
                precision: 5,
                scale: 2
            }
            .from_text(b"-1.5", m),
            Read::Value(Value::decimal(-150))
        );
        assert_eq!(
            Kind::Bits(10).from_text(&[0x02, 0x01], m),
            Read::Value(Value::Bytes(vec![0x01, 0x02]))
        );
        assert_eq!(
            Kind::Text { latin1: true }
                .from_binlog(BinlogValue::Value(MyValue::Bytes(vec![0xe9])), m),
            Read::Value(Value::String("é".into()))
        );
    }

    #[test]
    fn binlog_text_reads_as_before_whether_held_in_place_or_moved() {
        let m = mapping();
        let long = "a note past what is held in place: łódź".as_bytes();
        let cases = [
            b"note 7".to_vec(),
            long.to_vec(),
            b"caf\xe9".to_vec(),
            [&b"x".repeat(40)[..], b"\xe9"].concat(),
            [long, b"\xff"].concat(),
        ];
        for latin1 in [false, true] {
            for raw in &cases {
                let read = Kind::Text { latin1 }.from_binlog(v(MyValue::Bytes(raw.clone())), m);
                // What the binlog reader gave before it took the bytes.
                let copied = decode_text(raw, latin1);
                assert_eq!(
                    read,
                    Read::Value(Value::String(copied)),
                    "{raw:?}, latin1 {latin1}"
                );
            }
        }
        let Read::Value(Value::String(moved)) =
            Kind::Text { latin1: false }.from_binlog(v(MyValue::Bytes(long.to_vec())), m)
        else {
            panic!("text reads as text");
        };
        assert!(matches!(moved, Text::Owned(_)), "long text is owned");
        assert_eq!(moved.as_bytes(), long);
    }

    fn v(value: MyValue) -> BinlogValue<'static> {
        BinlogValue::Value(value)
    }

    #[test]
    fn binlog_values_decode() {
        let m = mapping();
        // A signed read of an unsigned column (minimal row metadata).
        assert_eq!(
            Kind::Int {
                bits: 8,
                unsigned: true
            }
            .from_binlog(v(MyValue::Int(-1)), m),
            Read::Value(Value::Int16(255))
        );
        assert_eq!(
            Kind::Int {
                bits: 32,
                unsigned: true
            }
            .from_binlog(v(MyValue::Int(-1)), m),
            Read::Value(Value::Int64(4_294_967_295))
        );
        assert_eq!(
            Kind::Enum(vec!["x".into(), "y".into()].into()).from_binlog(v(MyValue::Int(2)), m),
            Read::Value(Value::String("y".into()))
        );
        assert_eq!(
            Kind::Set(vec!["a".into(), "b".into(), "c".into()].into())
                .from_binlog(v(MyValue::Bytes(vec![0b101])), m),
            Read::Value(Value::String("a,c".into()))
        );
        assert_eq!(
            Kind::Timestamp { fsp: 6 }.from_binlog(v(MyValue::Bytes(b"1.250000".to_vec())), m),
            Read::Value(Value::String("1970-01-01T00:00:01.250000Z".into()))
        );
        assert_eq!(
            Kind::Time.from_binlog(v(MyValue::Time(true, 1, 2, 0, 0, 5)), m),
            Read::Value(Value::Int64(-(26 * 3600 * 1_000_000 + 5)))
        );
        assert_eq!(
            Kind::DateTime { fsp: 0 }.from_binlog(v(MyValue::Date(0, 0, 0, 0, 0, 0, 0)), m),
            Read::Zero
        );
        assert_eq!(
            Kind::Year.from_binlog(v(MyValue::Bytes(b"2024".to_vec())), m),
            Read::Value(Value::Int32(2024))
        );
    }
}
