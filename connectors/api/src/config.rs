//! Configuration: the raw key/value map a user submits, and definitions of
//! the keys a connector understands, with validation that names every bad
//! key the way Kafka Connect's `config/validate` endpoint does.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::ConfigError;

/// A connector's configuration as submitted: string keys to string values,
/// as in Kafka Connect (JSON numbers and booleans are stringified by the
/// REST layer before they get here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ConnectorConfig(pub BTreeMap<String, String>);

impl ConnectorConfig {
    /// A config of `key`, `value` pairs (tests, tools).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        pairs.iter().copied().collect()
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value of a required string key.
    pub fn required(&self, key: &str) -> Result<&str, ConfigError> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ConfigError::new(key, "is required but not set")),
        }
    }

    /// `key` parsed as an integer, or `default` when unset.
    pub fn i64_or(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_long(v).map_err(|m| ConfigError::new(key, m)),
        }
    }

    /// `key` parsed as a float, or `default` when unset.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_double(v).map_err(|m| ConfigError::new(key, m)),
        }
    }

    /// `key` parsed as a boolean, or `default` when unset.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).map_err(|m| ConfigError::new(key, m)),
        }
    }

    /// `key` as a comma-separated list with blanks dropped; empty when unset.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Iterates over all keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ConnectorConfig {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The type of a configuration key, with Connect's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean,
    /// Any text.
    String,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    Long,
    /// A floating-point number.
    Double,
    /// A comma-separated list.
    List,
    /// A class name (connector, converter).
    Class,
    /// A secret: never shown by the REST API or logged.
    Password,
}

/// How much a key matters, shown by UIs as Connect does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Importance {
    /// Most users set it.
    High,
    /// Some users set it.
    Medium,
    /// Rarely set.
    Low,
}

/// An extra check on a key's value beyond its type; returns the problem.
pub type Validator = fn(&str) -> Result<(), String>;

/// The definition of one configuration key.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    /// The key, e.g. `database.hostname`.
    pub name: &'static str,
    /// Its type.
    pub ty: ConfigType,
    /// The default; `None` with `required` means the user must set it.
    pub default: Option<&'static str>,
    /// Whether the key must be set.
    pub required: bool,
    /// How much it matters.
    pub importance: Importance,
    /// What it does, in a sentence or two.
    pub documentation: &'static str,
    /// The group it is shown under.
    pub group: &'static str,
    /// The only values accepted (case-insensitive), if restricted.
    pub allowed: &'static [&'static str],
    /// An extra check.
    pub validator: Option<Validator>,
}

impl ConfigKey {
    /// An optional key with no default.
    pub fn new(name: &'static str, ty: ConfigType, documentation: &'static str) -> Self {
        Self {
            name,
            ty,
            default: None,
            required: false,
            importance: Importance::Medium,
            documentation,
            group: "Common",
            allowed: &[],
            validator: None,
        }
    }

    /// The same key, required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self.importance = Importance::High;
        self
    }

    /// The same key with a default.
    pub fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// The same key restricted to `values`.
    pub fn allowed(mut self, values: &'static [&'static str]) -> Self {
        self.allowed = values;
        self
    }

    /// The same key with an extra check.
    pub fn validator(mut self, validator: Validator) -> Self {
        self.validator = Some(validator);
        self
    }

    /// The same key in `group`.
    pub fn group(mut self, group: &'static str) -> Self {
        self.group = group;
        self
    }

    /// The same key with `importance`.
    pub fn importance(mut self, importance: Importance) -> Self {
        self.importance = importance;
        self
    }

    /// Checks one raw value (or its absence) against this definition.
    pub fn check(&self, value: Option<&str>) -> Vec<String> {
        let Some(raw) = value else {
            return if self.required && self.default.is_none() {
                vec![format!(
                    "Missing required configuration \"{}\" which has no default value.",
                    self.name
                )]
            } else {
                Vec::new()
            };
        };
        let typed = match self.ty {
            ConfigType::Boolean => parse_bool(raw).map(|_| ()),
            ConfigType::Int => parse_long(raw).and_then(|v| {
                i32::try_from(v)
                    .map(|_| ())
                    .map_err(|_| format!("Value {raw} is out of range for a 32-bit integer"))
            }),
            ConfigType::Long => parse_long(raw).map(|_| ()),
            ConfigType::Double => parse_double(raw).map(|_| ()),
            ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
                if self.required && raw.trim().is_empty() {
                    Err("Value must not be empty".to_owned())
                } else {
                    Ok(())
                }
            }
        };
        let mut errors = Vec::new();
        if let Err(e) = typed {
            errors.push(format!(
                "Invalid value {raw} for configuration {}: {e}",
                self.name
            ));
            return errors;
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(raw)) {
            errors.push(format!(
                "Invalid value {raw} for configuration {}: must be one of {}",
                self.name,
                self.allowed.join(", ")
            ));
        }
        if let Some(check) = self.validator {
            if let Err(e) = check(raw) {
                errors.push(format!(
                    "Invalid value {raw} for configuration {}: {e}",
                    self.name
                ));
            }
        }
        errors
    }
}

