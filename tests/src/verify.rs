//! `sluice verify` run as a user runs it.

/// Runs `sluice verify` of `table` from `source` to `target` (database
/// URLs); its exit code and output.
pub fn verify(source: &str, target: &str, table: &str) -> (i32, String) {
    let output = std::process::Command::new(crate::process::sluice_bin())
        .args([
            "verify", "--source", source, "--target", target, "--table", table,
        ])
        .output()
        .expect("sluice verify runs");
    let text = crate::process::output_text(&output);
    (output.status.code().unwrap_or(-1), text)
}

/// The test PostgreSQL as a `sluice verify` URL.
pub fn postgres_url(env: &crate::env::TestEnv) -> String {
    format!(
        "postgresql://{}:{}@{}:{}/{}",
        env.get("SLUICE_PG_USER"),
        env.get("SLUICE_PG_PASSWORD"),
        env.get("SLUICE_PG_HOST"),
        env.get("SLUICE_PG_PORT"),
        env.get("SLUICE_PG_DATABASE")
    )
}

/// A database of the test MariaDB as a `sluice verify` URL.
pub fn mariadb_url(env: &crate::env::TestEnv, database: &str) -> String {
    format!(
        "mariadb://{}:{}@{}:{}/{database}",
        env.get("SLUICE_MARIADB_USER"),
        env.get("SLUICE_MARIADB_PASSWORD"),
        env.get("SLUICE_MARIADB_HOST"),
        env.get("SLUICE_MARIADB_PORT")
    )
}
