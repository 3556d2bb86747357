//! The embedded Confluent-compatible schema registry served over
//! Confluent's REST API (`sluice registry`, or inside the worker with
//! `--registry-listen`), alone or by a group of workers (`cluster`). The
//! registry itself — schemas, compatibility, ids, the schema log, and the
//! client of any Confluent-API registry — is the `sluice-registry` crate,
//! re-exported here.

pub mod cluster;
mod rest;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

pub use rest::{router, shared_router};
pub use sluice_registry::{
    avro_model, client, compat, log, parse_schema, schema_text, untrusted, AvroModel, Mode,
    ParsedSchema, Registry, RegistryError, SchemaRequest, SubjectVersion, VersionSpec,
};

/// Opens the registry kept in `state_dir` (created if missing).
pub fn open_in_dir(state_dir: &Path) -> anyhow::Result<Arc<Registry>> {
    crate::store::prepare_state_dir(state_dir)
        .with_context(|| format!("preparing the state directory {}", state_dir.display()))?;
    let registry = Registry::open(Box::new(log::FileLog::in_dir(state_dir)))
        .with_context(|| format!("reading the schema log in {}", state_dir.display()))?;
    Ok(Arc::new(registry))
}

/// Binds `listen` for the registry API, naming the fix when it is taken.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} for the schema registry; free the port or choose another address")
    })
}

/// Serves a throwaway in-memory registry on a free loopback port from the
/// current Tokio runtime; its base URL. For benchmarks and tests.
pub async fn spawn_in_memory() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let registry = Arc::new(Registry::open(Box::new(log::MemoryLog::default()))?);
    tokio::spawn(async move { axum::serve(listener, router(registry)).await });
    Ok(url)
}

/// `sluice registry`: serve a standalone registry.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Address for the registry API.
    #[arg(long, env = "SLUICE_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Where schemas are kept (the `schemas.log` file).
    #[arg(long, env = "SLUICE_STATE_DIR", default_value = "./sluice-registry")]
    pub state_dir: PathBuf,
    /// Require HTTP basic auth against this file of `user: password` lines.
    #[arg(long, env = "SLUICE_REGISTRY_BASIC_AUTH_FILE", value_name = "FILE")]
    pub basic_auth_file: Option<PathBuf>,
    /// Also let in `Authorization: Bearer <token>` for a token of this file.
    #[arg(long, env = "SLUICE_REGISTRY_BEARER_TOKENS_FILE", value_name = "FILE")]
    pub bearer_tokens_file: Option<PathBuf>,
}

/// `router` requiring `credentials`, when there are any.
pub fn guarded(
    router: axum::Router,
    credentials: Option<Arc<crate::rest::auth::Credentials>>,
) -> axum::Router {
    match credentials {
        Some(credentials) => router.layer(axum::middleware::from_fn_with_state(
            credentials,
            crate::rest::auth::require,
        )),
        None => router,
    }
}

/// Serves a standalone registry until SIGTERM or Ctrl-C.
pub async fn run(args: &RegistryArgs) -> anyhow::Result<()> {
    crate::store::prepare_state_dir(&args.state_dir)
        .with_context(|| format!("preparing the state directory {}", args.state_dir.display()))?;
    // Before the log is read: reading repairs a torn tail in place.
    let _lock = crate::store::lock_state_dir(&args.state_dir)?;
    let credentials = crate::rest::auth::Credentials::load(
        args.basic_auth_file.as_deref(),
        args.bearer_tokens_file.as_deref(),
    )
    .context("--basic-auth-file / --bearer-tokens-file")?
    .map(|c| Arc::new(c.for_registry()));
    let registry = open_in_dir(&args.state_dir)?;
    let listener = bind(args.listen).await?;
    tracing::info!(listen = %args.listen, state_dir = %args.state_dir.display(), "schema registry started");
    // The same server loop as the worker's: header and request timeouts,
    // size and connection limits.
    crate::rest::server::serve(
        listener,
        guarded(router(registry), credentials),
        None,
        crate::worker::shutdown_signal(),
    )
    .await
    .context("serving the schema registry")?;
    tracing::info!("schema registry stopped");
    Ok(())
}
