//! The fault-injection suite, short and with a fixed seed: `scripts/chaos`
//! against the test servers with the faults that touch only the workers and
//! their connections (server restarts are left to the long run,
//! `scripts/chaos --minutes 30`, so a restart cannot outlast this test's
//! time limit). It exits 0 only when both replicas equal their sources.

use std::process::Command;

use sluice_tests::env::TestEnv;

#[test]
fn chaos_with_a_fixed_seed_loses_no_change() {
    let env = TestEnv::load();
    let output =
        Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chaos"))
            .args([
                "--seconds",
                "40",
                "--seed",
                "7",
                "--faults",
                "kill9,stall,walsender,sink-restart,target-kill",
                // Inside the test runner's limit, so a failure shows its
                // diagnosis instead of a timeout.
                "--converge-seconds",
                "150",
            ])
            .env("SLUICE_CHAOS_ENV_DIR", env.get("SLUICE_ENV_DIR"))
            .env("SLUICE_BIN", sluice_tests::worker::sluice_bin())
            .output()
            .expect("scripts/chaos runs");
    let text = sluice_tests::process::output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("no change lost"), "{text}");
    assert!(text.contains("faults injected"), "{text}");
    // Both topics read back by the independent client, key by key.
    assert_eq!(text.matches("per-key audit").count(), 2, "{text}");
    assert_eq!(text.matches("\"gaps\": 0").count(), 2, "{text}");
}
