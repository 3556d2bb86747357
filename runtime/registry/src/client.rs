//! A small blocking client for the Confluent Schema Registry REST API, so
//! the converter and `sluice schemas` work against Confluent, Karapace,
//! Apicurio's ccompat API, Redpanda or sluice's own registry alike.
//!
//! Callers on async threads run it under `spawn_blocking`; it is called
//! once per new schema, never per record.

use std::time::Duration;

use serde_json::{json, Value as Json};

/// A registry call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No registry answered: worth retrying.
    #[error("schema registry at {url} is unreachable: {message}; check schema.registry.url and that the registry is running")]
    Unavailable {
        /// The URL(s) tried.
        url: String,
        /// The transport error or 5xx answer.
        message: String,
    },
    /// The TLS handshake with the registry failed: retrying cannot help.
    #[error("TLS to the schema registry at {url} failed: {message}; check schema.registry.ssl.truststore.location (a PEM file of the CA that signed the registry's certificate) and that the URL names the host the certificate is for")]
    Tls {
        /// The URL(s) tried.
        url: String,
        /// The TLS error.
        message: String,
    },
    /// The registry answered with an error code.
    #[error("schema registry refused the request (error {code}): {message}")]
    Rejected {
        /// Confluent's `error_code`, e.g. 409 or 42201.
        code: u32,
        /// The registry's message.
        message: String,
    },
}

impl ClientError {
    /// Whether the registry could not be reached or failed on its side.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// The outcome of a compatibility check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compatibility {
    /// Whether the schema may be registered.
    pub compatible: bool,
    /// The registry's verbose findings.
    pub messages: Vec<String>,
}

/// How to reach a registry beyond its URL: credentials and TLS, as
/// Confluent's client settings give them (`basic.auth.user.info`,
/// `bearer.auth.token`, `schema.registry.ssl.truststore.location`,
/// `schema.registry.ssl.keystore.location`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAccess {
    /// `user:password` for HTTP basic auth.
    pub basic_auth: Option<String>,
    /// A static bearer token.
    pub bearer: Option<String>,
    /// PEM of the CA(s) the registry's certificate must chain to; `None`:
    /// the usual public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM of a client certificate and its key, for mutual TLS.
    pub client_pem: Option<Vec<u8>>,
}

/// Whether a transport error is a TLS failure (wrong CA, wrong name).
fn is_tls(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(e) => {
            let text = e.to_string().to_ascii_lowercase();
            text.contains("certificate") || text.contains("handshake") || text.contains("tls")
        }
        _ => false,
    }
}

/// A registry client for one or more (comma-separated) base URLs, tried in
/// order, as Confluent's `schema.registry.url` allows.
#[derive(Clone)]
pub struct RegistryClient {
    urls: Vec<String>,
    agent: ureq::Agent,
    /// `Authorization` header value for HTTP basic auth, if configured.
    authorization: Option<String>,
}

