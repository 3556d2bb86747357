//! Whether the broker answers this worker at start, and when it refuses
//! it, why: a wrong SASL password or an untrusted certificate is named as
//! soon as the broker says so, instead of after the whole wait for an
//! answer that cannot come.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use super::KafkaSettings;

/// Why the broker cannot be used, with what to check.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker refused the SASL login.
    #[error("the broker at {bootstrap} refused this worker's SASL login ({reason}); check sasl.mechanism and the username and password in sasl.jaas.config (--kafka-property, or the [kafka] table of worker.toml); with AWS_MSK_IAM, the AWS credentials and their kafka-cluster:Connect permission")]
    LoginRefused {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// The broker's certificate was not trusted, or it wanted one of ours.
    #[error("the TLS handshake with the broker at {bootstrap} failed ({reason}); check ssl.truststore.location / ssl.ca.location (the CA that signed the broker's certificate), that the certificate names the host in --bootstrap-servers, and the client certificate if the broker asks for one")]
    TlsRefused {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// No answer within the wait.
    #[error("cannot reach Kafka at {bootstrap} within {}s; check --bootstrap-servers (or SLUICE_BOOTSTRAP_SERVERS) and that the broker is running{hint}", wait.as_secs())]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// How long the worker waited.
        wait: Duration,
        /// What else to check when the connection is secured.
        hint: &'static str,
    },
    /// The client could not be made from the settings.
    #[error("creating a Kafka client: {0}")]
    Client(#[from] KafkaError),
}

/// A refusal the broker answered with: it will not change by waiting.
#[derive(Debug, Clone)]
enum Refusal {
    Login(String),
    Tls(String),
}

impl Refusal {
    fn of(error: &KafkaError, reason: &str) -> Option<Self> {
        let code = match error {
            KafkaError::Global(code) => *code,
            _ => return None,
        };
        match code {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                Some(Self::Login(reason.to_owned()))
            }
            // A connection reset during a handshake is an SSL error too, and
            // passes; a certificate the other side rejects does not.
            RDKafkaErrorCode::SSL if is_certificate_problem(reason) => {
                Some(Self::Tls(reason.to_owned()))
            }
            // The broker's TLS alert (e.g. it wants a client certificate)
            // arrives as a failed receive.
            RDKafkaErrorCode::BrokerTransportFailure
                if reason.contains("SSL routines") && is_certificate_problem(reason) =>
            {
                Some(Self::Tls(reason.to_owned()))
            }
            _ => None,
        }
    }
}

fn is_certificate_problem(reason: &str) -> bool {
    ["certificate", "unknown ca", "handshake failure"]
        .iter()
        .any(|needle| reason.to_ascii_lowercase().contains(needle))
}

/// Remembers the first refusal librdkafka reports.
#[derive(Default)]
struct RefusalWatch {
    first: Mutex<Option<Refusal>>,
}

impl ClientContext for RefusalWatch {
    super::answers_token_refresh!();

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {error}: {reason}");
        if let Some(refusal) = Refusal::of(&error, reason) {
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(refusal);
        }
    }
}

impl ConsumerContext for RefusalWatch {}

/// The broker's cluster id, asked for with the worker's security settings
/// for up to `wait`; a login or certificate refusal ends the wait at once.
pub fn cluster_id(settings: &KafkaSettings, wait: Duration) -> Result<String, BrokerError> {
    let bootstrap = settings.bootstrap_servers.clone();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &bootstrap)
        .set("client.id", "sluice-probe");
    for (key, value) in &settings.client_properties {
        config.set(key, value);
    }
    let probe: BaseConsumer<RefusalWatch> = config.create_with_context(RefusalWatch::default())?;
    let deadline = Instant::now() + wait;
    loop {
        if let Some(id) = probe.client().fetch_cluster_id(Duration::from_millis(500)) {
            return Ok(id);
        }
        // Serves the error callbacks.
        let _ = probe.poll(Duration::from_millis(100));
        let refusal = probe
            .context()
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match refusal {
            Some(Refusal::Login(reason)) => {
                return Err(BrokerError::LoginRefused { bootstrap, reason })
            }
            Some(Refusal::Tls(reason)) => {
                return Err(BrokerError::TlsRefused { bootstrap, reason })
            }
            None if Instant::now() >= deadline => {
                return Err(BrokerError::Unreachable {
                    bootstrap,
                    wait,
                    hint: secured_hint(settings),
                })
            }
            None => {}
        }
    }
}

fn secured_hint(settings: &KafkaSettings) -> &'static str {
    let secured = settings
        .client_properties
        .get("security.protocol")
        .is_some_and(|p| !p.eq_ignore_ascii_case("PLAINTEXT"));
    if secured {
        "; the TLS handshake or the SASL login may have failed: librdkafka's reason is logged above (e.g. certificate verify failed), check the security settings (--kafka-property)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_from_passing_trouble() {
        let global = KafkaError::Global;
        assert!(matches!(
            Refusal::of(
                &global(RDKafkaErrorCode::Authentication),
                "SASL SCRAM authentication failed: broker responded with invalid-proof"
            ),
            Some(Refusal::Login(_))
        ));
        assert!(matches!(
            Refusal::of(
                &global(RDKafkaErrorCode::SSL),
                "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed"
            ),
            Some(Refusal::Tls(_))
        ));
        assert!(
            Refusal::of(
                &global(RDKafkaErrorCode::SSL),
                "SSL handshake failed: Disconnected"
            )
            .is_none(),
            "a dropped connection may heal"
        );
        assert!(matches!(
            Refusal::of(&global(RDKafkaErrorCode::BrokerTransportFailure), "ssl://localhost:59193/bootstrap: Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required: SSL alert number 116"),
            Some(Refusal::Tls(_))
        ));
        assert!(Refusal::of(
            &global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down"
        )
        .is_none());
        assert!(Refusal::of(
            &global(RDKafkaErrorCode::BrokerTransportFailure),
            "Connection refused"
        )
        .is_none());
    }
}
