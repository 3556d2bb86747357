//! `sluice schemas register`: subject contracts into a registry.

use anyhow::Context;

use super::RegisterArgs;
use sluice_runtime::registry::client::{ClientError, RegistryClient};

/// Registers each `<subject>.avsc`; false if the registry refused any.
pub fn run(args: &RegisterArgs) -> anyhow::Result<bool> {
    let mut files: Vec<_> = std::fs::read_dir(&args.dir)
        .with_context(|| format!("reading the contract directory {}", args.dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "avsc"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!(
            "no <subject>.avsc contracts in {}; write them with `sluice schemas check --write`",
            args.dir.display()
        );
    }
    let client = RegistryClient::new(&args.registry);
    let mut all_ok = true;
    for path in files {
        let subject = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let compact: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        match client.register(&subject, &compact.to_string()) {
            Ok(id) => println!("{subject}: registered, id {id}"),
            Err(ClientError::Rejected { code, message }) => {
                all_ok = false;
                println!("{subject}: REFUSED by the registry (error {code}): {message}");
            }
            Err(e) => return Err(e).context("registering contracts"),
        }
    }
    Ok(all_ok)
}
