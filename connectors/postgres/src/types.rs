//! PostgreSQL column types as Debezium maps them: the Connect schema of a
//! column, and its value from PostgreSQL's text format (what pgoutput and
//! the snapshot queries both deliver, with the session pinned to UTC, ISO
//! dates and ISO 8601 intervals).

use std::sync::Arc;

use sluice_connector_api::calendar::{
    clock, days_from_civil, iso_utc_digits, iso_utc_from_text, parse_decimal, rescale,
    MICROS_PER_DAY,
};
use sluice_connector_api::{logical, Schema, SchemaKind, Value};

use crate::config::{BinaryMode, DecimalMode, TimePrecision};

/// What a column's type is, resolved through domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// A built-in or extension base type, by `typname`.
    Base {
        /// e.g. `int4`, `numeric`, `timestamptz`.
        name: String,
        /// The type modifier (precision, length); -1 when none.
        modifier: i32,
        /// `name` as the value reader knows it, resolved once: see
        /// [`BaseKind`]. Build with [`PgType::base`].
        kind: BaseKind,
    },
    /// An enum with its labels in order.
    Enum(Vec<String>),
    /// An array of an element type.
    Array(Box<PgType>),
}

/// The base types whose text the value reader turns into something other
/// than a string, resolved from the type's name once, when the catalog is
/// read, instead of matching the name as text for every value (about 60
/// instructions a row of `scripts/bench-postgres`'s five-column snapshot
/// table under callgrind: less than hoped, the compiler's string match
/// being a length switch first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseKind {
    /// `int2`.
    Int2,
    /// `int4`.
    Int4,
    /// `int8` and `oid`.
    Int8,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `bool`.
    Bool,
    /// `numeric`.
    Numeric,
    /// `money`.
    Money,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`.
    Timestamptz,
    /// `timetz`.
    Timetz,
    /// `interval`.
    Interval,
    /// `bit`.
    Bit,
    /// `varbit`.
    Varbit,
    /// `hstore`.
    Hstore,
    /// `point`.
    Point,
    /// PostGIS `geometry` and `geography`.
    Geometry,
    /// pgvector's `vector`.
    Vector,
    /// pgvector's `halfvec`.
    Halfvec,
    /// pgvector's `sparsevec`.
    Sparsevec,
    /// Any other type: its text form, as Debezium's string fallback.
    Text,
}

impl BaseKind {
    /// The kind of the base type named `name`.
    pub fn of(name: &str) -> Self {
        match name {
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" | "oid" => Self::Int8,
            "float4" => Self::Float4,
            "float8" => Self::Float8,
            "bool" => Self::Bool,
            "numeric" => Self::Numeric,
            "money" => Self::Money,
            "bytea" => Self::Bytea,
            "date" => Self::Date,
            "time" => Self::Time,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::Timestamptz,
            "timetz" => Self::Timetz,
            "interval" => Self::Interval,
            "bit" => Self::Bit,
            "varbit" => Self::Varbit,
            "hstore" => Self::Hstore,
            "point" => Self::Point,
            "geometry" | "geography" => Self::Geometry,
            "vector" => Self::Vector,
            "halfvec" => Self::Halfvec,
            "sparsevec" => Self::Sparsevec,
            _ => Self::Text,
        }
    }
}

/// The emitting settings that change the mapping.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    /// `decimal.handling.mode`
    pub decimal: DecimalMode,
    /// `time.precision.mode`
    pub time: TimePrecision,
    /// `binary.handling.mode` (bytea)
    pub binary: BinaryMode,
    /// `interval.handling.mode=string`: intervals as ISO 8601 text
    /// (`io.debezium.time.Interval`) instead of microseconds.
    pub interval_text: bool,
    /// `hstore.handling.mode=map`: hstore as a map instead of JSON text.
    pub hstore_map: bool,
    /// `money.fraction.digits`: the scale of money values.
    pub money_digits: u32,
}

impl Mapping {
    /// The mapping `config` asks for.
    pub fn of(config: &crate::config::PostgresConfig) -> Self {
        Self {
            decimal: config.common.decimal_mode,
            time: config.time_precision,
            binary: config.common.binary_mode,
            interval_text: config.interval_text,
            hstore_map: config.hstore_map,
            money_digits: config.money_digits,
        }
    }
}

/// Debezium's average month, for intervals: 365.25 / 12 days.
const DAYS_PER_MONTH_AVG: f64 = 30.4375;

/// Fractional-second precision of a time/timestamp column (default 6).
fn time_precision(modifier: i32) -> i32 {
    if modifier < 0 {
        6
    } else {
        modifier
    }
}

/// numeric's (precision, scale) from its modifier, if declared.
fn numeric_precision(modifier: i32) -> Option<(u32, u32)> {
    if modifier < 4 {
        return None;
    }
    let m = (modifier - 4) as u32;
    Some(((m >> 16) & 0xffff, m & 0xffff))
}

/// Debezium's VariableScaleDecimal: numeric without a declared scale.
fn variable_scale_decimal() -> Schema {
    Schema::structure(
        logical::VARIABLE_SCALE_DECIMAL,
        vec![
            sluice_connector_api::Field::new("scale", Schema::int32()),
            sluice_connector_api::Field::new("value", Schema::bytes()),
        ],
    )
    .versioned(1)
    .documented("Variable scaled decimal")
}

impl PgType {
    /// The base type named `name` with `modifier` (-1 when none).
    pub fn base(name: impl Into<String>, modifier: i32) -> Self {
        let name = name.into();
        let kind = BaseKind::of(&name);
        Self::Base {
            name,
            modifier,
            kind,
        }
    }

    /// The type as `column.propagate.source.type` reports it: upper-case
    /// name, declared length (or precision) and scale.
    pub fn source_type(&self) -> (String, Option<u32>, Option<u32>) {
        match self {
            Self::Enum(_) => ("ENUM".to_owned(), None, None),
            Self::Array(element) => {
                let (name, _, _) = element.source_type();
                (format!("_{name}"), None, None)
            }
            Self::Base { name, modifier, .. } => {
                let declared = |m: i32| u32::try_from(m).ok();
                let (length, scale) = match name.as_str() {
                    "varchar" | "bpchar" => (declared(modifier - 4), None),
                    "numeric" => match numeric_precision(*modifier) {
                        Some((precision, scale)) => (Some(precision), Some(scale)),
                        None => (None, None),
                    },
                    "bit" | "varbit" => (declared(*modifier), None),
                    _ => (None, None),
                };
                (name.to_uppercase(), length, scale)
            }
        }
    }

    /// The column's schema (required; the caller makes it optional).
    pub fn schema(&self, mapping: Mapping) -> Schema {
        match self {
            Self::Enum(labels) => Schema::string()
                .named(logical::ENUM)
                .versioned(1)
                .parameter("allowed", labels.join(",")),
            Self::Array(element) => Schema::new(SchemaKind::Array(Arc::new(
                element.schema(mapping).optional(),
            ))),
            Self::Base { name, modifier, .. } => base_schema(name, *modifier, mapping),
        }
    }

    /// The value of `text` (PostgreSQL's text output) under this type;
    /// `None` when the text is not what the type produces.
    pub fn value(&self, text: &str, mapping: Mapping) -> Option<Value> {
        match self {
            Self::Enum(_) => Some(Value::String(text.into())),
            Self::Array(element) => {
                let items = parse_array(text)?;
                Some(Value::Array(
                    items
                        .into_iter()
                        .map(|item| match item {
                            None => Some(Value::Null),
                            Some(t) => element.value(&t, mapping),
                        })
                        .collect::<Option<Vec<_>>>()?,
                ))
            }
            Self::Base { modifier, kind, .. } => base_value(*kind, *modifier, text, mapping),
        }
    }
}

fn base_schema(name: &str, modifier: i32, mapping: Mapping) -> Schema {
    match name {
        "int2" => Schema::int16(),
        "int4" => Schema::int32(),
        "int8" | "oid" => Schema::int64(),
        "float4" => Schema::float32(),
        "float8" => Schema::float64(),
        "bool" => Schema::boolean(),
        "numeric" | "money" => match mapping.decimal {
            DecimalMode::Double => Schema::float64(),
            DecimalMode::String => Schema::string(),
            DecimalMode::Precise => match (name, numeric_precision(modifier)) {
                ("money", _) => logical::decimal(mapping.money_digits, None),
                (_, Some((precision, scale))) => logical::decimal(scale, Some(precision)),
                (_, None) => variable_scale_decimal(),
            },
        },
        "bytea" => mapping.binary.schema(),
        "date" => match mapping.time {
            TimePrecision::Connect => logical::date(),
            _ => Schema::int32().named(logical::DBZ_DATE).versioned(1),
        },
        "time" => match mapping.time {
            TimePrecision::Connect => logical::time_millis(),
            TimePrecision::Adaptive if time_precision(modifier) <= 3 => {
                Schema::int32().named("io.debezium.time.Time").versioned(1)
            }
            _ => Schema::int64().named(logical::MICRO_TIME).versioned(1),
        },
        "timestamp" => match mapping.time {
            TimePrecision::Connect => logical::timestamp_millis(),
            _ if time_precision(modifier) <= 3 => {
                Schema::int64().named(logical::DBZ_TIMESTAMP).versioned(1)
            }
            _ => logical::micro_timestamp(),
        },
        "timestamptz" => logical::zoned_timestamp(),
        "timetz" => Schema::string().named(logical::ZONED_TIME).versioned(1),
        "interval" if mapping.interval_text => {
            Schema::string().named(logical::INTERVAL).versioned(1)
        }
        "interval" => Schema::int64().named(logical::MICRO_DURATION).versioned(1),
        "uuid" => logical::uuid(),
        "hstore" if mapping.hstore_map => {
            Schema::map(Schema::string(), Schema::string().optional())
        }
        "json" | "jsonb" | "hstore" => logical::json(),
        "point" => logical::geometry_point(),
        "geometry" => logical::geometry("io.debezium.data.geometry.Geometry", "Geometry"),
        "geography" => logical::geometry("io.debezium.data.geometry.Geography", "Geography"),
        "xml" => Schema::string().named(logical::XML).versioned(1),
        // Debezium 3's names for text search vectors and pgvector's types.
        "tsvector" => Schema::string()
            .named("io.debezium.data.Tsvector")
            .versioned(1),
        "vector" => Schema::array(Schema::float64())
            .named("io.debezium.data.DoubleVector")
            .versioned(1),
        "halfvec" => Schema::array(Schema::float32())
            .named("io.debezium.data.FloatVector")
            .versioned(1),
        "sparsevec" => Schema::structure(
            "io.debezium.data.SparseVector",
            vec![
                sluice_connector_api::Field::new("dimensions", Schema::int16()),
                sluice_connector_api::Field::new(
                    "vector",
                    Schema::map(Schema::int16(), Schema::float64()),
                ),
            ],
        )
        .versioned(1),
        "ltree" => Schema::string()
            .named("io.debezium.data.Ltree")
            .versioned(1),
        "bit" if modifier == 1 => Schema::boolean(),
        // A varbit without a declared length says 2^31 - 1, as Debezium.
        "bit" | "varbit" => Schema::bytes().named(logical::BITS).versioned(1).parameter(
            "length",
            if modifier < 0 { i32::MAX } else { modifier }.to_string(),
        ),
        // Text, character types, network addresses, ranges, geometric and
        // unknown types: their text form, as Debezium's string fallback.
        _ => Schema::string(),
    }
}

fn base_value(kind: BaseKind, modifier: i32, text: &str, mapping: Mapping) -> Option<Value> {
    use BaseKind as K;
    Some(match kind {
        K::Int2 => Value::Int16(text.parse().ok()?),
        K::Int4 => Value::Int32(text.parse().ok()?),
        K::Int8 => Value::Int64(text.parse().ok()?),
        K::Float4 => Value::Float32(parse_float(text)? as f32),
        K::Float8 => Value::Float64(parse_float(text)?),
        K::Bool => Value::Boolean(text == "t" || text == "true"),
        K::Numeric | K::Money => {
            // Copied only to drop a money value's currency sign and
            // separators: a numeric's text is read where it lies.
            let digits: std::borrow::Cow<'_, str> = if kind == K::Money {
                text.chars()
                    .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                    .collect::<String>()
                    .into()
            } else {
                text.into()
            };
            match mapping.decimal {
                DecimalMode::Double => Value::Float64(parse_float(&digits)?),
                DecimalMode::String => Value::String(digits.as_ref().into()),
                DecimalMode::Precise => {
                    let (unscaled, scale) = parse_decimal(&digits)?;
                    match (kind, numeric_precision(modifier)) {
                        (K::Money, _) => {
                            Value::decimal(rescale(unscaled, scale, mapping.money_digits)?)
                        }
                        (_, Some((_, target))) => Value::decimal(rescale(unscaled, scale, target)?),
                        (_, None) => Value::Struct(vec![
                            Value::Int32(scale as i32),
                            Value::decimal(unscaled),
                        ]),
                    }
                }
            }
        }
        K::Bytea => mapping.binary.value(&parse_bytea(text)?),
        K::Date => {
            let days = parse_date(text)?;
            Value::Int32(days as i32)
        }
        K::Time => {
            let micros = parse_time(text)?;
            match mapping.time {
                TimePrecision::Connect => Value::Int32((micros / 1000) as i32),
                TimePrecision::Adaptive if time_precision(modifier) <= 3 => {
                    Value::Int32((micros / 1000) as i32)
                }
                _ => Value::Int64(micros),
            }
        }
        // PostgreSQL's infinite timestamps, as Debezium writes them: the
        // largest and smallest int64, and the words for a zoned one.
        K::Timestamp if text == "infinity" => Value::Int64(i64::MAX),
        K::Timestamp if text == "-infinity" => Value::Int64(i64::MIN),
        K::Timestamptz if text == "infinity" || text == "-infinity" => Value::String(text.into()),
        K::Timestamp => {
            let micros = parse_timestamp(text)?;
            match mapping.time {
                TimePrecision::Connect => Value::Int64(micros.div_euclid(1000)),
                _ if time_precision(modifier) <= 3 => Value::Int64(micros.div_euclid(1000)),
                _ => Value::Int64(micros),
            }
        }
        K::Timestamptz => Value::String(zoned_timestamp(text, time_precision(modifier))?.into()),
        K::Timetz => Value::String(zoned_time(text)?.into()),
        K::Interval if mapping.interval_text => Value::String(interval_parts(text)?.iso().into()),
        K::Interval => Value::Int64(interval_parts(text)?.micros()),
        K::Bit if modifier == 1 => Value::Boolean(text == "1"),
        K::Bit | K::Varbit => Value::Bytes(bits_to_bytes(text)?),
        K::Hstore if mapping.hstore_map => Value::Map(
            hstore_entries(text)?
                .into_iter()
                .map(|(k, v)| {
                    (
                        Value::String(k.into()),
                        v.map_or(Value::Null, |s| Value::String(s.into())),
                    )
                })
                .collect(),
        ),
        K::Hstore => Value::String(hstore_to_json(text)?.into()),
        K::Point => point_value(text)?,
        K::Geometry => postgis_value(text)?,
        K::Vector => Value::Array(
            dense_vector(text)?
                .map(|v| v.map(Value::Float64))
                .collect::<Option<_>>()?,
        ),
        K::Halfvec => Value::Array(
            dense_vector(text)?
                .map(|v| v.map(|v| Value::Float32(v as f32)))
                .collect::<Option<_>>()?,
        ),
        K::Sparsevec => sparse_vector(text)?,
        K::Text => Value::String(text.into()),
    })
}

/// pgvector's `[1,2.5,3]` text: its elements.
fn dense_vector(text: &str) -> Option<impl Iterator<Item = Option<f64>> + '_> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| item.trim().parse().ok()),
    )
}

/// pgvector's `{1:1.5,3:2}/5` text as Debezium's SparseVector: the
/// dimensions, and the non-zero elements by (1-based) index.
fn sparse_vector(text: &str) -> Option<Value> {
    let (elements, dimensions) = text.trim().rsplit_once('/')?;
    let inner = elements.trim().strip_prefix('{')?.strip_suffix('}')?;
    let entries = inner
        .split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (index, value) = entry.split_once(':')?;
            Some((
                Value::Int16(index.trim().parse().ok()?),
                Value::Float64(value.trim().parse().ok()?),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Value::Struct(vec![
        Value::Int16(dimensions.trim().parse().ok()?),
        Value::Map(entries),
    ]))
}

/// A PostGIS value's text form (hex EWKB) as `{wkb, srid}`, as
/// Debezium's `PostgisGeometry.fromHexEwkb` reads it: the bytes kept
/// whole, the SRID read from the header when its flag is set.
fn postgis_value(text: &str) -> Option<Value> {
    let ewkb: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    const SRID_FLAG: u32 = 0x2000_0000;
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = ewkb.get(at..at + 4)?.try_into().ok()?;
        Some(match ewkb.first()? {
            0 => u32::from_be_bytes(bytes),
            _ => u32::from_le_bytes(bytes),
        })
    };
    let kind = word(1)?;
    let srid = if kind & SRID_FLAG != 0 {
        Value::Int32(word(5)? as i32)
    } else {
        Value::Null
    };
    Some(Value::Struct(vec![Value::Bytes(ewkb), srid]))
}

/// `(x,y)` as a Point with its little-endian WKB.
fn point_value(text: &str) -> Option<Value> {
    let (x, y) = text.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
    let (x, y): (f64, f64) = (x.trim().parse().ok()?, y.trim().parse().ok()?);
    let mut wkb = vec![1, 1, 0, 0, 0];
    wkb.extend_from_slice(&x.to_le_bytes());
    wkb.extend_from_slice(&y.to_le_bytes());
    Some(Value::Struct(vec![
        Value::Float64(x),
        Value::Float64(y),
        Value::Bytes(wkb),
        Value::Null,
    ]))
}

/// hstore text (`"a"=>"1", "b"=>NULL`) as a JSON object, Debezium's
/// `hstore.handling.mode=json`.
/// An hstore's text (`"a"=>"1", "b"=>NULL`) as its pairs.
fn hstore_entries(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut entries = Vec::new();
    let mut chars = text.chars().peekable();
    let quoted = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<String> {
        if chars.next()? != '"' {
            return None;
        }
        let mut out = String::new();
        loop {
            match chars.next()? {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
    };
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key = quoted(&mut chars)?;
        if chars.next()? != '=' || chars.next()? != '>' {
            return None;
        }
        let value = if chars.peek() == Some(&'N') {
            for expected in "NULL".chars() {
                if chars.next()? != expected {
                    return None;
                }
            }
            None
        } else {
            Some(quoted(&mut chars)?)
        };
        entries.push((key, value));
    }
    Some(entries)
}

/// An hstore as Debezium's default JSON text.
fn hstore_to_json(text: &str) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = hstore_entries(text)?
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.map_or(serde_json::Value::Null, serde_json::Value::String),
            )
        })
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Days since the epoch of `YYYY-MM-DD[ BC]`.
fn parse_date(text: &str) -> Option<i64> {
    let (date, bc) = match text.strip_suffix(" BC") {
        Some(d) => (d, true),
        None => (text, false),
    };
    days_of(date, bc)
}

/// Days since the epoch of `YYYY-MM-DD`, a year before Christ with `bc`.
fn days_of(date: &str, bc: bool) -> Option<i64> {
    let (mut year, month, day) = date_fields(date)?;
    if bc {
        year = 1 - year;
    }
    Some(days_from_civil(year, month, day))
}

/// Year, month and day of `YYYY-MM-DD`. A four-digit year — nearly every
/// date — is read in place, digit by digit; anything else (a year of five
/// digits) goes the general way. Snapshots parse one per date column per
/// row, so the fast way matters.
fn date_fields(date: &str) -> Option<(i64, i64, i64)> {
    let b = date.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(year), Some(month), Some(day)) =
            (digits(b, 0, 4), digits(b, 5, 2), digits(b, 8, 2))
        {
            return Some((year, month, day));
        }
    }
    let mut parts = date.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    Some((year, month, day))
}

/// The number the `n` ASCII digits of `bytes` from `at` write; `None`
/// unless all are digits.
fn digits(bytes: &[u8], at: usize, n: usize) -> Option<i64> {
    bytes.get(at..at + n)?.iter().try_fold(0i64, |value, b| {
        b.is_ascii_digit().then(|| value * 10 + i64::from(b - b'0'))
    })
}

/// Microseconds since midnight of `HH:MM:SS[.ffffff]`: read in place when
/// it has that shape, the general way otherwise.
fn parse_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() >= 8 && b[2] == b':' && b[5] == b':' && (b.len() == 8 || b[8] == b'.') {
        if let (Some(hours), Some(minutes), Some(whole)) =
            (digits(b, 0, 2), digits(b, 3, 2), digits(b, 6, 2))
        {
            let fraction = text.get(9..).unwrap_or("");
            return Some(((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros_of(fraction)?);
        }
    }
    let mut parts = text.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds = parts.next()?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole: i64 = whole.parse().ok()?;
    Some(((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros_of(fraction)?)
}

/// Microseconds of a second's fraction as written after the point (its
/// first six digits; none is zero).
fn micros_of(fraction: &str) -> Option<i64> {
    let mut micros: i64 = 0;
    for (i, c) in fraction.bytes().take(6).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        micros += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
    }
    Some(micros)
}

/// Splits a time's zone suffix (`+05`, `-03:30`, `+00`) off; offset in seconds.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    let at = text.rfind(['+', '-'])?;
    let (time, zone) = text.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let mut fields = zone[1..].split(':');
    let hours: i64 = fields.next()?.parse().ok()?;
    let minutes: i64 = fields.next().map_or(Some(0), |m| m.parse().ok())?;
    let seconds: i64 = fields.next().map_or(Some(0), |s| s.parse().ok())?;
    Some((time, sign * (hours * 3600 + minutes * 60 + seconds)))
}

/// Microseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff][ BC]`.
fn parse_timestamp(text: &str) -> Option<i64> {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let (date, time) = text.split_once(' ')?;
    // PostgreSQL's last years (to 294276) are past an i64 of microseconds
    // since 1970: refused, not wrapped.
    days_of(date, bc)?
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(parse_time(time)?)
}

