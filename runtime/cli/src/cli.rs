//! The `sluice` command line.

use clap::{Parser, Subcommand};

use crate::docs::DocsArgs;
use crate::schemas::SchemasCommand;
use crate::status::StatusArgs;
use crate::tail::TailArgs;
use crate::verify::VerifyArgs;
use sluice_runtime::registry::RegistryArgs;
use sluice_runtime::worker_config::WorkerArgs;

/// sluice: change-data-capture connectors with the Kafka Connect REST API,
/// Debezium-compatible events, in one native binary.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a worker: the connector runtime and its REST API (Kafka Connect
    /// compatible, default http://127.0.0.1:8083). Stops cleanly on SIGTERM
    /// or Ctrl-C, committing every acknowledged offset.
    Worker(Box<WorkerArgs>),
    /// Print the records of topics as readable lines until Ctrl-C: Avro
    /// decoded through the registry, Connect JSON envelopes unwrapped, and
    /// with `--changes` one line per Debezium change event.
    Tail(TailArgs),
    /// Serve a Confluent-compatible schema registry (default
    /// http://127.0.0.1:8081), keeping schemas in a state directory.
    Registry(RegistryArgs),
    /// Show connectors, tasks and snapshot progress bars from a worker
    /// (`--watch` redraws every second).
    Status(StatusArgs),
    /// Check the schemas connectors emit against the Avro contracts in
    /// git, or register the contracts with a registry.
    #[command(subcommand)]
    Schemas(SchemasCommand),
    /// Compare source and target tables by key ranges and row hashes;
    /// lists missing, extra and different rows, exits 0 only when equal.
    Verify(VerifyArgs),
    /// Write the reference docs (connector configuration keys, REST API,
    /// command line) from the definitions in this binary.
    Docs(DocsArgs),
}
