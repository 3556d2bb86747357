//! The fault-injection suite, short and with a fixed seed: `scripts/chaos`
//! on servers of its own (so it may cut the source worker off in a
//! network namespace and fill its state disk) with the faults a one-minute
//! run can recover from inside this test's limit (database restarts and the
//! read-only target are left to the long run, `scripts/chaos --minutes
//! 30`). It exits 0 only when every replica equals its source and no
//! topic skips an update of any key.

use std::process::Command;
use std::time::Duration;

use sluice_tests::process::free_port;
use sluice_tests::script::run_echoed;

/// Inside nextest's 300 s (`.config/nextest.toml`) with time for the
/// script's clean-up: an overrun then fails with the script's output.
const DEADLINE: Duration = Duration::from_secs(270);

#[test]
fn chaos_with_a_fixed_seed_loses_no_change() {
    let env_dir = tempfile::tempdir().expect("env dir");
    let mut chaos =
        Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chaos"));
    chaos
            .args([
                "--seconds",
                "60",
                // Seed 961 draws, with this list, kill9, cut-mariadb, a
                // walsender kill, sink-pause, a target kill, sink-kill9, a
                // sink restart and cut-kafka: 106 s alone, 8 of the list's
                // 11 faults. (Seed 300, before sink-kill9 joined the list,
                // drew 7 of 10; seed 200 drew cut-kafka and cut-mariadb
                // only, and once ran past nextest's limit in the full
                // suite, unexplained.)
                "--seed",
                "961",
                "--faults",
                "kill9,stall,walsender,sink-restart,sink-pause,target-kill,cut-postgres,cut-mariadb,cut-kafka,disk-full,sink-kill9",
                // Inside the test runner's limit, so a failure shows its
                // diagnosis instead of a timeout.
                "--converge-seconds",
                "150",
            ])
            .env("SLUICE_CHAOS_OWN_ENV_DIR", env_dir.path().join("env"))
            .env("SLUICE_CHAOS_PG_PORT", free_port().to_string())
            .env("SLUICE_CHAOS_MARIADB_PORT", free_port().to_string())
            .env("SLUICE_CHAOS_KAFKA_PORT", free_port().to_string())
            // Not the default network, so a user's own run can go on.
            .env("SLUICE_CHAOS_NET", "10.79")
            .env_remove("SLUICE_CHAOS_ENV_DIR")
            .env("SLUICE_BIN", sluice_tests::worker::sluice_bin());
    let ran = run_echoed(chaos, DEADLINE);
    let text = &ran.text;
    assert!(ran.success(), "{text}");
    assert!(text.contains("no change lost"), "{text}");
    assert!(text.contains("faults injected"), "{text}");
    // As root every fault can be injected; say so if some could not.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(!text.contains("faults left out"), "{text}");
    } else {
        eprintln!("not root: the network cuts and the full disk were left out");
    }
    // Both topics read back by the independent client, key by key.
    assert_eq!(text.matches("per-key audit").count(), 2, "{text}");
    assert_eq!(text.matches("\"gaps\": 0").count(), 2, "{text}");
}
