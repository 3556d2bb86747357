//! Confluent Schema Registry's REST API over [`Registry`]: same paths,
//! bodies, status and error codes, so Confluent's serializers, Python's
//! `confluent-kafka` and `curl` recipes work unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use serde_json::{json, Value as Json};

use sluice_registry::compat::Level;
use sluice_registry::{Mode, Registry, RegistryError, SchemaRequest, SubjectVersion, VersionSpec};

/// Confluent's response content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = State<Arc<Registry>>;
type Params = Query<HashMap<String, String>>;
type Reply = Result<Response, ApiError>;

/// A registry error as Confluent's API answers it: the HTTP status from
/// its code, and `{"error_code", "message"}`.
pub struct ApiError(RegistryError);

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "registry request failed");
        }
        let body = json!({ "error_code": self.0.code(), "message": self.0.to_string() });
        registry_json(status, &body)
    }
}

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
    shared_router(
        registry,
        Arc::new(super::cluster::Alone),
        crate::rest::forward::Forwarder::http(),
    )
}

/// The router for a registry whose writes `role` places (a group of
/// workers shares one registry log).
pub fn shared_router(
    registry: Arc<Registry>,
    role: Arc<dyn super::cluster::WriterRole>,
    forwarder: crate::rest::forward::Forwarder,
) -> Router {
    let shared = super::cluster::Shared {
        registry: Arc::clone(&registry),
        role,
        forwarder,
    };
    routes(registry).layer(axum::middleware::from_fn_with_state(
        shared,
        super::cluster::route,
    ))
}

/// One method on one path of the registry API.
pub struct RegistryEndpoint {
    /// The HTTP method.
    pub method: &'static str,
    /// The path, with `{name}` parameters.
    pub path: &'static str,
    /// Query parameters it understands, as `a=x|y&b=x|y`.
    pub query: &'static str,
    /// What it does.
    pub summary: &'static str,
    route: fn() -> MethodRouter<Arc<Registry>>,
}

/// Confluent's registry API as sluice serves it; the router and the
/// OpenAPI document are both built from this table.
pub static ENDPOINTS: &[RegistryEndpoint] = &[
    RegistryEndpoint {
        method: "GET",
        path: "/",
        query: "",
        summary: "An empty object, as Confluent's root.",
        route: || get(root),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/subjects",
        query: "deleted=true|false",
        summary: "The registered subjects.",
        route: || get(subjects),
    },
    RegistryEndpoint {
        method: "POST",
        path: "/subjects/{subject}",
        query: "normalize=true|false&deleted=true|false",
        summary: "Looks a schema up under a subject.",
        route: || post(lookup),
    },
    RegistryEndpoint {
        method: "DELETE",
        path: "/subjects/{subject}",
        query: "permanent=true|false",
        summary: "Deletes a subject (soft, then permanent).",
        route: || delete(delete_subject),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/subjects/{subject}/versions",
        query: "deleted=true|false",
        summary: "A subject's versions.",
        route: || get(versions),
    },
    RegistryEndpoint {
        method: "POST",
        path: "/subjects/{subject}/versions",
        query: "normalize=true|false",
        summary: "Registers a schema under a subject (checked for compatibility); its id.",
        route: || post(register),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/subjects/{subject}/versions/{version}",
        query: "deleted=true|false",
        summary: "One version (a number or latest).",
        route: || get(version),
    },
    RegistryEndpoint {
        method: "DELETE",
        path: "/subjects/{subject}/versions/{version}",
        query: "permanent=true|false",
        summary: "Deletes one version.",
        route: || delete(delete_version),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/subjects/{subject}/versions/{version}/schema",
        query: "",
        summary: "One version's schema text.",
        route: || get(version_schema),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/schemas/types",
        query: "",
        summary: "The schema types served: AVRO.",
        route: || get(types),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/schemas/ids/{id}",
        query: "",
        summary: "The schema with an id.",
        route: || get(schema_by_id),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/schemas/ids/{id}/schema",
        query: "",
        summary: "The schema text with an id.",
        route: || get(raw_schema_by_id),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/schemas/ids/{id}/subjects",
        query: "deleted=true|false",
        summary: "The subjects a schema id is registered under.",
        route: || get(subjects_by_id),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/schemas/ids/{id}/versions",
        query: "deleted=true|false",
        summary: "The subject versions of a schema id.",
        route: || get(versions_by_id),
    },
    RegistryEndpoint {
        method: "POST",
        path: "/compatibility/subjects/{subject}/versions",
        query: "verbose=true|false",
        summary: "Whether a schema is compatible with every version the level asks.",
        route: || post(compatibility_all),
    },
    RegistryEndpoint {
        method: "POST",
        path: "/compatibility/subjects/{subject}/versions/{version}",
        query: "verbose=true|false",
        summary: "Whether a schema is compatible with one version.",
        route: || post(compatibility),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/config",
        query: "",
        summary: "The global compatibility level.",
        route: || get(global_config),
    },
    RegistryEndpoint {
        method: "PUT",
        path: "/config",
        query: "",
        summary: "Sets the global compatibility level.",
        route: || put(put_global_config),
    },
    RegistryEndpoint {
        method: "DELETE",
        path: "/config",
        query: "",
        summary: "Resets the global level to BACKWARD.",
        route: || delete(delete_global_config),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/config/{subject}",
        query: "defaultToGlobal=true|false",
        summary: "A subject's compatibility level.",
        route: || get(subject_config),
    },
    RegistryEndpoint {
        method: "PUT",
        path: "/config/{subject}",
        query: "",
        summary: "Sets a subject's compatibility level.",
        route: || put(put_subject_config),
    },
    RegistryEndpoint {
        method: "DELETE",
        path: "/config/{subject}",
        query: "",
        summary: "Removes a subject's own level.",
        route: || delete(delete_subject_config),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/mode",
        query: "",
        summary: "The registry's mode.",
        route: || get(mode),
    },
    RegistryEndpoint {
        method: "PUT",
        path: "/mode",
        query: "force=true|false",
        summary: "Sets the registry's mode.",
        route: || put(put_mode),
    },
    RegistryEndpoint {
        method: "GET",
        path: "/openapi.json",
        query: "",
        summary: "This API as an OpenAPI 3 document, written from the same table as the router.",
        route: || get(openapi),
    },
];

fn routes(registry: Arc<Registry>) -> Router {
    ENDPOINTS
        .iter()
        .fold(Router::new(), |router, e| router.route(e.path, (e.route)()))
        .fallback(not_found)
        .with_state(registry)
}

/// The registry API as an OpenAPI document.
pub fn openapi_document() -> Json {
    crate::rest::openapi::document(
        "sluice embedded schema registry (Confluent's API)",
        ENDPOINTS.iter().map(|e| crate::rest::openapi::Operation {
            method: e.method,
            path: e.path,
            query: e.query,
            summary: e.summary,
        }),
        &[CONTENT_TYPE, "application/json"],
    )
}

async fn openapi() -> Reply {
    ok(openapi_document())
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
