//! `RegexRouter`: renames the topic when the whole name matches `regex`,
//! to `replacement` with `$1`-style group references.

use sluice_connector_api::ConfigError;

use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct RegexRouter {
    regex: regex_lite::Regex,
    replacement: String,
}

impl RegexRouter {
    /// Reads `regex` and `replacement`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let regex = settings.whole_regex("regex")?;
        let replacement = settings.get("replacement").ok_or_else(|| {
            settings.error("replacement", "is required by this transform but not set")
        })?;
        Ok(Self {
            regex,
            replacement: java_replacement(replacement),
        })
    }
}

/// Java's replacement syntax (`$1` followed by anything, `\$` for a dollar)
/// in the regex crate's (`${1}`, `$$`).
pub fn java_replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 4);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl Transform for RegexRouter {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        if self.regex.is_match(&record.topic) {
            record.topic = self
                .regex
                .replace(&record.topic, self.replacement.as_str())
                .into_owned()
                .into();
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::record_on;

    fn router(regex: &str, replacement: &str) -> RegexRouter {
        RegexRouter::new(&Settings::from_pairs(
            "transforms.route.",
            &[("regex", regex), ("replacement", replacement)],
        ))
        .unwrap()
    }

    #[test]
    fn renames_a_whole_match_with_groups() {
        let r = router(r"([^.]+)\.([^.]+)\.([^.]+)", "$3");
        let out = r
            .apply(record_on("dbserver1.inventory.customers"))
            .unwrap()
            .unwrap();
        assert_eq!(out.topic, "customers");
        let r = router(r"(.*)customers", "$1clients_v2");
        let out = r.apply(record_on("db.customers")).unwrap().unwrap();
        assert_eq!(out.topic, "db.clients_v2");
    }

    #[test]
    fn leaves_a_partial_match_alone() {
        let r = router("customers", "x");
        let out = r.apply(record_on("db.customers")).unwrap().unwrap();
        assert_eq!(out.topic, "db.customers");
    }

    #[test]
    fn a_missing_replacement_names_the_key() {
        let e = RegexRouter::new(&Settings::from_pairs(
            "transforms.route.",
            &[("regex", ".*")],
        ))
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.route.replacement");
    }

    #[test]
    fn java_replacements_translate() {
        assert_eq!(java_replacement("$1abc"), "${1}abc");
        assert_eq!(java_replacement(r"cost\$"), "cost$$");
        assert_eq!(java_replacement("$12-x"), "${12}-x");
    }
}
