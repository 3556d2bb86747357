//! Serving the REST API and the embedded registry with limits a stranger
//! cannot wear down: request headers must arrive within
//! [`HEADER_TIMEOUT`] (a slowloris client trickling bytes is cut off) and
//! fit in [`MAX_HEADER_BYTES`], at most [`MAX_CONNECTIONS`] connections are
//! served at once (further ones wait in the listen queue), a request is
//! answered within [`REQUEST_TIMEOUT`] (503 otherwise), and a body may not
//! exceed [`MAX_BODY_BYTES`] (413). `axum::serve` sets no header timeout at
//! all, which is why this loop exists.

use std::future::Future;
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
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that stalls or hangs up ends only its connection.
            let _ = watched.await;
            drop(slot);
        });
    }
    graceful.shutdown().await;
    Ok(())
}
