//! Serving the REST API and the embedded registry with limits a stranger
//! cannot wear down: request headers must arrive within
//! [`HEADER_TIMEOUT`] (a slowloris client trickling bytes is cut off) and
//! fit in [`MAX_HEADER_BYTES`], at most [`MAX_CONNECTIONS`] connections are
//! served at once (further ones wait in the listen queue), a request is
//! answered within [`REQUEST_TIMEOUT`] (503 otherwise), and a body may not
//! exceed [`MAX_BODY_BYTES`] (413). `axum::serve` sets no header timeout at
//! all, which is why this loop exists. With a certificate it serves HTTPS
//! (the TLS handshake, too, must finish within [`HEADER_TIMEOUT`]).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::ApiError;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of request headers (hyper's read buffer).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// How long a request may take (Kafka Connect's REST timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The largest request body (a connector config or a schema).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The HTTPS side of a listener, from a PEM certificate chain and key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use anyhow::Context as _;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "reading the certificate chain {} (--rest-tls-cert)",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "{} holds no PEM certificate (--rest-tls-cert)",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {} (--rest-tls-key)", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context(
            "the certificate and key of --rest-tls-cert / --rest-tls-key do not go together",
        )?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Answers 503 with Connect's error body when a request outlives
/// [`REQUEST_TIMEOUT`].
async fn time_limit(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request did not complete within {} s; try again",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

/// `router` with the body and time limits applied.
pub fn limited(router: Router) -> Router {
    router
        .layer(axum::middleware::from_fn(time_limit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = limited(router);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "accepting a REST connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        match &tls {
            None => {
                let watched =
                    graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    // A client that stalls or hangs up ends only its connection.
                    let _ = watched.await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let (acceptor, builder) = (acceptor.clone(), builder.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            let connection =
                                builder.serve_connection(TokioIo::new(stream), service);
                            let _ = watcher.watch(connection).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "a TLS handshake failed"),
                        Err(_) => tracing::debug!("a TLS handshake timed out"),
                    }
                    drop(slot);
                });
            }
        }
    }
    graceful.shutdown().await;
    Ok(())
}