/// Debezium's ZonedTimestamp: ISO 8601 in UTC with the column's
/// fractional digits, e.g. `2024-01-31T10:00:00.500000Z`.
fn zoned_timestamp(text: &str, digits: i32) -> Option<String> {
    if let Some(iso) = zoned_timestamp_utc(text, digits) {
        return Some(iso);
    }
    let (local, offset) = split_zone(text)?;
    let utc = parse_timestamp(local)? - offset * 1_000_000;
    Some(iso_utc_digits(utc, u32::try_from(digits).ok()?))
}

/// [`zoned_timestamp`] of the text the connector's UTC sessions send for
/// years 1 to 9999, `YYYY-MM-DD HH:MM:SS[.f]+00`, by moving its characters
/// ([`iso_utc_from_text`]); `None` for anything else (another offset, BC,
/// a five-digit year), which the general path takes.
fn zoned_timestamp_utc(text: &str, digits: i32) -> Option<String> {
    iso_utc_from_text(text.as_bytes().strip_suffix(b"+00")?, digits)
}

/// Debezium's ZonedTime: `HH:MM:SS[.f]Z` in UTC.
fn zoned_time(text: &str) -> Option<String> {
    let (local, offset) = split_zone(text)?;
    let utc = (parse_time(local)? - offset * 1_000_000).rem_euclid(MICROS_PER_DAY);
    Some(format!("{}Z", clock(utc)))
}

