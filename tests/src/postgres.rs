//! The test PostgreSQL through `psql`, independent of sluice's own client.

use std::process::Command;

use serde_json::{json, Value};

use crate::env::TestEnv;

/// The test database.
#[derive(Debug, Clone)]
pub struct Pg {
    host: String,
    port: String,
    user: String,
    password: String,
    database: String,
}

impl Pg {
    /// Creates schema `schema` with the table [`Pg::random_writes`] writes,
    /// `items`, holding rows 1 to `rows`.
    pub fn items_table(&self, schema: &str, rows: i64) {
        self.exec(&format!(
            "CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.items (id int PRIMARY KEY, qty int NOT NULL, note text, price numeric(12,2)); \
             INSERT INTO {schema}.items SELECT g, g % 100, 'note ' || g, g * 1.25 FROM generate_series(1, {rows}) g;"
        ));
    }

    /// `rounds` transactions of insert + update + delete on `schema.items`
    /// (ids from `base` inserted; ids below `span` updated; ids from `span`
    /// deleted), ten per psql call so the load is dense enough to overlap
    /// snapshots, crashes and restarts. A call cut short by a server
    /// restart is run again; the statements tolerate it.
    pub fn random_writes(&self, schema: &str, rounds: i64, base: i64, span: i64) {
        for chunk in (0..rounds).collect::<Vec<_>>().chunks(10) {
            let sql: String = chunk
                .iter()
                .map(|i| {
                    format!(
                        "BEGIN; \
                         INSERT INTO {schema}.items (id, qty, note, price) VALUES ({}, {i}, 'new {i}', {i}.5) \
                           ON CONFLICT (id) DO NOTHING; \
                         UPDATE {schema}.items SET qty = qty + 1, note = 'upd {i}' WHERE id = {}; \
                         DELETE FROM {schema}.items WHERE id = {}; \
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
                assert!(attempts < 150, "psql kept failing: {e}");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The database `scripts/env` started.
    pub fn from_env(env: &TestEnv) -> Self {
        Self {
            host: env.get("SLUICE_PG_HOST").to_owned(),
            port: env.get("SLUICE_PG_PORT").to_owned(),
            user: env.get("SLUICE_PG_USER").to_owned(),
            password: env.get("SLUICE_PG_PASSWORD").to_owned(),
            database: env.get("SLUICE_PG_DATABASE").to_owned(),
        }
    }

    /// Runs `sql`; its output rows unaligned, or psql's error.
    pub fn try_exec(&self, sql: &str) -> Result<String, String> {
        let output = Command::new("psql")
            .args([
                "-h",
                &self.host,
                "-p",
                &self.port,
                "-U",
                &self.user,
                "-d",
                &self.database,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Runs `sql`, panicking with psql's error.
    pub fn exec(&self, sql: &str) -> String {
        self.try_exec(sql)
            .unwrap_or_else(|e| panic!("psql failed on {sql}: {e}"))
    }

    /// The rows of `query` as JSON objects.
    pub fn rows(&self, query: &str) -> Vec<Value> {
        let text = self.exec(&format!(
            "SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM ({query}) q"
        ));
        match serde_json::from_str(&text) {
            Ok(Value::Array(rows)) => rows,
            other => panic!("unexpected psql output for {query}: {other:?}"),
        }
    }

    /// A Debezium connector config for this database capturing `schema`,
    /// with its own slot and publication.
    pub fn connector_config(&self, prefix: &str, schema: &str, slot: &str) -> Value {
        json!({
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "database.hostname": self.host,
            "database.port": self.port,
            "database.user": self.user,
            "database.password": self.password,
            "database.dbname": self.database,
            "topic.prefix": prefix,
            "schema.include.list": schema,
            "slot.name": slot,
            "publication.name": format!("{slot}_pub"),
            "publication.autocreate.mode": "filtered",
            "slot.drop.on.stop": "true",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
        })
    }

    /// Drops a slot left behind (a test that failed before its connector
    /// stopped); ignores a missing or busy one.
    pub fn drop_slot(&self, slot: &str) {
        let _ = self.try_exec(&format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT active"
        ));
    }
}
