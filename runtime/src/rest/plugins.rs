//! `/connector-plugins`: what this worker can run, and config validation.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value as Json_};
use sluice_connector_api::ConnectorConfig;

use super::{body, ApiError, AppState};
use crate::converter;
use crate::herder::validation::{KeyDefinition, ValidationReport};

/// `GET /connector-plugins[?connectorsOnly=false]`: the connectors, and
/// with `connectorsOnly=false` also the transforms, predicates and
/// converters, as Connect 3.2 lists them.
pub async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Json_>>, ApiError> {
    let version = env!("CARGO_PKG_VERSION");
    let mut plugins: Vec<Json_> = state
        .herder
        .plugins()
        .infos()
        .into_iter()
        .map(|p| json!({ "class": p.class, "type": p.kind.as_str(), "version": p.version }))
        .collect();
    let connectors_only = match query_value(query.as_deref(), "connectorsOnly") {
        None => true,
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "connectorsOnly must be true or false, not {other:?}"
            )))
        }
    };
    if !connectors_only {
        let others = [
            ("transformation", crate::transforms::catalog::TRANSFORMS),
            ("predicate", crate::transforms::catalog::PREDICATE_CLASSES),
            (
                "converter",
                &[converter::JSON_CONVERTER, converter::AVRO_CONVERTER][..],
            ),
        ];
        for (kind, classes) in others {
            plugins.extend(
                classes
                    .iter()
                    .map(|class| json!({ "class": class, "type": kind, "version": version })),
            );
        }
    }
    Ok(Json(plugins))
}

/// The value of `name` in a query string.
fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `GET /connector-plugins/{plugin}/config`: the keys a connector accepts.
pub async fn config(
    State(state): State<Arc<AppState>>,
    Path(plugin): Path<String>,
) -> Result<Json<Vec<KeyDefinition>>, ApiError> {
    let found = state.herder.plugins().find(&plugin).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!(
                "Failed to find any class that implements Connector and which name matches {plugin}, available connectors are: {}",
                state.herder.plugins().names().join(", ")
            ),
        )
    })?;
    Ok(Json(crate::herder::validation::definitions(&found)))
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
