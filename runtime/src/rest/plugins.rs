//! `/connector-plugins`: what this worker can run, and config validation.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value as Json_};
use sluice_connector_api::ConnectorConfig;

use super::{body, ApiError, AppState};
use crate::herder::validation::ValidationReport;

/// `GET /connector-plugins`.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<Json_>> {
    Json(
        state
            .herder
            .plugins()
            .infos()
            .into_iter()
            .map(|p| json!({ "class": p.class, "type": p.kind.as_str(), "version": p.version }))
            .collect(),
    )
}

/// `PUT /connector-plugins/{plugin}/config/validate`.
pub async fn validate(
    State(state): State<Arc<AppState>>,
    Path(plugin): Path<String>,
    raw: Bytes,
) -> Result<Json<ValidationReport>, ApiError> {
    let mut config = body::config_map(&body::json(&raw)?, "the config")?;
    if state.herder.plugins().find(&plugin).is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!(
                "Failed to find any class that implements Connector and which name matches {plugin}, available connectors are: {}",
                state.herder.plugins().names().join(", ")
            ),
        ));
    }
    config.entry("connector.class".into()).or_insert(plugin);
    Ok(Json(state.herder.validate(&ConnectorConfig(config))?))
}
