//! Secrets in connector configs: resolving `${env:NAME}` and
//! `${file:/path:key}` placeholders at task start, and hiding secrets from
//! everything a user or a log can see.

use std::collections::BTreeMap;
use std::fs;

use thiserror::Error;

/// What the REST API shows instead of a secret.
pub const HIDDEN: &str = "[hidden]";

/// A placeholder could not be resolved.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    /// `${env:NAME}` names an unset variable.
    #[error("{key}: environment variable {name} named by ${{env:{name}}} is not set; export it in the worker's environment")]
    MissingEnv {
        /// The config key.
        key: String,
        /// The variable.
        name: String,
    },
    /// `${file:PATH:KEY}` could not be read.
    #[error("{key}: cannot read {path} named by a ${{file:...}} placeholder: {cause}")]
    File {
        /// The config key.
        key: String,
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
    /// The placeholder is one the worker's operator has not allowed.
    #[error("{key}: {placeholder} is not allowed by this worker: {why}")]
    NotAllowed {
        /// The config key.
        key: String,
        /// The placeholder (a reference, not the secret).
        placeholder: String,
        /// Which worker setting decides, and how to change it.
        why: String,
    },
    /// The placeholder is malformed.
    #[error("{key}: malformed placeholder {value}; write ${{env:NAME}} or ${{file:/path/to/file.properties:key}}")]
    Malformed {
        /// The config key.
        key: String,
        /// The raw value (not a secret itself: it is the reference).
        value: String,
    },
}

/// Whether `key` holds a secret by its name, as Connect's password type.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with(".key")
        || key.ends_with("basic.auth.user.info")
        || key.ends_with("bearer.auth.token")
}

/// Whether `value` is an indirection to a secret.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    (v.starts_with("${env:") || v.starts_with("${file:")) && v.ends_with('}')
}

/// A copy of `config` safe to show: secret keys and placeholders hidden.
pub fn redact(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_key(k) || is_placeholder(v) {
                HIDDEN.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// Whether `key` says where a connector connects, or how safely: a stored
/// secret must not follow a change of it.
fn is_destination_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "hostname",
        "host",
        "port",
        "url",
        "urls",
        "servers",
        "sslmode",
        "ssl.mode",
        "sslrootcert",
        "ssl.truststore",
    ]
    .iter()
    .any(|suffix| key == *suffix || key.ends_with(&format!(".{suffix}")))
}

/// `submitted` with every value the REST API had hidden put back from
/// `previous`, so a config fetched, edited and PUT back keeps its secrets.
/// Refused (naming the keys) when the config also changes where the
/// connector connects: otherwise anyone who can reach the API could send
/// a stored password to a server of their choosing by changing only
/// `database.hostname`. Such a change must supply the secrets again.
pub fn restore_hidden(
    submitted: &mut BTreeMap<String, String>,
    previous: &BTreeMap<String, String>,
) -> Result<(), String> {
    let hidden: Vec<String> = submitted
        .iter()
        .filter(|(k, v)| *v == HIDDEN && previous.contains_key(*k))
        .map(|(k, _)| k.clone())
        .collect();
    if hidden.is_empty() {
        return Ok(());
    }
    let moved: Vec<&String> = submitted
        .keys()
        .chain(previous.keys())
        .filter(|k| is_destination_key(k) && submitted.get(*k) != previous.get(*k))
        .collect();
    if let Some(first) = moved.first() {
        return Err(format!(
            "{first} changed, so the stored secrets ({}) are not reused: a stored secret is only sent where it was configured for. Send them again with the new {first}",
            hidden.join(", ")
        ));
    }
    for key in hidden {
        if let (Some(value), Some(old)) = (submitted.get_mut(&key), previous.get(&key)) {
            value.clone_from(old);
        }
    }
    Ok(())
}

/// Which placeholders the worker's operator allows, as Kafka Connect's
/// config providers do: `${file:}` only under the allowed directories
/// (`config.providers.file.param.allowed.paths`), `${env:}` only for
/// variables matching the allowlist (`…env.param.allowlist.pattern`).
/// Neither set: no placeholder resolves, as in a Connect worker without
/// `config.providers` — whoever can post a config must not be able to read
/// the worker's files and environment through it.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    file_dirs: Vec<std::path::PathBuf>,
    env_allowlist: Option<regex_lite::Regex>,
}

