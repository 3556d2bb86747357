//! The `sluice` binary: the worker and the registry run from the runtime
//! library; the command-line tools live here, one module each.

mod allocator;
mod change_line;
mod cli;
mod docs;
mod schemas;
mod status;
mod tail;
mod verify;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: allocator::Allocator = allocator::Allocator;

use clap::Parser;
use cli::{Cli, Command};
use sluice_runtime::worker_config::WorkerConfig;

fn init_logging(format: &str) {
    sluice_runtime::logging::init(format);
}

/// How long mimalloc keeps freed memory before returning it to the
/// system. Its default (1 s) let a worker's RSS grow to ~115 MiB during a
/// snapshot that needs ~70; 10 ms (mimalloc 2's default) keeps the peak
/// near what is live.
const ALLOCATOR_PURGE_DELAY_MS: std::os::raw::c_long = 10;

/// `mi_option_purge_delay` in mimalloc 3's option enum, which the crate
/// does not name (checked by a test against the option's default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns transparent huge pages off for this process. mimalloc asks for
/// them on its arena: a 2 MiB page then stays resident as long as one block
/// in it lives, and purges go in 2 MiB units. Its own switch
/// (`MIMALLOC_ALLOW_THP=0`) is read before `main`, so the process flag is
/// set here instead; the kernel checks it at every page fault, so it covers
/// the arena mimalloc already reserved. Measured on `scripts/bench-postgres`
/// (200,000-row snapshot, 200,000-change stream, one 1,000,000-row
/// transaction): worker peak RSS 81–83 MiB with huge pages, 56 MiB without
/// (30 MiB of the arena was in huge pages at the peak), rates unchanged.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // no memory; a kernel without it answers EINVAL, which leaves the
    // default in place (the worker runs either way).
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    // SAFETY: sets a plain integer option of the allocator; mimalloc
    // documents mi_option_set as callable at any time, from any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS);
    }
    disable_transparent_huge_pages();
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
        Command::Tail(args) => crate::tail::run(&args),
        Command::Status(args) => crate::status::run(&args),
        Command::Schemas(command) => match crate::schemas::run(&command) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Verify(args) => match crate::verify::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Docs(args) => match crate::docs::run(&args) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_at_start_is_mimallocs_purge_delay() {
        // mimalloc 3 purges after 1000 ms unless told otherwise; no other
        // option of its enum defaults to 1000.
        // SAFETY: reads a plain integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(default, 1000);
        }
    }

    #[test]
    fn transparent_huge_pages_are_off_for_the_process() {
        disable_transparent_huge_pages();
        // SAFETY: PR_GET_THP_DISABLE reads the process flag.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }
}
