//! `/admin/loggers`: the log levels in force, changed while the worker
//! runs, as Connect 2.4+ offers.

use axum::body::Bytes;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{body, ApiError};
use crate::logging;

/// `GET /admin/loggers`: `{"<logger>": {"level": "INFO"}, ...}`.
pub async fn list() -> Json<Value> {
    let levels: Map<String, Value> = logging::levels()
        .into_iter()
        .map(|(name, level)| (name, json!({ "level": level })))
        .collect();
    Json(Value::Object(levels))
}

/// `GET /admin/loggers/{logger}`.
pub async fn get(Path(logger): Path<String>) -> Result<Json<Value>, ApiError> {
    let levels = logging::levels();
    let level = levels.get(&logger).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("Logger {logger} not found; set its level with PUT /admin/loggers/{logger}"),
        )
    })?;
    Ok(Json(json!({ "level": level })))
}

/// `PUT /admin/loggers/{logger}` with `{"level": "DEBUG"}`: the loggers changed.
pub async fn put(Path(logger): Path<String>, raw: Bytes) -> Result<Json<Vec<String>>, ApiError> {
    let doc = body::json(&raw)?;
    let level = doc.get("level").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(
            "the body must be {\"level\": \"DEBUG\"} (TRACE, DEBUG, INFO, WARN, ERROR or OFF)",
        )
    })?;
    logging::set_level(&logger, level)
        .map(Json)
        .map_err(ApiError::bad_request)
}