impl Providers {
    /// Providers allowing files under `file_dirs` and variables whose
    /// whole name matches `env_allowlist`.
    pub fn new(
        file_dirs: &[std::path::PathBuf],
        env_allowlist: Option<&str>,
    ) -> Result<Self, String> {
        let env_allowlist = env_allowlist
            .map(|p| {
                regex_lite::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("{p} is not a valid regular expression: {e}"))
            })
            .transpose()?;
        let file_dirs = file_dirs
            .iter()
            .map(|d| {
                d.canonicalize()
                    .map_err(|e| format!("allowed path {}: {e}", d.display()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            file_dirs,
            env_allowlist,
        })
    }

    /// Every placeholder allowed: for command-line tools the operator runs
    /// on a config file of their own (`sluice schemas check`), where no
    /// one else chooses what is read.
    pub fn unrestricted() -> Self {
        Self {
            file_dirs: vec![std::path::PathBuf::from("/")],
            env_allowlist: regex_lite::Regex::new(".*").ok(),
        }
    }

    /// Why `value` (of `key`) may not be resolved, if it may not.
    fn refusal(&self, key: &str, value: &str) -> Option<SecretError> {
        if !is_placeholder(value) {
            return None;
        }
        let inner = &value.trim()[2..value.trim().len() - 1];
        let refuse = |why: String| SecretError::NotAllowed {
            key: key.to_owned(),
            placeholder: value.to_owned(),
            why,
        };
        if let Some(name) = inner.strip_prefix("env:") {
            return match &self.env_allowlist {
                Some(allow) if allow.is_match(name) => None,
                Some(_) => Some(refuse(format!("{name} does not match --config-provider-env-allowlist"))),
                None => Some(refuse("${env:} placeholders are off; allow the variables with --config-provider-env-allowlist (Connect's config.providers.env.param.allowlist.pattern)".to_owned())),
            };
        }
        let path = inner
            .strip_prefix("file:")
            .and_then(|spec| spec.rsplit_once(':'))
            .map(|(path, _)| std::path::Path::new(path))?;
        if self.file_dirs.is_empty() {
            return Some(refuse("${file:} placeholders are off; allow a directory with --config-provider-file-allowed-paths (Connect's config.providers.file.param.allowed.paths)".to_owned()));
        }
        // The real path, so neither `..` nor a symlink leads out.
        let inside = path
            .canonicalize()
            .is_ok_and(|real| self.file_dirs.iter().any(|d| real.starts_with(d)));
        (!inside).then(|| {
            refuse(format!(
                "{} is not a file under --config-provider-file-allowed-paths",
                path.display()
            ))
        })
    }

    /// Every placeholder of `config` this worker does not allow.
    pub fn check(&self, config: &BTreeMap<String, String>) -> Vec<SecretError> {
        config
            .iter()
            .filter_map(|(k, v)| self.refusal(k, v))
            .collect()
    }
}

/// `config` with every placeholder replaced by its secret, if `providers`
/// allows it.
pub fn resolve(
    config: &BTreeMap<String, String>,
    providers: &Providers,
) -> Result<BTreeMap<String, String>, SecretError> {
    config
        .iter()
        .map(|(k, v)| match providers.refusal(k, v) {
            Some(refused) => Err(refused),
            None => Ok((k.clone(), resolve_value(k, v)?)),
        })
        .collect()
}

fn resolve_value(key: &str, value: &str) -> Result<String, SecretError> {
    if !is_placeholder(value) {
        return Ok(value.to_owned());
    }
    let inner = &value.trim()[2..value.trim().len() - 1];
    let malformed = || SecretError::Malformed {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    if let Some(name) = inner.strip_prefix("env:") {
        if name.is_empty() {
            return Err(malformed());
        }
        return std::env::var(name).map_err(|_| SecretError::MissingEnv {
            key: key.to_owned(),
            name: name.to_owned(),
        });
    }
    let spec = inner.strip_prefix("file:").ok_or_else(malformed)?;
    let (path, wanted) = spec.rsplit_once(':').ok_or_else(malformed)?;
    let file_error = |cause: String| SecretError::File {
        key: key.to_owned(),
        path: path.to_owned(),
        cause,
    };
    let text = fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once(['=', ':']))
        .find(|(k, _)| k.trim() == wanted)
        .map(|(_, v)| v.trim().to_owned())
        .ok_or_else(|| file_error(format!("it has no key {wanted}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_placeholders_are_hidden() {
        let config = BTreeMap::from([
            ("database.password".to_owned(), "s3cret".to_owned()),
            ("database.user".to_owned(), "${env:DB_USER}".to_owned()),
            ("topic".to_owned(), "t".to_owned()),
            (
                "value.converter.bearer.auth.token".to_owned(),
                "tok".to_owned(),
            ),
        ]);
        let shown = redact(&config);
        assert_eq!(shown["value.converter.bearer.auth.token"], HIDDEN);
        assert_eq!(shown["database.password"], HIDDEN);
        assert_eq!(shown["database.user"], HIDDEN);
        assert_eq!(shown["topic"], "t");
    }

    #[test]
    fn hidden_values_are_restored_from_the_previous_config() {
        let previous = BTreeMap::from([("database.password".to_owned(), "s3cret".to_owned())]);
        let mut submitted = BTreeMap::from([("database.password".to_owned(), HIDDEN.to_owned())]);
        restore_hidden(&mut submitted, &previous).unwrap();
        assert_eq!(submitted["database.password"], "s3cret");
    }

    #[test]
    fn a_hidden_secret_does_not_follow_a_new_host() {
        let previous = BTreeMap::from([
            ("database.hostname".to_owned(), "db.internal".to_owned()),
            ("database.password".to_owned(), "s3cret".to_owned()),
        ]);
        let mut submitted = BTreeMap::from([
            (
                "database.hostname".to_owned(),
                "attacker.example".to_owned(),
            ),
            ("database.password".to_owned(), HIDDEN.to_owned()),
        ]);
        let refused = restore_hidden(&mut submitted, &previous).unwrap_err();
        assert!(refused.contains("database.hostname"), "{refused}");
        assert_eq!(submitted["database.password"], HIDDEN);
        // With the secret sent again, the move is the user's own.
        submitted.insert("database.password".into(), "new".into());
        restore_hidden(&mut submitted, &previous).unwrap();
    }

    #[test]
    fn file_placeholders_read_properties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.properties");
        fs::write(&path, "# creds\nuser=alice\npassword = hunter2\n").expect("write");
        let config = BTreeMap::from([(
            "database.password".to_owned(),
            format!("${{file:{}:password}}", path.display()),
        )]);
        let allowed = Providers::new(&[dir.path().to_owned()], None).unwrap();
        assert_eq!(
            resolve(&config, &allowed).expect("resolve")["database.password"],
            "hunter2"
        );
        // Without the directory allowed, or outside it, nothing is read.
        let refused = resolve(&config, &Providers::default()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("--config-provider-file-allowed-paths"),
            "{refused}"
        );
        let other = tempfile::tempdir().expect("tempdir");
        let elsewhere = Providers::new(&[other.path().to_owned()], None).unwrap();
        assert!(resolve(&config, &elsewhere).is_err());
        let escape = BTreeMap::from([(
            "database.password".to_owned(),
            format!(
                "${{file:{}/../{}/db.properties:password}}",
                other.path().display(),
                dir.path().file_name().unwrap().to_string_lossy()
            ),
        )]);
        assert!(resolve(&escape, &elsewhere).is_err(), "no way out with ..");
    }

    #[test]
    fn missing_env_names_the_variable_and_key() {
        let config = BTreeMap::from([(
            "database.password".to_owned(),
            "${env:SLUICE_TEST_SURELY_UNSET}".to_owned(),
        )]);
        let allowed = Providers::new(&[], Some("SLUICE_TEST_.*")).unwrap();
        let err = resolve(&config, &allowed).expect_err("unset");
        let text = err.to_string();
        assert!(text.contains("SLUICE_TEST_SURELY_UNSET") && text.contains("database.password"));
        let home = BTreeMap::from([("topic.prefix".to_owned(), "${env:HOME}".to_owned())]);
        let refused = resolve(&home, &allowed).unwrap_err();
        assert!(refused.to_string().contains("does not match"), "{refused}");
    }
}
