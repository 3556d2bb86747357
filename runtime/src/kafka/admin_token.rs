//! The admin client's OAUTHBEARER token. rust-rdkafka's admin client never
//! hands librdkafka's token refresh to its context: nothing polls its main
//! queue (fede1024/rust-rdkafka#757), so with AWS MSK IAM topic creation
//! would wait forever for a login. The token is set from here instead, at
//! once and again before each one expires, for as long as the client lives.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::AdminClient;
use rdkafka::bindings::{rd_kafka_oauthbearer_set_token, rd_kafka_oauthbearer_set_token_failure};
use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaRespErr;

use super::{msk_iam, SluiceContext};

/// How soon a failed token is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// Keeps `admin`'s token fresh from a thread of its own, when `config`
/// uses sluice's MSK IAM token (otherwise does nothing).
pub fn keep_fresh(admin: &Arc<AdminClient<SluiceContext>>, config: &ClientConfig) {
    let Some(oauth_config) = config
        .get("sasl.oauthbearer.config")
        .filter(|c| msk_iam::is_msk_iam_config(c))
        .map(str::to_owned)
    else {
        return;
    };
    let admin = Arc::downgrade(admin);
    let spawned = std::thread::Builder::new()
        .name("sluice-admin-token".into())
        .spawn(move || refresh_while_alive(&admin, &oauth_config));
    if let Err(e) = spawned {
        tracing::error!("cannot start the admin client's token refresh: {e}");
    }
}

fn refresh_while_alive(admin: &Weak<AdminClient<SluiceContext>>, oauth_config: &str) {
    loop {
        let next = match admin.upgrade() {
            Some(client) => set_token(&client, || {
                msk_iam::oauth_token(Some(oauth_config)).map_err(|e| e.to_string())
            }),
            None => return,
        };
        // Sleep in short steps, so a dropped client ends the thread soon.
        let wake = std::time::Instant::now() + next;
        while std::time::Instant::now() < wake {
            if admin.strong_count() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Sets the token `make` gives on `admin`, or reports why there is none;
/// how long until the next refresh (at 80% of the token's life, as
/// librdkafka does).
fn set_token(
    admin: &AdminClient<SluiceContext>,
    make: impl FnOnce() -> Result<OAuthToken, String>,
) -> Duration {
    let client = admin.inner().native_ptr();
    let failure = |reason: String| {
        let reason = CString::new(reason.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the client is alive (the caller holds it), and librdkafka
        // copies the NUL-terminated reason before returning.
        unsafe { rd_kafka_oauthbearer_set_token_failure(client, reason.as_ptr()) };
        RETRY
    };
    let token = match make() {
        Ok(token) => token,
        Err(e) => return failure(e),
    };
    let (Ok(value), Ok(principal)) = (
        CString::new(token.token),
        CString::new(token.principal_name),
    ) else {
        return failure("the token has a NUL byte".to_owned());
    };
    let mut reason: [c_char; 512] = [0; 512];
    // SAFETY: the client is alive (the caller holds it); the token and the
    // principal are NUL-terminated and outlive the call, which copies them;
    // no extensions are passed; `reason` is writable for its whole length.
    let code = unsafe {
        rd_kafka_oauthbearer_set_token(
            client,
            value.as_ptr(),
            token.lifetime_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            reason.as_mut_ptr(),
            reason.len(),
        )
    };
    if code != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: librdkafka wrote a NUL-terminated message into `reason`,
        // which was zeroed, so it is terminated even if it wrote nothing.
        let reason = unsafe { CStr::from_ptr(reason.as_ptr()) };
        tracing::error!(
            "the admin client refused its MSK IAM token: {}",
            reason.to_string_lossy()
        );
        return RETRY;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let left = u64::try_from(token.lifetime_ms.saturating_sub(now_ms)).unwrap_or(0);
    Duration::from_millis(left * 8 / 10).max(RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> AdminClient<SluiceContext> {
        ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "OAUTHBEARER")
            .set(
                "sasl.oauthbearer.config",
                "sluice-aws-msk-iam region=eu-west-1",
            )
            .create_with_context(SluiceContext)
            .unwrap()
    }

    fn token_for(lifetime: Duration) -> OAuthToken {
        let expires = SystemTime::now() + lifetime;
        OAuthToken {
            token: "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8".to_owned(),
            principal_name: String::new(),
            lifetime_ms: expires
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                .try_into()
                .unwrap(),
        }
    }

    #[test]
    fn librdkafka_takes_the_token_and_the_next_refresh_is_at_four_fifths_of_its_life() {
        let admin = admin();
        let next = set_token(&admin, || Ok(token_for(Duration::from_secs(900))));
        assert!(
            next > Duration::from_secs(700) && next <= Duration::from_secs(720),
            "{next:?}"
        );
    }

    #[test]
    fn a_refused_or_missing_token_is_tried_again_soon() {
        let admin = admin();
        // librdkafka refuses a token that has already expired.
        let expired = || {
            let mut token = token_for(Duration::ZERO);
            token.lifetime_ms -= 60_000;
            Ok(token)
        };
        assert_eq!(set_token(&admin, expired), RETRY);
        assert_eq!(
            set_token(&admin, || Err("no AWS credentials found".to_owned())),
            RETRY
        );
    }
}
