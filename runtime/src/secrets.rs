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

/// `config` with every placeholder replaced by its secret.
pub fn resolve(config: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SecretError> {
    config
        .iter()
        .map(|(k, v)| Ok((k.clone(), resolve_value(k, v)?)))
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
        ]);
        let shown = redact(&config);
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
        assert_eq!(
            resolve(&config).expect("resolve")["database.password"],
            "hunter2"
        );
    }

    #[test]
    fn missing_env_names_the_variable_and_key() {
        let config = BTreeMap::from([(
            "database.password".to_owned(),
            "${env:SLUICE_TEST_SURELY_UNSET}".to_owned(),
        )]);
        let err = resolve(&config).expect_err("unset");
        let text = err.to_string();
        assert!(text.contains("SLUICE_TEST_SURELY_UNSET") && text.contains("database.password"));
    }
}
