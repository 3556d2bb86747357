//! AWS MSK IAM authentication. A Connect worker names it with
//! `sasl.mechanism=AWS_MSK_IAM` and MSK's `IAMLoginModule`; librdkafka has
//! no such mechanism, but MSK accepts the same signed request as an
//! OAUTHBEARER token (what AWS's own signer libraries for librdkafka-based
//! clients produce). So the worker's settings become OAUTHBEARER with a
//! `sasl.oauthbearer.config` that describes where the credentials come
//! from, and librdkafka asks every sluice client's context for a token
//! ([`oauth_token`]) at start and again before each one expires.

mod credentials;
mod sigv4;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rdkafka::client::OAuthToken;
use thiserror::Error;

pub use credentials::{Credentials, CredentialsError, Env, ProcessEnv, Source};
use sigv4::{presign_query, Presign};

/// How the `sasl.oauthbearer.config` sluice writes for MSK IAM begins.
const MARKER: &str = "sluice-aws-msk-iam";
/// How long a token is valid, as AWS's signers make them.
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// What the broker logs as the client library.
const USER_AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// Why no token could be made.
#[derive(Debug, Error)]
pub enum MskIamError {
    /// The credentials chain had nothing usable.
    #[error("AWS MSK IAM: {0}")]
    Credentials(#[from] CredentialsError),
    /// No region to sign for.
    #[error("AWS MSK IAM: the cluster's region is unknown; give the MSK bootstrap servers (b-1.<cluster>.kafka.<region>.amazonaws.com) or set AWS_REGION")]
    NoRegion,
    /// librdkafka asked for an OAUTHBEARER token without sluice's MSK IAM settings.
    #[error("an OAUTHBEARER token was asked for but none is configured; use sasl.oauthbearer.method=oidc with its client id, secret and token endpoint, or AWS MSK IAM (sasl.mechanism=AWS_MSK_IAM with IAMLoginModule)")]
    NotConfigured,
}

/// Where MSK IAM tokens are signed for: the cluster's region and the
/// credentials' source (`security.rs` reads them from the JAAS line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IamSettings {
    /// The cluster's region, when the bootstrap host names it.
    pub region: Option<String>,
    /// Where the credentials come from.
    pub source: Source,
}

