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
    /// `rounds` transactions of insert + update + delete on
    /// `database.items` (ids from `base` inserted; ids below `span`
    /// updated; ids from `span` deleted), ten per client call. A call cut
    /// short by a server restart is run again; the statements tolerate it.
    pub fn random_writes(&self, database: &str, rounds: i64, base: i64, span: i64) {
        for chunk in (0..rounds).collect::<Vec<_>>().chunks(10) {
            let sql: String = chunk
                .iter()
                .map(|i| {
                    format!(
                        "BEGIN; \
                         INSERT IGNORE INTO {database}.items (id, qty, note, price) VALUES ({}, {i}, 'new {i}', {i}.5); \
                         UPDATE {database}.items SET qty = qty + 1, note = 'upd {i}' WHERE id = {}; \
                         DELETE FROM {database}.items WHERE id = {}; \
                         COMMIT;",
                        base + i,
                        1 + (i * 7) % span,
                        span + i
                    )
                })
                .collect();
            let mut attempts = 0;
            while let Err(e) = self.try_exec(&sql) {
                attempts += 1;
                assert!(attempts < 150, "mariadb kept failing: {e}");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

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

/// A second, short-lived MariaDB server for settings the shared one must
/// keep (such as the binary log being on): its own data directory and
/// port, a `sluice` user with every privilege, stopped when dropped.
#[derive(Debug)]
pub struct ScratchServer {
    dir: tempfile::TempDir,
    child: std::process::Child,
    /// A client for it.
    pub db: Maria,
}

impl ScratchServer {
    /// Installs and starts a server with `args` added to its command line.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = running_as_root();
        if root {
            let chown = Command::new("chown")
                .args(["-R", "mysql"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(chown.success(), "chown {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"]);
        if root {
            install.arg("--user=mysql");
        }
        let installed = install.output().expect("mariadb-install-db");
        assert!(installed.status.success(), "{installed:?}");
        let port = crate::process::free_port();
        let socket = dir.path().join("mariadb.sock");
        let mut server = Command::new("mariadbd");
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if root {
            server.arg("--user=mysql");
        }
        let child = server.spawn().expect("mariadbd");
        crate::wait_for(
            "the scratch MariaDB to accept connections",
            std::time::Duration::from_secs(60),
            || {
                Command::new("mariadb")
                    .arg("--no-defaults")
                    .arg(format!("--socket={}", socket.display()))
                    .args(["-u", "root", "-e"])
                    .arg(
                        "CREATE USER IF NOT EXISTS 'sluice'@'%' IDENTIFIED BY 'sluice'; \
                         GRANT ALL PRIVILEGES ON *.* TO 'sluice'@'%'; \
                         CREATE DATABASE IF NOT EXISTS sluice;",
                    )
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|_| ())
            },
        );
        let db = Maria {
            host: "127.0.0.1".into(),
            port: port.to_string(),
            user: "sluice".into(),
            password: "sluice".into(),
        };
        Self { dir, child, db }
    }

    /// Its data directory and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// mariadbd refuses to run as root without `--user`.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
