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

/// How long mimalloc keeps freed memory before returning it to the
/// system. Its default (1 s) let a worker's RSS grow to ~115 MiB during a
/// snapshot that needs ~70; 10 ms (mimalloc 2's default) keeps the peak
/// near what is live.
const ALLOCATOR_PURGE_DELAY_MS: std::os::raw::c_long = 10;

/// `mi_option_purge_delay` in mimalloc 3's option enum, which the crate
/// does not name (checked by a test against the option's default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// `mi_option_allow_thp` in mimalloc 3's option enum (also unnamed by the
/// crate). Left on, mimalloc asks for transparent huge pages on its arena:
/// each 2 MiB page stays resident as long as one block in it lives, and
/// purges happen only in 2 MiB units. Measured on `scripts/bench-postgres`
/// (200,000-row snapshot, 200,000-change stream, one 1,000,000-row
/// transaction): worker peak RSS 81–83 MiB with it, 56 MiB without (30 MiB
/// of the arena was in huge pages at the peak), rates unchanged.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

fn main() -> ExitCode {
    // SAFETY: sets plain integer options of the allocator; mimalloc
    // documents mi_option_set as callable at any time, from any thread, and
    // these two are read before it first maps its arena.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
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
    fn the_option_turned_off_at_start_is_mimallocs_thp_switch() {
        // In mimalloc 3's option table allow_thp (default 1) sits between
        // page_cross_thread_max_reclaim (default 32) and minimal_purge_size
        // (default 0); a shifted enum would break this pattern.
        // SAFETY: reads plain integer options.
        let [before, thp, after] = [-1, 0, 1]
            .map(|at| unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP + at) });
        assert_eq!((before, after), (32, 0));
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            assert_eq!(thp, 1);
        }
    }
}
