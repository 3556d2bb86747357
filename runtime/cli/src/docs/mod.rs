//! The reference docs under `docs/reference/`, written from the code that
//! defines what they describe — the connectors' config definitions, the
//! command line, the REST endpoint table — so they cannot drift from it.
//! `sluice docs --out docs/reference` rewrites them; a test fails when the
//! committed files differ from what the code would write.

mod cli;
mod connectors;
mod markdown;
mod rest_api;

use std::path::Path;

use sluice_runtime::plugins::PluginRegistry;

/// One generated page: its file name and its Markdown.
pub struct Page {
    /// The file name under the reference directory, e.g. `connectors.md`.
    pub file: &'static str,
    /// The page's Markdown.
    pub text: String,
}

/// Every reference page for the connectors built into this binary.
pub fn pages() -> Vec<Page> {
    let plugins = PluginRegistry::builtin();
    let pages = vec![
        Page {
            file: "connectors.md",
            text: connectors::page(&plugins),
        },
        Page {
            file: "rest-api.md",
            text: rest_api::page(),
        },
        Page {
            file: "cli.md",
            text: cli::page(),
        },
    ];
    pages
        .into_iter()
        .map(|page| Page {
            text: markdown::tidy(&page.text),
            ..page
        })
        .collect()
}

/// Writes every page into `dir` (created if missing).
pub fn write(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    pages()
        .into_iter()
        .map(|page| {
            let path = dir.join(page.file);
            std::fs::write(&path, page.text)?;
            Ok(path)
        })
        .collect()
}

/// The pages in `dir` that are missing or differ from what the code writes.
pub fn stale(dir: &Path) -> Vec<&'static str> {
    pages()
        .into_iter()
        .filter(|page| {
            std::fs::read_to_string(dir.join(page.file)).ok().as_deref() != Some(&page.text)
        })
        .map(|page| page.file)
        .collect()
}

/// `sluice docs` arguments.
#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// Directory to write the pages into.
    #[arg(long, value_name = "DIR", default_value = "docs/reference")]
    pub out: std::path::PathBuf,
    /// Only check that the pages in DIR are up to date (exit 1 if not).
    #[arg(long)]
    pub check: bool,
}

/// Runs `sluice docs`: writes the pages, or with `--check` reports stale ones.
pub fn run(args: &DocsArgs) -> anyhow::Result<bool> {
    if args.check {
        let stale = stale(&args.out);
        for file in &stale {
            eprintln!(
                "{} is out of date; regenerate with `sluice docs --out {}`",
                args.out.join(file).display(),
                args.out.display()
            );
        }
        return Ok(stale.is_empty());
    }
    for path in write(&args.out)? {
        println!("wrote {}", path.display());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_reference_docs_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference");
        let stale = stale(&dir);
        assert!(
            stale.is_empty(),
            "docs/reference/{stale:?} differ from the code; regenerate with \
             `cargo run --bin sluice -- docs --out docs/reference` and commit them"
        );
    }

    #[test]
    fn every_plugin_and_endpoint_is_documented() {
        let pages = pages();
        let connectors = &pages[0].text;
        for info in PluginRegistry::builtin().infos() {
            assert!(
                connectors.contains(&format!("## `{}`", info.class)),
                "{}",
                info.class
            );
        }
        assert!(connectors.contains("| `database.hostname` |"));
        assert!(connectors.contains("| `connection.url` |"));
        let rest = &pages[1].text;
        for endpoint in sluice_runtime::rest::endpoints::ENDPOINTS {
            assert!(rest.contains(&format!("`{} {}`", endpoint.method, endpoint.path)));
        }
        assert!(pages[2].text.contains("`SLUICE_BOOTSTRAP_SERVERS`"));
    }
}