/// The validation result for one key, as Connect's `config/validate` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigValue {
    /// The key.
    pub name: String,
    /// The value as submitted (secrets are hidden by the REST layer).
    pub value: Option<String>,
    /// Values a UI may offer.
    pub recommended_values: Vec<String>,
    /// Every problem with the value.
    pub errors: Vec<String>,
    /// Whether a UI should show it.
    pub visible: bool,
}

/// Adds errors of rules across keys to the validation results of the key
/// each names (once each), so they show beside the per-key errors; a key
/// with no fixed name (`column.mask.with.<n>.chars`) gets an entry of its
/// own.
pub fn attach_errors(
    values: &mut Vec<ConfigValue>,
    errors: impl IntoIterator<Item = crate::error::ConfigError>,
) {
    for e in errors {
        match values.iter_mut().find(|v| v.name == e.key) {
            Some(v) if v.errors.contains(&e.message) => {}
            Some(v) => v.errors.push(e.message),
            None => values.push(ConfigValue {
                name: e.key.clone(),
                value: None,
                recommended_values: Vec::new(),
                errors: vec![e.message],
                visible: true,
            }),
        }
    }
}

/// The set of keys a connector understands.
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

impl ConfigDef {
    /// An empty definition.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same definition with one more key.
    pub fn define(mut self, key: ConfigKey) -> Self {
        self.keys.push(key);
        self
    }

    /// The same definition with all keys of `other` appended.
    pub fn merge(mut self, other: ConfigDef) -> Self {
        self.keys.extend(other.keys);
        self
    }

    /// The keys, in definition order.
    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    /// The definition of `name`.
    pub fn key(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Checks `config` against every key: one result per defined key.
    pub fn validate(&self, config: &ConnectorConfig) -> Vec<ConfigValue> {
        self.keys
            .iter()
            .map(|key| {
                let value = config.get(key.name);
                ConfigValue {
                    name: key.name.to_owned(),
                    value: value.map(str::to_owned).or(key.default.map(str::to_owned)),
                    recommended_values: key.allowed.iter().map(|s| (*s).to_owned()).collect(),
                    errors: key.check(value),
                    visible: true,
                }
            })
            .collect()
    }

    /// The first problem in `config` as an error, for code paths (task
    /// start) that must refuse a config the REST layer would have rejected.
    pub fn check(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        for value in self.validate(config) {
            if let Some(e) = value.errors.into_iter().next() {
                return Err(ConfigError::new(value.name, e));
            }
        }
        Ok(())
    }
}

impl ConfigDef {
    /// `config` read through this definition: every key's default is the
    /// one declared with it, never repeated where the key is read.
    pub fn read<'a>(&'a self, config: &'a ConnectorConfig) -> Settings<'a> {
        Settings { def: self, config }
    }
}

/// A connector's config read against its [`ConfigDef`]. Reading a key the
/// definition does not declare is an error naming it (a connector bug that
/// any test of its config finds), so a default cannot hide outside the
/// declaration.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    def: &'a ConfigDef,
    config: &'a ConnectorConfig,
}

impl<'a> Settings<'a> {
    /// The value set, else the declared default.
    fn value(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        let declared = self.def.key(key).ok_or_else(|| {
            ConfigError::new(
                key,
                "is read by the connector but not declared in its configuration definition (a bug: declare it with its default)",
            )
        })?;
        Ok(self.config.get(key).or(declared.default))
    }

    /// The value (trimmed) or the default; empty when neither.
    pub fn text(&self, key: &str) -> Result<String, ConfigError> {
        Ok(self.value(key)?.unwrap_or_default().trim().to_owned())
    }

    /// The value (trimmed) or the default, `None` when that is empty.
    pub fn optional(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let text = self.text(key)?;
        Ok((!text.is_empty()).then_some(text))
    }

    /// The value of a key that must be set (and not blank).
    pub fn required(&self, key: &str) -> Result<String, ConfigError> {
        self.optional(key)?
            .ok_or_else(|| ConfigError::new(key, "is required but not set"))
    }

    /// The value or the default as an integer.
    pub fn long(&self, key: &str) -> Result<i64, ConfigError> {
        match self.value(key)? {
            Some(v) => parse_long(v).map_err(|m| ConfigError::new(key, m)),
            None => Err(ConfigError::new(key, "is required but not set")),
        }
    }

    /// The value or the default as a number.
    pub fn double(&self, key: &str) -> Result<f64, ConfigError> {
        match self.value(key)? {
            Some(v) => parse_double(v).map_err(|m| ConfigError::new(key, m)),
            None => Err(ConfigError::new(key, "is required but not set")),
        }
    }

    /// The value or the default as a count of at least one.
    pub fn count(&self, key: &str) -> Result<usize, ConfigError> {
        Ok(usize::try_from(self.long(key)?.max(1)).unwrap_or(usize::MAX))
    }

