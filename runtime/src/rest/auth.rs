//! Who may use the REST API. Kafka Connect's `BasicAuthSecurityRestExtension`
//! checks HTTP basic credentials against a file of `user: password` lines
//! (its PropertyFileLoginModule format, roles after a comma ignored);
//! sluice reads the same file, given with `--rest-basic-auth-file`; bearer
//! tokens (`Authorization: Bearer …`, one token per line of
//! `--rest-bearer-tokens-file`) are let in too. With either, every
//! endpoint but `/health` (which orchestrators probe) needs them. The
//! embedded schema registry is guarded the same way by its own files
//! (`--registry-basic-auth-file`, `--registry-bearer-tokens-file`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use thiserror::Error;

/// The credentials file could not be used.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The file cannot be read.
    #[error("cannot read the REST credentials file {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        cause: String,
    },
    /// The file holds no usable line.
    #[error("the REST credentials file {0} has no usable line (`user: password`, or a token)")]
    Empty(String),
}

/// The users allowed in, by name, and the bearer tokens.
pub struct Credentials {
    users: HashMap<String, String>,
    /// The file's first user, as `user:password`: how the worker's own
    /// clients log in.
    first_user: Option<String>,
    tokens: Vec<String>,
    /// The 401's message: which files let a caller in.
    refusal: &'static str,
}

/// What a client of a guarded server sends to be let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// HTTP basic auth, `user:password`.
    Basic(String),
    /// A bearer token.
    Bearer(String),
}

const REST_REFUSAL: &str = "Unauthorized: this worker's REST API needs a user and password of its --rest-basic-auth-file or a token of its --rest-bearer-tokens-file";
const REGISTRY_REFUSAL: &str = "Unauthorized: this schema registry needs a user and password of the worker's --registry-basic-auth-file or a token of its --registry-bearer-tokens-file";

fn read(path: &Path) -> Result<String, AuthError> {
    std::fs::read_to_string(path).map_err(|e| AuthError::Read {
        path: path.display().to_string(),
        cause: e.to_string(),
    })
}

/// The lines of a file that are not blank or comments (`#`, `!`).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
}

impl Credentials {
    /// Reads Connect's `user: password[, role…]` file and a file of
    /// bearer tokens, either optional; `None` when neither is given.
    pub fn load(basic: Option<&Path>, tokens: Option<&Path>) -> Result<Option<Self>, AuthError> {
        let mut users = HashMap::new();
        let mut first_user = None;
        if let Some(path) = basic {
            let pairs: Vec<(String, String)> = lines(&read(path)?)
                .filter_map(|l| {
                    let (user, rest) = l.split_once([':', '='])?;
                    let password = rest.split(',').next().unwrap_or_default().trim();
                    Some((user.trim().to_owned(), password.to_owned()))
                })
                .collect();
            first_user = pairs.first().map(|(u, p)| format!("{u}:{p}"));
            users = pairs.into_iter().collect();
            if users.is_empty() {
                return Err(AuthError::Empty(path.display().to_string()));
            }
        }
        let mut bearer = Vec::new();
        if let Some(path) = tokens {
            bearer = lines(&read(path)?).map(str::to_owned).collect();
            if bearer.is_empty() {
                return Err(AuthError::Empty(path.display().to_string()));
            }
        }
        Ok((basic.is_some() || tokens.is_some()).then_some(Self {
            users,
            first_user,
            tokens: bearer,
            refusal: REST_REFUSAL,
        }))
    }

    /// These credentials guarding the embedded schema registry (its 401
    /// names the registry's files).
    pub fn for_registry(mut self) -> Self {
        self.refusal = REGISTRY_REFUSAL;
        self
    }

    /// How the worker's own clients log in: the file's first user, else
    /// the first token.
    pub fn login(&self) -> Option<Login> {
        self.first_user
            .clone()
            .map(Login::Basic)
            .or_else(|| self.tokens.first().cloned().map(Login::Bearer))
    }

    /// Whether an `Authorization` header value names a known user with
    /// the right password.
    fn allows(&self, authorization: &str) -> bool {
        if let Some(token) = authorization.strip_prefix("Bearer ") {
            let token = token.trim().as_bytes();
            // Every token is compared, so timing tells nothing either.
            return self
                .tokens
                .iter()
                .fold(false, |found, t| same(t.as_bytes(), token) | found);
        }
        let Some(encoded) = authorization.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        self.users
            .get(user)
            .is_some_and(|expected| same(expected.as_bytes(), password.as_bytes()))
    }
}

/// Compares without stopping at the first difference, so response time
/// does not reveal how much of a password was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The middleware: 401 with Connect's body unless the credentials check out.
pub async fn require(
    State(credentials): State<Arc<Credentials>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let allowed = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| credentials.allows(v));
    if allowed {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"sluice\"")],
        Json(json!({"error_code": 401, "message": credentials.refusal})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn connects_file_format_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(
            &path,
            "# Connect's format\nadmin: s3cret, admin\nops: other\n",
        )
        .unwrap();
        let credentials = Credentials::load(Some(&path), None).unwrap().unwrap();
        assert!(credentials.allows(&basic("admin", "s3cret")));
        assert!(credentials.allows(&basic("ops", "other")));
        assert!(!credentials.allows(&basic("admin", "s3cre")));
        assert!(!credentials.allows(&basic("admin", "s3cret ")));
        assert!(!credentials.allows(&basic("nobody", "s3cret")));
        assert!(!credentials.allows("Bearer x"));
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(Credentials::load(Some(&path), None).is_err());
        assert!(Credentials::load(None, None).unwrap().is_none());
    }

    #[test]
    fn bearer_tokens_are_let_in_by_exact_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# one per line\nt0k3n-a\nt0k3n-b\n").unwrap();
        let credentials = Credentials::load(None, Some(&path)).unwrap().unwrap();
        assert!(credentials.allows("Bearer t0k3n-b"));
        assert!(!credentials.allows("Bearer t0k3n"));
        assert!(!credentials.allows("Bearer "));
        assert!(!credentials.allows(&basic("t0k3n-a", "")));
    }
}
