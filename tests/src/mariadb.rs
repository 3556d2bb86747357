//! The test MariaDB through the `mariadb` command-line client,
//! independent of sluice's own driver.

use std::process::Command;

use serde_json::{json, Value};

use crate::env::TestEnv;

/// The test server.
#[derive(Debug, Clone)]
pub struct Maria {
    host: String,
    port: String,
    user: String,
    password: String,
}

impl Maria {
    /// The server `scripts/env` started, as its `sluice` user.
    pub fn from_env(env: &TestEnv) -> Self {
        Self {
            host: env.get("SLUICE_MARIADB_HOST").to_owned(),
            port: env.get("SLUICE_MARIADB_PORT").to_owned(),
            user: env.get("SLUICE_MARIADB_USER").to_owned(),
            password: env.get("SLUICE_MARIADB_PASSWORD").to_owned(),
        }
    }

    /// Runs `sql`; its rows tab-separated without headers, or the error.
    pub fn try_exec(&self, sql: &str) -> Result<String, String> {
        let output = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                &self.host,
                "-P",
                &self.port,
                "-u",
                &self.user,
            ])
            .arg(format!("-p{}", self.password))
            .args(["-D", "sluice", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| format!("cannot run mariadb: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Runs `sql`, panicking with the client's error.
    pub fn exec(&self, sql: &str) -> String {
        self.try_exec(sql)
            .unwrap_or_else(|e| panic!("mariadb failed on {sql}: {e}"))
    }

    /// The rows of `query`, each a list of column texts (`NULL` for null).
    pub fn rows(&self, query: &str) -> Vec<Vec<String>> {
        self.exec(query)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// A Debezium MySQL connector config capturing `database`, with plain
    /// JSON (no schemas) on the wire so tests read values directly.
    pub fn connector_config(&self, prefix: &str, database: &str, server_id: u32) -> Value {
        json!({
            "connector.class": "io.debezium.connector.mysql.MySqlConnector",
            "database.hostname": self.host,
            "database.port": self.port,
            "database.user": self.user,
            "database.password": self.password,
            "database.server.id": server_id.to_string(),
            "database.include.list": database,
            "topic.prefix": prefix,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
        })
    }
}
