//! Sends a request on to another worker of the group and answers with its
//! answer, as Kafka Connect forwards to the worker that must act: restarts
//! go to the worker running the connector, registry writes to the
//! registry's writer. The caller's credentials go along; a forwarded
//! request is marked so it is never forwarded twice.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;

/// Marks a forwarded request.
pub const FORWARDED: &str = "x-sluice-forwarded";

/// Whether `headers` come from a request another worker forwarded.
pub fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED)
}

/// How this worker reaches the others: over HTTPS when its own REST API
/// serves TLS (the group's workers are set up alike, as Connect's), trusting
/// the given CA's certificates besides the system's.
#[derive(Clone)]
pub struct Forwarder {
    scheme: &'static str,
    agent: ureq::Agent,
}

/// Why the forwarding client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("--rest-forward-ca {path}: {message}")]
pub struct ForwarderError {
    path: String,
    message: String,
}

impl Forwarder {
    /// Plain HTTP, as between workers without TLS.
    pub fn http() -> Self {
        Self::with(
            "http",
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(60)))
                .http_status_as_error(false),
        )
    }

    /// HTTPS when `https`, trusting the PEM certificates of `ca` (besides
    /// the system's roots) when given.
    pub fn new(https: bool, ca: Option<&std::path::Path>) -> Result<Self, ForwarderError> {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false);
        if let Some(path) = ca {
            let fail = |message: String| ForwarderError {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(fail("holds no PEM certificate".into()));
            }
            config = config.tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Self::with(if https { "https" } else { "http" }, config))
    }

    fn with(
        scheme: &'static str,
        config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    ) -> Self {
        Self {
            scheme,
            agent: config.build().into(),
        }
    }

    /// The base URL of the worker at `host:port`.
    pub fn base(&self, host_port: &str) -> String {
        format!("{}://{host_port}", self.scheme)
    }
}

/// Repeats `method path_and_query` with `body` on the server at `base`
/// (from [`Forwarder::base`]), with the caller's content type and
/// credentials from `headers`; that server's answer, or why it could not
/// be had.
pub async fn forward(
    forwarder: &Forwarder,
    base: &str,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Result<Response, String> {
    let target = format!("{}{path_and_query}", base.trim_end_matches('/'));
    let copied: Vec<(&'static str, String)> = [
        ("content-type", header::CONTENT_TYPE),
        ("authorization", header::AUTHORIZATION),
    ]
    .into_iter()
    .filter_map(|(name, key)| {
        let value = headers.get(key)?.to_str().ok()?;
        Some((name, value.to_owned()))
    })
    .collect();
    let agent = forwarder.agent.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&target)
            .header(FORWARDED, "1");
        for (name, value) in &copied {
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(body)
            .map_err(|e| format!("building the request to {target}: {e}"))?;
        let mut response = agent
            .run(request)
            .map_err(|e| format!("{target} did not answer: {e}"))?;
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| format!("reading the answer of {target}: {e}"))?;
        Ok::<_, String>((status, kind, bytes))
    })
    .await
    .map_err(|e| format!("forwarding was interrupted: {e}"))??;
    let (status, kind, bytes) = answer;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(kind) = kind.and_then(|k| k.parse().ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, kind);
    }
    Ok(response)
}
