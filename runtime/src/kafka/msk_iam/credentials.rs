//! Where the AWS credentials that sign MSK IAM tokens come from: the chain
//! every AWS SDK walks (environment, web identity, shared profile files,
//! container endpoint, instance metadata), then an optional role assumed
//! with them. Credentials that expire are kept until five minutes before
//! they do, so a refresh every few minutes by each client does not call
//! the metadata service or STS each time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_connector_api::calendar::days_from_civil;
use thiserror::Error;

use super::sigv4::{presign_query, Presign};

/// A set of AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…` / `ASIA…`.
    pub access_key_id: String,
    /// The secret half; never printed.
    pub secret_access_key: String,
    /// Present for temporary credentials.
    pub session_token: Option<String>,
    /// When temporary credentials stop working.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why no credentials could be had, and what to do.
#[derive(Debug, Error)]
pub enum CredentialsError {
    /// Nothing in the chain had credentials.
    #[error("no AWS credentials found (tried: {tried}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in ~/.aws/credentials (awsProfileName in sasl.jaas.config or AWS_PROFILE), or run on an instance, task or pod with an IAM role")]
    NotFound {
        /// Each place looked, with why it had nothing.
        tried: String,
    },
    /// A named profile cannot be used.
    #[error("AWS profile {profile}: {message}")]
    Profile {
        /// The profile's name.
        profile: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The instance metadata service is turned off.
    #[error("instance metadata turned off (AWS_EC2_METADATA_DISABLED=true)")]
    MetadataDisabled,
    /// A credentials endpoint answered with an error or nonsense.
    #[error("{source_name} at {url}: {message}")]
    Endpoint {
        /// Which link of the chain.
        source_name: &'static str,
        /// The URL asked (no secrets in it).
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// The process environment, or a stand-in for tests.
pub trait Env: Sync {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Which credentials to use, from `sasl.jaas.config`'s IAMLoginModule
/// options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Source {
    /// `awsProfileName`: only this profile, not the whole chain.
    pub profile: Option<String>,
    /// `awsRoleArn`: a role assumed with the credentials found.
    pub role_arn: Option<String>,
    /// `awsRoleSessionName`.
    pub role_session_name: Option<String>,
    /// `awsStsRegion`: where STS is asked (the cluster's region otherwise).
    pub sts_region: Option<String>,
}

/// How long a metadata or container endpoint may take to answer.
const LOCAL_ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long STS may take.
const STS_TIMEOUT: Duration = Duration::from_secs(10);
/// Credentials this close to expiry are fetched again.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

static CACHE: Mutex<Option<HashMap<(Source, String), Credentials>>> = Mutex::new(None);

/// Credentials for `source`, from the cache while they last; `region` is
/// where STS is asked when a role is assumed.
pub fn resolve(
    source: &Source,
    region: &str,
    env: &dyn Env,
) -> Result<Credentials, CredentialsError> {
    let key = (source.clone(), region.to_owned());
    let fresh = |c: &Credentials| {
        c.expires_at
            .is_some_and(|at| at > SystemTime::now() + EXPIRY_MARGIN)
    };
    if let Some(cached) = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|cache| cache.get(&key))
        .filter(|c| fresh(c))
    {
        return Ok(cached.clone());
    }
    let credentials = resolve_uncached(source, region, env)?;
    if credentials.expires_at.is_some() {
        CACHE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(key, credentials.clone());
    }
    Ok(credentials)
}

fn resolve_uncached(
    source: &Source,
    region: &str,
    env: &dyn Env,
) -> Result<Credentials, CredentialsError> {
    let sts_region = source.sts_region.as_deref().unwrap_or(region);
    let base = match &source.profile {
        Some(profile) => from_profile(profile, sts_region, env)?,
        None => default_chain(sts_region, env)?,
    };
    match &source.role_arn {
        Some(role) => {
            let session = source
                .role_session_name
                .clone()
                .unwrap_or_else(default_session_name);
            assume_role(&base, role, &session, sts_region, env)
        }
        None => Ok(base),
    }
}

fn default_session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("sluice-msk-iam-{secs}")
}

/// Environment, web identity, the default profile, the container
/// endpoint, instance metadata: the AWS SDKs' order.
fn default_chain(sts_region: &str, env: &dyn Env) -> Result<Credentials, CredentialsError> {
    let mut tried = Vec::new();
    if let Some(c) = from_environment(env) {
        return Ok(c);
    }
    tried.push("environment (AWS_ACCESS_KEY_ID unset)".to_owned());
    if let (Some(token_file), Some(role)) = (
        env.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.var("AWS_ROLE_ARN"),
    ) {
        return web_identity(&token_file, &role, sts_region, env);
    }
    tried.push("web identity (AWS_WEB_IDENTITY_TOKEN_FILE unset)".to_owned());
    let profile = env
        .var("AWS_PROFILE")
        .unwrap_or_else(|| "default".to_owned());
    match from_profile(&profile, sts_region, env) {
        Ok(c) => return Ok(c),
        Err(CredentialsError::Profile { message, .. }) if message.starts_with("not found") => {
            tried.push(format!("profile {profile} ({message})"));
        }
        Err(e) => return Err(e),
    }
    if let Some(c) = from_container(env)? {
        return Ok(c);
    }
    tried.push("container endpoint (AWS_CONTAINER_CREDENTIALS_*_URI unset)".to_owned());
    match from_instance_metadata(env) {
        Ok(c) => Ok(c),
        Err(e) => {
            tried.push(e.to_string());
            Err(CredentialsError::NotFound {
                tried: tried.join(", "),
            })
        }
    }
}

fn from_environment(env: &dyn Env) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: env.var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: env.var("AWS_SECRET_ACCESS_KEY")?,
        session_token: env.var("AWS_SESSION_TOKEN"),
        expires_at: None,
    })
}

