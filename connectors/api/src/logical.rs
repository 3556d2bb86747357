//! Logical types: names and constructors for the semantic types that Kafka
//! Connect and Debezium layer on top of physical schemas.
//!
//! Converters recognise these names (for example to emit Avro
//! `logicalType: decimal`), and consumers written for Debezium rely on them,
//! so the strings must match Connect's and Debezium's exactly.

use crate::schema::{Field, Schema};

/// Connect's arbitrary-precision decimal: bytes holding the unscaled
/// two's-complement big-endian integer, with a `scale` parameter.
pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
/// Connect's date: int32 days since the Unix epoch.
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
/// Connect's time of day: int32 milliseconds since midnight.
pub const TIME: &str = "org.apache.kafka.connect.data.Time";
/// Connect's timestamp: int64 milliseconds since the Unix epoch.
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
/// Debezium's date: int32 days since the epoch.
pub const DBZ_DATE: &str = "io.debezium.time.Date";
/// Debezium's time of day in microseconds (int64).
pub const MICRO_TIME: &str = "io.debezium.time.MicroTime";
/// Debezium's timestamp without zone in milliseconds (int64).
pub const DBZ_TIMESTAMP: &str = "io.debezium.time.Timestamp";
/// Debezium's timestamp without zone in microseconds (int64).
pub const MICRO_TIMESTAMP: &str = "io.debezium.time.MicroTimestamp";
/// Debezium's timestamp without zone in nanoseconds (int64).
pub const NANO_TIMESTAMP: &str = "io.debezium.time.NanoTimestamp";
/// Debezium's timestamp with zone as an ISO-8601 string.
pub const ZONED_TIMESTAMP: &str = "io.debezium.time.ZonedTimestamp";
/// Debezium's time with zone as an ISO-8601 string.
pub const ZONED_TIME: &str = "io.debezium.time.ZonedTime";
/// Debezium's duration in microseconds (int64).
pub const MICRO_DURATION: &str = "io.debezium.time.MicroDuration";
/// Debezium's year (int32).
pub const YEAR: &str = "io.debezium.time.Year";
/// Debezium's JSON document carried as a string.
pub const JSON: &str = "io.debezium.data.Json";
/// Debezium's ISO 8601 interval text (`interval.handling.mode=string`).
pub const INTERVAL: &str = "io.debezium.time.Interval";
/// Debezium's UUID carried as a string.
pub const UUID: &str = "io.debezium.data.Uuid";
/// Debezium's XML document carried as a string.
pub const XML: &str = "io.debezium.data.Xml";
/// Debezium's enum carried as a string, with an `allowed` parameter.
pub const ENUM: &str = "io.debezium.data.Enum";
/// Debezium's bit string carried as bytes, with a `length` parameter.
pub const BITS: &str = "io.debezium.data.Bits";
/// Debezium's variable-scale decimal: a struct of `scale` and `value`.
pub const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";

/// The parameter that carries a decimal's scale.
pub const DECIMAL_SCALE: &str = "scale";
/// The parameter that carries a decimal's precision (Debezium's name).
pub const DECIMAL_PRECISION: &str = "connect.decimal.precision";

/// A decimal with `scale` digits after the point and, if known, `precision`
/// digits in all.
pub fn decimal(scale: u32, precision: Option<u32>) -> Schema {
    let schema = Schema::bytes()
        .named(DECIMAL)
        .versioned(1)
        .parameter(DECIMAL_SCALE, scale.to_string());
    match precision {
        Some(p) => schema.parameter(DECIMAL_PRECISION, p.to_string()),
        None => schema,
    }
}

/// Connect's date (int32 days since the epoch).
pub fn date() -> Schema {
    Schema::int32().named(DATE).versioned(1)
}

/// Connect's time of day (int32 milliseconds since midnight).
pub fn time_millis() -> Schema {
    Schema::int32().named(TIME).versioned(1)
}

/// Connect's timestamp (int64 milliseconds since the epoch).
pub fn timestamp_millis() -> Schema {
    Schema::int64().named(TIMESTAMP).versioned(1)
}

/// Debezium's microsecond timestamp without zone.
pub fn micro_timestamp() -> Schema {
    Schema::int64().named(MICRO_TIMESTAMP).versioned(1)
}

/// Debezium's zoned timestamp (ISO-8601 string).
pub fn zoned_timestamp() -> Schema {
    Schema::string().named(ZONED_TIMESTAMP).versioned(1)
}

/// Debezium's JSON document (string).
pub fn json() -> Schema {
    Schema::string().named(JSON).versioned(1)
}

/// Debezium's UUID (string).
pub fn uuid() -> Schema {
    Schema::string().named(UUID).versioned(1)
}

/// Debezium's `io.debezium.data.geometry.Point`: the coordinates, beside the
/// point's WKB and SRID.
pub fn geometry_point() -> Schema {
    Schema::structure(
        "io.debezium.data.geometry.Point",
        vec![
            Field::new("x", Schema::float64()),
            Field::new("y", Schema::float64()),
            Field::new("wkb", Schema::bytes().optional()),
            Field::new("srid", Schema::int32().optional()),
        ],
    )
    .versioned(1)
    .documented("Geometry (POINT)")
}

/// Debezium's WKB-and-SRID structs, `name` being
/// `io.debezium.data.geometry.Geometry` or `...Geography` (`doc` the
/// schema's doc: `Geometry`, `Geography`).
pub fn geometry(name: &str, doc: &str) -> Schema {
    Schema::structure(
        name,
        vec![
            Field::new("wkb", Schema::bytes()),
            Field::new("srid", Schema::int32().optional()),
        ],
    )
    .versioned(1)
    .documented(doc)
}

/// A logical type recognised by the converters, read off a schema's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicalType {
    /// Decimal with this scale.
    Decimal {
        /// Digits after the decimal point.
        scale: u32,
        /// Total digits, if declared.
        precision: Option<u32>,
    },
    /// Days since the epoch.
    Date,
    /// Milliseconds since midnight.
    TimeMillis,
    /// Microseconds since midnight.
    TimeMicros,
    /// Milliseconds since the epoch.
    TimestampMillis,
    /// Microseconds since the epoch.
    TimestampMicros,
    /// A UUID string.
    Uuid,
}

impl LogicalType {
    /// The logical type a schema carries, if the converters know it.
    pub fn of(schema: &Schema) -> Option<Self> {
        let name = schema.name.as_deref()?;
        Some(match name {
            DECIMAL => Self::Decimal {
                scale: schema.parameters.get(DECIMAL_SCALE)?.parse().ok()?,
                precision: schema
                    .parameters
                    .get(DECIMAL_PRECISION)
                    .and_then(|p| p.parse().ok()),
            },
            DATE | DBZ_DATE => Self::Date,
            TIME => Self::TimeMillis,
            MICRO_TIME => Self::TimeMicros,
            TIMESTAMP | DBZ_TIMESTAMP => Self::TimestampMillis,
            MICRO_TIMESTAMP => Self::TimestampMicros,
            UUID => Self::Uuid,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trips_through_logical_type() {
        let schema = decimal(2, Some(10));
        assert_eq!(
            LogicalType::of(&schema),
            Some(LogicalType::Decimal {
                scale: 2,
                precision: Some(10)
            })
        );
    }

    #[test]
    fn plain_schemas_have_no_logical_type() {
        assert_eq!(LogicalType::of(&Schema::int64()), None);
        assert_eq!(
            LogicalType::of(&micro_timestamp()),
            Some(LogicalType::TimestampMicros)
        );
    }
}
