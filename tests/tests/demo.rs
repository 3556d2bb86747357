//! The README's demo command, `scripts/demo`, run against the test servers
//! with the debug binary until what a newcomer should see is on screen —
//! both sources' snapshots, live inserts, updates and deletes from both
//! databases, the replica's row counts catching up — then stopped with
//! Ctrl-C (SIGINT), after which everything the demo started must be gone.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::env::TestEnv;
use sluice_tests::postgres::Pg;
use sluice_tests::process::free_port;

/// How long the demo may take to show everything (it needs ~20 s).
const PATIENCE: Duration = Duration::from_secs(180);

#[test]
fn demo_shows_snapshots_live_changes_and_a_converging_replica_and_stops_on_ctrl_c() {
    let env = TestEnv::load();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rest_port = free_port();
    let registry_port = free_port();
    let kafka_port = env
        .bootstrap()
        .rsplit_once(':')
        .map(|(_, port)| port.to_owned())
        .expect("bootstrap has a port");
    let log_path = std::env::temp_dir().join(format!("{}.log", sluice_tests::unique("demo")));
    let log = std::fs::File::create(&log_path).expect("creating the demo's log");
    let mut demo = Command::new(root.join("scripts/demo"))
        .current_dir(&root)
        .env("SLUICE_DEMO_BUILD", "debug")
        .env("SLUICE_DEMO_REST_PORT", rest_port.to_string())
        .env("SLUICE_DEMO_REGISTRY_PORT", registry_port.to_string())
        .env("SLUICE_ENV_DIR", env.get("SLUICE_ENV_DIR"))
        .env("SLUICE_PG_PORT", env.get("SLUICE_PG_PORT"))
        .env("SLUICE_MARIADB_PORT", env.get("SLUICE_MARIADB_PORT"))
        .env("SLUICE_KAFKA_PORT", kafka_port)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("starting scripts/demo");
    let screen = || without_colours(&std::fs::read_to_string(&log_path).unwrap_or_default());

    // Wait until the screen shows everything, or the demo ends by itself.
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline && !shows_everything(&screen()) {
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo exited by itself ({status}):\n{}", screen());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    // Ctrl-C: the terminal sends SIGINT to the script.
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(demo.id() as libc::pid_t, libc::SIGINT) };
    let status = sluice_tests::wait_for(
        "the demo to stop after Ctrl-C",
        Duration::from_secs(60),
        || demo.try_wait().ok().flatten(),
    );
    let text = screen();
    assert_eq!(
        status.code(),
        Some(130),
        "Ctrl-C should end the demo with 130:\n{text}"
    );

    for (file, name) in [
        ("postgres.json", "inventory-postgres"),
        ("mysql.json", "inventory-mysql"),
        ("jdbc-sink.json", "inventory-jdbc-sink"),
    ] {
        assert!(
            text.contains(&format!("registered examples/{file} ({name})")),
            "{file} was not registered:\n{text}"
        );
    }
    assert!(text.contains(&format!("REST API: http://127.0.0.1:{rest_port}")));
    assert!(
        text.contains(" verify --source "),
        "no sluice verify line to try:\n{text}"
    );
    assert!(text.contains("curl -s"), "no curl lines to try:\n{text}");

    assert!(
        shows_everything(&text),
        "the demo did not show both snapshots, live changes and a converged replica within {PATIENCE:?}:\n{text}"
    );
    // Updates carry their old values, so the demo shows what changed.
    assert!(
        text.lines()
            .any(|l| l.starts_with("dbserver1.inventory.orders")
                && l.contains(r#"status: "new" → "paid""#)),
        "no PostgreSQL status update shown as old → new:\n{text}"
    );

    // Everything the demo started is gone; the servers it found running are not.
    assert!(text.contains("demo stopped"), "{text}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", rest_port)).is_err(),
        "the demo's worker still listens on {rest_port}"
    );
    sluice_tests::wait_for(
        "the change generators to exit",
        Duration::from_secs(10),
        || {
            let running = Command::new("pgrep")
                .args(["-f", "examples/inventory/changes.sh"])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            (!running).then_some(())
        },
    );
    let servers = Command::new(root.join("scripts/env"))
        .arg("status")
        .env("SLUICE_ENV_DIR", env.get("SLUICE_ENV_DIR"))
        .output()
        .expect("scripts/env status");
    assert!(
        servers.status.success(),
        "the demo stopped servers it did not start:\n{}",
        String::from_utf8_lossy(&servers.stdout)
    );
    let pg = Pg::from_env(&env);
    assert_eq!(
        pg.exec("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'debezium'"),
        "0",
        "the demo left its replication slot behind"
    );
}

