//! `/connectors`: create, inspect, reconfigure and control connectors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value as Json_};

use super::{body, forward, ApiError, AppState};
use crate::herder::HerderError;
use crate::store::TargetState;

/// The values of `key` in a raw query string (`expand=a&expand=b`).
fn query_values(query: Option<&str>, key: &str) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .collect()
}

fn query_flag(query: Option<&str>, key: &str) -> Result<bool, ApiError> {
    match query_values(query, key).last().map(String::as_str) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "query parameter {key} must be true or false, not {other}"
        ))),
    }
}

/// `GET /connectors` (with `?expand=status` / `?expand=info`).
pub async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let names = state.herder.names().await;
    let expand = query_values(query.as_deref(), "expand");
    if expand.is_empty() {
        return Ok(Json(names).into_response());
    }
    let mut out = Map::new();
    for name in names {
        let mut item = Map::new();
        if expand.iter().any(|e| e == "status") {
            if let Ok(status) = state.herder.status(&name).await {
                item.insert("status".into(), json!(status));
            }
        }
        if expand.iter().any(|e| e == "info") {
            if let Ok(info) = state.herder.info(&name).await {
                item.insert("info".into(), json!(info));
            }
        }
        out.insert(name, Json_::Object(item));
    }
    Ok(Json(Json_::Object(out)).into_response())
}

/// `POST /connectors` with `{"name": .., "config": {..}}`.
pub async fn create(State(state): State<Arc<AppState>>, raw: Bytes) -> Result<Response, ApiError> {
    let doc = body::json(&raw)?;
    let config_json = doc
        .get("config")
        .ok_or_else(|| ApiError::bad_request("Missing required field \"config\" in the request body: send {\"name\": \"...\", \"config\": {...}}"))?;
    let config = body::config_map(config_json, "config")?;
    let name = match doc.get("name") {
        Some(Json_::String(n)) if !n.trim().is_empty() => n.trim().to_owned(),
        Some(Json_::String(_)) | Some(Json_::Null) | None => match config.get("name") {
            Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
            _ => return Err(ApiError::bad_request("Missing required field \"name\" in the request body: send {\"name\": \"...\", \"config\": {...}}")),
        },
        Some(_) => return Err(ApiError::bad_request("Field \"name\" must be a string")),
    };
    check_name(&name)?;
    let initial_state = match doc.get("initial_state") {
        None | Some(Json_::Null) => TargetState::Started,
        Some(Json_::String(s)) => match s.to_ascii_uppercase().as_str() {
            "RUNNING" => TargetState::Started,
            "PAUSED" => TargetState::Paused,
            "STOPPED" => TargetState::Stopped,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "initial_state {s:?} is not one of RUNNING, PAUSED, STOPPED"
                )))
            }
        },
        Some(_) => {
            return Err(ApiError::bad_request(
                "Field \"initial_state\" must be a string",
            ))
        }
    };
    let info = state.herder.create(&name, config, initial_state).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `PATCH /connectors/{name}/config`: keys set, null values removed.
pub async fn patch_config(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let Json_::Object(doc) = body::json(&raw)? else {
        return Err(ApiError::bad_request(
            "the patch must be a JSON object of keys to set (null removes a key)",
        ));
    };
    let mut patch = BTreeMap::new();
    for (key, value) in doc {
        let value = match value {
            Json_::Null => None,
            Json_::String(s) => Some(s),
            Json_::Number(n) => Some(n.to_string()),
            Json_::Bool(b) => Some(b.to_string()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "the value of {key} must be a string, number, boolean or null"
                )))
            }
        };
        patch.insert(key, value);
    }
    let info = state.herder.patch_config(&name, patch).await?;
    Ok(Json(info).into_response())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.contains('/') {
        return Err(ApiError::bad_request("connector names may not contain '/'"));
    }
    Ok(())
}

/// `GET /connectors/{name}`.
pub async fn info(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.herder.info(&name).await?).into_response())
}

