//! Sends a request on to the worker of the group that runs the connector
//! it is about (Kafka Connect forwards the same way), so every worker's
//! REST API can restart any connector.

use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::error::ApiError;

/// Marks a forwarded request, so it is never forwarded twice.
pub const FORWARDED: &str = "x-sluice-forwarded";

/// Whether `headers` come from a request another worker forwarded.
pub fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED)
}

/// Repeats `method path_and_query` on `worker` with the caller's
/// credentials and answers with that worker's answer.
pub async fn forward(
    worker: String,
    method: Method,
    path_and_query: String,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let url = format!("http://{worker}{path_and_query}");
    let answer = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        let request = match method {
            Method::PUT => agent.put(&url).header(FORWARDED, "1"),
            _ => agent.post(&url).header(FORWARDED, "1"),
        };
        let request = match &authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        let mut response = request.send_empty().map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("forwarding the request to the worker running the connector ({url}) failed: {e}"),
            )
        })?;
        let status = response.status().as_u16();
        let body: Option<Value> = response.body_mut().read_json().ok();
        Ok::<_, ApiError>((status, body))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let status = StatusCode::from_u16(answer.0).unwrap_or(StatusCode::BAD_GATEWAY);
    Ok(match answer.1 {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    })
}