/// Microseconds of an ISO 8601 interval (`P1Y2M3DT4H5M6.5S`), months as
/// Debezium's average month.
/// An interval's fields as PostgreSQL's ISO 8601 output gives them
/// (`P1Y2M3DT4H5M6.78S`, each field signed on its own).
#[derive(Debug, Default, PartialEq)]
struct IntervalParts {
    years: i64,
    months: i64,
    days: i64,
    hours: i64,
    minutes: i64,
    /// Seconds as written, fraction included.
    seconds: String,
}

impl IntervalParts {
    /// Debezium's MicroDuration: months of 30.4375 days.
    fn micros(&self) -> i64 {
        let days = (self.years * 12 + self.months) as f64 * DAYS_PER_MONTH_AVG + self.days as f64;
        let seconds: f64 = self.seconds.parse().unwrap_or(0.0);
        let micros = (self.hours * 3600 + self.minutes * 60) as f64 * 1e6 + seconds * 1e6;
        (days * MICROS_PER_DAY as f64 + micros).round() as i64
    }

    /// Debezium's `io.debezium.time.Interval` text: every field, seconds
    /// without trailing zeros (`P1Y2M3DT4H5M6.78S`).
    fn iso(&self) -> String {
        let mut seconds = if self.seconds.is_empty() {
            "0"
        } else {
            &self.seconds
        }
        .to_owned();
        if seconds.contains('.') {
            let trimmed = seconds.trim_end_matches('0').trim_end_matches('.').len();
            seconds.truncate(trimmed);
        }
        if seconds == "-0" {
            seconds = "0".to_owned();
        }
        format!(
            "P{}Y{}M{}DT{}H{}M{seconds}S",
            self.years, self.months, self.days, self.hours, self.minutes
        )
    }
}

