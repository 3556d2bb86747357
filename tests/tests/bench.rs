//! `scripts/bench --tiny`, the benchmark command on small sizes with the
//! debug build: every benchmark script runs end to end against its own
//! servers and the one table, CSV and chart come out. The numbers are not
//! asserted (they mean nothing at this size and on a shared CI machine);
//! that every path was measured beside the tool doing the same work is.

use std::path::Path;
use std::process::Command;

/// Every path the bench command reports, and whether it has a native tool
/// beside it.
const PATHS: [(&str, bool); 9] = [
    ("datagen -> Kafka", true),
    ("PostgreSQL snapshot", true),
    ("PostgreSQL stream", true),
    ("PostgreSQL 5000-row transaction", false),
    ("PostgreSQL commit -> consumer", false),
    ("MariaDB snapshot", true),
    ("MariaDB binlog stream", true),
    ("JDBC sink -> PostgreSQL", true),
    ("JDBC sink -> MariaDB", true),
];

#[test]
fn the_bench_command_measures_every_path_beside_its_native_tool() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(sluice_tests::unique("bench"));
    let run = Command::new(root.join("scripts/bench"))
        .args(["--tiny", "--out"])
        .arg(&out)
        .current_dir(&root)
        .env("SLUICE_BENCH_PROFILE", "debug")
        .output()
        .expect("running scripts/bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "scripts/bench --tiny failed ({}):\n{}\n{}",
        run.status,
        &stdout[stdout.len().saturating_sub(4000)..],
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name} in {header:?}"))
    };
    let (path, sluice, tool) = (column("path"), column("sluice_per_s"), column("tool_per_s"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Where each source and sink phase's CPU went: the worker, the broker
    // and the database server, in µs per event. Tiny phases round the
    // smaller shares to 0, but the database is read in every one of them,
    // so a server whose CPU was not found would show as 0 everywhere.
    let (worker_cpu, broker_cpu, db_cpu) = (
        column("cpu_us_per_event"),
        column("broker_cpu_us_per_event"),
        column("db_cpu_us_per_event"),
    );
    let mut db_total = 0.0;
    for row in rows.iter().filter(|r| !r[worker_cpu].is_empty()) {
        for at in [worker_cpu, broker_cpu, db_cpu] {
            let us: f64 = row[at].parse().expect("CPU µs per event is a number");
            assert!(us >= 0.0, "{}: {us}", row[path]);
        }
        db_total += row[db_cpu].parse::<f64>().unwrap_or_default();
    }
    assert!(db_total > 0.0, "no database CPU counted in:\n{csv}");
    for (name, has_tool) in PATHS {
        let row = rows
            .iter()
            .find(|r| r[path] == name)
            .unwrap_or_else(|| panic!("no result for {name} in:\n{csv}"));
        let rate: f64 = row[sluice].parse().expect("sluice's rate is a number");
        assert!(rate > 0.0, "{name}: sluice's rate {rate}");
        if has_tool {
            let native: f64 = row[tool].parse().expect("the tool's rate is a number");
            assert!(native > 0.0, "{name}: the tool's rate {native}");
        }
    }
    // The snapshots and the binlog stream are measured against a plain
    // producer of the records they wrote, sent again in the same run.
    let producer = column("producer_per_s");
    for name in [
        "PostgreSQL snapshot",
        "MariaDB snapshot",
        "MariaDB binlog stream",
    ] {
        let row = rows.iter().find(|r| r[path] == name).expect("a row");
        let rate: f64 = row[producer]
            .parse()
            .unwrap_or_else(|_| panic!("{name}: the plain producer's rate in:\n{csv}"));
        assert!(rate > 0.0, "{name}: the plain producer's rate {rate}");
    }
    let chart = std::fs::read_to_string(out.join("chart.svg")).expect("chart.svg");
    assert!(chart.starts_with("<svg") && chart.contains("JDBC sink -&gt; MariaDB"));
    let summary = std::fs::read_to_string(out.join("summary.txt")).expect("summary.txt");
    assert!(
        summary.contains("goals missed") || summary.contains("every goal met"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
