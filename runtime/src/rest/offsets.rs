//! `/connectors/{name}/offsets`: read, alter and reset source offsets.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value as Json_};
use sluice_connector_api::{SourceOffset, SourcePartition};

use super::{body, ApiError, AppState};

/// `GET /connectors/{name}/offsets`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    Ok(Json(state.herder.offsets(&name).await?))
}

/// `PATCH /connectors/{name}/offsets` with `{"offsets": [{"partition": .., "offset": ..|null}]}`.
pub async fn alter(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Json<Json_>, ApiError> {
    let doc = body::json(&raw)?;
    let entries = doc
        .get("offsets")
        .and_then(Json_::as_array)
        .ok_or_else(|| ApiError::bad_request("The request body must be {\"offsets\": [{\"partition\": {...}, \"offset\": {...} or null}]}"))?;
    let mut changes: Vec<(SourcePartition, Option<SourceOffset>)> =
        Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let partition = entry
            .get("partition")
            .and_then(Json_::as_object)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!("offsets[{i}].partition must be a JSON object"))
            })?;
        let offset = match entry.get("offset") {
            None | Some(Json_::Null) => None,
            Some(Json_::Object(o)) => Some(o.clone().into()),
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "offsets[{i}].offset must be a JSON object or null"
                )))
            }
        };
        changes.push((partition, offset));
    }
    state.herder.alter_offsets(&name, changes).await?;
    Ok(Json(
        json!({ "message": "The offsets for this connector have been altered successfully" }),
    ))
}

/// `DELETE /connectors/{name}/offsets`.
pub async fn reset(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    state.herder.reset_offsets(&name).await?;
    Ok(Json(
        json!({ "message": "The offsets for this connector have been reset successfully" }),
    ))
}
