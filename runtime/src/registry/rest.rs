//! Confluent Schema Registry's REST API over [`Registry`]: same paths,
//! bodies, status and error codes, so Confluent's serializers, Python's
//! `confluent-kafka` and `curl` recipes work unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value as Json};

use super::compat::Level;
use super::error::RegistryError;
use super::service::{Registry, SchemaRequest, SubjectVersion, VersionSpec};
use super::state::Mode;

/// Confluent's response content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = State<Arc<Registry>>;
type Params = Query<HashMap<String, String>>;
type Reply = Result<Response, RegistryError>;

/// A JSON response with the registry's content type.
pub fn registry_json(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Json) -> Reply {
    Ok(registry_json(StatusCode::OK, &body))
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The router for the registry API, for a registry that writes itself.
pub fn router(registry: Arc<Registry>) -> Router {
    shared_router(registry, Arc::new(super::cluster::Alone))
}

/// The router for a registry whose writes `role` places (a group of
/// workers shares one registry log).
pub fn shared_router(registry: Arc<Registry>, role: Arc<dyn super::cluster::WriterRole>) -> Router {
    let shared = super::cluster::Shared {
        registry: Arc::clone(&registry),
        role,
    };
    routes(registry).layer(axum::middleware::from_fn_with_state(
        shared,
        super::cluster::route,
    ))
}

fn routes(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(version_schema),
        )
        .route("/schemas/types", get(types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
        .route(
            "/config",
            get(global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(mode).put(put_mode))
        .fallback(not_found)
        .with_state(registry)
}

async fn not_found() -> Response {
    registry_json(
        StatusCode::NOT_FOUND,
        &json!({"error_code": 404, "message": "HTTP 404 Not Found"}),
    )
}

/// Runs a registry operation off the async threads: writes fsync.
async fn blocking<T: Send + 'static>(
    registry: Arc<Registry>,
    op: impl FnOnce(&Registry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(move || op(&registry))
        .await
        .map_err(|e| RegistryError::Store(format!("request interrupted: {e}")))?
}

fn body_json(body: &Bytes) -> Result<Json, RegistryError> {
    serde_json::from_slice(body)
        .map_err(|e| RegistryError::BadRequest(format!("Request body is not valid JSON: {e}")))
}

fn schema_request(body: &Bytes) -> Result<SchemaRequest, RegistryError> {
    let json = body_json(body)?;
    let schema = json
        .get("schema")
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            RegistryError::InvalidSchema(
                "Empty schema: the body needs {\"schema\": \"<Avro schema as a JSON string>\"}"
                    .to_owned(),
            )
        })?;
    let int = |key: &str| json.get(key).and_then(Json::as_i64).map(|v| v as i32);
    Ok(SchemaRequest {
        schema: schema.to_owned(),
        schema_type: json
            .get("schemaType")
            .and_then(Json::as_str)
            .map(str::to_owned),
        has_references: json
            .get("references")
            .and_then(Json::as_array)
            .is_some_and(|r| !r.is_empty()),
        id: int("id").filter(|id| *id > 0),
        version: int("version").filter(|v| *v > 0),
    })
}

fn version_json(found: &SubjectVersion) -> Json {
    json!({
        "subject": found.subject,
        "version": found.version,
        "id": found.id,
        "schema": &*found.schema,
    })
}

async fn root() -> Reply {
    ok(json!({}))
}

async fn subjects(State(r): Shared, Query(q): Params) -> Reply {
    ok(json!(r.subjects(flag(&q, "deleted"))))
}

async fn versions(State(r): Shared, Path(subject): Path<String>, Query(q): Params) -> Reply {
    ok(json!(r.versions(&subject, flag(&q, "deleted"))?))
}

async fn version(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    ok(version_json(&r.version(
        &subject,
        spec,
        flag(&q, "deleted"),
    )?))
}

async fn version_schema(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    let found = r.version(&subject, spec, flag(&q, "deleted"))?;
    raw(&found.schema)
}

fn raw(schema: &str) -> Reply {
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        schema.to_owned(),
    )
        .into_response())
}