/// The sections of an INI-style AWS file: name → key → value.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    sections
}

fn home_file(env: &dyn Env, variable: &str, name: &str) -> Option<PathBuf> {
    env.var(variable).map(PathBuf::from).or_else(|| {
        env.var("HOME")
            .map(|home| PathBuf::from(home).join(".aws").join(name))
    })
}

/// The profile's settings: `~/.aws/credentials` over `~/.aws/config`.
fn profile_settings(profile: &str, env: &dyn Env) -> Option<HashMap<String, String>> {
    let read = |path: Option<PathBuf>| {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| parse_ini(&text))
            .unwrap_or_default()
    };
    let credentials = read(home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    let config = read(home_file(env, "AWS_CONFIG_FILE", "config"));
    let config_name = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let mut settings = config.get(&config_name).cloned();
    if let Some(creds) = credentials.get(profile) {
        settings
            .get_or_insert_with(HashMap::new)
            .extend(creds.clone());
    }
    settings
}

fn from_profile(
    profile: &str,
    sts_region: &str,
    env: &dyn Env,
) -> Result<Credentials, CredentialsError> {
    from_profile_at_depth(profile, sts_region, env, 0)
}

fn from_profile_at_depth(
    profile: &str,
    sts_region: &str,
    env: &dyn Env,
    depth: usize,
) -> Result<Credentials, CredentialsError> {
    let fail = |message: String| CredentialsError::Profile {
        profile: profile.to_owned(),
        message,
    };
    let settings = profile_settings(profile, env)
        .ok_or_else(|| fail("not found in ~/.aws/credentials or ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE)".to_owned()))?;
    if let (Some(id), Some(secret)) = (
        settings.get("aws_access_key_id"),
        settings.get("aws_secret_access_key"),
    ) {
        return Ok(Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: settings.get("aws_session_token").cloned(),
            expires_at: None,
        });
    }
    if let (Some(role), Some(parent)) = (settings.get("role_arn"), settings.get("source_profile")) {
        if depth > 4 {
            return Err(fail(
                "source_profile chains more than five profiles deep".to_owned(),
            ));
        }
        let base = from_profile_at_depth(parent, sts_region, env, depth + 1)?;
        let session = settings
            .get("role_session_name")
            .cloned()
            .unwrap_or_else(default_session_name);
        return assume_role(&base, role, &session, sts_region, env);
    }
    if settings.keys().any(|k| k.starts_with("sso_")) || settings.contains_key("credential_process")
    {
        return Err(fail(format!(
            "uses SSO or credential_process, which sluice does not run; export its credentials (aws configure export-credentials --profile {profile} --format env) or use an IAM role"
        )));
    }
    Err(fail(
        "has neither aws_access_key_id/aws_secret_access_key nor role_arn with source_profile"
            .to_owned(),
    ))
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The body of a GET or PUT, or why there is none.
fn fetch(
    source_name: &'static str,
    request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    url: &str,
) -> Result<String, CredentialsError> {
    let fail = |message: String| CredentialsError::Endpoint {
        source_name,
        url: url.to_owned(),
        message,
    };
    let mut response = request.call().map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!(
            "HTTP {status}: {}",
            xml_field(&body, "Message").unwrap_or(&body)
        )));
    }
    Ok(body)
}

