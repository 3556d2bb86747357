//! `TimestampConverter$Key` / `$Value`: converts a timestamp field (or the
//! whole key or value) between text in a `format`, a Unix number
//! (`unix.precision`: seconds, milliseconds, microseconds, nanoseconds),
//! and Connect's Timestamp, Date and Time. Debezium's temporal types
//! (MicroTimestamp, NanoTimestamp, Timestamp, Date, ZonedTimestamp) are
//! read as what they mean, so Debezium events convert directly.

use std::sync::Arc;

use sluice_connector_api::{logical, ConfigError, Schema, Value};

use crate::transforms::date_format::{format_millis, parse_millis, parse_pattern, Piece};
use crate::transforms::fields::{self, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// What to convert to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Text,
    Unix,
    Timestamp,
    Date,
    Time,
}

/// The configured transform.
pub struct TimestampConverter {
    side: Side,
    field: Option<String>,
    target: Target,
    format: Option<Vec<Piece>>,
    /// Units per millisecond as a divisor/multiplier pair for `Unix`.
    precision: Precision,
    schemas: SchemaCache,
}

#[derive(Debug, Clone, Copy)]
enum Precision {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Precision {
    fn to_millis(self, n: i64) -> i64 {
        match self {
            Self::Seconds => n.saturating_mul(1000),
            Self::Millis => n,
            Self::Micros => n.div_euclid(1000),
            Self::Nanos => n.div_euclid(1_000_000),
        }
    }
    fn of_millis(self, ms: i64) -> i64 {
        match self {
            Self::Seconds => ms.div_euclid(1000),
            Self::Millis => ms,
            Self::Micros => ms.saturating_mul(1000),
            Self::Nanos => ms.saturating_mul(1_000_000),
        }
    }
}

impl TimestampConverter {
    /// Reads `target.type`, `field`, `format` and `unix.precision`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let target = match settings.required("target.type")?.trim() {
            "string" => Target::Text,
            "unix" => Target::Unix,
            "Timestamp" => Target::Timestamp,
            "Date" => Target::Date,
            "Time" => Target::Time,
            other => {
                return Err(settings.error(
                    "target.type",
                    format!("{other:?} is not one of string, unix, Date, Time, Timestamp"),
                ))
            }
        };
        let format = match settings
            .get("format")
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(f) => Some(parse_pattern(f).map_err(|m| settings.error("format", m))?),
            None if target == Target::Text => {
                return Err(settings.error("format", "is required when target.type is string"))
            }
            None => None,
        };
        let precision = match settings
            .one_of(
                "unix.precision",
                &["seconds", "milliseconds", "microseconds", "nanoseconds"],
                "milliseconds",
            )?
            .as_str()
        {
            "seconds" => Precision::Seconds,
            "microseconds" => Precision::Micros,
            "nanoseconds" => Precision::Nanos,
            _ => Precision::Millis,
        };
        Ok(Self {
            side,
            field: settings
                .get("field")
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned),
            target,
            format,
            precision,
            schemas: SchemaCache::default(),
        })
    }

    /// Milliseconds since the epoch that `value` (typed by `schema`) stands for.
    fn millis_of(&self, schema: Option<&Schema>, value: &Value) -> Result<i64, Failure> {
        let name = schema.and_then(|s| s.name.as_deref());
        let fail = || {
            Failure::new(format!(
                "cannot read {} as a timestamp",
                fields::describe(value)
            ))
        };
        match (name, value) {
            (
                Some(logical::TIMESTAMP | logical::DBZ_TIMESTAMP | logical::TIME),
                Value::Int64(ms),
            ) => Ok(*ms),
            (Some(logical::TIME), Value::Int32(ms)) => Ok(i64::from(*ms)),
            (Some(logical::DATE | logical::DBZ_DATE), Value::Int32(days)) => {
                Ok(i64::from(*days) * MILLIS_PER_DAY)
            }
            (Some(logical::MICRO_TIMESTAMP), Value::Int64(us)) => Ok(us.div_euclid(1000)),
            (Some(logical::NANO_TIMESTAMP), Value::Int64(ns)) => Ok(ns.div_euclid(1_000_000)),
            (_, Value::Int64(n)) => Ok(self.precision.to_millis(*n)),
            (_, Value::Int32(n)) => Ok(self.precision.to_millis(i64::from(*n))),
            (_, Value::String(text)) => match &self.format {
                Some(pattern) => parse_millis(pattern, text.trim())
                    .ok_or_else(|| Failure::new(format!("{text:?} does not match the format"))),
                None => iso_millis(text).ok_or_else(fail),
            },
            _ => Err(fail()),
        }
    }

    fn convert(&self, ms: i64) -> Value {
        match self.target {
            Target::Text => {
                Value::String(format_millis(self.format.as_deref().unwrap_or_default(), ms).into())
            }
            Target::Unix => Value::Int64(self.precision.of_millis(ms)),
            Target::Timestamp => Value::Int64(ms),
            Target::Date => Value::Int32(ms.div_euclid(MILLIS_PER_DAY) as i32),
            Target::Time => Value::Int32(ms.rem_euclid(MILLIS_PER_DAY) as i32),
        }
    }

    fn target_schema(&self, optional: bool) -> Schema {
        let schema = match self.target {
            Target::Text => Schema::string(),
            Target::Unix => Schema::int64(),
            Target::Timestamp => logical::timestamp_millis(),
            Target::Date => logical::date(),
            Target::Time => logical::time_millis(),
        };
        if optional {
            schema.optional()
        } else {
            schema
        }
    }
}

