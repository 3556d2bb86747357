//! Validation of a whole connector config: the keys every connector shares
//! (Connect's "Common" group) plus the plugin's own, in the shape of
//! Connect's `config/validate` response.

use serde::Serialize;
use sluice_connector_api::{ConfigDef, ConfigKey, ConfigType, ConfigValue, ConnectorConfig};

use crate::converter::{self, Side};
use crate::herder::key_fates::{self, Fate};
use crate::plugins::{Plugin, PluginRegistry};
use crate::secrets;
use crate::transforms::Chain;

/// Connect's `config/validate` response.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationReport {
    /// The connector class validated.
    pub name: String,
    /// How many keys have errors.
    pub error_count: usize,
    /// The groups keys are shown under.
    pub groups: Vec<String>,
    /// One entry per defined key.
    pub configs: Vec<ValidatedKey>,
}

/// One key's definition and validation result.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatedKey {
    /// The definition.
    pub definition: KeyDefinition,
    /// The submitted value and its errors.
    pub value: ConfigValue,
}

/// A key's definition as Connect serialises it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyDefinition {
    /// The key.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ConfigType,
    /// Whether it must be set.
    pub required: bool,
    /// Its default.
    pub default_value: Option<String>,
    /// How much it matters.
    pub importance: sluice_connector_api::Importance,
    /// What it does.
    pub documentation: String,
    /// Its group.
    pub group: String,
    /// Display width hint.
    pub width: &'static str,
    /// Display name.
    pub display_name: String,
    /// Keys depending on it.
    pub dependents: Vec<String>,
    /// Position within the group.
    pub order: usize,
}

impl ValidationReport {
    /// Refuses `exactly.once.support=required` on a worker without
    /// exactly-once source delivery (Connect's rule), on that key.
    pub fn check_exactly_once(&mut self, config: &ConnectorConfig, worker_has_it: bool) {
        if worker_has_it || config.get("exactly.once.support").map(str::trim) != Some("required") {
            return;
        }
        if let Some(key) = self
            .configs
            .iter_mut()
            .find(|c| c.value.name == "exactly.once.support")
        {
            if key.value.errors.is_empty() {
                self.error_count += 1;
            }
            key.value.errors.push("this worker does not deliver source records exactly once; start the workers with --exactly-once-source-support=enabled (and --group-id), or set exactly.once.support=requested".into());
        }
    }

    /// Every error, each line naming its key.
    pub fn error_lines(&self) -> Vec<String> {
        self.configs
            .iter()
            .flat_map(|c| {
                c.value
                    .errors
                    .iter()
                    .map(move |e| format!("{}: {e}", c.value.name))
            })
            .collect()
    }
}

fn at_least_minus_one(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<i64>() {
        Ok(v) if v >= -1 => Ok(()),
        _ => Err("must be -1 (no limit) or more".to_owned()),
    }
}

fn at_least_one(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<i64>() {
        Ok(v) if v >= 1 => Ok(()),
        _ => Err("must be at least 1".to_owned()),
    }
}

/// The most tasks one connector may ask for: each is a running task with
/// its own connections, and more than the topic partitions (sinks) or one
/// per log (sources) only idle.
pub const MAX_TASKS: i64 = 256;

fn task_count(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<i64>() {
        Ok(v) if (1..=MAX_TASKS).contains(&v) => Ok(()),
        _ => Err(format!(
            "must be between 1 and {MAX_TASKS}; a sink needs at most one task per partition it reads, a source uses one"
        )),
    }
}

fn no_slash(raw: &str) -> Result<(), String> {
    if raw.contains('/') {
        Err("connector names may not contain '/'".to_owned())
    } else {
        Ok(())
    }
}

/// Connect's default header converter.
const SIMPLE_HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";

