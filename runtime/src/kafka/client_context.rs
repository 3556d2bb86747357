//! The context every Kafka client sluice makes carries, so that librdkafka
//! can ask for an OAUTHBEARER token (AWS MSK IAM, see [`super::msk_iam`])
//! whichever client it is. librdkafka only asks when the mechanism is
//! OAUTHBEARER and no built-in method (OIDC) provides the token.

use rdkafka::consumer::ConsumerContext;
use rdkafka::ClientContext;

/// The two `ClientContext` items that answer librdkafka's token refresh;
/// written into each of sluice's own client contexts.
macro_rules! answers_token_refresh {
    () => {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            config: Option<&str>,
        ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
            $crate::kafka::msk_iam::oauth_token(config).map_err(Into::into)
        }
    };
}
pub(crate) use answers_token_refresh;

/// The context of a client that needs nothing else from librdkafka's
/// callbacks (the producer, sink consumers, the admin client).
#[derive(Debug, Default, Clone, Copy)]
pub struct SluiceContext;

impl ClientContext for SluiceContext {
    answers_token_refresh!();
}

impl ConsumerContext for SluiceContext {}