async fn register(
    State(r): Shared,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Reply {
    let request = schema_request(&body)?;
    let normalize = flag(&q, "normalize");
    let id = blocking(r, move |r| r.register(&subject, &request, normalize)).await?;
    ok(json!({ "id": id }))
}

async fn lookup(
    State(r): Shared,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Reply {
    let request = schema_request(&body)?;
    let found = r.lookup(
        &subject,
        &request,
        flag(&q, "normalize"),
        flag(&q, "deleted"),
    )?;
    ok(version_json(&found))
}

async fn delete_subject(State(r): Shared, Path(subject): Path<String>, Query(q): Params) -> Reply {
    let permanent = flag(&q, "permanent");
    let deleted = blocking(r, move |r| r.delete_subject(&subject, permanent)).await?;
    ok(json!(deleted))
}

async fn delete_version(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    let permanent = flag(&q, "permanent");
    let deleted = blocking(r, move |r| r.delete_version(&subject, spec, permanent)).await?;
    ok(json!(deleted))
}

async fn types() -> Reply {
    ok(json!(["AVRO"]))
}

fn schema_id(text: &str) -> Result<i32, RegistryError> {
    text.parse()
        .map_err(|_| RegistryError::SchemaNotFound(format!("Schema {text} not found")))
}

async fn schema_by_id(State(r): Shared, Path(id): Path<String>) -> Reply {
    ok(json!({ "schema": &*r.schema_by_id(schema_id(&id)?)? }))
}

async fn raw_schema_by_id(State(r): Shared, Path(id): Path<String>) -> Reply {
    raw(&r.schema_by_id(schema_id(&id)?)?)
}

async fn subjects_by_id(State(r): Shared, Path(id): Path<String>, Query(q): Params) -> Reply {
    let mut subjects: Vec<String> = r
        .versions_for_id(schema_id(&id)?, flag(&q, "deleted"))?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    ok(json!(subjects))
}

async fn versions_by_id(State(r): Shared, Path(id): Path<String>, Query(q): Params) -> Reply {
    let versions: Vec<Json> = r
        .versions_for_id(schema_id(&id)?, flag(&q, "deleted"))?
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    ok(json!(versions))
}

fn compatibility_reply(messages: Vec<String>, verbose: bool) -> Reply {
    let compatible = messages.is_empty();
    if verbose {
        ok(json!({ "is_compatible": compatible, "messages": messages }))
    } else {
        ok(json!({ "is_compatible": compatible }))
    }
}

async fn compatibility(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
    body: Bytes,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    let request = schema_request(&body)?;
    let messages = r.test_compatibility(&subject, Some(spec), &request, flag(&q, "normalize"))?;
    compatibility_reply(messages, flag(&q, "verbose"))
}

async fn compatibility_all(
    State(r): Shared,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Reply {
    let request = schema_request(&body)?;
    let messages = r.test_compatibility(&subject, None, &request, flag(&q, "normalize"))?;
    compatibility_reply(messages, flag(&q, "verbose"))
}

fn level_from_body(body: &Bytes) -> Result<Level, RegistryError> {
    body_json(body)?
        .get("compatibility")
        .and_then(Json::as_str)
        .and_then(|l| l.parse().ok())
        .ok_or(RegistryError::InvalidCompatibilityLevel)
}

async fn global_config(State(r): Shared) -> Reply {
    ok(json!({ "compatibilityLevel": r.global_level().as_str() }))
}

async fn put_global_config(State(r): Shared, body: Bytes) -> Reply {
    let level = level_from_body(&body)?;
    blocking(r, move |r| r.set_global_level(Some(level))).await?;
    ok(json!({ "compatibility": level.as_str() }))
}

async fn delete_global_config(State(r): Shared) -> Reply {
    let old = blocking(r, |r| r.set_global_level(None)).await?;
    ok(json!({ "compatibilityLevel": old.as_str() }))
}

async fn subject_config(State(r): Shared, Path(subject): Path<String>, Query(q): Params) -> Reply {
    let level = r.subject_level(&subject, flag(&q, "defaultToGlobal"))?;
    ok(json!({ "compatibilityLevel": level.as_str() }))
}

async fn put_subject_config(State(r): Shared, Path(subject): Path<String>, body: Bytes) -> Reply {
    let level = level_from_body(&body)?;
    blocking(r, move |r| r.set_subject_level(&subject, level)).await?;
    ok(json!({ "compatibility": level.as_str() }))
}

async fn delete_subject_config(State(r): Shared, Path(subject): Path<String>) -> Reply {
    let old = blocking(r, move |r| r.delete_subject_level(&subject)).await?;
    ok(json!({ "compatibilityLevel": old.as_str() }))
}

async fn mode(State(r): Shared) -> Reply {
    ok(json!({ "mode": r.mode().as_str() }))
}

async fn put_mode(State(r): Shared, Query(q): Params, body: Bytes) -> Reply {
    let mode: Mode = body_json(&body)?
        .get("mode")
        .and_then(Json::as_str)
        .and_then(|m| m.parse().ok())
        .ok_or(RegistryError::InvalidMode)?;
    let force = flag(&q, "force");
    blocking(r, move |r| r.set_mode(mode, force)).await?;
    ok(json!({ "mode": mode.as_str() }))
}