fn interval_parts(text: &str) -> Option<IntervalParts> {
    let body = text.strip_prefix('P')?;
    let (date_part, time_part) = body.split_once('T').unwrap_or((body, ""));
    let mut parts = IntervalParts::default();
    let mut number = String::new();
    for c in date_part.chars() {
        if c.is_ascii_digit() || c == '-' {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        match c {
            'Y' => parts.years += n,
            'M' => parts.months += n,
            'W' => parts.days += n * 7,
            'D' => parts.days += n,
            _ => return None,
        }
    }
    for c in time_part.chars() {
        if c.is_ascii_digit() || c == '-' || c == '.' {
            number.push(c);
            continue;
        }
        match c {
            'H' => parts.hours += number.parse::<i64>().ok()?,
            'M' => parts.minutes += number.parse::<i64>().ok()?,
            'S' => {
                number.parse::<f64>().ok()?;
                parts.seconds = number.clone();
            }
            _ => return None,
        }
        number.clear();
    }
    Some(parts)
}

/// A bit string as Debezium's Bits: the number it spells, little-endian.
fn bits_to_bytes(text: &str) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; text.len().div_ceil(8)];
    for (i, c) in text.chars().rev().enumerate() {
        match c {
            '1' => bytes[i / 8] |= 1 << (i % 8),
            '0' => {}
            _ => return None,
        }
    }
    while bytes.len() > 1 && bytes.last() == Some(&0) {
        bytes.pop();
    }
    Some(bytes)
}