/// `DELETE /connectors/{name}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /connectors/{name}/config`.
pub async fn config(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    Ok(Json(state.herder.config(&name).await?))
}

/// `PUT /connectors/{name}/config`: 201 when created, 200 when updated.
pub async fn put_config(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let config = body::config_map(&body::json(&raw)?, "the config")?;
    let (created, info) = state.herder.put_config(&name, config).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

/// `GET /connectors/{name}/status`.
pub async fn status(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.herder.status(&name).await?).into_response())
}

/// `POST /connectors/{name}/restart[?includeTasks=&onlyFailed=]`: 204 for a
/// plain connector restart, 202 with the status when tasks are included,
/// as Connect answers.
pub async fn restart(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let include_tasks = query_flag(query.as_deref(), "includeTasks")?;
    let only_failed = query_flag(query.as_deref(), "onlyFailed")?;
    let restarted = match state
        .herder
        .restart(&name, include_tasks, only_failed)
        .await
    {
        Err(HerderError::RunsElsewhere { worker, .. }) if !forward::was_forwarded(&headers) => {
            return forward_to(&state.forwarder, &worker, &uri, &headers).await;
        }
        other => other?,
    };
    let mut status = restarted.status;
    if !restarted.elsewhere.is_empty() {
        // Tasks other workers run: each restarted by its worker, as
        // Connect's leader asks the workers running them.
        for (task, worker) in &restarted.elsewhere {
            let path = format!(
                "/connectors/{}/tasks/{task}/restart",
                sluice_registry::client::path_segment(&name)
            );
            let answer = forward::forward(
                &state.forwarder,
                &state.forwarder.base(worker),
                Method::POST,
                &path,
                &headers,
                Vec::new(),
            )
            .await;
            match answer {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(connector = %name, task, worker = %worker, status = %response.status(), "the worker running the task did not restart it")
                }
                Err(e) => {
                    tracing::warn!(connector = %name, task, worker = %worker, error = %e, "could not ask the worker running the task to restart it")
                }
            }
        }
        status = state.herder.status(&name).await?;
    }
    if include_tasks || only_failed {
        Ok((StatusCode::ACCEPTED, Json(status)).into_response())
    } else {
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

/// `PUT /connectors/{name}/pause`: 202.
pub async fn pause(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.pause(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /connectors/{name}/resume`: 202.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.resume(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /connectors/{name}/stop`: 204.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.stop(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /connectors/{name}/tasks`.
pub async fn tasks(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.herder.tasks(&name).await?).into_response())
}

fn task_number(raw: &str) -> Result<u32, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Task {raw} not found: task ids are numbers"),
        )
    })
}

/// `GET /connectors/{name}/tasks/{task}/status`.
pub async fn task_status(
    State(state): State<Arc<AppState>>,
    Path((name, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let task = task_number(&task)?;
    Ok(Json(state.herder.task_status(&name, task).await?).into_response())
}

/// `POST /connectors/{name}/tasks/{task}/restart`: 204.
pub async fn restart_task(
    State(state): State<Arc<AppState>>,
    Path((name, task)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let task = task_number(&task)?;
    match state.herder.restart_task(&name, task).await {
        Err(HerderError::RunsElsewhere { worker, .. }) if !forward::was_forwarded(&headers) => {
            forward_to(&state.forwarder, &worker, &uri, &headers).await
        }
        other => {
            other?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

/// Sends a restart on to the worker running the connector.
async fn forward_to(
    forwarder: &forward::Forwarder,
    worker: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    forward::forward(
        forwarder,
        &forwarder.base(worker),
        Method::POST,
        path,
        headers,
        Vec::new(),
    )
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("forwarding the request to the worker running the connector failed: {e}"),
        )
    })
}

/// `PUT /connectors/{name}/topics/reset`.
pub async fn reset_topics(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.reset_topics(&name).await?;
    Ok(StatusCode::OK)
}

/// `GET /connectors/{name}/topics`.
pub async fn topics(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let topics = state.herder.topics(&name).await?;
    Ok(Json(json!({ name: { "topics": topics } })))
}
