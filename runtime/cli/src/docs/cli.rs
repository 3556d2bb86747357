//! `cli.md`: every `sluice` subcommand and its flags, with the environment
//! variables they read, from the command-line definition itself.

use std::fmt::Write;

use clap::CommandFactory;

use super::markdown::{cell, generated_banner};
use crate::cli::Cli;

/// The page.
pub fn page() -> String {
    let mut out = generated_banner("Command-line reference");
    out.push_str(
        "One binary, `sluice`, with these subcommands. Flags that name an \
         environment variable may be set through it instead. `sluice worker` \
         also reads a TOML file given with `--config`, whose keys are the flag \
         names without dashes (`bootstrap-servers = \"kafka:9092\"`) plus \
         `[producer]` and `[converters]` tables of extra properties; flags win \
         over the environment, which wins over the file.\n",
    );
    let cli = Cli::command();
    for sub in cli.get_subcommands() {
        let name = sub.get_name();
        let _ = writeln!(out, "\n## `sluice {name}`\n");
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            let _ = writeln!(out, "{}\n", sentence(&about.to_string()));
        }
        let nested: Vec<_> = sub.get_subcommands().collect();
        if !nested.is_empty() {
            for inner in nested {
                let _ = writeln!(out, "\n### `sluice {name} {}`\n", inner.get_name());
                if let Some(about) = inner.get_about() {
                    let _ = writeln!(out, "{}\n", sentence(&about.to_string()));
                }
                flags(&mut out, inner);
            }
            continue;
        }
        flags(&mut out, sub);
    }
    out
}

fn flags(out: &mut String, command: &clap::Command) {
    let args: Vec<_> = command
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    if args.is_empty() {
        return;
    }
    out.push_str("| Flag | Environment | Default | Description |\n|---|---|---|---|\n");
    for arg in args {
        let flag = match (arg.get_long(), arg.get_value_names()) {
            (Some(long), Some(names)) if arg.get_action().takes_values() => {
                format!("`--{long} {}`", names.join(" "))
            }
            (Some(long), _) => format!("`--{long}`"),
            (None, _) => format!("`<{}>`", arg.get_id().as_str().to_uppercase()),
        };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "–".to_owned());
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let default = if arg.is_required_set() {
            "**required**".to_owned()
        } else if defaults.is_empty() {
            "–".to_owned()
        } else {
            defaults.join(", ")
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {flag} | {env} | {default} | {} |",
            cell(help.trim())
        );
    }
}

/// `text` trimmed and ending with a full stop (clap drops the doc comment's).
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?', ')']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}
