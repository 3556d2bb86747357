//! The README's demo command, `scripts/demo`, run for a bounded time
//! (`SLUICE_DEMO_SECONDS`) against the test servers with the debug binary:
//! what a newcomer sees must be there — both sources' snapshots, live
//! inserts, updates and deletes from both databases, the replica's row
//! counts catching up — and everything the demo started must be gone after.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sluice_tests::env::TestEnv;
use sluice_tests::postgres::Pg;
use sluice_tests::process::free_port;

/// How long the demo streams before it stops itself.
const DEMO_SECONDS: &str = "30";

#[test]
fn demo_shows_snapshots_live_changes_and_a_converging_replica() {
    let env = TestEnv::load();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rest_port = free_port();
    let registry_port = free_port();
    let kafka_port = env
        .bootstrap()
        .rsplit_once(':')
        .map(|(_, port)| port.to_owned())
        .expect("bootstrap has a port");
    let output = Command::new(root.join("scripts/demo"))
        .current_dir(&root)
        .env("SLUICE_DEMO_BUILD", "debug")
        .env("SLUICE_DEMO_SECONDS", DEMO_SECONDS)
        .env("SLUICE_DEMO_REST_PORT", rest_port.to_string())
        .env("SLUICE_DEMO_REGISTRY_PORT", registry_port.to_string())
        .env("SLUICE_ENV_DIR", env.get("SLUICE_ENV_DIR"))
        .env("SLUICE_PG_PORT", env.get("SLUICE_PG_PORT"))
        .env("SLUICE_MARIADB_PORT", env.get("SLUICE_MARIADB_PORT"))
        .env("SLUICE_KAFKA_PORT", kafka_port)
        .output()
        .expect("running scripts/demo");
    let text = without_colours(&format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ));
    assert!(output.status.success(), "the demo failed:\n{text}");

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
    assert!(text.contains("curl -s"), "no curl lines to try:\n{text}");

    // Every row of the demo data arrives as a snapshot event from both sources.
    for prefix in ["dbserver1", "mysqlserver1"] {
        for (table, rows) in [("customers", 100), ("products", 50), ("orders", 300)] {
            let topic = format!("{prefix}.inventory.{table}");
            let keys = keys_of(&text, &topic, "snapshot");
            let expected: BTreeSet<i64> = (1..=rows).collect();
            assert!(
                expected.is_subset(&keys),
                "{topic}: snapshot keys missing: {:?}",
                expected.difference(&keys).collect::<Vec<_>>()
            );
        }
        // Live changes from the generator, decoded.
        let orders = format!("{prefix}.inventory.orders");
        for op in ["insert", "update", "delete"] {
            assert!(
                !keys_of(&text, &orders, op).is_empty(),
                "no live {op} on {orders}:\n{text}"
            );
        }
    }
    // Updates carry their old values, so the demo shows what changed.
    assert!(
        text.lines()
            .any(|l| l.starts_with("dbserver1.inventory.orders")
                && l.contains(r#"status: "new" → "paid""#)),
        "no PostgreSQL status update shown as old → new:\n{text}"
    );

    // The replica caught up with live changes: some report shows every table
    // equal, with the orders table no longer at its snapshot size.
    let converged = text.lines().filter_map(row_counts).any(|counts| {
        counts.iter().all(|(_, source, replica)| source == replica)
            && counts
                .iter()
                .any(|(table, source, _)| table == "orders" && *source != 300)
    });
    assert!(converged, "the replica's counts never matched:\n{text}");

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
    let pg = Pg::from_env(&env);
    assert_eq!(
        pg.exec("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'debezium'"),
        "0",
        "the demo left its replication slot behind"
    );
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
