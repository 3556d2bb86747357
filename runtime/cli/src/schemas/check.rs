//! `sluice schemas check`: what a connector would emit for its live
//! source, against the contracts in git.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value as Json;
use sluice_connector_api::{ConnectorConfig, Schema};

use super::{diff, CheckArgs};
use sluice_runtime::converter::avro::schema::to_avro;
use sluice_runtime::converter::{Side, SubjectStrategy};
use sluice_runtime::plugins::{Plugin, PluginRegistry};
use sluice_runtime::registry::compat::{self, Level};
use sluice_runtime::registry::parse_schema;

/// The connector config in a file: `{"name", "config"}` or bare config.
fn read_connector(path: &Path) -> anyhow::Result<ConnectorConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the connector config {}", path.display()))?;
    let json: Json =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let config = json.get("config").unwrap_or(&json);
    let Json::Object(map) = config else {
        bail!("{} must hold a JSON object of config keys", path.display());
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(k.clone(), text);
    }
    let resolved =
        sluice_runtime::secrets::resolve(&out, &sluice_runtime::secrets::Providers::unrestricted())
            .context("resolving ${env:}/${file:} placeholders")?;
    Ok(ConnectorConfig(resolved))
}

/// A derived schema and where its contract lives.
struct Subject {
    name: String,
    contract: PathBuf,
    live: Json,
}

fn subjects(
    args: &CheckArgs,
    config: &ConnectorConfig,
    described: Vec<(String, Side, std::sync::Arc<Schema>)>,
) -> anyhow::Result<Vec<Subject>> {
    let mut out = Vec::new();
    for (topic, side, schema) in described {
        let key = format!(
            "{}.{}.subject.name.strategy",
            side.prefix(),
            match side {
                Side::Key => "key",
                Side::Value => "value",
            }
        );
        let strategy = match config.get(&key) {
            Some(text) => SubjectStrategy::parse(text)
                .with_context(|| format!("{key}: unknown strategy {text}"))?,
            None => SubjectStrategy::TopicName,
        };
        let name = strategy.subject(side, &topic, &schema)?;
        out.push(Subject {
            contract: args.dir.join(format!("{name}.avsc")),
            name,
            live: to_avro(&schema),
        });
    }
    Ok(out)
}

/// Named records inside `schema` (full name → definition).
fn named_records(schema: &Json, out: &mut BTreeMap<String, Json>) {
    match schema {
        Json::Object(o) => {
            if o.get("type").and_then(Json::as_str) == Some("record") {
                if let Some(name) = o.get("name").and_then(Json::as_str) {
                    out.entry(name.to_owned()).or_insert_with(|| schema.clone());
                }
            }
            o.values().for_each(|v| named_records(v, out));
        }
        Json::Array(items) => items.iter().for_each(|v| named_records(v, out)),
        _ => {}
    }
}

/// Compares one contract with its live schema; prints the verdict.
fn compare(label: &str, contract_path: &Path, live: &Json, level: Level) -> anyhow::Result<bool> {
    let Ok(text) = std::fs::read_to_string(contract_path) else {
        println!(
            "{label}: MISSING contract {}; create it with `sluice schemas check --write`",
            contract_path.display()
        );
        return Ok(false);
    };
    let contract_json: Json = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", contract_path.display()))?;
    let contract = parse_schema(&text, true)
        .with_context(|| format!("{} is not a valid Avro schema", contract_path.display()))?;
    let derived =
        parse_schema(&live.to_string(), true).context("the derived schema is not valid Avro")?;
    if contract.canonical == derived.canonical {
        println!("{label}: ok, identical to {}", contract_path.display());
        return Ok(true);
    }
    let changes = diff(&contract_json, live);
    let findings = compat::check(level, &derived.model, &contract.model);
    let verdict = if findings.is_empty() {
        format!(
            "ok, compatible under {level} with {}",
            contract_path.display()
        )
    } else {
        format!(
            "INCOMPATIBLE under {level} with {}",
            contract_path.display()
        )
    };
    println!("{label}: {verdict}");
    for change in &changes {
        println!("    {change}");
    }
    for finding in &findings {
        println!("    {}: {}", finding.rule.as_str(), finding.message());
    }
    Ok(findings.is_empty())
}

/// Runs the check (or `--write`); false on drift.
pub fn run(args: &CheckArgs) -> anyhow::Result<bool> {
    let level: Level = args
        .level
        .parse()
        .map_err(|()| anyhow::anyhow!("--level {}: use NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE", args.level))?;
    let config = read_connector(&args.connector)?;
    let class = config
        .get("connector.class")
        .with_context(|| format!("{} has no connector.class", args.connector.display()))?
        .to_owned();
    let Some(Plugin::Source(plugin)) = PluginRegistry::builtin().find(&class) else {
        bail!("{class} is not a source connector this binary knows; see GET /connector-plugins");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let described = runtime
        .block_on(plugin.describe_schemas(&config))
        .map_err(|e| anyhow::anyhow!("{class} could not describe its schemas: {e}"))?;
    let mut sides = Vec::new();
    for topic in described {
        if let Some(key) = topic.key {
            sides.push((topic.topic.clone(), Side::Key, key));
        }
        if let Some(value) = topic.value {
            sides.push((topic.topic, Side::Value, value));
        }
    }
    let subjects = subjects(args, &config, sides)?;
    if args.write {
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
        for subject in &subjects {
            let text = serde_json::to_string_pretty(&subject.live)? + "\n";
            std::fs::write(&subject.contract, text)
                .with_context(|| format!("writing {}", subject.contract.display()))?;
            println!("{}: wrote {}", subject.name, subject.contract.display());
        }
        return Ok(true);
    }
    let mut all_ok = true;
    let mut blocks = BTreeMap::new();
    for subject in &subjects {
        all_ok &= compare(&subject.name, &subject.contract, &subject.live, level)?;
        named_records(&subject.live, &mut blocks);
    }
    // Shared blocks (e.g. Debezium's source record) are checked wherever
    // a derived schema embeds them.
    for (name, live) in &blocks {
        let path = args.dir.join("blocks").join(format!("{name}.avsc"));
        if path.exists() {
            all_ok &= compare(&format!("block {name}"), &path, live, level)?;
        }
    }
    Ok(all_ok)
}
