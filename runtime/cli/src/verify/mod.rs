//! `sluice verify`: DMS-style validation that a target table holds the same
//! rows as its source. Both databases hash their own rows in key-range
//! chunks (count and a sum of per-row MD5 prefixes over a canonical text of
//! each row), so only chunk sums cross the network; a chunk that differs is
//! compared key by key to name the missing, extra and different rows.

mod canonical;
mod database;
mod url;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};

use database::Database;

/// Settings of `sluice verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The source database: postgresql://user:password@host:port/db or
    /// mysql://… (mariadb:// and jdbc: forms accepted).
    #[arg(long, env = "SLUICE_VERIFY_SOURCE")]
    pub source: String,
    /// The target database, in the same form.
    #[arg(long, env = "SLUICE_VERIFY_TARGET")]
    pub target: String,
    /// Tables to compare: `name` (same on both sides) or
    /// `source_name:target_name`; a qualified name is schema.table
    /// (PostgreSQL) or database.table (MySQL).
    #[arg(long = "table", required = true)]
    pub tables: Vec<String>,
    /// Rows per chunk hashed in one query.
    #[arg(long, default_value_t = 20_000)]
    pub chunk_rows: u64,
    /// Keys listed per kind of difference.
    #[arg(long, default_value_t = 20)]
    pub show: usize,
}

/// What one table's comparison found.
#[derive(Debug, Default)]
pub struct TableReport {
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows in the target.
    pub target_rows: u64,
    /// Keys only in the source.
    pub missing: Vec<String>,
    /// Keys only in the target.
    pub extra: Vec<String>,
    /// Keys in both whose rows differ.
    pub different: Vec<String>,
    /// Columns of the source the target lacks (not compared).
    pub columns_missing: Vec<String>,
}

impl TableReport {
    /// Whether source and target hold the same rows.
    pub fn equal(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }
}

/// Runs the comparison; `Ok(true)` when every table is equal.
pub fn run(args: &VerifyArgs) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &VerifyArgs) -> anyhow::Result<bool> {
    let source_url = url::parse(&args.source).context("--source")?;
    let target_url = url::parse(&args.target).context("--target")?;
    let mut source = Database::connect(&source_url)
        .await
        .with_context(|| format!("connecting to the source {}", source_url.display()))?;
    let mut target = Database::connect(&target_url)
        .await
        .with_context(|| format!("connecting to the target {}", target_url.display()))?;
    let mut all_equal = true;
    for spec in &args.tables {
        let (source_table, target_table) = spec.split_once(':').unwrap_or((spec, spec));
        let started = Instant::now();
        let report = compare(&mut source, source_table, &mut target, target_table, args)
            .await
            .with_context(|| format!("comparing {spec}"))?;
        let seconds = started.elapsed().as_secs_f64().max(1e-6);
        print_report(spec, &report, args.show, seconds);
        all_equal &= report.equal();
    }
    Ok(all_equal)
}

fn print_report(spec: &str, report: &TableReport, show: usize, seconds: f64) {
    let rate = (report.source_rows.max(report.target_rows) as f64 / seconds).round();
    let verdict = if report.equal() { "EQUAL" } else { "DIFFERENT" };
    println!(
        "{spec}: {verdict} — {} source rows, {} target rows ({seconds:.2}s, {rate} rows/s)",
        report.source_rows, report.target_rows
    );
    for (label, keys) in [
        ("missing from the target", &report.missing),
        ("extra in the target", &report.extra),
        ("different", &report.different),
    ] {
        if keys.is_empty() {
            continue;
        }
        let listed: Vec<&str> = keys.iter().take(show).map(String::as_str).collect();
        let more = keys.len().saturating_sub(show);
        println!(
            "  {} {label}: {}{}",
            keys.len(),
            listed.join(", "),
            if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            }
        );
    }
    if !report.columns_missing.is_empty() {
        println!(
            "  columns not in the target (not compared): {}",
            report.columns_missing.join(", ")
        );
    }
}

async fn compare(
    source: &mut Database,
    source_table: &str,
    target: &mut Database,
    target_table: &str,
    args: &VerifyArgs,
) -> anyhow::Result<TableReport> {
    let source_shape = source.shape(source_table).await?;
    if source_shape.key.is_empty() {
        bail!("{source_table} has no primary key at the source; verify compares rows by key");
    }
    let target_shape = target.shape(target_table).await?;
    if target_shape.columns.is_empty() {
        bail!("{target_table} does not exist at the target");
    }
    let mut report = TableReport::default();
    // Compare the columns both sides have, matched case-insensitively.
    let mut pairs = Vec::new();
    for column in &source_shape.columns {
        match target_shape
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&column.name))
        {
            Some(t) => pairs.push((column.clone(), t.clone())),
            None => report.columns_missing.push(column.name.clone()),
        }
    }
    let key_pairs: Vec<_> = source_shape
        .key
        .iter()
        .map(|k| {
            pairs
                .iter()
                .find(|(s, _)| &s.name == k)
                .cloned()
                .with_context(|| format!("the target has no key column {k}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let source_sql = source.row_sql(
        source_table,
        &pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
        &key_pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
    );
    let target_sql = target.row_sql(
        target_table,
        &pairs.iter().map(|p| p.1.clone()).collect::<Vec<_>>(),
        &key_pairs.iter().map(|p| p.1.clone()).collect::<Vec<_>>(),
    );
    let ranges = source.ranges(&source_sql, args.chunk_rows).await?;
    for range in &ranges {
        let (s_count, s_sum) = source.chunk_hash(&source_sql, range).await?;
        let (t_count, t_sum) = target.chunk_hash(&target_sql, range).await?;
        report.source_rows += s_count;
        report.target_rows += t_count;
        if s_count == t_count && s_sum == t_sum {
            continue;
        }
        let s_rows = source.chunk_rows(&source_sql, range).await?;
        let t_rows = target.chunk_rows(&target_sql, range).await?;
        diff(&s_rows, &t_rows, &mut report);
    }
    Ok(report)
}

/// Key-by-key comparison of one chunk.
fn diff(
    source: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
    report: &mut TableReport,
) {
    for (key, hash) in source {
        match target.get(key) {
            None => report.missing.push(key.clone()),
            Some(h) if h != hash => report.different.push(key.clone()),
            Some(_) => {}
        }
    }
    for key in target.keys() {
        if !source.contains_key(key) {
            report.extra.push(key.clone());
        }
    }
}