fn header_converter(raw: &str) -> Result<(), String> {
    match raw.trim() {
        SIMPLE_HEADER_CONVERTER | "org.apache.kafka.connect.storage.StringConverter" => Ok(()),
        other => Err(format!(
            "{other} is not supported as a header converter; use {SIMPLE_HEADER_CONVERTER} (headers written as text)"
        )),
    }
}

fn transaction_boundary(raw: &str) -> Result<(), String> {
    match raw.trim() {
        "poll" | "interval" => Ok(()),
        "connector" => Err("sluice's connectors do not draw transaction boundaries themselves; use poll (a transaction per batch) or interval".into()),
        other => Err(format!("{other} is not poll or interval")),
    }
}

/// The keys every connector shares, handled by the runtime.
pub fn common_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new("name", ConfigType::String, "Globally unique name for this connector.").required().validator(no_slash))
        .define(ConfigKey::new("connector.class", ConfigType::String, "The connector's class or alias, e.g. io.debezium.connector.postgresql.PostgresConnector or postgres.").required())
        .define(ConfigKey::new("tasks.max", ConfigType::Int, "Most tasks to use for this connector (1 to 256).").default("1").validator(task_count))
        .define(ConfigKey::new("key.converter", ConfigType::Class, "Converter for record keys; the worker's default when unset.").group("Converters"))
        .define(ConfigKey::new("value.converter", ConfigType::Class, "Converter for record values; the worker's default when unset.").group("Converters"))
        .define(ConfigKey::new("header.converter", ConfigType::Class, "How header values are written: org.apache.kafka.connect.storage.SimpleHeaderConverter (Connect's default) or StringConverter, which write the headers sluice and its transforms make (text, numbers and structs as text) the same way.").default(SIMPLE_HEADER_CONVERTER).group("Converters").validator(header_converter))
        .define(ConfigKey::new("transforms", ConfigType::List, "Aliases of the single message transforms to apply, in order; each is configured by transforms.<alias>.type and its own transforms.<alias>.* keys.").default("").group("Transforms"))
        .define(ConfigKey::new("predicates", ConfigType::List, "Aliases of the predicates transforms may name in transforms.<alias>.predicate; each is configured by predicates.<alias>.type and its keys.").default("").group("Predicates"))
        .define(ConfigKey::new("errors.tolerance", ConfigType::String, "none fails the task on a record that cannot be converted or transformed; all skips it (to the dead-letter topic of a sink when one is set) and counts it.").default("none").allowed(&["none", "all"]).group("Error Handling"))
        .define(ConfigKey::new("errors.retry.timeout", ConfigType::Long, "How long (ms) a task keeps restarting after retriable failures (a lost connection) before it stays FAILED; -1 for ever. sluice retries by restarting the task, so this covers every retriable failure.").default("-1").validator(at_least_minus_one).group("Error Handling"))
        .define(ConfigKey::new("errors.retry.delay.max.ms", ConfigType::Long, "The longest wait (ms) between two restarts after retriable failures; the wait doubles from one second up to it.").default("60000").validator(at_least_one).group("Error Handling"))
        .define(ConfigKey::new("errors.max.retries", ConfigType::Int, "Debezium's limit of consecutive restarts after retriable failures before the task stays FAILED: -1 no limit, 0 none.").default("-1").validator(at_least_minus_one).group("Error Handling"))
        .define(ConfigKey::new("errors.log.enable", ConfigType::Boolean, "Log each record skipped under errors.tolerance=all, with its topic, partition, offset and cause.").default("false").group("Error Handling"))
        .define(ConfigKey::new("errors.log.include.messages", ConfigType::Boolean, "With errors.log.enable, also log the skipped record's key and value.").default("false").group("Error Handling"))
        .define(ConfigKey::new("errors.deadletterqueue.topic.name", ConfigType::String, "Sinks: the topic records skipped under errors.tolerance=all go to (created when missing).").group("Error Handling"))
        .define(ConfigKey::new("errors.deadletterqueue.topic.replication.factor", ConfigType::Int, "Replication factor of the dead-letter topic when sluice creates it (-1: the broker's default); the worker's --topic-replication-factor when unset (Connect's 3 cannot be met by a single broker).").group("Error Handling"))
        .define(ConfigKey::new("errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, "Add __connect.errors.* headers (topic, partition, offset, stage, cause) to dead-letter records.").default("false").group("Error Handling"))
        .define(ConfigKey::new("exactly.once.support", ConfigType::String, "Source connectors: requested runs with exactly-once delivery when the worker has it (--exactly-once-source-support=enabled) and without otherwise; required refuses the connector on a worker without it.").default("requested").allowed(&["requested", "required"]).group("Exactly Once Support"))
        .define(ConfigKey::new("transaction.boundary", ConfigType::String, "Source connectors with exactly-once delivery: poll commits each batch the task hands over in a transaction of its own; interval commits every transaction.boundary.interval.ms. (connector, where the connector draws the boundaries, is not offered: sluice's connectors do not.)").default("poll").validator(transaction_boundary).group("Exactly Once Support"))
        .define(ConfigKey::new("transaction.boundary.interval.ms", ConfigType::Long, "With transaction.boundary=interval: how often (ms) the open transaction commits; the worker's offset flush interval when unset.").validator(at_least_one).group("Exactly Once Support"))
        .define(ConfigKey::new("topic.creation.default.partitions", ConfigType::Int, "Partitions of topics this connector creates; the worker's default when unset.").group("Topic Creation").validator(at_least_one))
        .define(ConfigKey::new("topic.creation.default.replication.factor", ConfigType::Int, "Replication factor of topics this connector creates (-1: the broker's default).").group("Topic Creation"))
}

/// Every key a plugin accepts, the common ones first, as Connect's
/// `GET /connector-plugins/{plugin}/config` lists them.
pub fn definitions(plugin: &Plugin) -> Vec<KeyDefinition> {
    let common = common_def();
    let own = plugin.config_def();
    common
        .keys()
        .iter()
        .chain(own.keys())
        .enumerate()
        .map(|(order, key)| definition_of(key, order))
        .collect()
}

fn definition_of(key: &ConfigKey, order: usize) -> KeyDefinition {
    KeyDefinition {
        name: key.name.to_owned(),
        ty: key.ty,
        required: key.required,
        default_value: key.default.map(str::to_owned),
        importance: key.importance,
        documentation: key.documentation.to_owned(),
        group: key.group.to_owned(),
        width: "NONE",
        display_name: key.name.to_owned(),
        dependents: Vec::new(),
        order,
    }
}

/// Validates `config` for `plugin` (common keys, converters, plugin keys).
pub fn validate(
    plugin: &Plugin,
    config: &ConnectorConfig,
    converter_defaults: &std::collections::BTreeMap<String, String>,
) -> ValidationReport {
    let common = common_def();
    let (own_def, mut own_values) = match plugin {
        Plugin::Source(s) => (s.config_def(), s.validate(config)),
        Plugin::Sink(s) => (s.config_def(), s.validate(config)),
    };
    let mut values = common.validate(config);
    for side in [Side::Key, Side::Value] {
        if let Err(e) = converter::build(side, &config.0, converter_defaults) {
            // Every converter sub-setting error is reported on the
            // converter key itself, naming the sub-key in the message.
            let target = side.prefix();
            if let Some(v) = values.iter_mut().find(|v| v.name == target) {
                v.errors.push(format!("{}: {}", e.key, e.message));
            }
        }
    }
    let chain = Chain::from_config(config);
    // Keys sluice knows but does not implement are refused here, by name.
    let refused = config.iter().filter_map(|(key, value)| {
        let defined = common.key(key).is_some() || own_def.key(key).is_some();
        let message = (!defined).then(|| key_fates::refusal(key, value))??;
        Some(sluice_connector_api::ConfigError::new(
            key.as_str(),
            message,
        ))
    });
    let mut key_errors = chain.err().unwrap_or_default();
    key_errors.extend(refused);
    // These keys are in no definition: each error gets its own entry, so
    // the response names exactly the key to fix.
    for e in key_errors {
        match values.iter_mut().find(|v| v.name == e.key) {
            Some(v) => v.errors.push(e.message),
            None => values.push(ConfigValue {
                value: config.get(&e.key).map(str::to_owned),
                name: e.key,
                recommended_values: Vec::new(),
                errors: vec![e.message],
                visible: true,
            }),
        }
    }
    values.append(&mut own_values);
    let defs: Vec<&ConfigKey> = common.keys().iter().chain(own_def.keys()).collect();
    let mut groups: Vec<String> = Vec::new();
    let configs = values
        .into_iter()
        .map(|mut value| {
            if secrets::is_secret_key(&value.name)
                || value.value.as_deref().is_some_and(secrets::is_placeholder)
            {
                value.value = value.value.map(|_| secrets::HIDDEN.to_owned());
            }
            let (order, def) = defs
                .iter()
                .enumerate()
                .find(|(_, k)| k.name == value.name)
                .map(|(i, k)| (i, definition_of(k, i)))
                .unwrap_or_else(|| {
                    let k = ConfigKey::new("", ConfigType::String, "");
                    (
                        0,
                        KeyDefinition {
                            name: value.name.clone(),
                            ..definition_of(&k, 0)
                        },
                    )
                });
            let _ = order;
            if !groups.contains(&def.group) {
                groups.push(def.group.clone());
            }
            ValidatedKey {
                definition: def,
                value,
            }
        })
        .collect::<Vec<_>>();
    ValidationReport {
        name: plugin.info().class.to_owned(),
        error_count: configs
            .iter()
            .filter(|c| !c.value.errors.is_empty())
            .count(),
        groups,
        configs,
    }
}

/// Keys in `config` that neither the runtime nor the plugin defines; kept,
/// and reported as warnings so typos are visible.
pub fn unknown_keys(plugin: &Plugin, config: &ConnectorConfig) -> Vec<String> {
    let own = plugin.config_def();
    let common = common_def();
    // `converters` names prefixes whose keys the connector reads itself.
    let converters: Vec<String> = if own.key("converters").is_some() {
        config
            .list("converters")
            .iter()
            .map(|c| format!("{c}."))
            .collect()
    } else {
        Vec::new()
    };
    config
        .0
        .keys()
        .filter(|k| common.key(k).is_none() && own.key(k).is_none())
        .filter(|k| {
            !k.starts_with("key.converter.")
                && !k.starts_with("value.converter.")
                && !k.starts_with("topic.creation.")
                && !k.starts_with("transforms.")
                && !k.starts_with("producer.override.")
                && !k.starts_with("consumer.override.")
                && !k.starts_with("predicates.")
                && !sluice_connector_api::column_mapping::is_mapping_key(k)
                && !sluice_connector_api::snapshot_select::is_statement_key(k)
                && !converters.iter().any(|c| k.starts_with(c.as_str()))
                && key_fates::fate(k).is_none()
        })
        .cloned()
        .collect()
}

/// Keys in `config` sluice accepts without effect, each with the reason.
pub fn keys_without_effect(config: &ConnectorConfig) -> Vec<(String, &'static str)> {
    config
        .0
        .keys()
        .filter_map(|k| match key_fates::fate(k)? {
            Fate::NoEffect(reason) | Fate::DefaultOnly(_, reason) => Some((k.clone(), reason)),
            Fate::Refused(_) => None,
        })
        .collect()
}

/// Finds the plugin a config names, or explains what is wrong.
pub fn plugin_for(registry: &PluginRegistry, config: &ConnectorConfig) -> Result<Plugin, String> {
    let Some(class) = config.get("connector.class") else {
        return Err("Connector config contains no connector type: set connector.class".to_owned());
    };
    registry.find(class).ok_or_else(|| {
        format!(
            "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
            registry.names().join(", ")
        )
    })
}
