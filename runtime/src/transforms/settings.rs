//! The settings of one transform or predicate alias: `transforms.<alias>.*`
//! (or `predicates.<alias>.*`) with the prefix taken off, read with errors
//! that name the full key the user wrote.

use std::collections::BTreeMap;

use sluice_connector_api::{ConfigError, ConnectorConfig};

/// The keys under one alias.
#[derive(Debug, Clone)]
pub struct Settings {
    prefix: String,
    values: ConnectorConfig,
}

impl Settings {
    /// The keys of `config` under `prefix` (e.g. `transforms.unwrap.`).
    pub fn under(config: &ConnectorConfig, prefix: &str) -> Self {
        let values = config
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.clone())))
            .collect::<BTreeMap<_, _>>();
        Self {
            prefix: prefix.to_owned(),
            values: ConnectorConfig(values),
        }
    }

    /// Settings from literal pairs, for tests and built-in chains.
    pub fn from_pairs(prefix: &str, pairs: &[(&str, &str)]) -> Self {
        Self {
            prefix: prefix.to_owned(),
            values: pairs.iter().copied().collect(),
        }
    }

    /// The full key a user writes for `key`, for error messages.
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A problem with `key`.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.full_key(key), message)
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key)
    }

    /// The value of `key`, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of a key that must be set and not blank.
    pub fn required(&self, key: &str) -> Result<&str, ConfigError> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(self.error(key, "is required by this transform but not set")),
        }
    }

    /// `key` as a comma-separated list, blanks dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.values.list(key)
    }

    /// `key` as a boolean, or `default`.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.error(key, format!("{v:?} is not a boolean; use true or false"))),
        }
    }

    /// `key` as an integer, or `default`.
    pub fn i64_or(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| self.error(key, format!("{v:?} is not an integer"))),
        }
    }

    /// `key`, which must be one of `allowed` (case-insensitive), lower-cased;
    /// `default` when unset.
    pub fn one_of(
        &self,
        key: &str,
        allowed: &[&str],
        default: &str,
    ) -> Result<String, ConfigError> {
        let value = self.get(key).map(str::trim).filter(|v| !v.is_empty());
        let value = value.unwrap_or(default).to_ascii_lowercase();
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(self.error(
                key,
                format!("{value:?} is not one of {}", allowed.join(", ")),
            ))
        }
    }

    /// `key` as a regular expression that must match a whole string, as
    /// Java's `Matcher.matches()` does.
    pub fn whole_regex(&self, key: &str) -> Result<regex_lite::Regex, ConfigError> {
        let pattern = self.required(key)?;
        regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| self.error(key, format!("is not a valid regular expression: {e}")))
    }

    /// The keys set under this alias.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(k, _)| k.as_str())
    }
}
