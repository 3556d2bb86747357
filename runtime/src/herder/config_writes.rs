//! Connector configs written through the REST API: validated (plugin,
//! placeholders, client overrides) before anything is stored, then stored
//! and applied.

use std::collections::BTreeMap;

use sluice_connector_api::ConnectorConfig;

use super::lifecycle::stop_tasks;
use super::validation::{self, ValidationReport};
use super::ConnectorInfo;
use super::{Herder, HerderError};
use crate::plugins::Plugin;
use crate::secrets;
use crate::store::{StoredConnector, TargetState};

impl Herder {
    /// Validates a config for the plugin it names.
    pub fn validate(&self, config: &ConnectorConfig) -> Result<ValidationReport, HerderError> {
        let plugin =
            validation::plugin_for(&self.plugins, config).map_err(HerderError::BadRequest)?;
        Ok(self.report(&plugin, config))
    }

    /// The validation report of `config` for `plugin` on this worker.
    pub(super) fn report(&self, plugin: &Plugin, config: &ConnectorConfig) -> ValidationReport {
        let mut report = validation::validate(plugin, config, &self.deps.converter_defaults);
        if matches!(plugin, Plugin::Source(_)) {
            report.check_exactly_once(config, self.deps.exactly_once.is_some());
        }
        report
    }

    fn check(&self, config: &ConnectorConfig) -> Result<Plugin, HerderError> {
        let plugin =
            validation::plugin_for(&self.plugins, config).map_err(HerderError::BadRequest)?;
        let report = self.report(&plugin, config);
        let refused = self.deps.providers.check(&config.0);
        let client = match &plugin {
            Plugin::Source(_) => crate::kafka::overrides::Client::Producer,
            Plugin::Sink(_) => crate::kafka::overrides::Client::Consumer,
        };
        let overrides =
            crate::kafka::overrides::overrides(config, client, self.deps.override_policy).err();
        if report.error_count > 0 || !refused.is_empty() || overrides.is_some() {
            let mut errors = report.error_lines();
            errors.extend(refused.iter().map(ToString::to_string));
            errors.extend(overrides.iter().map(ToString::to_string));
            return Err(HerderError::InvalidConfig {
                class: report.name.clone(),
                errors,
            });
        }
        for key in validation::unknown_keys(&plugin, config) {
            tracing::warn!(connector = config.get("name").unwrap_or(""), key = %key, "unknown config key kept; check it for typos");
        }
        for (key, reason) in validation::keys_without_effect(config) {
            tracing::warn!(connector = config.get("name").unwrap_or(""), key = %key, reason, "config key accepted without effect");
        }
        Ok(plugin)
    }

    /// Stores a connector's config and target state (called with the
    /// connectors locked).
    pub(super) fn store_config(&self, stored: &StoredConnector) -> Result<(), HerderError> {
        self.config_writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(self.configs.put(stored)?)
    }

    /// Removes a connector's config (called with the connectors locked).
    fn remove_config(&self, name: &str) -> Result<(), HerderError> {
        self.config_writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(self.configs.remove(name)?)
    }

    /// Creates a connector; fails if the name is taken.
    pub async fn create(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        initial_state: TargetState,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut connectors = self.connectors.lock().await;
        if connectors.contains_key(name) {
            return Err(HerderError::AlreadyExists(name.to_owned()));
        }
        let config = with_name(name, config)?;
        self.check(&ConnectorConfig(config.clone()))?;
        let stored = StoredConnector {
            name: name.to_owned(),
            config,
            // Connect 3.5's initial_state: STOPPED lets offsets be seeded
            // before the first run.
            target_state: initial_state,
        };
        self.store_config(&stored)?;
        tracing::info!(connector = %name, "connector created");
        let entry = self.launch(stored);
        let info = self.info_of(&entry);
        connectors.insert(name.to_owned(), entry);
        Ok(info)
    }

    /// Creates or reconfigures a connector; true if it was created.
    pub async fn put_config(
        &self,
        name: &str,
        mut config: BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let previous = connectors.get(name).map(|e| e.stored.clone());
        if let Some(previous) = &previous {
            secrets::restore_hidden(&mut config, &previous.config)
                .map_err(HerderError::BadRequest)?;
        }
        let config = with_name(name, config)?;
        self.check(&ConnectorConfig(config.clone()))?;
        if let Some(entry) = connectors.get(name) {
            if entry.stored.config == config {
                // Connect does not restart anything for an unchanged config.
                return Ok((false, self.info_of(entry)));
            }
        }
        let stored = StoredConnector {
            name: name.to_owned(),
            config,
            target_state: previous
                .as_ref()
                .map_or(TargetState::Started, |p| p.target_state),
        };
        self.store_config(&stored)?;
        if let Some(mut old) = connectors.remove(name) {
            stop_tasks(&mut old.tasks).await;
            tracing::info!(connector = %name, "connector reconfigured; tasks restarted with the new config");
        } else {
            tracing::info!(connector = %name, "connector created");
        }
        let entry = self.launch(stored);
        let info = self.info_of(&entry);
        connectors.insert(name.to_owned(), entry);
        Ok((previous.is_none(), info))
    }

    /// Connect 3.6's `PATCH /connectors/{name}/config`: the given keys are
    /// set, keys given as `None` (JSON null) removed, the rest kept.
    pub async fn patch_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut config = {
            let connectors = self.connectors.lock().await;
            let entry = connectors
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
            entry.stored.config.clone()
        };
        for (key, value) in patch {
            match value {
                Some(v) => config.insert(key, v),
                None => config.remove(&key),
            };
        }
        // A concurrent delete in between makes this a create, as a PUT
        // racing a delete would be in Connect.
        Ok(self.put_config(name, config).await?.1)
    }

    /// Stops and forgets a connector (its offsets stay, as in Connect).
    pub async fn delete(&self, name: &str) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let mut entry = connectors
            .remove(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        stop_tasks(&mut entry.tasks).await;
        self.remove_config(name)?;
        self.deps.status.remove(name);
        self.deps.metrics.remove_connector(name);
        self.deps
            .active_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        tracing::info!(connector = %name, "connector deleted");
        Ok(())
    }
}

/// `config` with `name` set, refusing a mismatching `name` inside it.
fn with_name(
    name: &str,
    mut config: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, HerderError> {
    match config.get("name") {
        Some(inner) if inner != name => Err(HerderError::BadRequest(format!(
            "Connector name configuration ({inner}) doesn't match connector name in the URL ({name})"
        ))),
        _ => {
            config.insert("name".to_owned(), name.to_owned());
            Ok(config)
        }
    }
}
