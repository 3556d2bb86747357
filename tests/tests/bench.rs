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
    // producer of the records they wrote, sent again in the same run, and
    // what that producer spent per record is beside the worker's CPU.
    let (producer, producer_cpu) = (
        column("producer_per_s"),
        column("producer_cpu_us_per_event"),
    );
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
        let us: f64 = row[producer_cpu]
            .parse()
            .unwrap_or_else(|_| panic!("{name}: the plain producer's CPU in:\n{csv}"));
        assert!(
            us > 0.0,
            "{name}: the plain producer's CPU µs per record {us}"
        );
    }
    // Each phase's note says where its connector's time went, read from
    // the worker's /metrics: a sink applying or waiting for batches, a
    // source held back by the runtime or not.
    for (name, words) in [
        ("PostgreSQL snapshot", "source held back by the runtime "),
        ("PostgreSQL stream", "source held back by the runtime "),
        ("MariaDB snapshot", "source held back by the runtime "),
        ("MariaDB binlog stream", "source held back by the runtime "),
        ("JDBC sink -> PostgreSQL", "applying "),
        ("JDBC sink -> MariaDB", "applying "),
    ] {
        let line = rows
            .iter()
            .find(|r| r[path] == name)
            .expect("a row")
            .join(",");
        let share = line
            .split(words)
            .nth(1)
            .and_then(|rest| rest.split('%').next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{name}: no '{words}N%' in {line}"));
        assert!(share <= 100, "{name}: {share}% of the phase in {line}");
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

/// `scripts/bench --repeat N`'s merge: each path's row is its median run
/// whole (ranked by the ratio the report computes, against the path's own
/// plain producer where it is the slower basis), peak RSS the highest of
/// any run, and the note names the spread; the report reads the result.
#[test]
fn repeated_runs_merge_into_each_paths_median_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(sluice_tests::unique("bench-median"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let header = "path,sluice_per_s,tool,tool_per_s,ratio,producer_per_s,cpu_us_per_event,broker_cpu_us_per_event,db_cpu_us_per_event,peak_rss_mib,note";
    // (snapshot rate, its producer's rate, worker µs, RSS, p99 ms) per run:
    // by ratio over the slower basis (the producer) the runs rank 0.5
    // (run 1), 0.8 (run 2), 0.6 (run 3), so run 3 is the median.
    let runs = [
        (500_000, 1_000_000, "2.10", "59.0", "18.50"),
        (400_000, 500_000, "2.90", "63.5", "25.00"),
        (660_000, 1_100_000, "2.40", "58.0", "16.00"),
    ];
    let mut files = Vec::new();
    for (i, (rate, producer, cpu, rss, p99)) in runs.iter().enumerate() {
        let file = dir.join(format!("{i}.csv"));
        std::fs::write(
            &file,
            format!(
                "{header}\n\
                 PostgreSQL snapshot,{rate},COPY ... TO STDOUT,2000000,,{producer},{cpu},0.10,0.40,{rss},\n\
                 PostgreSQL commit -> consumer,990,,,,,,,,,\"p50 12.0 ms, p99 {p99} ms; broker alone p50 11.0 ms, p99 17.00 ms\"\n"
            ),
        )
        .expect("a run's CSV");
        files.push(file);
    }
    let merged = dir.join("results.csv");
    let run = Command::new(sluice_tests::process::python())
        .arg(root.join("scripts/lib/bench_median.py"))
        .arg(&merged)
        .args(&files)
        .output()
        .expect("running bench_median.py");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let csv = std::fs::read_to_string(&merged).expect("merged CSV");
    let snapshot = csv
        .lines()
        .find(|l| l.starts_with("PostgreSQL snapshot,"))
        .unwrap_or_else(|| panic!("no snapshot row in:\n{csv}"));
    // The merged CSV has the columns the bench writes today (the runs'
    // older header lacks some), so cells are found by the merged header.
    let header: Vec<&str> = csv.lines().next().expect("a header").split(',').collect();
    let cells: Vec<&str> = snapshot.split(',').collect();
    let cell = |name: &str| {
        let at = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name} in {header:?}"));
        cells[at]
    };
    assert_eq!(
        cell("sluice_per_s"),
        "660000",
        "the median run's rate: {snapshot}"
    );
    assert_eq!(
        cell("cpu_us_per_event"),
        "2.40",
        "the median run's CPU, not another run's: {snapshot}"
    );
    assert_eq!(
        cell("peak_rss_mib"),
        "63.5",
        "the highest peak RSS of any run: {snapshot}"
    );
    assert!(
        snapshot.contains("3 runs, median shown; ratio 0.50-0.80"),
        "{snapshot}"
    );
    let latency = csv
        .lines()
        .find(|l| l.starts_with("PostgreSQL commit -> consumer,"))
        .unwrap_or_else(|| panic!("no latency row in:\n{csv}"));
    assert!(
        latency.contains("p99 18.50 ms") && latency.contains("p99 ms 16.00-25.00"),
        "the median p99 run, with the spread: {latency}"
    );
    let report = Command::new(sluice_tests::process::python())
        .arg(root.join("scripts/lib/bench_report.py"))
        .arg(&merged)
        .arg(dir.join("chart.svg"))
        .output()
        .expect("running bench_report.py");
    let table = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{table}");
    assert!(table.contains("   0.60   0.60"), "ratio and goal: {table}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A missed rate goal is followed by what it leaves for sluice's own work:
/// the CPU per event the machine's cores give at the goal's rate, less
/// the database's, the broker's and (where measured) the Kafka client's
/// own, against what sluice spends now; a path short of CPU says by how
/// much, one that is not says it left cores idle.
#[test]
fn a_missed_rate_goal_shows_the_cpu_it_leaves_for_sluice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(sluice_tests::unique("bench-budget"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let csv = dir.join("results.csv");
    // Snapshot: goal 0.6 of the producer's 1,000,000/s = 600,000/s; two
    // cores give 3.33 µs an event, less 0.5 + 0.1 + 0.9 leaves 1.83 for
    // sluice's own work, which takes 2.4 - 0.9 = 1.5.
    // Sink: goal 0.5 of 400,000/s = 200,000/s; 10 µs an event, less
    // 2.0 + 0.5 leaves 7.5 for the worker, which takes 8.0.
    std::fs::write(
        &csv,
        "path,sluice_per_s,tool,tool_per_s,ratio,producer_per_s,producer_cpu_us_per_event,cpu_us_per_event,broker_cpu_us_per_event,db_cpu_us_per_event,peak_rss_mib,note\n\
         MariaDB snapshot,500000,mariadb SELECT,2000000,,1000000,0.90,2.40,0.10,0.50,50.0,\n\
         JDBC sink -> PostgreSQL,100000,COPY FROM,400000,,,,8.00,0.50,2.00,50.0,\n",
    )
    .expect("a CSV");
    // The report of that CSV on a machine of `cores` cores.
    let report_with = |cores: &str| {
        Command::new(sluice_tests::process::python())
            .arg(root.join("scripts/lib/bench_report.py"))
            .arg(&csv)
            .arg(dir.join("chart.svg"))
            .env("SLUICE_BENCH_CORES", cores)
            .output()
            .expect("running bench_report.py")
    };
    let report = report_with("2");
    let table = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{table}");
    assert!(
        table.contains(
            "at the goal's 600,000/s, 2 cores give 3.33 µs an event; the database 0.50, the broker 0.10, \
             the Kafka client (a plain producer of its records) 0.90 leave 1.83 µs for sluice's own work \
             (the worker beyond its Kafka client), which takes 1.50 now; 1.50 of the 2 cores were busy, \
             so the goal needs the idle ones kept busy"
        ),
        "{table}"
    );
    assert!(
        table.contains(
            "at the goal's 200,000/s, 2 cores give 10.00 µs an event; the database 2.00, the broker 0.50 \
             leave 7.50 µs for the worker, which takes 8.00 now: 0.50 µs too much even with every core busy"
        ),
        "{table}"
    );
    // A core count that is none is refused, naming the setting.
    let refused = report_with("two");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{why}");
    assert!(
        why.contains("SLUICE_BENCH_CORES must be the bench machine's number of cores"),
        "{why}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scripts/bench-wide-rows` on a few small rows with the debug build:
/// every phase runs end to end against its own servers and is reported
/// with a rate and the worker's peak RSS (the numbers are not asserted).
#[test]
fn the_wide_row_bench_reports_every_phase() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = Command::new(root.join("scripts/bench-wide-rows"))
        .args(["40", "65536"])
        .current_dir(&root)
        .env("SLUICE_BENCH_PROFILE", "debug")
        .output()
        .expect("running scripts/bench-wide-rows");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "scripts/bench-wide-rows failed ({}):\n{stdout}\n{}",
        run.status,
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    assert!(stdout.contains("40 rows of 65536 bytes"), "{stdout}");
    for (path, native) in [
        ("PostgreSQL snapshot", true),
        ("PostgreSQL stream", false),
        ("MariaDB snapshot", true),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(path))
            .unwrap_or_else(|| panic!("no {path} line in:\n{stdout}"));
        let cells: Vec<&str> = line[path.len()..].split_whitespace().collect();
        let number = |cell: &str| cell.replace(',', "").parse::<f64>().ok();
        assert_eq!(cells.len(), 4, "{line}");
        assert!(number(cells[0]).is_some_and(|r| r > 0.0), "a rate: {line}");
        assert_eq!(
            number(cells[1]).is_some(),
            native,
            "the native tool's rate: {line}"
        );
        assert!(
            number(cells[3]).is_some_and(|m| m > 0.0),
            "peak RSS: {line}"
        );
    }
}