impl IamSettings {
    /// The `sasl.oauthbearer.config` value that carries these settings to
    /// the token callback.
    pub fn to_oauthbearer_config(&self) -> String {
        let mut out = MARKER.to_owned();
        let fields = [
            ("region", &self.region),
            ("profile", &self.source.profile),
            ("roleArn", &self.source.role_arn),
            ("roleSessionName", &self.source.role_session_name),
            ("stsRegion", &self.source.sts_region),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                out.push_str(&format!(" {name}={value}"));
            }
        }
        out
    }

    /// The settings in a `sasl.oauthbearer.config`, if sluice wrote it.
    fn from_oauthbearer_config(config: &str) -> Option<Self> {
        let mut words = config.split_whitespace();
        if words.next()? != MARKER {
            return None;
        }
        let mut settings = Self::default();
        for word in words {
            let Some((name, value)) = word.split_once('=') else {
                continue;
            };
            let slot = match name {
                "region" => &mut settings.region,
                "profile" => &mut settings.source.profile,
                "roleArn" => &mut settings.source.role_arn,
                "roleSessionName" => &mut settings.source.role_session_name,
                "stsRegion" => &mut settings.source.sts_region,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        Some(settings)
    }
}

/// Whether a `sasl.oauthbearer.config` is sluice's MSK IAM one.
pub fn is_msk_iam_config(config: &str) -> bool {
    config.split_whitespace().next() == Some(MARKER)
}

/// The region in an MSK broker's host name
/// (`b-1.c.abc123.c2.kafka.us-east-1.amazonaws.com:9098`, or
/// `…kafka-serverless.<region>…`), as MSK's Java login module reads it.
pub fn region_of_bootstrap(bootstrap: &str) -> Option<String> {
    bootstrap.split(',').find_map(|server| {
        let host = server.trim().split(':').next()?;
        let labels: Vec<&str> = host.split('.').collect();
        let at = labels
            .iter()
            .position(|l| *l == "kafka" || *l == "kafka-serverless")?;
        labels
            .get(at + 1)
            .filter(|_| labels.get(at + 2) == Some(&"amazonaws"))
            .map(|r| (*r).to_owned())
    })
}

/// The MSK IAM token for `region` signed with `credentials` at `at`: the
/// presigned `kafka-cluster:Connect` URL, base64url without padding, and
/// when it expires (ms since the epoch).
pub fn token_at(
    region: &str,
    credentials: &Credentials,
    at: SystemTime,
    user_agent: &str,
) -> (String, i64) {
    let host = format!("kafka.{region}.amazonaws.com");
    let query = presign_query(
        &Presign {
            host: &host,
            service: "kafka-cluster",
            region,
            params: &[("Action", "kafka-cluster:Connect")],
            expires_secs: TOKEN_LIFETIME.as_secs(),
            at,
        },
        credentials,
    );
    let url = format!(
        "https://{host}/?{query}&User-Agent={}",
        sigv4::uri_encode(user_agent)
    );
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url);
    let signed = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Whole seconds, as the signature's X-Amz-Date has them.
    let mut expires = Duration::from_secs(signed.as_secs()) + TOKEN_LIFETIME;
    if let Some(limit) = credentials
        .expires_at
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    {
        expires = expires.min(limit);
    }
    (
        token,
        i64::try_from(expires.as_millis()).unwrap_or(i64::MAX),
    )
}

/// The token librdkafka asked for with `config` (`sasl.oauthbearer.config`),
/// with credentials from `env`'s chain.
pub fn oauth_token_with(config: Option<&str>, env: &dyn Env) -> Result<OAuthToken, MskIamError> {
    let settings = config
        .and_then(IamSettings::from_oauthbearer_config)
        .ok_or(MskIamError::NotConfigured)?;
    let region = settings
        .region
        .or_else(|| env.var("AWS_REGION"))
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .ok_or(MskIamError::NoRegion)?;
    let credentials = credentials::resolve(&settings.source, &region, env)?;
    let (token, lifetime_ms) = token_at(&region, &credentials, SystemTime::now(), USER_AGENT);
    tracing::debug!(
        region = %region,
        access_key_id = %credentials.access_key_id,
        "signed an MSK IAM token"
    );
    Ok(OAuthToken {
        token,
        // MSK takes the principal from the signature.
        principal_name: String::new(),
        lifetime_ms,
    })
}

