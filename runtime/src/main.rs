//! The `sluice` binary.

use std::process::ExitCode;

/// Records are built on one thread and freed on another; glibc's malloc
/// spent a third of the worker's CPU on that (arena locks, consolidation).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use sluice_runtime::cli::{Cli, Command};
use sluice_runtime::worker_config::WorkerConfig;

fn init_logging(format: &str) {
    sluice_runtime::logging::init(format);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Worker(args) => WorkerConfig::resolve(&args)
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                init_logging(&config.log_format);
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(sluice_runtime::worker::run(config)))
            }),
        Command::Tail(args) => sluice_runtime::tail::run(&args),
        Command::Status(args) => sluice_runtime::status_cli::run(&args),
        Command::Schemas(command) => match sluice_runtime::contracts::run(&command) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Verify(args) => match sluice_runtime::verify::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Docs(args) => match sluice_runtime::reference::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Registry(args) => {
            init_logging("text");
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(sluice_runtime::registry::run(&args)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
