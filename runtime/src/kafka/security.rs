//! Reaching secured Kafka clusters. A Kafka Connect worker.properties names
//! its security settings the Java client's way (`sasl.jaas.config`,
//! `ssl.truststore.location`, `sasl.mechanism`); librdkafka names them
//! differently. This module turns either spelling into librdkafka's, so the
//! same settings reach every client sluice makes (producer, consumers,
//! admin) and a file in a format librdkafka cannot read is refused at
//! startup with the command that converts it.

use std::collections::BTreeMap;
use std::path::Path;

use thiserror::Error;

use super::msk_iam::{region_of_bootstrap, IamSettings, Source};

/// A security setting that cannot be used, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{key}: {message}")]
pub struct SecurityError {
    /// The setting as the user wrote it.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn error(key: &str, message: impl Into<String>) -> SecurityError {
    SecurityError {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// What a keystore or truststore file holds, judged by its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreFormat {
    Pem,
    Jks,
    Pkcs12,
}

fn format_of(path: &str, declared: Option<&str>, key: &str) -> Result<StoreFormat, SecurityError> {
    if let Some(declared) = declared.map(str::trim).filter(|d| !d.is_empty()) {
        return match declared.to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreFormat::Pem),
            "JKS" => Ok(StoreFormat::Jks),
            "PKCS12" => Ok(StoreFormat::Pkcs12),
            other => Err(error(
                key,
                format!("store type {other} is not PEM, PKCS12 or JKS"),
            )),
        };
    }
    let bytes = std::fs::read(Path::new(path))
        .map_err(|e| error(key, format!("cannot read {path}: {e}")))?;
    Ok(if bytes.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
        StoreFormat::Jks
    } else if String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).contains("-----BEGIN") {
        StoreFormat::Pem
    } else {
        StoreFormat::Pkcs12
    })
}

/// The value of `name="value"` (or `name=value`) in a JAAS line.
fn jaas_option(jaas: &str, name: &str) -> Option<String> {
    let start = jaas.find(&format!("{name}="))? + name.len() + 1;
    let rest = &jaas[start..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([' ', ';']).next()?,
    };
    Some(value.to_owned())
}

/// What MSK's `IAMLoginModule required awsProfileName="x" …;` says, with
/// the region the bootstrap host names.
fn msk_iam_settings(jaas: &str, bootstrap: Option<&str>) -> IamSettings {
    let option = |name: &str| jaas_option(jaas, name).filter(|v| !v.is_empty());
    IamSettings {
        region: bootstrap.and_then(region_of_bootstrap),
        source: Source {
            profile: option("awsProfileName"),
            role_arn: option("awsRoleArn"),
            role_session_name: option("awsRoleSessionName"),
            sts_region: option("awsStsRegion"),
        },
    }
}

/// The user name and password of a Plain or SCRAM `sasl.jaas.config`.
fn jaas_credentials(jaas: &str) -> Result<(String, String), SecurityError> {
    let key = "sasl.jaas.config";
    let module = jaas.split_whitespace().next().unwrap_or_default();
    if module.ends_with("OAuthBearerLoginModule") {
        return Err(error(
            key,
            "OAUTHBEARER through a JAAS login module is not supported; give librdkafka's sasl.oauthbearer.* settings instead",
        ));
    }
    if !(module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule")) {
        return Err(error(
            key,
            format!("{module} is not a login module sluice can translate; use PlainLoginModule or ScramLoginModule, or sasl.username / sasl.password"),
        ));
    }
    match (jaas_option(jaas, "username"), jaas_option(jaas, "password")) {
        (Some(user), Some(password)) => Ok((user, password)),
        _ => Err(error(key, "needs username=\"...\" and password=\"...\"")),
    }
}

/// Whether a JAAS line is MSK's IAM login module.
fn is_msk_iam(jaas: &str) -> bool {
    jaas.split_whitespace()
        .next()
        .is_some_and(|module| module.ends_with("IAMLoginModule"))
}