/// Percent-encodes `text` (a subject, a connector name) for one segment
/// of a URL path: every byte but RFC 3986's unreserved characters.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The certificates in a PEM text, in order (keys and other items left out).
fn certificates(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

impl RegistryClient {
    /// A client for `urls` (comma-separated).
    pub fn new(urls: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            urls: urls
                .split(',')
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            agent,
            authorization: None,
        }
    }

    /// A client for `urls` reached as `access` says; fails on unreadable
    /// certificates.
    pub fn connect(urls: &str, access: &RegistryAccess) -> Result<Self, String> {
        use ureq::tls::{ClientCert, PrivateKey, RootCerts, TlsConfig};
        let mut tls = TlsConfig::builder();
        if let Some(pem) = &access.ca_pem {
            let certs = certificates(pem);
            if certs.is_empty() {
                return Err("the truststore holds no PEM certificate".to_owned());
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if let Some(pem) = &access.client_pem {
            let chain = certificates(pem);
            let key = PrivateKey::from_pem(pem)
                .map_err(|e| format!("the keystore's private key: {e}"))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(tls.build())
            .build()
            .into();
        let mut client = Self::new(urls);
        client.agent = agent;
        if let Some(user_info) = &access.basic_auth {
            client = client.with_basic_auth(user_info);
        }
        if let Some(token) = &access.bearer {
            client.authorization = Some(format!("Bearer {token}"));
        }
        Ok(client)
    }

    /// Sends HTTP basic auth with `user_info` (`user:password`), as
    /// Confluent's `basic.auth.user.info` setting.
    pub fn with_basic_auth(mut self, user_info: &str) -> Self {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_info);
        self.authorization = Some(format!("Basic {encoded}"));
        self
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        }
    }

    /// The configured URLs, for messages.
    pub fn urls(&self) -> String {
        self.urls.join(",")
    }

    fn call(&self, method: &str, path: &str, body: Option<&Json>) -> Result<Json, ClientError> {
        let mut last = String::from("no schema.registry.url configured");
        let mut tls_failed = false;
        for base in &self.urls {
            let url = format!("{base}{path}");
            let content_type = "application/vnd.schemaregistry.v1+json";
            let result = match (method, body) {
                ("POST", Some(body)) => self
                    .authorize(self.agent.post(&url))
                    .header("Content-Type", content_type)
                    .send(body.to_string()),
                ("PUT", Some(body)) => self
                    .authorize(self.agent.put(&url))
                    .header("Content-Type", content_type)
                    .send(body.to_string()),
                ("DELETE", _) => self.authorize(self.agent.delete(&url)).call(),
                _ => self.authorize(self.agent.get(&url)).call(),
            };
            let mut response = match result {
                Ok(r) => r,
                Err(e) => {
                    tls_failed = is_tls(&e);
                    last = e.to_string();
                    continue;
                }
            };
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let parsed: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
            if status < 300 {
                return Ok(parsed);
            }
            if status >= 500 {
                tls_failed = false;
                last = format!("HTTP {status}: {text}");
                continue;
            }
            return Err(ClientError::Rejected {
                code: parsed
                    .get("error_code")
                    .and_then(Json::as_u64)
                    .map_or(u32::from(status), |c| c as u32),
                message: parsed
                    .get("message")
                    .and_then(Json::as_str)
                    .map_or(text.clone(), str::to_owned),
            });
        }
        if tls_failed {
            return Err(ClientError::Tls {
                url: self.urls(),
                message: last,
            });
        }
        Err(ClientError::Unavailable {
            url: self.urls(),
            message: last,
        })
    }

    /// Registers `schema` under `subject`; its id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<i32, ClientError> {
        let reply = self.call(
            "POST",
            &format!("/subjects/{}/versions", path_segment(subject)),
            Some(&json!({ "schema": schema })),
        )?;
        reply
            .get("id")
            .and_then(Json::as_i64)
            .map(|id| id as i32)
            .ok_or_else(|| ClientError::Rejected {
                code: 0,
                message: format!("register answered without an id: {reply}"),
            })
    }

    /// Checks `schema` against what registering it under `subject` would
    /// check; a subject with no versions accepts anything.
    pub fn check(&self, subject: &str, schema: &str) -> Result<Compatibility, ClientError> {
        let path = format!(
            "/compatibility/subjects/{}/versions/latest?verbose=true",
            path_segment(subject)
        );
        match self.call("POST", &path, Some(&json!({ "schema": schema }))) {
            Ok(reply) => Ok(Compatibility {
                compatible: reply
                    .get("is_compatible")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
                messages: reply
                    .get("messages")
                    .and_then(Json::as_array)
                    .map(|m| {
                        m.iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Err(ClientError::Rejected {
                code: 40401 | 40402,
                ..
            }) => Ok(Compatibility {
                compatible: true,
                messages: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The id of `schema` if it is already a version of `subject`.
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<Option<i32>, ClientError> {
        match self.call(
            "POST",
            &format!("/subjects/{}", path_segment(subject)),
            Some(&json!({ "schema": schema })),
        ) {
            Ok(reply) => Ok(reply.get("id").and_then(Json::as_i64).map(|id| id as i32)),
            Err(ClientError::Rejected {
                code: 40401 | 40403,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The schema text with `id`.
    pub fn schema(&self, id: i32) -> Result<String, ClientError> {
        let reply = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        reply
            .get("schema")
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Rejected {
                code: 0,
                message: format!("schema {id} answered without a schema: {reply}"),
            })
    }

    /// The compatibility level in force for `subject`.
    pub fn level(&self, subject: &str) -> Result<String, ClientError> {
        let reply = match self.call(
            "GET",
            &format!("/config/{}?defaultToGlobal=true", path_segment(subject)),
            None,
        ) {
            Ok(reply) => reply,
            Err(ClientError::Rejected { .. }) => self.call("GET", "/config", None)?,
            Err(e) => return Err(e),
        };
        Ok(reply
            .get("compatibilityLevel")
            .and_then(Json::as_str)
            .unwrap_or("BACKWARD")
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_path_safe() {
        assert_eq!(path_segment("db.public.t-value"), "db.public.t-value");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("é?%"), "%C3%A9%3F%25");
    }

    #[test]
    fn nothing_listening_is_unavailable() {
        let client = RegistryClient::new("http://127.0.0.1:9");
        let err = client
            .register("s", "\"int\"")
            .expect_err("nothing listens on port 9");
        assert!(err.is_unavailable(), "{err}");
        assert!(err.to_string().contains("schema.registry.url"));
    }
}
