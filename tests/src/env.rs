//! The servers started by `scripts/env up`, read from its `env.sh`.

use std::collections::HashMap;
use std::path::PathBuf;

/// Connection settings of the test environment.
#[derive(Debug, Clone)]
pub struct TestEnv {
    vars: HashMap<String, String>,
}

impl TestEnv {
    /// Runs `scripts/env <what>` (e.g. `restart-mariadb`) on this
    /// environment, panicking if it fails.
    pub fn script(&self, what: &str) {
        let status = std::process::Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/env"),
        )
        .arg(what)
        .env("SLUICE_ENV_DIR", self.get("SLUICE_ENV_DIR"))
        // A restart must come back on the ports the tests use, whatever
        // the caller's shell exports.
        .env("SLUICE_PG_PORT", self.get("SLUICE_PG_PORT"))
        .env("SLUICE_MARIADB_PORT", self.get("SLUICE_MARIADB_PORT"))
        .status()
        .unwrap_or_else(|e| panic!("running scripts/env {what}: {e}"));
        assert!(status.success(), "scripts/env {what} failed");
    }

    /// Reads `$SLUICE_ENV_DIR/env.sh` (default `/tmp/sluice-env`).
    ///
    /// Panics with instructions when the environment is not up, since no
    /// integration test can mean anything without real servers.
    pub fn load() -> Self {
        let dir = std::env::var("SLUICE_ENV_DIR").unwrap_or_else(|_| "/tmp/sluice-env".into());
        let path = PathBuf::from(&dir).join("env.sh");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("cannot read {}: {e}; start the servers with `scripts/env up` (or run `scripts/test`)", path.display())
        });
        let vars = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { vars }
    }

    /// One setting, e.g. `SLUICE_PG_PORT`.
    pub fn get(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{key} missing from env.sh; rerun `scripts/env up`"))
    }

    /// The broker's bootstrap address.
    pub fn bootstrap(&self) -> &str {
        self.get("SLUICE_KAFKA_BOOTSTRAP")
    }
}