/// Whether the screen shows every row of the demo data as a snapshot event
/// from both sources, live inserts, updates and deletes from both, and a
/// report of the replica with every table equal to its source after live
/// changes (the orders table no longer at its snapshot size).
fn shows_everything(text: &str) -> bool {
    let snapshots = ["dbserver1", "mysqlserver1"].iter().all(|prefix| {
        [("customers", 100), ("products", 50), ("orders", 300)]
            .iter()
            .all(|(table, rows)| {
                let keys = keys_of(text, &format!("{prefix}.inventory.{table}"), "snapshot");
                (1..=*rows).all(|id| keys.contains(&id))
            })
    });
    let live = ["dbserver1", "mysqlserver1"].iter().all(|prefix| {
        let orders = format!("{prefix}.inventory.orders");
        ["insert", "update", "delete"]
            .iter()
            .all(|op| !keys_of(text, &orders, op).is_empty())
    });
    let converged = text.lines().filter_map(row_counts).any(|counts| {
        counts.iter().all(|(_, source, replica)| source == replica)
            && counts
                .iter()
                .any(|(table, source, _)| table == "orders" && *source != 300)
    });
    snapshots && live && converged
}

/// The keys (`id=N`) of the change lines for `topic` with operation `op`.
fn keys_of(text: &str, topic: &str, op: &str) -> BTreeSet<i64> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(topic) && words.next() == Some(op))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|key| key.strip_prefix("id=")?.parse().ok())
        .collect()
}

/// `(table, source rows, replica rows)` from a line like
/// `── 11:33:28 ── PostgreSQL inventory → replica (rows):  customers 100 → 100  …`.
fn row_counts(line: &str) -> Option<Vec<(String, i64, i64)>> {
    let (_, counts) = line.split_once("(rows):")?;
    let words: Vec<&str> = counts.split_whitespace().collect();
    words
        .chunks(4)
        .map(|chunk| match chunk {
            [table, source, "→", replica] => Some((
                table.to_string(),
                source.parse().ok()?,
                replica.parse().ok()?,
            )),
            _ => None,
        })
        .collect()
}

/// The text without terminal colour codes.
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The demo database's Avro contracts under `schemas/` are what the example
/// sources emit for it, so a change to the events a consumer of the demo
/// topics receives is a reviewed change (regenerate with
/// `sluice schemas check --write` on the same configs).
#[test]
fn the_inventory_contracts_in_git_match_what_the_example_sources_emit() {
    let env = TestEnv::load();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pg = Pg::from_env(&env);
    pg.exec(&std::fs::read_to_string(root.join("examples/inventory/postgres.sql")).expect("sql"));
    let maria = sluice_tests::mariadb::Maria::from_env(&env);
    maria.exec(&std::fs::read_to_string(root.join("examples/inventory/mysql.sql")).expect("sql"));

    let dir = tempfile::tempdir().expect("tempdir");
    for (file, local) in [
        (
            "postgres.json",
            serde_json::json!({
                "database.hostname": env.get("SLUICE_PG_HOST"),
                "database.port": env.get("SLUICE_PG_PORT"),
                "database.dbname": env.get("SLUICE_PG_DATABASE"),
                "database.user": env.get("SLUICE_PG_USER"),
                "database.password": env.get("SLUICE_PG_PASSWORD"),
            }),
        ),
        (
            "mysql.json",
            serde_json::json!({
                "database.hostname": env.get("SLUICE_MARIADB_HOST"),
                "database.port": env.get("SLUICE_MARIADB_PORT"),
                "database.user": env.get("SLUICE_MARIADB_USER"),
                "database.password": env.get("SLUICE_MARIADB_PASSWORD"),
            }),
        ),
    ] {
        // The example as written, pointed at the test servers.
        let text = std::fs::read_to_string(root.join("examples").join(file)).expect("example");
        let mut example: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for (key, value) in local.as_object().expect("object") {
            example["config"][key] = value.clone();
        }
        let path = dir.path().join(file);
        std::fs::write(&path, example.to_string()).expect("writing the config");
        let out = Command::new(sluice_tests::process::sluice_bin())
            .args(["schemas", "check", "--dir"])
            .arg(root.join("schemas"))
            .arg("--connector")
            .arg(&path)
            .output()
            .expect("running sluice schemas check");
        let text = sluice_tests::process::output_text(&out);
        assert!(
            out.status.success(),
            "schemas/ drifted from what examples/{file} emits:\n{text}"
        );
        assert!(
            !text.contains("compatible under"),
            "contracts should be identical:\n{text}"
        );
        for table in ["customers", "products", "orders"] {
            assert!(
                text.contains(&format!("inventory.{table}-value")),
                "{file}: {table} not checked:\n{text}"
            );
        }
    }
}