    /// The value or the default as milliseconds (negative counts as 0).
    pub fn millis(&self, key: &str) -> Result<std::time::Duration, ConfigError> {
        Ok(std::time::Duration::from_millis(
            u64::try_from(self.long(key)?).unwrap_or(0),
        ))
    }

    /// The value or the default as a boolean.
    pub fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        match self.value(key)? {
            Some(v) => parse_bool(v).map_err(|m| ConfigError::new(key, m)),
            None => Err(ConfigError::new(key, "is required but not set")),
        }
    }

    /// The value or the default as a comma-separated list, blanks dropped.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .value(key)?
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("Expected value to be either true or false".to_owned()),
    }
}

fn parse_long(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse()
        .map_err(|_| "Not a number of type LONG".to_owned())
}

fn parse_double(raw: &str) -> Result<f64, String> {
    raw.trim()
        .parse()
        .map_err(|_| "Not a number of type DOUBLE".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new("topic", ConfigType::String, "Where to write.").required())
            .define(ConfigKey::new("rate", ConfigType::Long, "Per second.").default("10"))
            .define(
                ConfigKey::new("mode", ConfigType::String, "How.")
                    .default("a")
                    .allowed(&["a", "b"]),
            )
    }

    fn errors_of(config: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        let config: ConnectorConfig = config.iter().copied().collect();
        def()
            .validate(&config)
            .into_iter()
            .map(|v| (v.name, v.errors))
            .collect()
    }

    #[test]
    fn missing_required_key_is_named() {
        let errors = errors_of(&[]);
        assert_eq!(
            errors["topic"],
            vec!["Missing required configuration \"topic\" which has no default value."]
        );
        assert!(errors["rate"].is_empty());
    }

    #[test]
    fn wrong_type_and_disallowed_value_are_reported() {
        let errors = errors_of(&[("topic", "t"), ("rate", "fast"), ("mode", "c")]);
        assert!(
            errors["rate"][0].contains("Not a number of type LONG"),
            "{errors:?}"
        );
        assert!(
            errors["mode"][0].contains("must be one of a, b"),
            "{errors:?}"
        );
    }

    #[test]
    fn settings_take_defaults_from_the_declaration_and_refuse_undeclared_keys() {
        let def = def();
        let config = ConnectorConfig::from_pairs(&[("rate", " 7 "), ("mode", "b")]);
        let settings = def.read(&config);
        assert_eq!(settings.long("rate").expect("set"), 7);
        assert_eq!(settings.text("mode").expect("set"), "b");
        let empty = ConnectorConfig::default();
        let defaults = def.read(&empty);
        assert_eq!(defaults.long("rate").expect("declared default"), 10);
        assert_eq!(defaults.text("mode").expect("declared default"), "a");
        assert_eq!(defaults.optional("topic").expect("declared"), None);
        assert_eq!(defaults.required("topic").expect_err("unset").key, "topic");
        let undeclared = defaults.text("nowhere").expect_err("undeclared");
        assert_eq!(undeclared.key, "nowhere");
        assert!(
            undeclared.to_string().contains("not declared"),
            "{undeclared}"
        );
        let bad = ConnectorConfig::from_pairs(&[("rate", "x")]);
        assert_eq!(
            def.read(&bad).long("rate").expect_err("not a number").key,
            "rate"
        );
    }

    #[test]
    fn typed_getters_use_defaults_and_name_the_key() {
        let config: ConnectorConfig = [("rate", "x")].into_iter().collect();
        assert_eq!(config.i64_or("other", 5), Ok(5));
        assert_eq!(
            config.i64_or("rate", 5).map_err(|e| e.key),
            Err("rate".to_owned())
        );
        assert_eq!(config.list("missing"), Vec::<String>::new());
    }
}

/// Validators shared by connectors for settings that size memory or
/// threads: a value far beyond any use is refused at validation rather
/// than aborting the worker when it allocates.
pub mod bounds {
    /// The most readers a snapshot may use.
    pub const MAX_THREADS: i64 = 64;
    /// The most records (or rows) in one batch.
    pub const MAX_BATCH: i64 = 1_000_000;

    fn between(raw: &str, max: i64) -> Result<(), String> {
        match raw.trim().parse::<i64>() {
            Ok(v) if (1..=max).contains(&v) => Ok(()),
            _ => Err(format!("must be a whole number from 1 to {max}")),
        }
    }

    /// A thread count: 1 to [`MAX_THREADS`].
    pub fn threads(raw: &str) -> Result<(), String> {
        between(raw, MAX_THREADS)
    }

    /// A batch or queue size: 1 to [`MAX_BATCH`].
    pub fn batch(raw: &str) -> Result<(), String> {
        between(raw, MAX_BATCH)
    }

    /// A byte count: 0 (none) or more.
    pub fn bytes(raw: &str) -> Result<(), String> {
        match raw.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Ok(()),
            _ => Err("must be a whole number of bytes, 0 or more (0: no byte bound)".into()),
        }
    }
}
