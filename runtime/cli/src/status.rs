//! `sluice status`: connectors, tasks and snapshot progress bars from a
//! worker's REST API, once or refreshed with `--watch`.

use std::fmt::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// Settings of `sluice status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The worker's REST API.
    #[arg(long, env = "SLUICE_REST_URL", default_value = "http://127.0.0.1:8083")]
    pub rest: String,
    /// Connectors to show (all when none given).
    pub connectors: Vec<String>,
    /// Redraw every second until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// `user:password` for a worker with --rest-basic-auth-file.
    #[arg(long, env = "SLUICE_REST_AUTH", value_name = "USER:PASSWORD")]
    pub rest_auth: Option<String>,
    /// A bearer token for a worker with --rest-bearer-tokens-file.
    #[arg(long, env = "SLUICE_REST_TOKEN", value_name = "TOKEN")]
    pub rest_token: Option<String>,
    /// PEM file of the CA(s) an https:// worker's certificate must chain to
    /// (default: the usual public roots).
    #[arg(long, env = "SLUICE_REST_CA", value_name = "FILE")]
    pub rest_ca: Option<std::path::PathBuf>,
}

impl StatusArgs {
    /// The `Authorization` header the settings ask for.
    fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        match (&self.rest_token, &self.rest_auth) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some(user_password)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_password)
            )),
            (None, None) => None,
        }
    }
}

/// A progress bar of `width` cells for `done` of `total`.
pub fn bar(done: u64, total: u64, width: usize) -> String {
    let fraction = if total == 0 {
        if done > 0 {
            1.0
        } else {
            0.0
        }
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * width as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(filled),
        ".".repeat(width - filled),
        fraction * 100.0
    )
}

/// The status text of `status` (a `GET /connectors/{name}/status` body).
pub fn render(status: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}",
        status["name"].as_str().unwrap_or("?"),
        status["connector"]["state"].as_str().unwrap_or("?")
    );
    for task in status["tasks"].as_array().into_iter().flatten() {
        let progress = &task["progress"];
        let _ = writeln!(
            out,
            "  task {}  {}{}",
            task["id"],
            task["state"].as_str().unwrap_or("?"),
            progress["phase"]
                .as_str()
                .map(|p| format!("  ({p})"))
                .unwrap_or_default()
        );
        if let Some(trace) = task["trace"].as_str() {
            let _ = writeln!(out, "    {}", trace.lines().next().unwrap_or_default());
        }
        for (table, p) in progress["snapshot"].as_object().into_iter().flatten() {
            let rows = p["rows"].as_u64().unwrap_or(0);
            // The planner's estimate can trail the truth; never below rows.
            let estimate = p["estimated_rows"].as_i64().unwrap_or(0).max(0) as u64;
            let _ = writeln!(
                out,
                "    {table:<32} {} {rows}/{}",
                bar(rows, estimate.max(rows), 30),
                estimate.max(rows)
            );
        }
    }
    out
}

/// Prints the statuses, once or until interrupted.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let mut config = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10)));
    if let Some(path) = &args.rest_ca {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
        let pem = std::fs::read(path).with_context(|| format!("--rest-ca {}", path.display()))?;
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        anyhow::ensure!(
            !certs.is_empty(),
            "--rest-ca {} holds no PEM certificate",
            path.display()
        );
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    let agent: ureq::Agent = config.build().into();
    let base = args.rest.trim_end_matches('/');
    let authorization = args.authorization();
    let get = |path: &str| -> anyhow::Result<Value> {
        let mut request = agent.get(&format!("{base}{path}"));
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        request
            .call()
            .map_err(|e| match e {
                ureq::Error::StatusCode(401) => anyhow::anyhow!(
                    "the worker at {base} asks for credentials: pass --rest-auth user:password or --rest-token"
                ),
                other => anyhow::Error::new(other)
                    .context(format!("cannot reach the worker at {base}; is it running? (--rest)")),
            })?
            .body_mut()
            .read_json::<Value>()
            .context("the worker's answer is not JSON")
    };
    loop {
        let names: Vec<String> = if args.connectors.is_empty() {
            serde_json::from_value(get("/connectors")?).unwrap_or_default()
        } else {
            args.connectors.clone()
        };
        let mut screen = String::new();
        if names.is_empty() {
            screen.push_str("no connectors\n");
        }
        for name in &names {
            screen.push_str(&render(&get(&format!("/connectors/{name}/status"))?));
        }
        if args.watch {
            print!("\x1b[2J\x1b[H{screen}");
            std::thread::sleep(Duration::from_secs(1));
        } else {
            print!("{screen}");
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_snapshot_bars_per_table() {
        let text = render(&json!({
            "name": "pg", "connector": {"state": "RUNNING"},
            "tasks": [{"id": 0, "state": "RUNNING", "progress": {
                "phase": "snapshot",
                "snapshot": {"public.items": {"rows": 50, "estimated_rows": 100}}}}]
        }));
        assert!(text.contains("pg  RUNNING"), "{text}");
        assert!(text.contains("task 0  RUNNING  (snapshot)"), "{text}");
        assert!(
            text.contains("[###############...............]  50% 50/100"),
            "{text}"
        );
        assert_eq!(bar(5, 0, 4), "[####] 100%");
    }
}
