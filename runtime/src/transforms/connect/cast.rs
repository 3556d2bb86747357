//! `Cast$Key` / `$Value`: casts fields (`spec=field:type,…`) or the whole
//! key or value (`spec=type`) to int8, int16, int32, int64, float32,
//! float64, boolean or string, as Connect does: numbers narrow like Java's
//! casts, text parses, decimals read with their scale, anything becomes
//! text. The new field schema keeps its optionality and loses any logical
//! type.

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Schema, Value};

use crate::transforms::fields::{self, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// A type to cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
}

impl Target {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "int8" => Self::Int8,
            "int16" => Self::Int16,
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "float32" => Self::Float32,
            "float64" => Self::Float64,
            "boolean" => Self::Boolean,
            "string" => Self::String,
            _ => return None,
        })
    }

    fn schema(self, optional: bool) -> Schema {
        let schema = match self {
            Self::Int8 => Schema::int8(),
            Self::Int16 => Schema::int16(),
            Self::Int32 => Schema::int32(),
            Self::Int64 => Schema::int64(),
            Self::Float32 => Schema::float32(),
            Self::Float64 => Schema::float64(),
            Self::Boolean => Schema::boolean(),
            Self::String => Schema::string(),
        };
        if optional {
            schema.optional()
        } else {
            schema
        }
    }
}

/// The configured transform.
pub struct Cast {
    side: Side,
    /// `None` for the whole key or value.
    casts: Vec<(Option<String>, Target)>,
    schemas: SchemaCache,
}

impl Cast {
    /// Reads `spec`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let entries = settings.list("spec");
        if entries.is_empty() {
            return Err(settings.error(
                "spec",
                "is required: field:type,... or one type for the whole value",
            ));
        }
        let bad = |entry: &str| {
            settings.error(
                "spec",
                format!("{entry:?} is not field:type or type; types are int8, int16, int32, int64, float32, float64, boolean, string"),
            )
        };
        let casts: Vec<(Option<String>, Target)> = entries
            .iter()
            .map(|entry| match entry.split_once(':') {
                Some((field, ty)) => Target::parse(ty)
                    .map(|t| (Some(field.trim().to_owned()), t))
                    .ok_or_else(|| bad(entry)),
                None => Target::parse(entry)
                    .map(|t| (None, t))
                    .ok_or_else(|| bad(entry)),
            })
            .collect::<Result<_, _>>()?;
        if casts.len() > 1 && casts.iter().any(|(f, _)| f.is_none()) {
            return Err(settings.error(
                "spec",
                "a whole-value cast cannot be combined with field casts",
            ));
        }
        Ok(Self {
            side,
            casts,
            schemas: SchemaCache::default(),
        })
    }

    fn target_of(&self, name: &str) -> Option<Target> {
        self.casts
            .iter()
            .find(|(f, _)| f.as_deref() == Some(name))
            .map(|(_, t)| *t)
    }
}