/// The elements of a one-dimensional array literal, `None` for NULL.
fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Some(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
        }
        items.push(if !quoted && item == "NULL" {
            None
        } else {
            Some(item)
        });
        match chars.next() {
            Some(',') => continue,
            None => return Some(items),
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// The text PostgreSQL sends for `micros` in a UTC session (fraction
    /// trimmed of trailing zeros).
    fn pg_utc_text(micros: i64) -> String {
        let (year, month, day, in_day) = sluice_connector_api::calendar::civil(micros);
        let (seconds, fraction) = (in_day / 1_000_000, in_day % 1_000_000);
        let fraction = if fraction == 0 {
            String::new()
        } else {
            format!(".{fraction:06}").trim_end_matches('0').to_owned()
        };
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}{fraction}+00",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    }

    #[test]
    fn utc_timestamps_moved_into_place_read_as_the_general_path_writes_them() {
        // Years 1 to 9999, precisions 0 to 6 (values rounded to them as
        // the column would hold them), and the precision PostgreSQL gives
        // an unconstrained column.
        let (first, last) = (-62_135_596_800_000_000i64, 253_402_300_799_999_999i64);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut checked = 0;
        for i in 0..200_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let micros = first + (state % (last - first) as u64) as i64;
            let digits = (i % 8) as i32 - 1;
            let step = 10i64.pow(6 - digits.clamp(0, 6) as u32);
            // A third keep digits past the precision, which are cut.
            let micros = if i % 3 == 0 {
                micros
            } else {
                micros - micros.rem_euclid(step)
            };
            let text = pg_utc_text(micros);
            let general = {
                let (local, offset) = split_zone(&text).unwrap();
                let utc = parse_timestamp(local).unwrap() - offset * 1_000_000;
                u32::try_from(digits).ok().map(|d| iso_utc_digits(utc, d))
            };
            let fast = zoned_timestamp_utc(&text, digits);
            assert_eq!(fast, general, "{text} at {digits} digits");
            checked += usize::from(fast.is_some());
        }
        // The fast path took every text but those of a negative precision.
        assert_eq!(checked, 175_000);
        assert!(checked > 150_000);
        for other in [
            "2024-01-31 10:00:00+01",
            "2024-01-31 10:00:00.5-03:30",
            "0001-01-01 00:00:00+00 BC",
            "12024-01-31 10:00:00+00",
            "2024-01-31 10:00:00.1234567+00",
            "2024-01-31T10:00:00+00",
            "2024-01-31 10:00+00",
            "2024-01-31 10:00:0x+00",
        ] {
            assert_eq!(zoned_timestamp_utc(other, 6), None, "{other}");
        }
        // Those still convert, by the general path.
        assert_eq!(
            zoned_timestamp("2024-01-31 10:00:00.5-03:30", 6).as_deref(),
            Some("2024-01-31T13:30:00.500000Z")
        );
    }

    use super::*;

    const DEFAULT: Mapping = Mapping {
        decimal: DecimalMode::Precise,
        time: TimePrecision::Adaptive,
        binary: BinaryMode::Bytes,
        interval_text: false,
        hstore_map: false,
        money_digits: 2,
    };

    fn base(name: &str, modifier: i32) -> PgType {
        PgType::base(name, modifier)
    }

    /// Each type read by a second name is read as its twin, and a type the
    /// reader does not know is read as its text, whatever it looks like.
    #[test]
    fn aliases_read_as_their_twins_and_unknown_types_as_text() {
        let read = |name: &str, text: &str| base(name, -1).value(text, DEFAULT);
        assert_eq!(read("oid", "42"), read("int8", "42"));
        assert_eq!(read("oid", "42"), Some(Value::Int64(42)));
        let point = "0101000020E6100000000000000000F03F0000000000000040";
        assert_eq!(read("geography", point), read("geometry", point));
        assert!(matches!(read("geography", point), Some(Value::Struct(_))));
        for name in ["text", "varchar", "inet", "int4range", "unknown", "citext"] {
            assert_eq!(read(name, "42"), Some(Value::String("42".into())), "{name}");
        }
    }

    /// Dates and timestamps as PostgreSQL writes them, read in place (a
    /// four-digit year) or the general way (a five-digit year, BC, an
    /// odd shape), agree with the calendar arithmetic; malformed text is
    /// refused either way.
    #[test]
    fn temporal_text_is_read_the_same_in_place_and_the_general_way() {
        let fractions = ["", ".5", ".05", ".123", ".1234", ".12345", ".123456"];
        let micros = [0, 500_000, 50_000, 123_000, 123_400, 123_450, 123_456];
        for year in [
            1i64, 2, 999, 1000, 1969, 1970, 2000, 2024, 9999, 10000, 99999,
        ] {
            for (month, day) in [(1i64, 1i64), (2, 28), (2, 29), (7, 15), (12, 31)] {
                let date = format!("{year:04}-{month:02}-{day:02}");
                let days = days_from_civil(year, month, day);
                assert_eq!(parse_date(&date), Some(days), "{date}");
                assert_eq!(
                    parse_date(&format!("{date} BC")),
                    Some(days_from_civil(1 - year, month, day)),
                    "{date} BC"
                );
                for (fraction, extra) in fractions.iter().zip(micros) {
                    for (h, m, sec) in [(0i64, 0i64, 0i64), (9, 5, 7), (23, 59, 59), (24, 0, 0)] {
                        let time = format!("{h:02}:{m:02}:{sec:02}{fraction}");
                        let of_day = ((h * 60 + m) * 60 + sec) * 1_000_000 + extra;
                        assert_eq!(parse_time(&time), Some(of_day), "{time}");
                        let text = format!("{date} {time}");
                        assert_eq!(
                            parse_timestamp(&text),
                            Some(days * MICROS_PER_DAY + of_day),
                            "{text}"
                        );
                    }
                }
            }
        }
        // Digits past the sixth are below a microsecond.
        assert_eq!(parse_time("00:00:00.1234567"), Some(123_456));
        // Odd shapes still read the general way.
        assert_eq!(parse_time("1:02:03"), Some(3_723_000_000));
        for bad in ["2024-1x-01", "2024-01", "20a4-01-01", "", "2024-01-01x"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        for bad in ["10:00", "10:0a:00", "10:00:00.5x", "10:00:00x", "aa:bb:cc"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(parse_timestamp("2024-01-01"), None);
        assert_eq!(parse_timestamp("294276-12-31 23:59:59.999999"), None);
        assert_eq!(
            parse_timestamp("2024-01-01 10:00:0"),
            Some(days_from_civil(2024, 1, 1) * MICROS_PER_DAY + 36_000_000_000)
        );
    }

    #[test]
    fn interval_hstore_and_bytea_modes_match_debezium() {
        let text = Mapping {
            binary: BinaryMode::Hex,
            interval_text: true,
            hstore_map: true,
            ..DEFAULT
        };
        let interval = base("interval", -1);
        assert_eq!(
            interval.value("P1Y2M3DT4H5M6.780S", text),
            Some(Value::String("P1Y2M3DT4H5M6.78S".into()))
        );
        assert_eq!(
            interval.value("P-1Y-2M3DT-4H-5M-6S", text),
            Some(Value::String("P-1Y-2M3DT-4H-5M-6S".into()))
        );
        assert_eq!(
            interval.value("PT0S", text),
            Some(Value::String("P0Y0M0DT0H0M0S".into()))
        );
        assert_eq!(
            interval.schema(text).name.as_deref(),
            Some(logical::INTERVAL)
        );
        // The numeric default is unchanged: 1 day 1 second in microseconds.
        assert_eq!(
            interval.value("P1DT1S", DEFAULT),
            Some(Value::Int64(86_401_000_000))
        );
        let hstore = base("hstore", -1);
        assert_eq!(
            hstore.value(r#""a"=>"1", "b"=>NULL"#, text),
            Some(Value::Map(vec![
                (Value::String("a".into()), Value::String("1".into())),
                (Value::String("b".into()), Value::Null),
            ]))
        );
        assert_eq!(
            hstore.value(r#""a"=>"1""#, DEFAULT),
            Some(Value::String(r#"{"a":"1"}"#.into()))
        );
        assert_eq!(
            base("bytea", -1).value("\\x0aff", text),
            Some(Value::String("0aff".into()))
        );
        assert_eq!(base("bytea", -1).schema(text), Schema::string());
        assert_eq!(
            base("timestamp", -1).value("infinity", DEFAULT),
            Some(Value::Int64(i64::MAX))
        );
        assert_eq!(
            base("timestamp", 3).value("-infinity", DEFAULT),
            Some(Value::Int64(i64::MIN))
        );
        assert_eq!(
            base("timestamptz", -1).value("infinity", DEFAULT),
            Some(Value::String("infinity".into()))
        );
        let mills = Mapping {
            money_digits: 3,
            ..DEFAULT
        };
        assert_eq!(
            base("money", -1).value("$1.50", mills),
            Some(Value::decimal(1500))
        );
        assert_eq!(
            base("money", -1)
                .schema(mills)
                .parameters
                .get("scale")
                .map(String::as_str),
            Some("3")
        );
        assert_eq!(
            base("ltree", -1).schema(DEFAULT).name.as_deref(),
            Some("io.debezium.data.Ltree")
        );
    }

    #[test]
    fn numerics_keep_their_declared_scale() {
        // numeric(10,2): modifier = ((10 << 16) | 2) + 4
        let t = base("numeric", ((10 << 16) | 2) + 4);
        assert_eq!(t.schema(DEFAULT).parameters["scale"], "2");
        assert_eq!(t.value("12.5", DEFAULT), Some(Value::decimal(1250)));
        assert_eq!(
            base("numeric", -1).value("-1.25", DEFAULT),
            Some(Value::Struct(vec![Value::Int32(2), Value::decimal(-125)]))
        );
        assert_eq!(
            base("money", -1).value("-$1,234.50", DEFAULT),
            Some(Value::decimal(-123450))
        );
    }

    #[test]
    fn temporal_values_match_debezium() {
        assert_eq!(
            base("date", -1).value("1970-01-02", DEFAULT),
            Some(Value::Int32(1))
        );
        assert_eq!(
            base("date", -1).value("1969-12-31", DEFAULT),
            Some(Value::Int32(-1))
        );
        assert_eq!(
            base("timestamp", -1).value("2024-01-31 10:00:00.5", DEFAULT),
            Some(Value::Int64(1_706_695_200_500_000))
        );
        assert_eq!(
            base("timestamp", 3).value("2024-01-31 10:00:00.5", DEFAULT),
            Some(Value::Int64(1_706_695_200_500))
        );
        assert_eq!(
            base("timestamptz", -1).value("2024-01-31 12:00:00.12+02", DEFAULT),
            Some(Value::String("2024-01-31T10:00:00.120000Z".into()))
        );
        assert_eq!(
            base("timestamptz", 0).value("2024-01-31 12:00:00+02", DEFAULT),
            Some(Value::String("2024-01-31T10:00:00Z".into()))
        );
        assert_eq!(
            base("timestamptz", 2).value("2024-01-31 12:00:00+02", DEFAULT),
            Some(Value::String("2024-01-31T10:00:00.00Z".into()))
        );
        assert_eq!(
            base("timetz", -1).value("01:30:00-03:30", DEFAULT),
            Some(Value::String("05:00:00Z".into()))
        );
        assert_eq!(
            base("time", -1).value("00:00:01.000002", DEFAULT),
            Some(Value::Int64(1_000_002))
        );
        assert_eq!(
            base("interval", -1).value("P1DT2H", DEFAULT),
            Some(Value::Int64(93_600_000_000))
        );
        assert_eq!(
            base("interval", -1).value("P1M", DEFAULT),
            Some(Value::Int64(2_629_800_000_000))
        );
    }

    #[test]
    fn binary_bits_arrays_and_enums() {
        assert_eq!(
            base("bytea", -1).value("\\x0aff", DEFAULT),
            Some(Value::Bytes(vec![10, 255]))
        );
        assert_eq!(
            base("bit", 1).value("1", DEFAULT),
            Some(Value::Boolean(true))
        );
        assert_eq!(
            base("varbit", -1).value("100000001", DEFAULT),
            Some(Value::Bytes(vec![1, 1]))
        );
        let length =
            |modifier| base("varbit", modifier).schema(DEFAULT).parameters["length"].clone();
        assert_eq!(length(-1), "2147483647");
        assert_eq!(length(12), "12");
        let array = PgType::Array(Box::new(base("text", -1)));
        assert_eq!(
            array.value(r#"{a,"b c",NULL,"d\"e"}"#, DEFAULT),
            Some(Value::Array(vec![
                Value::String("a".into()),
                Value::String("b c".into()),
                Value::Null,
                Value::String("d\"e".into()),
            ]))
        );
        assert_eq!(
            base("hstore", -1).value(r#""a"=>"1", "b\"c"=>NULL"#, DEFAULT),
            Some(Value::String(r#"{"a":"1","b\"c":null}"#.into()))
        );
        assert_eq!(
            base("vector", -1).value("[1,2.5,-3]", DEFAULT),
            Some(Value::Array(vec![
                Value::Float64(1.0),
                Value::Float64(2.5),
                Value::Float64(-3.0)
            ]))
        );
        assert_eq!(
            base("halfvec", -1).value("[0.5,2]", DEFAULT),
            Some(Value::Array(vec![Value::Float32(0.5), Value::Float32(2.0)]))
        );
        assert_eq!(
            base("sparsevec", -1).value("{1:1.5,9:-2}/3000", DEFAULT),
            Some(Value::Struct(vec![
                Value::Int16(3000),
                Value::Map(vec![
                    (Value::Int16(1), Value::Float64(1.5)),
                    (Value::Int16(9), Value::Float64(-2.0))
                ])
            ]))
        );
        assert_eq!(base("vector", -1).value("[1,x]", DEFAULT), None);
        let names: Vec<Option<String>> = ["tsvector", "vector", "halfvec", "sparsevec"]
            .iter()
            .map(|t| base(t, -1).schema(DEFAULT).name.clone())
            .collect();
        assert_eq!(
            names,
            [
                Some("io.debezium.data.Tsvector".to_owned()),
                Some("io.debezium.data.DoubleVector".to_owned()),
                Some("io.debezium.data.FloatVector".to_owned()),
                Some("io.debezium.data.SparseVector".to_owned())
            ]
        );
        let Some(Value::Struct(point)) = base("point", -1).value("(1.5,-2)", DEFAULT) else {
            panic!("point struct")
        };
        assert_eq!(point[0], Value::Float64(1.5));
        assert_eq!(point[1], Value::Float64(-2.0));
        // POINT(1 2) with SRID 4326, little- and big-endian, and without.
        let le = "0101000020E6100000000000000000F03F0000000000000040";
        let Some(Value::Struct(geometry)) = base("geometry", -1).value(le, DEFAULT) else {
            panic!("geometry struct")
        };
        assert_eq!(
            geometry[0],
            Value::Bytes(parse_bytea(&format!("\\x{le}")).unwrap())
        );
        assert_eq!(geometry[1], Value::Int32(4326));
        let be = "0020000001000010E63FF00000000000004000000000000000";
        let Some(Value::Struct(geography)) = base("geography", -1).value(be, DEFAULT) else {
            panic!("geography struct")
        };
        assert_eq!(geography[1], Value::Int32(4326));
        let plain = "0101000000000000000000F03F0000000000000040";
        let Some(Value::Struct(no_srid)) = base("geometry", -1).value(plain, DEFAULT) else {
            panic!("geometry struct")
        };
        assert_eq!(no_srid[1], Value::Null);
        assert_eq!(base("geometry", -1).value("not hex", DEFAULT), None);
        assert_eq!(
            base("geography", -1).schema(DEFAULT).name.as_deref(),
            Some("io.debezium.data.geometry.Geography")
        );
        let mood = PgType::Enum(vec!["sad".into(), "happy".into()]);
        assert_eq!(mood.schema(DEFAULT).parameters["allowed"], "sad,happy");
    }
}