/// An ISO-8601 UTC text (`2024-01-31T10:00:00.5Z`, Debezium's
/// ZonedTimestamp) as milliseconds.
fn iso_millis(text: &str) -> Option<i64> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let (main, fraction) = time.split_once('.').unwrap_or((time, ""));
    let base = parse_millis(
        &parse_pattern("yyyy-MM-dd'T'HH:mm:ss").ok()?,
        &format!("{date}T{main}"),
    )?;
    let ms: String = fraction.chars().chain("000".chars()).take(3).collect();
    Some(base + ms.parse::<i64>().ok()?)
}

impl Transform for TimestampConverter {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |_, schema, value| {
            let Some(field) = &self.field else {
                let converted = if value.is_null() {
                    Value::Null
                } else {
                    self.convert(self.millis_of(schema.as_deref(), &value)?)
                };
                let new_schema = schema.map(|s| Arc::new(self.target_schema(s.optional)));
                return Ok((new_schema, converted));
            };
            if schema.as_ref().is_some_and(|s| s.field(field).is_none()) {
                return Err(Failure::new(format!("the record has no field {field}")));
            }
            fields::rewrite_named(
                schema,
                &value,
                &self.schemas,
                |name, field_schema, v| {
                    if name != field || v.is_null() {
                        return Ok(None);
                    }
                    Ok(Some(self.convert(self.millis_of(field_schema, v)?)))
                },
                |f| (&f.name == field).then(|| self.target_schema(f.schema.optional)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::record_on;
    use sluice_connector_api::Field;

    fn converter(pairs: &[(&str, &str)]) -> TimestampConverter {
        TimestampConverter::new(Side::Value, &Settings::from_pairs("transforms.ts.", pairs))
            .unwrap()
    }

    fn with_field(schema: Schema, value: Value) -> Record {
        let mut record = record_on("t");
        record.value_schema = Some(Arc::new(Schema::structure(
            "t.Value",
            vec![Field::new("at", schema)],
        )));
        record.value = Some(Value::Struct(vec![value]));
        record
    }

    #[test]
    fn a_debezium_micro_timestamp_becomes_text_and_a_connect_timestamp() {
        let input = with_field(
            logical::micro_timestamp(),
            Value::Int64(1_700_000_000_123_456),
        );
        let text = converter(&[
            ("target.type", "string"),
            ("field", "at"),
            ("format", "yyyy-MM-dd HH:mm:ss.SSS"),
        ])
        .apply(input.clone())
        .unwrap()
        .unwrap();
        assert_eq!(
            text.value,
            Some(Value::Struct(vec![Value::String(
                "2023-11-14 22:13:20.123".into()
            )]))
        );
        let ts = converter(&[("target.type", "Timestamp"), ("field", "at")])
            .apply(input)
            .unwrap()
            .unwrap();
        assert_eq!(
            ts.value,
            Some(Value::Struct(vec![Value::Int64(1_700_000_000_123)]))
        );
        assert_eq!(
            ts.value_schema.unwrap().fields()[0].schema.name.as_deref(),
            Some(logical::TIMESTAMP)
        );
    }

    #[test]
    fn text_parses_back_to_unix_seconds() {
        let input = with_field(Schema::string(), Value::String("2023-11-14".into()));
        let out = converter(&[
            ("target.type", "unix"),
            ("field", "at"),
            ("format", "yyyy-MM-dd"),
            ("unix.precision", "seconds"),
        ])
        .apply(input)
        .unwrap()
        .unwrap();
        assert_eq!(
            out.value,
            Some(Value::Struct(vec![Value::Int64(1_699_920_000)]))
        );
    }

    #[test]
    fn zoned_timestamps_read_as_iso_text() {
        assert_eq!(
            iso_millis("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        let e = TimestampConverter::new(
            Side::Value,
            &Settings::from_pairs("transforms.ts.", &[("target.type", "string")]),
        )
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.ts.format");
    }
}
