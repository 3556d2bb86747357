//! Per-connector Kafka client settings, as Connect's
//! `producer.override.*` / `consumer.override.*` keys give them, under the
//! worker's `connector.client.config.override.policy` (None, Principal,
//! All; Connect's default All). The settings that make delivery safe and
//! offsets exact are never overridable, whatever the policy.

use std::collections::BTreeMap;

use sluice_connector_api::{ConfigError, ConnectorConfig};

use super::security;

/// Which overrides the worker allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverridePolicy {
    /// No override at all.
    None,
    /// Only the client's identity: `security.protocol`, `sasl.mechanism`,
    /// `sasl.jaas.config`.
    Principal,
    /// Anything but the safety settings.
    #[default]
    All,
}

impl OverridePolicy {
    /// The policy named as in Connect (`None`, `Principal`, `All`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "principal" => Some(Self::Principal),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// Which client an override is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A source connector's producer.
    Producer,
    /// A sink task's consumer.
    Consumer,
}

impl Client {
    fn prefix(self) -> &'static str {
        match self {
            Self::Producer => "producer.override.",
            Self::Consumer => "consumer.override.",
        }
    }

    /// Settings sluice's guarantees rest on.
    fn protected(self) -> &'static [&'static str] {
        match self {
            Self::Producer => &[
                "enable.idempotence",
                "acks",
                "max.in.flight.requests.per.connection",
                "transactional.id",
            ],
            Self::Consumer => &[
                "enable.auto.commit",
                "enable.auto.offset.store",
                "auto.commit.interval.ms",
            ],
        }
    }
}

const PRINCIPAL_KEYS: &[&str] = &["security.protocol", "sasl.mechanism", "sasl.jaas.config"];

/// The librdkafka settings `config` overrides for `client`, or the first
/// override `policy` (or safety) does not allow, naming its key.
pub fn overrides(
    config: &ConnectorConfig,
    client: Client,
    policy: OverridePolicy,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, value) in config.iter() {
        let Some(setting) = key.strip_prefix(client.prefix()) else {
            continue;
        };
        // The sink's group is chosen by the runtime from this key.
        if client == Client::Consumer && setting == "group.id" {
            continue;
        }
        if client.protected().contains(&setting) {
            return Err(ConfigError::new(
                key.as_str(),
                format!(
                    "{setting} cannot be overridden: sluice's delivery guarantees depend on it"
                ),
            ));
        }
        let allowed = match policy {
            OverridePolicy::All => true,
            OverridePolicy::Principal => PRINCIPAL_KEYS.contains(&setting),
            OverridePolicy::None => false,
        };
        if !allowed {
            return Err(ConfigError::new(
                key.as_str(),
                format!("the worker's connector.client.config.override.policy ({policy:?}) does not allow overriding {setting}"),
            ));
        }
        out.insert(setting.to_owned(), value.clone());
    }
    // The connector's own clients reach the worker's cluster; an MSK IAM
    // override takes its region from AWS_REGION.
    security::translate(&out, None)
        .map_err(|e| ConfigError::new(format!("{}{}", client.prefix(), e.key), e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().copied().collect()
    }

    #[test]
    fn overrides_follow_the_policy_and_never_touch_safety() {
        let c = config(&[
            ("producer.override.linger.ms", "50"),
            ("producer.override.sasl.mechanism", "PLAIN"),
        ]);
        let all = overrides(&c, Client::Producer, OverridePolicy::All).unwrap();
        assert_eq!(all["linger.ms"], "50");
        assert_eq!(all["sasl.mechanisms"], "PLAIN");
        let e = overrides(&c, Client::Producer, OverridePolicy::Principal).unwrap_err();
        assert_eq!(e.key, "producer.override.linger.ms");
        let e = overrides(&c, Client::Producer, OverridePolicy::None).unwrap_err();
        assert!(e.message.contains("None"), "{e}");
        let unsafe_acks = config(&[("producer.override.acks", "1")]);
        let e = overrides(&unsafe_acks, Client::Producer, OverridePolicy::All).unwrap_err();
        assert_eq!(e.key, "producer.override.acks");
        let commit = config(&[
            ("consumer.override.enable.auto.commit", "true"),
            ("consumer.override.group.id", "g"),
        ]);
        assert!(overrides(&commit, Client::Consumer, OverridePolicy::All).is_err());
        assert!(overrides(
            &config(&[("consumer.override.group.id", "g")]),
            Client::Consumer,
            OverridePolicy::None
        )
        .unwrap()
        .is_empty());
    }
}
