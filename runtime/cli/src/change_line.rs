//! One Debezium change event as one readable line, for `sluice tail
//! --changes` and the demo: the operation, the key, and the columns — only
//! the changed ones for an update — with decimals, dates and timestamps
//! shown as people write them.

use sluice_connector_api::calendar::{civil, clock, MICROS_PER_DAY};
use sluice_connector_api::decimal::decimal_text;
use sluice_connector_api::logical::*;
use sluice_connector_api::{Schema, SchemaKind, Value};

/// A value as text, following its logical type.
pub fn show(schema: &Schema, value: &Value) -> String {
    let int = |v: &Value| match v {
        Value::Int8(i) => Some(i64::from(*i)),
        Value::Int16(i) => Some(i64::from(*i)),
        Value::Int32(i) => Some(i64::from(*i)),
        Value::Int64(i) => Some(*i),
        _ => None,
    };
    let timestamp = |micros: i64| {
        let (y, m, d, in_day) = civil(micros);
        format!("{y:04}-{m:02}-{d:02} {}", clock(in_day))
    };
    match (schema.name.as_deref().unwrap_or_default(), value) {
        (_, Value::Null) => "null".into(),
        (DECIMAL, Value::Bytes(b)) => decimal_text(
            b,
            schema
                .parameters
                .get(DECIMAL_SCALE)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        ),
        (VARIABLE_SCALE_DECIMAL, Value::Struct(parts)) => match parts.as_slice() {
            [Value::Int32(scale), Value::Bytes(b)] => decimal_text(b, (*scale).max(0) as u32),
            _ => format!("{value:?}"),
        },
        (DATE | DBZ_DATE, v) if int(v).is_some() => {
            let (y, m, d, _) = civil(int(v).unwrap_or_default() * MICROS_PER_DAY);
            format!("{y:04}-{m:02}-{d:02}")
        }
        (TIMESTAMP | DBZ_TIMESTAMP, v) if int(v).is_some() => {
            timestamp(int(v).unwrap_or_default() * 1000)
        }
        (MICRO_TIMESTAMP, v) if int(v).is_some() => timestamp(int(v).unwrap_or_default()),
        (NANO_TIMESTAMP, v) if int(v).is_some() => timestamp(int(v).unwrap_or_default() / 1000),
        (TIME, v) if int(v).is_some() => clock(int(v).unwrap_or_default() * 1000),
        (MICRO_TIME, v) if int(v).is_some() => clock(int(v).unwrap_or_default()),
        (_, Value::String(s)) => format!("{s:?}"),
        (_, Value::Bytes(b)) => format!("<{} bytes>", b.len()),
        (_, Value::Boolean(b)) => b.to_string(),
        (_, Value::Float32(f)) => f.to_string(),
        (_, Value::Float64(f)) => f.to_string(),
        (_, v) if int(v).is_some() => int(v).unwrap_or_default().to_string(),
        (_, Value::Array(items)) => {
            let item = match &schema.kind {
                SchemaKind::Array(s) => s.as_ref().clone(),
                _ => Schema::string(),
            };
            let shown: Vec<String> = items.iter().map(|v| show(&item, v)).collect();
            format!("[{}]", shown.join(", "))
        }
        (_, Value::Struct(values)) => {
            let shown: Vec<String> = schema
                .fields()
                .iter()
                .zip(values)
                .map(|(f, v)| format!("{}={}", f.name, show(&f.schema, v)))
                .collect();
            format!("{{{}}}", shown.join(", "))
        }
        (_, v) => format!("{v:?}"),
    }
}

fn field<'a>(schema: &'a Schema, value: &'a Value, name: &str) -> Option<(&'a Schema, &'a Value)> {
    let (index, f) = schema.field(name)?;
    match value {
        Value::Struct(values) => values.get(index).map(|v| (f.schema.as_ref(), v)),
        _ => None,
    }
}

/// `key  columns` of a change event, or `None` when the value is not a
/// Debezium envelope.
pub fn line(key: Option<(&Schema, &Value)>, schema: &Schema, value: &Value) -> Option<String> {
    let (_, op) = field(schema, value, "op")?;
    let Value::String(op) = op else { return None };
    let (_, before) = field(schema, value, "before")?;
    let (after_schema, after) = field(schema, value, "after")?;
    let key = key.map_or_else(String::new, |(s, v)| match v {
        Value::Struct(_) => show(s, v).trim_matches(['{', '}']).to_owned(),
        other => show(s, other),
    });
    let columns = |s: &Schema, v: &Value| match v {
        Value::Struct(values) => s
            .fields()
            .iter()
            .zip(values)
            .map(|(f, v)| format!("{}={}", f.name, show(&f.schema, v)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let (word, detail) = match op.as_str() {
        "c" => ("insert  ", columns(after_schema, after)),
        "r" => ("snapshot", columns(after_schema, after)),
        "d" => ("delete  ", String::new()),
        "t" => ("truncate", String::new()),
        "u" => {
            let changed = match (before, after) {
                (Value::Struct(old), Value::Struct(new)) => after_schema
                    .fields()
                    .iter()
                    .zip(old.iter().zip(new))
                    .filter(|(_, (o, n))| o != n)
                    .map(|(f, (o, n))| {
                        format!(
                            "{}: {} → {}",
                            f.name,
                            show(&f.schema, o),
                            show(&f.schema, n)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => columns(after_schema, after),
            };
            ("update  ", changed)
        }
        other => return Some(format!("op={other}")),
    };
    Some(format!("{word}  {key:<12}  {detail}").trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use sluice_connector_api::Field;

    use super::*;

    fn row_schema() -> Schema {
        Schema::structure(
            "x.Value",
            vec![
                Field::new("id", Schema::int32()),
                Field::new(
                    "price",
                    Schema::bytes().named(DECIMAL).parameter(DECIMAL_SCALE, "2"),
                ),
                Field::new("day", Schema::int32().named(DBZ_DATE)),
                Field::new("status", Schema::string()),
            ],
        )
        .optional()
    }

    fn envelope(op: &str, before: Value, after: Value) -> (Schema, Value) {
        let schema = Schema::structure(
            "x.Envelope",
            vec![
                Field::new("before", row_schema()),
                Field::new("after", row_schema()),
                Field::new("op", Schema::string()),
            ],
        );
        (
            schema,
            Value::Struct(vec![before, after, Value::String(op.into())]),
        )
    }

    fn row(status: &str) -> Value {
        Value::Struct(vec![
            Value::Int32(7),
            Value::Bytes(vec![0x04, 0xd2]),
            Value::Int32(19_723),
            Value::String(status.into()),
        ])
    }

    #[test]
    fn changes_read_as_people_write_them() {
        let key_schema = Schema::structure("x.Key", vec![Field::new("id", Schema::int32())]);
        let key = Value::Struct(vec![Value::Int32(7)]);
        let (s, v) = envelope("c", Value::Null, row("new"));
        assert_eq!(
            line(Some((&key_schema, &key)), &s, &v).as_deref(),
            Some("insert    id=7          id=7 price=12.34 day=2024-01-01 status=\"new\"")
        );
        let (s, v) = envelope("u", row("new"), row("paid"));
        assert_eq!(
            line(Some((&key_schema, &key)), &s, &v).as_deref(),
            Some("update    id=7          status: \"new\" → \"paid\"")
        );
        let (s, v) = envelope("d", row("paid"), Value::Null);
        assert_eq!(
            line(Some((&key_schema, &key)), &s, &v).as_deref(),
            Some("delete    id=7")
        );
        let flat = row_schema();
        assert_eq!(line(None, &flat, &row("x")), None, "not an envelope");
    }
}
