//! What a connector plugin says about itself.

use serde::Serialize;

/// Whether a plugin reads into Kafka or writes out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Reads an external system into topics.
    Source,
    /// Writes topics into an external system.
    Sink,
}

impl PluginKind {
    /// The lowercase name used by the REST API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Sink => "sink",
        }
    }
}

/// The identity of a connector plugin as the REST API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The fully qualified class, e.g.
    /// `io.debezium.connector.postgresql.PostgresConnector`, so Debezium
    /// configs work unchanged.
    pub class: &'static str,
    /// Short names also accepted in `connector.class`, e.g. `postgres`.
    pub aliases: &'static [&'static str],
    /// Source or sink.
    pub kind: PluginKind,
    /// The plugin version.
    pub version: &'static str,
}

impl PluginInfo {
    /// Whether `name` is this plugin's class or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.class == name || self.aliases.contains(&name)
    }
}
