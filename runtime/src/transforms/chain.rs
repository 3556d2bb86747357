//! The configured list of transforms, built from `transforms` /
//! `predicates` and applied in order. An empty chain is the common case
//! and costs one branch per record.

use sluice_connector_api::{ConfigError, ConnectorConfig};

use super::settings::Settings;
use super::{catalog, Predicate, Record, Transform, TransformError};

/// A predicate guarding one step.
struct Guard {
    predicate: Box<dyn Predicate>,
    negate: bool,
}

/// One configured transform.
struct Step {
    alias: String,
    class: String,
    transform: Box<dyn Transform>,
    guard: Option<Guard>,
}

/// The transforms of one connector, in order.
#[derive(Default)]
pub struct Chain {
    steps: Vec<Step>,
}

impl Chain {
    /// Builds the chain a connector config asks for; every problem names
    /// the key to fix.
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut steps = Vec::new();
        let predicate_aliases = config.list("predicates");
        for alias in config.list("transforms") {
            let settings = Settings::under(config, &format!("transforms.{alias}."));
            let Some(class) = settings
                .get("type")
                .map(str::trim)
                .filter(|c| !c.is_empty())
            else {
                errors.push(settings.error(
                    "type",
                    format!(
                        "transform {alias} is listed in transforms but has no type (its class)"
                    ),
                ));
                continue;
            };
            let transform = match catalog::transform(class, &settings) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let guard = match settings
                .get("predicate")
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                None => None,
                Some(name) => match build_predicate(config, &predicate_aliases, name, &settings) {
                    Ok(predicate) => match settings.bool_or("negate", false) {
                        Ok(negate) => Some(Guard { predicate, negate }),
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    },
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
            };
            steps.push(Step {
                alias,
                class: class.to_owned(),
                transform,
                guard,
            });
        }
        if errors.is_empty() {
            Ok(Self { steps })
        } else {
            Err(errors)
        }
    }

    /// Whether no transform is configured.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies every step in order; `None` when a step dropped the record.
    pub fn apply(&self, mut record: Record) -> Result<Option<Record>, TransformError> {
        // Transforms match and change values in place: they get them
        // plain, never one shared with other records.
        if !self.steps.is_empty() {
            record
                .key
                .iter_mut()
                .for_each(sluice_connector_api::Value::unshare);
            record
                .value
                .iter_mut()
                .for_each(sluice_connector_api::Value::unshare);
        }
        for step in &self.steps {
            if let Some(guard) = &step.guard {
                if guard.predicate.test(&record) == guard.negate {
                    continue;
                }
            }
            match step.transform.apply(record) {
                Ok(Some(next)) => record = next,
                Ok(None) => return Ok(None),
                Err(failure) => {
                    return Err(TransformError {
                        alias: step.alias.clone(),
                        class: step.class.clone(),
                        message: failure.0,
                    })
                }
            }
        }
        Ok(Some(record))
    }
}