/// librdkafka properties for `settings`, which may use the Java client's
/// names or librdkafka's own; anything else passes through unchanged.
/// `bootstrap` (the servers these settings reach) tells AWS MSK IAM the
/// cluster's region.
pub fn translate(
    settings: &BTreeMap<String, String>,
    bootstrap: Option<&str>,
) -> Result<BTreeMap<String, String>, SecurityError> {
    let mut out = BTreeMap::new();
    let get = |k: &str| settings.get(k).map(String::as_str);
    for (key, value) in settings {
        match key.as_str() {
            "sasl.mechanism" => {
                let mechanism = value.trim().to_ascii_uppercase();
                if mechanism == "GSSAPI" {
                    return Err(error(key, "GSSAPI (Kerberos) is not supported; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM"));
                }
                if mechanism == "AWS_MSK_IAM" {
                    // MSK takes the IAM signature as an OAUTHBEARER token.
                    out.insert("sasl.mechanisms".to_owned(), "OAUTHBEARER".to_owned());
                    if !get("sasl.jaas.config").is_some_and(is_msk_iam) {
                        let iam = msk_iam_settings("", bootstrap);
                        out.insert("sasl.oauthbearer.config".to_owned(), iam.to_oauthbearer_config());
                    }
                    continue;
                }
                out.insert("sasl.mechanisms".to_owned(), mechanism);
            }
            "sasl.jaas.config" if is_msk_iam(value) => {
                let iam = msk_iam_settings(value, bootstrap);
                out.insert("sasl.mechanisms".to_owned(), "OAUTHBEARER".to_owned());
                out.insert("sasl.oauthbearer.config".to_owned(), iam.to_oauthbearer_config());
            }
            "sasl.jaas.config" => {
                let (user, password) = jaas_credentials(value)?;
                out.insert("sasl.username".to_owned(), user);
                out.insert("sasl.password".to_owned(), password);
            }
            "ssl.truststore.location" => {
                match format_of(value, get("ssl.truststore.type"), key)? {
                    StoreFormat::Pem => {
                        out.insert("ssl.ca.location".to_owned(), value.clone());
                    }
                    StoreFormat::Jks => return Err(error(key, format!(
                        "{value} is a Java keystore, which librdkafka cannot read; convert it: keytool -importkeystore -srckeystore {value} -destkeystore truststore.p12 -deststoretype PKCS12 && openssl pkcs12 -in truststore.p12 -nokeys -out truststore.pem, then set ssl.truststore.location=truststore.pem"))),
                    StoreFormat::Pkcs12 => return Err(error(key, format!(
                        "{value} is a PKCS12 truststore; librdkafka reads CA certificates as PEM: openssl pkcs12 -in {value} -nokeys -out truststore.pem, then set ssl.truststore.location=truststore.pem"))),
                }
            }
            "ssl.truststore.certificates" => {
                out.insert("ssl.ca.pem".to_owned(), value.clone());
            }
            "ssl.keystore.location" => match format_of(value, get("ssl.keystore.type"), key)? {
                StoreFormat::Pkcs12 => {
                    out.insert("ssl.keystore.location".to_owned(), value.clone());
                }
                StoreFormat::Pem => {
                    // One PEM file with the certificate chain and the key.
                    out.insert("ssl.certificate.location".to_owned(), value.clone());
                    out.insert("ssl.key.location".to_owned(), value.clone());
                }
                StoreFormat::Jks => return Err(error(key, format!(
                    "{value} is a Java keystore, which librdkafka cannot read; convert it: keytool -importkeystore -srckeystore {value} -destkeystore keystore.p12 -deststoretype PKCS12, then set ssl.keystore.location=keystore.p12"))),
            },
            "ssl.keystore.password" => {
                out.insert("ssl.keystore.password".to_owned(), value.clone());
            }
            "ssl.keystore.certificate.chain" => {
                out.insert("ssl.certificate.pem".to_owned(), value.clone());
            }
            "ssl.keystore.key" => {
                out.insert("ssl.key.pem".to_owned(), value.clone());
            }
            "ssl.endpoint.identification.algorithm" => {
                let algorithm = if value.trim().is_empty() { "none" } else { value.trim() };
                out.insert(key.clone(), algorithm.to_owned());
            }
            // Java-only knobs with nothing to set in librdkafka.
            "ssl.truststore.type" | "ssl.keystore.type" | "ssl.truststore.password"
            | "ssl.protocol" | "ssl.enabled.protocols" | "sasl.login.callback.handler.class"
            | "sasl.client.callback.handler.class" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

/// Whether a setting is about reaching the cluster securely, so that it
/// belongs to every client, not only the one it was given for.
pub fn is_security_key(key: &str) -> bool {
    ["security.", "sasl.", "ssl."]
        .iter()
        .any(|p| key.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_connect_sasl_ssl_config_becomes_librdkafka_settings() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let out = translate(&settings(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p a;ss";"#),
            ("ssl.truststore.location", ca.to_str().unwrap()),
            ("ssl.endpoint.identification.algorithm", ""),
            ("ssl.truststore.password", "changeit"),
        ]), None)
        .unwrap();
        assert_eq!(out["security.protocol"], "SASL_SSL");
        assert_eq!(out["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(out["sasl.username"], "alice");
        assert_eq!(out["sasl.password"], "p a;ss");
        assert_eq!(out["ssl.ca.location"], ca.to_str().unwrap());
        assert_eq!(out["ssl.endpoint.identification.algorithm"], "none");
        assert!(!out.contains_key("ssl.truststore.password"));
    }

    #[test]
    fn java_keystores_are_refused_with_the_conversion_command() {
        let dir = tempfile::tempdir().unwrap();
        let jks = dir.path().join("truststore.jks");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        let e = translate(
            &settings(&[("ssl.truststore.location", jks.to_str().unwrap())]),
            None,
        )
        .unwrap_err();
        assert_eq!(e.key, "ssl.truststore.location");
        assert!(e.message.contains("keytool -importkeystore"), "{e}");
        let p12 = dir.path().join("keystore.p12");
        std::fs::write(&p12, [0x30, 0x82, 0x01, 0x00]).unwrap();
        let out = translate(
            &settings(&[
                ("ssl.keystore.location", p12.to_str().unwrap()),
                ("ssl.keystore.password", "pw"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(out["ssl.keystore.location"], p12.to_str().unwrap());
    }

    #[test]
    fn an_msk_iam_worker_config_becomes_oauthbearer_signed_by_sluice() {
        let out = translate(
            &settings(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "AWS_MSK_IAM"),
                ("sasl.jaas.config", r#"software.amazon.msk.auth.iam.IAMLoginModule required awsProfileName="prod";"#),
                ("sasl.client.callback.handler.class", "software.amazon.msk.auth.iam.IAMClientCallbackHandler"),
            ]),
            Some("b-1.orders.x1.c2.kafka.eu-west-1.amazonaws.com:9098"),
        )
        .unwrap();
        assert_eq!(out["sasl.mechanisms"], "OAUTHBEARER");
        assert_eq!(
            out["sasl.oauthbearer.config"],
            "sluice-aws-msk-iam region=eu-west-1 profile=prod"
        );
        let out = translate(
            &settings(&[(
                "sasl.jaas.config",
                r#"software.amazon.msk.auth.iam.IAMLoginModule required awsRoleArn="arn:aws:iam::1:role/msk" awsRoleSessionName=etl awsStsRegion=us-east-1;"#,
            )]),
            Some("boot-x.c1.kafka-serverless.us-east-2.amazonaws.com:9098"),
        )
        .unwrap();
        assert_eq!(
            out["sasl.oauthbearer.config"],
            "sluice-aws-msk-iam region=us-east-2 roleArn=arn:aws:iam::1:role/msk roleSessionName=etl stsRegion=us-east-1"
        );
        assert_eq!(out["sasl.mechanisms"], "OAUTHBEARER");
        assert!(!out.contains_key("sasl.client.callback.handler.class"));
        // The mechanism alone means the default credentials chain.
        let out = translate(&settings(&[("sasl.mechanism", "AWS_MSK_IAM")]), None).unwrap();
        assert_eq!(out["sasl.oauthbearer.config"], "sluice-aws-msk-iam");
    }

    #[test]
    fn unsupported_login_modules_say_what_to_use() {
        let e = translate(
            &settings(&[(
                "sasl.jaas.config",
                "com.sun.security.auth.module.Krb5LoginModule required;",
            )]),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("PlainLoginModule"), "{e}");
        let e = translate(&settings(&[("sasl.mechanism", "GSSAPI")]), None).unwrap_err();
        assert_eq!(e.key, "sasl.mechanism");
        // librdkafka's own names pass through.
        let out = translate(
            &settings(&[("sasl.mechanisms", "PLAIN"), ("ssl.ca.location", "/x.pem")]),
            None,
        )
        .unwrap();
        assert_eq!(out["sasl.mechanisms"], "PLAIN");
    }
}