/// The number a value stands for, reading a decimal with its scale.
fn number(schema: Option<&Schema>, value: &Value) -> Option<f64> {
    Some(match value {
        Value::Int8(v) => f64::from(*v),
        Value::Int16(v) => f64::from(*v),
        Value::Int32(v) => f64::from(*v),
        Value::Int64(v) => *v as f64,
        Value::Float32(v) => f64::from(*v),
        Value::Float64(v) => *v,
        Value::Boolean(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().ok()?,
        Value::Bytes(b) => {
            let scale: i32 = schema?.parameters.get("scale")?.parse().ok()?;
            Value::decimal_unscaled(b)? as f64 / 10f64.powi(scale)
        }
        _ => return None,
    })
}

/// An integer value exactly, when it is one (so int64 casts keep every digit).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int8(v) => Some(i64::from(*v)),
        Value::Int16(v) => Some(i64::from(*v)),
        Value::Int32(v) => Some(i64::from(*v)),
        Value::Int64(v) => Some(*v),
        Value::Boolean(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The text of a value, reading a decimal with its scale.
fn text(schema: Option<&Schema>, value: &Value) -> String {
    if let (Value::Bytes(b), Some(scale)) = (
        value,
        schema
            .and_then(|s| s.parameters.get("scale"))
            .and_then(|s| s.parse::<u32>().ok()),
    ) {
        return sluice_connector_api::decimal::decimal_text(b, scale);
    }
    fields::text_of(value)
}

fn cast(schema: Option<&Schema>, value: &Value, target: Target) -> Result<Value, Failure> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let fail = || {
        Failure::new(format!(
            "cannot cast {} to {target:?}",
            fields::describe(value)
        ))
    };
    let as_int = || {
        integer(value)
            .or_else(|| number(schema, value).map(|f| f as i64))
            .ok_or_else(fail)
    };
    Ok(match target {
        Target::Int8 => Value::Int8(as_int()? as i8),
        Target::Int16 => Value::Int16(as_int()? as i16),
        Target::Int32 => Value::Int32(as_int()? as i32),
        Target::Int64 => Value::Int64(as_int()?),
        Target::Float32 => Value::Float32(number(schema, value).ok_or_else(fail)? as f32),
        Target::Float64 => Value::Float64(number(schema, value).ok_or_else(fail)?),
        Target::Boolean => match value {
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Value::Boolean(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Value::Boolean(false),
            _ => Value::Boolean(number(schema, value).ok_or_else(fail)? != 0.0),
        },
        Target::String => Value::String(text(schema, value).into()),
    })
}

impl Transform for Cast {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |_, schema, value| {
            if let [(None, target)] = self.casts.as_slice() {
                let cast_value = cast(schema.as_deref(), &value, *target)?;
                let cast_schema = schema.map(|s| Arc::new(target.schema(s.optional)));
                return Ok((cast_schema, cast_value));
            }
            fields::rewrite_named(
                schema,
                &value,
                &self.schemas,
                |name, field, v| self.target_of(name).map(|t| cast(field, v, t)).transpose(),
                |f| self.target_of(&f.name).map(|t| t.schema(f.schema.optional)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::row_record;
    use sluice_connector_api::SchemaKind;

    #[test]
    fn casts_fields_and_their_schemas() {
        let t = Cast::new(
            Side::Value,
            &Settings::from_pairs("transforms.c.", &[("spec", "id:string,name:int32")]),
        )
        .unwrap();
        let mut r = row_record(42, "7", "a@x");
        let out = t.apply(r.clone()).unwrap().unwrap();
        let schema = out.value_schema.unwrap();
        assert_eq!(schema.fields()[0].schema.kind, SchemaKind::String);
        assert_eq!(schema.fields()[1].schema.kind, SchemaKind::Int32);
        assert!(schema.fields()[1].schema.optional);
        assert_eq!(
            out.value,
            Some(Value::Struct(vec![
                Value::String("42".into()),
                Value::Int32(7),
                Value::String("a@x".into())
            ]))
        );
        r.value = Some(Value::Struct(vec![
            Value::Int32(1),
            Value::String("x".into()),
            Value::Null,
        ]));
        assert!(t.apply(r).is_err(), "\"x\" is not a number");
    }

    #[test]
    fn a_decimal_becomes_text_or_a_double_with_its_scale() {
        let decimal = Arc::new(sluice_connector_api::logical::decimal(2, Some(10)));
        let value = Value::decimal(-12345);
        assert_eq!(
            cast(Some(&decimal), &value, Target::String).unwrap(),
            Value::String("-123.45".into())
        );
        assert_eq!(
            cast(Some(&decimal), &value, Target::Float64).unwrap(),
            Value::Float64(-123.45)
        );
        assert_eq!(
            cast(None, &Value::Int64(300), Target::Int8).unwrap(),
            Value::Int8(44),
            "narrows as Java"
        );
    }

    #[test]
    fn a_bad_spec_names_the_key() {
        let e = Cast::new(
            Side::Value,
            &Settings::from_pairs("transforms.c.", &[("spec", "id:uuid")]),
        )
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.c.spec");
    }
}