fn build_predicate(
    config: &ConnectorConfig,
    declared: &[String],
    name: &str,
    step: &Settings,
) -> Result<Box<dyn Predicate>, ConfigError> {
    if !declared.iter().any(|d| d == name) {
        return Err(step.error(
            "predicate",
            format!("names predicate {name}, which is not listed in predicates"),
        ));
    }
    let settings = Settings::under(config, &format!("predicates.{name}."));
    let class = settings.required("type")?;
    catalog::predicate(class, &settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{record_on, row_record};

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn no_transforms_is_an_empty_chain() {
        let chain = Chain::from_config(&config(&[])).unwrap();
        assert!(chain.is_empty());
        let r = row_record(1, "a", "b");
        assert_eq!(chain.apply(r.clone()).unwrap(), Some(r));
    }

    #[test]
    fn steps_apply_in_order() {
        let chain = Chain::from_config(&config(&[
            ("transforms", "route,insert"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", r"db\.inventory\.(.*)"),
            ("transforms.route.replacement", "$1"),
            ("transforms.insert.type", "InsertField$Value"),
            ("transforms.insert.topic.field", "t"),
        ]))
        .unwrap();
        let out = chain.apply(row_record(1, "a", "b")).unwrap().unwrap();
        assert_eq!(out.topic, "customers");
        let Some(sluice_connector_api::Value::Struct(values)) = out.value else {
            panic!()
        };
        // InsertField ran after the router: it saw the new topic.
        assert_eq!(
            values[3],
            sluice_connector_api::Value::String("customers".into())
        );
    }

    /// A snapshot row's `source` block is shared with its table's other
    /// rows; a transform reading it (here `add.fields`) finds it as if it
    /// were the row's own, and the other rows' copy is left alone.
    #[test]
    fn transforms_read_a_shared_source_block_as_a_plain_one() {
        use crate::transforms::record::tests_support::envelope_with;
        use sluice_connector_api::{Field, Schema, Value};
        let source_schema = Schema::structure(
            "io.debezium.connector.mysql.Source",
            vec![Field::new("table", Schema::string())],
        );
        let block = std::sync::Arc::new(Value::Struct(vec![Value::from("customers")]));
        let mut record = row_record(1, "a", "b");
        record.value_schema = Some(envelope_with(vec![
            Field::new("source", source_schema),
            Field::new("op", Schema::string()),
        ]));
        record.value = Some(Value::Struct(vec![
            Value::Null,
            crate::transforms::record::tests_support::row(1, "a", "b"),
            Value::Shared(std::sync::Arc::clone(&block)),
            Value::from("r"),
        ]));
        let chain = Chain::from_config(&config(&[
            ("transforms", "unwrap"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            ("transforms.unwrap.add.fields", "table"),
        ]))
        .unwrap();
        let out = chain.apply(record).unwrap().unwrap();
        let Some(Value::Struct(values)) = out.value else {
            panic!("{:?}", out.value)
        };
        assert_eq!(values.last(), Some(&Value::from("customers")));
        assert_eq!(std::sync::Arc::strong_count(&block), 1);
    }

    #[test]
    fn a_filter_with_a_negated_predicate_keeps_only_matching_topics() {
        let chain = Chain::from_config(&config(&[
            ("transforms", "keep"),
            (
                "transforms.keep.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.keep.predicate", "isOrders"),
            ("transforms.keep.negate", "true"),
            ("predicates", "isOrders"),
            (
                "predicates.isOrders.type",
                "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            ),
            ("predicates.isOrders.pattern", ".*orders"),
        ]))
        .unwrap();
        assert!(chain
            .apply(record_on("db.public.orders"))
            .unwrap()
            .is_some());
        assert!(chain
            .apply(record_on("db.public.customers"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn tombstones_can_be_dropped_by_predicate() {
        let chain = Chain::from_config(&config(&[
            ("transforms", "noTombstones"),
            ("transforms.noTombstones.type", "Filter"),
            ("transforms.noTombstones.predicate", "tomb"),
            ("predicates", "tomb"),
            ("predicates.tomb.type", "RecordIsTombstone"),
        ]))
        .unwrap();
        assert!(chain.apply(record_on("t")).unwrap().is_none());
        assert!(chain.apply(row_record(1, "a", "b")).unwrap().is_some());
    }

    #[test]
    fn every_config_problem_names_its_key() {
        let errors = Chain::from_config(&config(&[
            ("transforms", "a,b,c,d"),
            ("transforms.b.type", "com.example.Nope"),
            (
                "transforms.c.type",
                "io.debezium.transforms.TimezoneConverter",
            ),
            ("transforms.d.type", "Filter"),
            ("transforms.d.predicate", "undeclared"),
        ]))
        .err()
        .unwrap();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "transforms.a.type",
                "transforms.b.type",
                "transforms.c.type",
                "transforms.d.predicate"
            ]
        );
        assert!(
            errors[2].message.contains("not supported"),
            "{}",
            errors[2].message
        );
    }

    #[test]
    fn a_failing_step_is_named_in_the_error() {
        let chain = Chain::from_config(&config(&[
            ("transforms", "key"),
            ("transforms.key.type", "ValueToKey"),
            ("transforms.key.fields", "missing"),
        ]))
        .unwrap();
        let e = chain.apply(row_record(1, "a", "b")).err().unwrap();
        assert_eq!(e.alias, "key");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
