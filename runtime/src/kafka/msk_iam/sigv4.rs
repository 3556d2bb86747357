//! AWS Signature Version 4 for presigned GET URLs (query-string
//! authentication): what an MSK IAM token is, and how sluice asks STS for
//! a role's credentials. Only what those two need: a GET with no body,
//! `host` as the one signed header.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use sluice_connector_api::calendar::civil;

use super::credentials::Credentials;

/// SHA-256 of an empty body: the payload hash of a presigned GET.
const EMPTY_PAYLOAD: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A GET request to presign.
pub struct Presign<'a> {
    /// The host the URL is for, e.g. `kafka.us-east-1.amazonaws.com`.
    pub host: &'a str,
    /// The service name in the credential scope, e.g. `kafka-cluster`.
    pub service: &'a str,
    /// The region in the credential scope.
    pub region: &'a str,
    /// The request's own query parameters (unencoded).
    pub params: &'a [(&'a str, &'a str)],
    /// How long the URL stays valid, in seconds.
    pub expires_secs: u64,
    /// When it is signed.
    pub at: SystemTime,
}

/// Percent-encodes as SigV4 wants: everything but `A-Z a-z 0-9 - _ . ~`.
pub fn uri_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of `at`, in UTC.
fn stamps(at: SystemTime) -> (String, String) {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day, in_day) = civil(i64::try_from(secs).unwrap_or(i64::MAX) * 1_000_000);
    let in_day = in_day / 1_000_000;
    let date = format!("{year:04}{month:02}{day:02}");
    let time = format!(
        "{date}T{:02}{:02}{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    );
    (date, time)
}

/// The presigned URL's query string (without `?`), ending with
/// `X-Amz-Signature`, signed with `credentials`.
pub fn presign_query(request: &Presign<'_>, credentials: &Credentials) -> String {
    let (date, time) = stamps(request.at);
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let credential = format!("{}/{scope}", credentials.access_key_id);
    let expires = request.expires_secs.to_string();
    let mut params: Vec<(String, String)> = request
        .params
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    let mut amz = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", time.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ];
    if let Some(token) = &credentials.session_token {
        amz.push(("X-Amz-Security-Token", token.as_str()));
    }
    params.extend(amz.into_iter().map(|(k, v)| (k.to_owned(), uri_encode(v))));
    let join = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    // The URL keeps the order botocore writes; the signature covers the
    // sorted form.
    let query = join(&params);
    params.sort();
    let sorted = join(&params);
    let canonical = format!(
        "GET\n/\n{sorted}\nhost:{}\n\nhost\n{EMPTY_PAYLOAD}",
        request.host
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        &date,
    );
    for part in [request.region, request.service, "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex(&hmac(&key, &to_sign));
    format!("{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn uri_encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            uri_encode("kafka-cluster:Connect"),
            "kafka-cluster%3AConnect"
        );
        assert_eq!(uri_encode("a/b c~d_e.f"), "a%2Fb%20c~d_e.f");
        assert_eq!(uri_encode("é"), "%C3%A9");
    }

    #[test]
    fn signing_stamps_are_utc() {
        // 2015-08-30T12:36:00Z, the time of AWS's own SigV4 examples.
        let at = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(
            stamps(at),
            ("20150830".to_owned(), "20150830T123600Z".to_owned())
        );
    }

    #[test]
    fn a_presigned_query_matches_botocores() {
        // AWS's IAM ListUsers example; the expected URL is what botocore's
        // SigV4QueryAuth (1.44.8) signs at the same clock.
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
            expires_at: None,
        };
        let query = presign_query(
            &Presign {
                host: "iam.amazonaws.com",
                service: "iam",
                region: "us-east-1",
                params: &[("Action", "ListUsers"), ("Version", "2010-05-08")],
                expires_secs: 30,
                at: UNIX_EPOCH + Duration::from_secs(1_440_938_160),
            },
            &credentials,
        );
        assert_eq!(query, "Action=ListUsers&Version=2010-05-08&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=30&X-Amz-SignedHeaders=host&X-Amz-Signature=6628c27063bc88a3b80674ba20c5f01ef2ae95406c720c9cf01b4717955198fd");
    }
}
