//! The connector plugins this binary ships, found by class name or alias.

use std::sync::Arc;

use sluice_connector_api::{PluginInfo, SinkConnector, SourceConnector};

/// A registered plugin of either kind.
#[derive(Clone)]
pub enum Plugin {
    /// A source connector.
    Source(Arc<dyn SourceConnector>),
    /// A sink connector.
    Sink(Arc<dyn SinkConnector>),
}

impl Plugin {
    /// The plugin's identity.
    pub fn info(&self) -> PluginInfo {
        match self {
            Self::Source(s) => s.info(),
            Self::Sink(s) => s.info(),
        }
    }

    /// The plugin's own configuration keys (the shared ones are the runtime's).
    pub fn config_def(&self) -> sluice_connector_api::ConfigDef {
        match self {
            Self::Source(s) => s.config_def(),
            Self::Sink(s) => s.config_def(),
        }
    }
}

/// Every plugin the worker can run.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: Vec<Plugin>,
}

impl PluginRegistry {
    /// The plugins built into sluice. Adding a connector crate is one line here.
    pub fn builtin() -> Self {
        Self::default()
            .with_source(Arc::new(sluice_datagen::DatagenConnector))
            .with_source(Arc::new(sluice_mysql::MySqlConnector))
            .with_source(Arc::new(sluice_postgres::PostgresConnector))
            .with_sink(Arc::new(sluice_jdbc_sink::JdbcSinkConnector))
    }

    /// The same registry with one more source connector.
    pub fn with_source(mut self, connector: Arc<dyn SourceConnector>) -> Self {
        self.plugins.push(Plugin::Source(connector));
        self
    }

    /// The same registry with one more sink connector.
    pub fn with_sink(mut self, connector: Arc<dyn SinkConnector>) -> Self {
        self.plugins.push(Plugin::Sink(connector));
        self
    }

    /// The plugin answering to `class` (full class name or alias).
    pub fn find(&self, class: &str) -> Option<Plugin> {
        let class = class.trim();
        self.plugins
            .iter()
            .find(|p| p.info().answers_to(class))
            .cloned()
    }

    /// Every plugin's identity.
    pub fn infos(&self) -> Vec<PluginInfo> {
        self.plugins.iter().map(Plugin::info).collect()
    }

    /// The class names and aliases, for "did you mean" messages.
    pub fn names(&self) -> Vec<String> {
        self.infos()
            .into_iter()
            .flat_map(|i| std::iter::once(i.class).chain(i.aliases.iter().copied()))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagen_is_found_by_alias_and_class() {
        let registry = PluginRegistry::builtin();
        assert!(registry.find("datagen").is_some());
        assert!(registry
            .find("io.sluice.connector.datagen.DatagenConnector")
            .is_some());
        assert!(registry.find("nope").is_none());
    }
}
