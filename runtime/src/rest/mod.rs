//! The Kafka Connect REST API, same paths, bodies and status codes, so
//! `curl` recipes, `kcctl` and Connect UIs work against sluice.

pub mod auth;
mod body;
mod connectors;
pub mod endpoints;
mod error;
pub mod forward;
mod loggers;
mod offsets;
pub mod openapi;
mod plugins;
pub mod server;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde_json::json;

pub use error::ApiError;

use crate::herder::Herder;
use crate::metrics::Metrics;

/// What every handler can reach.
pub struct AppState {
    /// The herder.
    pub herder: Arc<Herder>,
    /// Worker metrics.
    pub metrics: Arc<Metrics>,
    /// Shown by `GET /`.
    pub kafka_cluster_id: String,
    /// Said by `/health` (and logged at start): e.g. that the API listens
    /// beyond this machine without authentication.
    pub warnings: Vec<String>,
    /// How requests reach the worker that must act on them.
    pub forwarder: forward::Forwarder,
}

/// The router for the whole API, built from [`endpoints::ENDPOINTS`];
/// with `credentials`, every request but `/health` must carry them.
pub fn router(state: Arc<AppState>, credentials: Option<Arc<auth::Credentials>>) -> Router {
    let router = endpoints::ENDPOINTS
        .iter()
        .fold(Router::new(), |router, endpoint| {
            // Routing a path twice merges its methods.
            router.route(endpoint.path, endpoint.route())
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    match credentials {
        Some(credentials) => router.layer(axum::middleware::from_fn_with_state(
            credentials,
            auth::require,
        )),
        None => router,
    }
}

async fn root(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("SLUICE_GIT_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": state.kafka_cluster_id,
    }))
}

/// Connect's health check; 503 once the worker cannot deliver any more,
/// so an orchestrator restarts it instead of trusting a 200.
async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<serde_json::Value>) {
    match state.herder.fatal_error() {
        None => (
            StatusCode::OK,
            Json(json!({
                "status": "healthy",
                "message": "Worker has completed startup and is ready to handle requests.",
                "worker_id": state.herder.worker_id(),
                "warnings": state.warnings,
            })),
        ),
        Some(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unhealthy",
                "message": format!("the worker's Kafka producer hit a fatal error and cannot deliver records: {cause}. Restart the worker; its tasks resume from their stored offsets"),
                "worker_id": state.herder.worker_id(),
            })),
        ),
    }
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi::rest_document())
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP 405 Method Not Allowed",
    )
}