/// `2026-12-02T12:00:00Z` (fractions ignored) as a time.
fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
    let secs = days * 86_400 + number(11..13)? * 3600 + number(14..16)? * 60 + number(17..19)?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Credentials in the JSON the container and instance endpoints answer.
fn from_json(
    source_name: &'static str,
    url: &str,
    body: &str,
) -> Result<Credentials, CredentialsError> {
    let fail = |message: &str| CredentialsError::Endpoint {
        source_name,
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|_| fail("the answer is not JSON"))?;
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Credentials {
        access_key_id: field("AccessKeyId").ok_or_else(|| fail("no AccessKeyId in the answer"))?,
        secret_access_key: field("SecretAccessKey")
            .ok_or_else(|| fail("no SecretAccessKey in the answer"))?,
        session_token: field("Token"),
        expires_at: field("Expiration").as_deref().and_then(parse_timestamp),
    })
}

/// ECS task roles and EKS Pod Identity.
fn from_container(env: &dyn Env) -> Result<Option<Credentials>, CredentialsError> {
    let url = if let Some(relative) = env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        format!("http://169.254.170.2{relative}")
    } else if let Some(full) = env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        full
    } else {
        return Ok(None);
    };
    let token = match env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => {
            Some(
                std::fs::read_to_string(&path).map_err(|e| CredentialsError::Endpoint {
                    source_name: "the container credentials endpoint",
                    url: url.clone(),
                    message: format!(
                        "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path}: {e}"
                    ),
                })?,
            )
        }
        None => env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut request = agent(LOCAL_ENDPOINT_TIMEOUT).get(&url);
    if let Some(token) = token {
        request = request.header("Authorization", token.trim());
    }
    let body = fetch("the container credentials endpoint", request, &url)?;
    from_json("the container credentials endpoint", &url, &body).map(Some)
}

/// An EC2 instance's role, through IMDSv2.
fn from_instance_metadata(env: &dyn Env) -> Result<Credentials, CredentialsError> {
    const NAME: &str = "instance metadata";
    if env
        .var("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(CredentialsError::MetadataDisabled);
    }
    let base = env
        .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| "http://169.254.169.254".to_owned());
    let base = base.trim_end_matches('/');
    let agent = agent(LOCAL_ENDPOINT_TIMEOUT);
    let token_url = format!("{base}/latest/api/token");
    let token = {
        let fail = |message: String| CredentialsError::Endpoint {
            source_name: NAME,
            url: token_url.clone(),
            message,
        };
        let mut response = agent
            .put(&token_url)
            .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
            .send_empty()
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        response
            .body_mut()
            .read_to_string()
            .map_err(|e| fail(e.to_string()))?
    };
    let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let roles = fetch(
        NAME,
        agent
            .get(&roles_url)
            .header("X-aws-ec2-metadata-token", &token),
        &roles_url,
    )?;
    let role = roles
        .lines()
        .next()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| CredentialsError::Endpoint {
            source_name: NAME,
            url: roles_url.clone(),
            message: "the instance has no IAM role; attach an instance profile".to_owned(),
        })?;
    let url = format!("{roles_url}{role}");
    let body = fetch(
        NAME,
        agent.get(&url).header("X-aws-ec2-metadata-token", &token),
        &url,
    )?;
    from_json(NAME, &url, &body)
}

/// The text of `<name>…</name>` in an STS answer.
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

fn sts_endpoint(sts_region: &str, env: &dyn Env) -> (String, String) {
    match env.var("AWS_ENDPOINT_URL_STS") {
        Some(url) => {
            let host = url
                .split("://")
                .nth(1)
                .unwrap_or(&url)
                .trim_end_matches('/')
                .to_owned();
            (url.trim_end_matches('/').to_owned(), host)
        }
        None => {
            let host = format!("sts.{sts_region}.amazonaws.com");
            (format!("https://{host}"), host)
        }
    }
}

/// Credentials in an STS `AssumeRole…Response`.
fn from_sts_answer(url: &str, body: &str) -> Result<Credentials, CredentialsError> {
    let field = |name: &str| {
        xml_field(body, name)
            .map(str::to_owned)
            .ok_or_else(|| CredentialsError::Endpoint {
                source_name: "STS",
                url: url.to_owned(),
                message: format!("no {name} in the answer"),
            })
    };
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("SessionToken")?),
        expires_at: parse_timestamp(&field("Expiration")?),
    })
}