/// [`oauth_token_with`] the process environment; what every sluice
/// client's context answers librdkafka's token refresh with. A failure is
/// logged here, since librdkafka only retries it.
pub fn oauth_token(config: Option<&str>) -> Result<OAuthToken, MskIamError> {
    let sign = || oauth_token_with(config, &ProcessEnv).inspect_err(|e| tracing::error!("{e}"));
    // A sink consumer is polled on the async threads, and fetching new
    // credentials (instance metadata, STS) may wait seconds: the runtime
    // hands this thread's other work to the rest meanwhile.
    let on_async_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_async_thread {
        tokio::task::block_in_place(sign)
    } else {
        sign()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials(session_token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: session_token.map(str::to_owned),
            expires_at: None,
        }
    }

    fn decode(token: &str) -> String {
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .unwrap(),
        )
        .unwrap()
    }

    /// AWS's signer for librdkafka-style clients
    /// (aws-msk-iam-sasl-signer-python 1.0.2 on botocore 1.44.8) at a clock
    /// frozen at 2015-08-30T12:36:00Z made these URLs; the token is the same
    /// bytes when given its user agent.
    #[test]
    fn tokens_are_what_awss_signer_makes() {
        let at = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let agent = "aws-msk-iam-sasl-signer-python/1.0.2";
        let (token, expires) = token_at("us-west-2", &example_credentials(None), at, agent);
        assert_eq!(decode(&token), "https://kafka.us-west-2.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-west-2%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=2c973e9d100edda2e1a67fdf713430733a1cf411f2d934b92e799a208550d79f&User-Agent=aws-msk-iam-sasl-signer-python%2F1.0.2");
        assert_eq!(expires, 1_440_939_060_000);
        let (token, _) = token_at(
            "us-west-2",
            &example_credentials(Some("SESSIONTOKEN/with+chars=")),
            at,
            agent,
        );
        assert_eq!(decode(&token), "https://kafka.us-west-2.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-west-2%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=SESSIONTOKEN%2Fwith%2Bchars%3D&X-Amz-Signature=f1f21545ef63640a70b97f12b4d116ca98504406617e2bdcb9db641c1416570d&User-Agent=aws-msk-iam-sasl-signer-python%2F1.0.2");
        assert!(
            !token.contains(['=', '+', '/']),
            "base64url without padding"
        );
    }

    #[test]
    fn a_token_never_outlives_its_credentials() {
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut credentials = example_credentials(Some("t"));
        credentials.expires_at = Some(at + Duration::from_secs(60));
        let (_, expires) = token_at("eu-west-1", &credentials, at, USER_AGENT);
        assert_eq!(expires, 1_000_060_000);
    }

    #[test]
    fn the_region_is_read_from_msk_host_names() {
        assert_eq!(
            region_of_bootstrap("b-1.orders.abc123.c2.kafka.eu-central-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-central-1.amazonaws.com:9098").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            region_of_bootstrap("boot-x.c1.kafka-serverless.us-east-2.amazonaws.com:9098")
                .as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_of_bootstrap("kafka.internal:9092"), None);
    }

    #[test]
    fn settings_travel_through_the_oauthbearer_config() {
        let settings = IamSettings {
            region: Some("eu-west-1".to_owned()),
            source: Source {
                profile: Some("prod".to_owned()),
                role_arn: Some("arn:aws:iam::1:role/msk".to_owned()),
                role_session_name: None,
                sts_region: Some("us-east-1".to_owned()),
            },
        };
        let config = settings.to_oauthbearer_config();
        assert!(is_msk_iam_config(&config));
        assert_eq!(
            IamSettings::from_oauthbearer_config(&config),
            Some(settings)
        );
        assert_eq!(
            IamSettings::from_oauthbearer_config("principal=admin"),
            None
        );
    }

    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, name: &str) -> Option<String> {
            (name == "AWS_EC2_METADATA_DISABLED").then(|| "true".to_owned())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_token_asked_for_on_a_single_threaded_runtime_does_not_panic() {
        // block_in_place would panic here; the multi-threaded worker
        // runtime is the only place it is used.
        let e = oauth_token(Some("principal=admin")).err().unwrap();
        assert!(matches!(e, MskIamError::NotConfigured), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_asked_for_on_an_async_thread_is_answered() {
        let answered = tokio::spawn(async { oauth_token(Some("principal=admin")).is_err() });
        assert!(answered.await.unwrap());
        // And on the blocking pool, where the group's and the store's
        // clients are polled.
        let answered =
            tokio::task::spawn_blocking(|| oauth_token(Some("principal=admin")).is_err());
        assert!(answered.await.unwrap());
    }

    #[test]
    fn a_token_request_without_settings_or_region_names_the_fix() {
        let e = oauth_token_with(Some("principal=admin"), &NoEnv)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("sasl.oauthbearer.method=oidc") && e.contains("AWS_MSK_IAM"),
            "{e}"
        );
        let e = oauth_token_with(Some(MARKER), &NoEnv)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("set AWS_REGION"), "{e}");
    }
}
