//! One canonical text per value, written in each database's SQL, so the
//! same row gives the same MD5 in PostgreSQL and in MySQL / MariaDB:
//! numbers without trailing zeros, booleans as 0/1, times and timestamps
//! as `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, bytes as lower-case hex.

use super::url::Kind;

/// The value classes compared alike across databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Integers.
    Int,
    /// Exact decimals.
    Decimal,
    /// Floating point (compared to 6 decimals).
    Float,
    /// Booleans.
    Bool,
    /// Dates.
    Date,
    /// Timestamps without zone.
    Timestamp,
    /// Timestamps with zone (compared in UTC).
    TimestampTz,
    /// Times of day.
    Time,
    /// Binary.
    Bytes,
    /// JSON.
    Json,
    /// PostgreSQL arrays.
    Array,
    /// Everything else, as text.
    Text,
}

/// The class of a column from its type name (`typname` in PostgreSQL,
/// `DATA_TYPE` / `COLUMN_TYPE` in MySQL).
pub fn class(kind: Kind, type_name: &str, full_type: &str) -> Class {
    let t = type_name.to_ascii_lowercase();
    match kind {
        Kind::Postgres => match t.as_str() {
            "int2" | "int4" | "int8" | "oid" => Class::Int,
            "numeric" | "money" => Class::Decimal,
            "float4" | "float8" => Class::Float,
            "bool" => Class::Bool,
            "date" => Class::Date,
            "timestamp" => Class::Timestamp,
            "timestamptz" => Class::TimestampTz,
            "time" => Class::Time,
            "bytea" => Class::Bytes,
            "json" | "jsonb" => Class::Json,
            a if a.starts_with('_') => Class::Array,
            _ => Class::Text,
        },
        Kind::MySql => {
            let full = full_type.to_ascii_lowercase();
            match t.as_str() {
                "tinyint" if full.starts_with("tinyint(1)") => Class::Bool,
                "bit" if full == "bit(1)" => Class::Bool,
                "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year" => Class::Int,
                "decimal" => Class::Decimal,
                "float" | "double" => Class::Float,
                "date" => Class::Date,
                "datetime" => Class::Timestamp,
                // Sessions run in UTC, so TIMESTAMP reads as UTC.
                "timestamp" => Class::TimestampTz,
                "time" => Class::Time,
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
                | "bit" => Class::Bytes,
                "json" => Class::Json,
                _ => Class::Text,
            }
        }
    }
}

/// The canonical text of column `quoted` of class `class` (NULL stays NULL).
pub fn expr(kind: Kind, class: Class, quoted: &str) -> String {
    let x = quoted;
    match (kind, class) {
        (Kind::Postgres, Class::Int | Class::Text) => format!("{x}::text"),
        (Kind::Postgres, Class::Decimal) => format!("trim_scale({x}::numeric)::text"),
        (Kind::Postgres, Class::Float) => format!("trim_scale(round({x}::numeric, 6))::text"),
        (Kind::Postgres, Class::Bool) => format!("CASE WHEN {x} THEN '1' ELSE '0' END"),
        (Kind::Postgres, Class::Date) => format!("to_char({x}, 'YYYY-MM-DD')"),
        (Kind::Postgres, Class::Timestamp) => format!("to_char({x}, 'YYYY-MM-DD HH24:MI:SS.US')"),
        (Kind::Postgres, Class::TimestampTz) => {
            format!("to_char({x} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        }
        (Kind::Postgres, Class::Time) => format!("to_char({x}, 'HH24:MI:SS.US')"),
        (Kind::Postgres, Class::Bytes) => format!("encode({x}, 'hex')"),
        (Kind::Postgres, Class::Json) => format!("{x}::jsonb::text"),
        (Kind::Postgres, Class::Array) => format!("array_to_json({x})::text"),
        (Kind::MySql, Class::Int | Class::Text | Class::Json) => format!("CAST({x} AS CHAR)"),
        (Kind::MySql, Class::Decimal) => trimmed_mysql(&format!("CAST({x} AS CHAR)")),
        (Kind::MySql, Class::Float) => trimmed_mysql(&format!(
            "CAST(CAST(ROUND({x}, 6) AS DECIMAL(65,6)) AS CHAR)"
        )),
        (Kind::MySql, Class::Bool) => format!("CAST({x} + 0 AS CHAR)"),
        (Kind::MySql, Class::Date) => format!("DATE_FORMAT({x}, '%Y-%m-%d')"),
        (Kind::MySql, Class::Timestamp | Class::TimestampTz) => {
            format!("DATE_FORMAT({x}, '%Y-%m-%d %H:%i:%s.%f')")
        }
        (Kind::MySql, Class::Time) => format!("TIME_FORMAT({x}, '%H:%i:%s.%f')"),
        (Kind::MySql, Class::Bytes) => format!("LOWER(HEX({x}))"),
        (Kind::MySql, Class::Array) => format!("CAST({x} AS CHAR)"),
    }
}

/// A decimal's text without trailing fraction zeros (and no bare point).
fn trimmed_mysql(text: &str) -> String {
    format!(
        "(CASE WHEN LOCATE('.', {text}) > 0 THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text})) ELSE {text} END)"
    )
}

/// The canonical text of a whole row: values joined by the unit separator,
/// NULL as the record separator (neither occurs in ordinary text).
pub fn row(kind: Kind, values: &[String]) -> String {
    match kind {
        Kind::Postgres => {
            let parts: Vec<String> = values
                .iter()
                .map(|v| format!("coalesce({v}, chr(30))"))
                .collect();
            format!("concat_ws(chr(31), {})", parts.join(", "))
        }
        Kind::MySql => {
            let parts: Vec<String> = values
                .iter()
                .map(|v| format!("COALESCE(CONVERT({v} USING utf8mb4), CHAR(30 USING utf8mb4))"))
                .collect();
            format!("CONCAT_WS(CHAR(31 USING utf8mb4), {})", parts.join(", "))
        }
    }
}

/// The first 60 bits of the row text's MD5 as an integer, summed over a
/// chunk (as text, exact in both databases).
pub fn hash_sum(kind: Kind, row: &str) -> String {
    match kind {
        Kind::Postgres => format!(
            "coalesce(sum(('x' || substr(md5({row}), 1, 15))::bit(60)::bigint), 0)::text"
        ),
        Kind::MySql => format!(
            "CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR)"
        ),
    }
}

/// MD5 of the row text.
pub fn row_md5(kind: Kind, row: &str) -> String {
    match kind {
        Kind::Postgres => format!("md5({row})"),
        Kind::MySql => format!("MD5({row})"),
    }
}