/// `role` assumed with `base` (STS AssumeRole, signed in the query).
fn assume_role(
    base: &Credentials,
    role: &str,
    session: &str,
    sts_region: &str,
    env: &dyn Env,
) -> Result<Credentials, CredentialsError> {
    let (endpoint, host) = sts_endpoint(sts_region, env);
    let query = presign_query(
        &Presign {
            host: &host,
            service: "sts",
            region: sts_region,
            params: &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", role),
                ("RoleSessionName", session),
            ],
            expires_secs: 60,
            at: SystemTime::now(),
        },
        base,
    );
    let shown = format!("{endpoint}/?Action=AssumeRole&RoleArn={role}");
    let body = fetch(
        "STS",
        agent(STS_TIMEOUT).get(&format!("{endpoint}/?{query}")),
        &shown,
    )?;
    from_sts_answer(&shown, &body)
}

/// EKS service-account roles (IRSA): STS AssumeRoleWithWebIdentity with
/// the projected token, which needs no signature.
fn web_identity(
    token_file: &str,
    role: &str,
    sts_region: &str,
    env: &dyn Env,
) -> Result<Credentials, CredentialsError> {
    let (endpoint, _) = sts_endpoint(sts_region, env);
    let shown = format!("{endpoint}/?Action=AssumeRoleWithWebIdentity&RoleArn={role}");
    let token = std::fs::read_to_string(token_file).map_err(|e| CredentialsError::Endpoint {
        source_name: "STS",
        url: shown.clone(),
        message: format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"),
    })?;
    let session = env
        .var("AWS_ROLE_SESSION_NAME")
        .unwrap_or_else(default_session_name);
    let query = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role),
        ("RoleSessionName", session.as_str()),
        ("WebIdentityToken", token.trim()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", super::sigv4::uri_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let body = fetch(
        "STS",
        agent(STS_TIMEOUT).get(&format!("{endpoint}/?{query}")),
        &shown,
    )?;
    from_sts_answer(&shown, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    struct MapEnv(HashMap<&'static str, String>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn env(pairs: &[(&'static str, &str)]) -> MapEnv {
        let mut map: HashMap<&'static str, String> =
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        // Never reach for a real metadata service from a test.
        map.entry("AWS_EC2_METADATA_DISABLED")
            .or_insert_with(|| "true".to_owned());
        map.entry("HOME")
            .or_insert_with(|| "/nonexistent".to_owned());
        MapEnv(map)
    }

    /// A local HTTP endpoint standing in for an AWS one: answers each
    /// request with `answer(method, path, headers)` and keeps what it saw.
    struct Endpoint {
        url: String,
        seen: Arc<Mutex<Vec<String>>>,
    }

    fn endpoint(answer: fn(&str, &str, &str) -> (u16, String)) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let mut parts = request_line.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, body) = answer(method, path, &head.to_ascii_lowercase());
                log.lock().unwrap().push(format!("{method} {path}"));
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Endpoint { url, seen }
    }

    const STS_ANSWER: &str = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>roletoken</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";

    #[test]
    fn the_environment_comes_first() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "SECRETVALUE"),
            ("AWS_SESSION_TOKEN", "t"),
            ("AWS_PROFILE", "elsewhere"),
        ]);
        let c = resolve(&Source::default(), "us-east-1", &e).unwrap();
        assert_eq!(c.access_key_id, "AKIAENV");
        assert_eq!(c.session_token.as_deref(), Some("t"));
        assert!(!format!("{c:?}").contains("SECRETVALUE"), "{c:?}");
    }

    #[test]
    fn a_profile_gives_static_keys_or_assumes_its_role() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[base]\naws_access_key_id=AKIABASE\naws_secret_access_key=b\n",
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/msk\nsource_profile = base\n\n[profile sso]\nsso_start_url = https://example.awsapps.com/start\n",
        )
        .unwrap();
        let sts = endpoint(|_, path, _| {
            if path.contains("Action=AssumeRole&")
                && path.contains("AKIABASE")
                && path.contains("X-Amz-Signature=")
            {
                (200, STS_ANSWER.to_owned())
            } else {
                (403, "<ErrorResponse><Error><Message>not signed with the source profile</Message></Error></ErrorResponse>".to_owned())
            }
        });
        let files = [
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
        ];
        let c = resolve(&Source::default(), "eu-west-1", &env(&files)).unwrap();
        assert_eq!(c.access_key_id, "AKIADEFAULT");
        let profile = |name: &str| Source {
            profile: Some(name.to_owned()),
            ..Source::default()
        };
        let deploy = profile("deploy");
        let c = resolve(&deploy, "eu-west-1", &env(&files)).unwrap();
        assert_eq!(c.access_key_id, "ASIAROLE");
        assert_eq!(c.session_token.as_deref(), Some("roletoken"));
        assert!(sts.seen.lock().unwrap()[0]
            .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmsk"));
        let sso = profile("sso");
        let e = resolve(&sso, "eu-west-1", &env(&files))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aws configure export-credentials --profile sso"),
            "{e}"
        );
        let missing = profile("nope");
        let e = resolve(&missing, "eu-west-1", &env(&files))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS profile nope: not found"), "{e}");
    }

    #[test]
    fn an_instance_role_comes_through_imdsv2_and_is_kept_until_near_expiry() {
        let imds = endpoint(|method, path, headers| {
            match (method, path) {
            ("PUT", "/latest/api/token") if headers.contains("x-aws-ec2-metadata-token-ttl-seconds") => {
                (200, "imdstoken".to_owned())
            }
            (_, _) if !headers.contains("x-aws-ec2-metadata-token: imdstoken") => (401, String::new()),
            ("GET", "/latest/meta-data/iam/security-credentials/") => (200, "msk-role\n".to_owned()),
            ("GET", "/latest/meta-data/iam/security-credentials/msk-role") => (
                200,
                r#"{"Code":"Success","AccessKeyId":"ASIAINSTANCE","SecretAccessKey":"i","Token":"itoken","Expiration":"2099-06-01T12:30:00Z"}"#.to_owned(),
            ),
            _ => (404, String::new()),
        }
        });
        let e = env(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url.as_str()),
        ]);
        // A region no other test uses, so the cache starts empty.
        let c = resolve(&Source::default(), "ap-imds-1", &e).unwrap();
        assert_eq!(c.access_key_id, "ASIAINSTANCE");
        assert_eq!(c.session_token.as_deref(), Some("itoken"));
        assert_eq!(c.expires_at, parse_timestamp("2099-06-01T12:30:00Z"));
        let calls = imds.seen.lock().unwrap().len();
        assert_eq!(calls, 3, "token, role name, credentials");
        resolve(&Source::default(), "ap-imds-1", &e).unwrap();
        assert_eq!(
            imds.seen.lock().unwrap().len(),
            calls,
            "served from the cache"
        );
    }

    #[test]
    fn a_container_role_is_asked_with_its_authorization_token() {
        let ecs = endpoint(|_, path, headers| {
            if path == "/v2/credentials/abc" && headers.contains("authorization: secret-token") {
                (200, r#"{"AccessKeyId":"ASIATASK","SecretAccessKey":"t","Token":"ttoken","Expiration":"2099-01-01T00:00:00Z"}"#.to_owned())
            } else {
                (403, String::new())
            }
        });
        let url = format!("{}/v2/credentials/abc", ecs.url);
        let e = env(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"),
        ]);
        let c = resolve(&Source::default(), "ap-ecs-1", &e).unwrap();
        assert_eq!(c.access_key_id, "ASIATASK");
    }

    #[test]
    fn a_web_identity_token_is_exchanged_at_sts() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "eyJ.projected.jwt\n").unwrap();
        let sts = endpoint(|_, path, _| {
            if path.contains("Action=AssumeRoleWithWebIdentity")
                && path.contains("WebIdentityToken=eyJ.projected.jwt&")
                || path.ends_with("WebIdentityToken=eyJ.projected.jwt")
            {
                (
                    200,
                    STS_ANSWER.replace("AssumeRole", "AssumeRoleWithWebIdentity"),
                )
            } else {
                (400, String::new())
            }
        });
        let e = env(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod"),
            ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
        ]);
        let c = resolve(&Source::default(), "ap-irsa-1", &e).unwrap();
        assert_eq!(c.access_key_id, "ASIAROLE");
    }

    #[test]
    fn with_nothing_to_find_the_error_lists_what_was_tried_and_what_to_set() {
        let e = resolve(&Source::default(), "us-east-1", &env(&[]))
            .unwrap_err()
            .to_string();
        for needle in [
            "environment",
            "profile default",
            "container endpoint",
            "instance metadata",
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
    }

    #[test]
    fn sts_refusals_carry_stss_message() {
        let sts = endpoint(|_, _, _| {
            (403, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>".to_owned())
        });
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
        ]);
        let source = Source {
            role_arn: Some("arn:aws:iam::1:role/denied".to_owned()),
            ..Source::default()
        };
        let e = resolve(&source, "us-east-1", &e).unwrap_err().to_string();
        assert!(
            e.contains("HTTP 403") && e.contains("not authorized to perform: sts:AssumeRole"),
            "{e}"
        );
    }
}
