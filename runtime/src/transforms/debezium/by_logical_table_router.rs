//! `io.debezium.transforms.ByLogicalTableRouter`: sends the changes of
//! several physical tables (shards) to one logical topic. Topics matching
//! `topic.regex` are renamed with `topic.replacement`; the schemas follow
//! the new name (`<topic>.Key`, `<topic>.Envelope`, `<topic>.Value`) so
//! the shards share registry subjects; with `key.enforce.uniqueness`
//! (default true) the key gains a field (`key.field.name`, default
//! `__dbz__physicalTableIdentifier`) naming the physical table, so rows of
//! different shards with the same key stay apart.

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Field, Schema, Value};

use crate::transforms::connect::regex_router::java_replacement;
use crate::transforms::fields::{self, struct_like};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct ByLogicalTableRouter {
    topic_regex: regex_lite::Regex,
    topic_replacement: String,
    unique_keys: bool,
    key_field: String,
    key_rewrite: Option<(regex_lite::Regex, String)>,
    keys: SchemaCache,
    values: SchemaCache,
}

impl ByLogicalTableRouter {
    /// Reads `topic.regex`, `topic.replacement`, `key.enforce.uniqueness`,
    /// `key.field.name`, `key.field.regex` and `key.field.replacement`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let key_rewrite = match settings
            .get("key.field.regex")
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            None => None,
            Some(_) => Some((
                settings.whole_regex("key.field.regex")?,
                java_replacement(settings.required("key.field.replacement")?),
            )),
        };
        Ok(Self {
            topic_regex: settings.whole_regex("topic.regex")?,
            topic_replacement: java_replacement(settings.required("topic.replacement")?),
            unique_keys: settings.bool_or("key.enforce.uniqueness", true)?,
            key_field: settings
                .get_or("key.field.name", "__dbz__physicalTableIdentifier")
                .to_owned(),
            key_rewrite,
            keys: SchemaCache::default(),
            values: SchemaCache::default(),
        })
    }

    /// What the key's added field says for a record of `topic`.
    fn physical_id(&self, topic: &str) -> String {
        match &self.key_rewrite {
            Some((regex, replacement)) if regex.is_match(topic) => {
                regex.replace(topic, replacement.as_str()).into_owned()
            }
            _ => topic.to_owned(),
        }
    }
}

/// `schema` renamed to `name` (kept optional or not).
fn renamed(schema: &Schema, name: String) -> Schema {
    let mut copy = schema.clone();
    copy.name = Some(name);
    copy
}

impl Transform for ByLogicalTableRouter {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        if !self.topic_regex.is_match(&record.topic) {
            return Ok(Some(record));
        }
        let logical = self
            .topic_regex
            .replace(&record.topic, self.topic_replacement.as_str())
            .into_owned();
        let physical = std::mem::replace(&mut record.topic, logical.as_str().into());
        if let (Some(schema), Some(key)) = (record.key_schema.take(), record.key.take()) {
            let mut values = fields::struct_values(&schema, &key)?.to_vec();
            let key_schema = self.keys.get_or(&schema, |s| {
                let mut fields = s.fields().to_vec();
                if self.unique_keys {
                    fields.push(Field::new(self.key_field.clone(), Schema::string()));
                }
                Ok::<_, Failure>(renamed(&struct_like(s, fields), format!("{logical}.Key")))
            })?;
            if self.unique_keys {
                values.push(Value::String(self.physical_id(&physical).into()));
            }
            record.key_schema = Some(key_schema);
            record.key = Some(Value::Struct(values));
        }
        if let Some(envelope) = record.value_schema.take() {
            let value_schema = self.values.get_or(&envelope, |e| {
                let row_name = format!("{logical}.Value");
                let fields = e
                    .fields()
                    .iter()
                    .map(|f| match f.name.as_str() {
                        "before" | "after" => Field {
                            name: f.name.clone(),
                            schema: Arc::new(renamed(&f.schema, row_name.clone())),
                        },
                        _ => f.clone(),
                    })
                    .collect();
                let name = if e.field("op").is_some() {
                    format!("{logical}.Envelope")
                } else {
                    e.name.clone().unwrap_or_default()
                };
                Ok::<_, Failure>(renamed(&struct_like(e, fields), name))
            })?;
            record.value_schema = Some(value_schema);
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{envelope_with, row, row_record};

    fn router(pairs: &[(&str, &str)]) -> ByLogicalTableRouter {
        ByLogicalTableRouter::new(&Settings::from_pairs("transforms.shards.", pairs)).unwrap()
    }

    #[test]
    fn shards_share_a_topic_schemas_and_keep_their_keys_apart() {
        let t = router(&[
            ("topic.regex", r"(.*)\.inventory\.customers_shard(.*)"),
            ("topic.replacement", "$1.inventory.customers_all"),
        ]);
        let mut record = row_record(7, "a", "b");
        record.topic = "db.inventory.customers_shard2".into();
        record.value_schema = Some(envelope_with(vec![Field::new("op", Schema::string())]));
        record.value = Some(Value::Struct(vec![
            Value::Null,
            row(7, "a", "b"),
            Value::String("c".into()),
        ]));
        let out = t.apply(record).unwrap().unwrap();
        assert_eq!(out.topic, "db.inventory.customers_all");
        let key_schema = out.key_schema.unwrap();
        assert_eq!(
            key_schema.name.as_deref(),
            Some("db.inventory.customers_all.Key")
        );
        assert_eq!(
            out.key,
            Some(Value::Struct(vec![
                Value::Int32(7),
                Value::String("db.inventory.customers_shard2".into())
            ]))
        );
        let value_schema = out.value_schema.unwrap();
        assert_eq!(
            value_schema.name.as_deref(),
            Some("db.inventory.customers_all.Envelope")
        );
        assert_eq!(
            value_schema
                .field("after")
                .unwrap()
                .1
                .schema
                .name
                .as_deref(),
            Some("db.inventory.customers_all.Value")
        );
    }

    #[test]
    fn other_topics_pass_and_uniqueness_can_be_off() {
        let t = router(&[
            ("topic.regex", "x"),
            ("topic.replacement", "y"),
            ("key.enforce.uniqueness", "false"),
        ]);
        let record = row_record(1, "a", "b");
        assert_eq!(t.apply(record.clone()).unwrap(), Some(record));
        let mut on_x = row_record(1, "a", "b");
        on_x.topic = "x".into();
        let out = t.apply(on_x).unwrap().unwrap();
        assert_eq!(out.key, Some(Value::Struct(vec![Value::Int32(1)])));
    }
}
