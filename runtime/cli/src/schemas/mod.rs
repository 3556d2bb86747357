//! `sluice schemas`: contract-first Avro schemas kept in git.
//!
//! A contract directory holds `<subject>.avsc` files (what goes into the
//! registry) and `blocks/<full name>.avsc` files for named records embedded
//! in many subjects, such as Debezium's `source` block. `check` derives
//! what a connector would emit for its live source and compares; `register`
//! puts the subject contracts into a registry.

mod check;
mod diff;
mod register;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use diff::diff;

/// `sluice schemas` subcommands.
#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// Compare the schemas a connector would emit for its live source with
    /// the contracts; exit 0 when equal or compatible, 1 on drift.
    Check(CheckArgs),
    /// Register every `<subject>.avsc` contract with a registry, refusing
    /// (exit 1) any the registry finds incompatible.
    Register(RegisterArgs),
}

/// `sluice schemas check` settings.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The contract directory.
    #[arg(long, default_value = "schemas")]
    pub dir: PathBuf,
    /// A connector config as given to `POST /connectors` (or its bare
    /// `config` object).
    #[arg(long, value_name = "CONFIG.json")]
    pub connector: PathBuf,
    /// The compatibility level a difference must satisfy.
    #[arg(long, default_value = "BACKWARD")]
    pub level: String,
    /// Write the derived schemas as the contracts instead of checking.
    #[arg(long)]
    pub write: bool,
}

/// `sluice schemas register` settings.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The contract directory.
    #[arg(long, default_value = "schemas")]
    pub dir: PathBuf,
    /// Schema registry URL(s), comma-separated.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_URL", value_name = "URL")]
    pub registry: String,
}

/// Runs a `sluice schemas` command; `Ok(false)` means drift or refusal
/// (exit 1), errors are problems running it at all.
pub fn run(command: &SchemasCommand) -> anyhow::Result<bool> {
    match command {
        SchemasCommand::Check(args) => check::run(args),
        SchemasCommand::Register(args) => register::run(args),
    }
}
