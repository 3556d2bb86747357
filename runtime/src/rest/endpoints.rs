//! Every REST endpoint in one table: the router is built from it and the
//! REST API reference (`sluice docs`) is written from it, so the two cannot
//! disagree.

use std::sync::Arc;

use axum::routing::{delete, get, patch, post, put, MethodRouter};

use super::{connectors, loggers, offsets, plugins, AppState};

/// One method on one path.
pub struct Endpoint {
    /// The HTTP method, e.g. `GET`.
    pub method: &'static str,
    /// The path as Connect writes it, with `{name}`-style parameters.
    pub path: &'static str,
    /// The query parameters it understands, e.g. `expand=status|info`.
    pub query: &'static str,
    /// What it does and answers, for the reference.
    pub summary: &'static str,
    /// The handler for this method on this path.
    route: fn() -> MethodRouter<Arc<AppState>>,
}

impl Endpoint {
    /// The handler, to be routed at `path`.
    pub fn route(&self) -> MethodRouter<Arc<AppState>> {
        (self.route)()
    }
}

/// The REST API, in the order the reference lists it.
pub static ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "GET",
        path: "/",
        query: "",
        summary: "The worker's version, build commit and Kafka cluster id.",
        route: || get(super::root),
    },
    Endpoint {
        method: "GET",
        path: "/health",
        query: "",
        summary: "200 with `{\"status\": \"healthy\"}` once the worker has started.",
        route: || get(super::health),
    },
    Endpoint {
        method: "GET",
        path: "/openapi.json",
        query: "",
        summary: "This API as an OpenAPI 3 document, written from the same table as the router.",
        route: || get(super::openapi),
    },
    Endpoint {
        method: "GET",
        path: "/metrics",
        query: "",
        summary: "Prometheus text: records polled and produced, bytes, records awaiting their offset commit, snapshot progress, task states and errors, and where a task's time goes (a source held back by the runtime, the runtime waiting for the broker; a sink applying batches or waiting for the next one).",
        route: || get(super::metrics),
    },
    Endpoint {
        method: "GET",
        path: "/admin/loggers",
        query: "",
        summary: "The log levels in force: `root` and every logger set through this API, as Connect.",
        route: || get(loggers::list),
    },
    Endpoint {
        method: "GET",
        path: "/admin/loggers/{logger}",
        query: "",
        summary: "One logger's level; 404 if it was never set.",
        route: || get(loggers::get),
    },
    Endpoint {
        method: "PUT",
        path: "/admin/loggers/{logger}",
        query: "",
        summary: "Sets a logger's level while the worker runs (`{\"level\": \"DEBUG\"}`; loggers are module paths such as `sluice_postgres`, or `root`); answers the loggers changed.",
        route: || put(loggers::put),
    },
    Endpoint {
        method: "GET",
        path: "/connector-plugins",
        query: "connectorsOnly=true|false",
        summary: "The connector plugins this binary ships: class, type (source/sink) and version; with `connectorsOnly=false` also its transforms, predicates and converters.",
        route: || get(plugins::list),
    },
    Endpoint {
        method: "GET",
        path: "/connector-plugins/{plugin}/config",
        query: "",
        summary: "Every key the connector accepts, with type, default, group and documentation, as Connect 3.2.",
        route: || get(plugins::config),
    },
    Endpoint {
        method: "PUT",
        path: "/connector-plugins/{plugin}/config/validate",
        query: "",
        summary: "Validates a config (the body) for a plugin (class or alias): every key's definition, value and errors, and `error_count`.",
        route: || put(plugins::validate),
    },
    Endpoint {
        method: "GET",
        path: "/connectors",
        query: "expand=status|info",
        summary: "The connectors' names; with `expand`, each one's status and/or config.",
        route: || get(connectors::list),
    },
    Endpoint {
        method: "POST",
        path: "/connectors",
        query: "",
        summary: "Creates a connector from `{\"name\": ..., \"config\": {...}, \"initial_state\": ...}` (RUNNING, PAUSED or STOPPED, as Connect 3.5; STOPPED lets offsets be seeded first): 201, 400 listing every bad key, 409 if the name exists.",
        route: || post(connectors::create),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}",
        query: "",
        summary: "The connector's name, config (secrets hidden), tasks and type.",
        route: || get(connectors::info),
    },
    Endpoint {
        method: "DELETE",
        path: "/connectors/{name}",
        query: "",
        summary: "Stops and removes the connector; its offsets are kept, as in Kafka Connect, so a connector created again under the same name resumes.",
        route: || delete(connectors::delete),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}/config",
        query: "",
        summary: "The connector's config, secrets and placeholders shown as `[hidden]`.",
        route: || get(connectors::config),
    },
    Endpoint {
        method: "PUT",
        path: "/connectors/{name}/config",
        query: "",
        summary: "Creates or reconfigures the connector (the body is the config); `[hidden]` values keep the stored secret. An unchanged config restarts nothing.",
        route: || put(connectors::put_config),
    },
    Endpoint {
        method: "PATCH",
        path: "/connectors/{name}/config",
        query: "",
        summary: "Changes some keys of the connector's config (a JSON object; null removes a key), as Connect 3.6; 404 if there is no such connector.",
        route: || patch(connectors::patch_config),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}/status",
        query: "",
        summary: "Connector and task states (RUNNING, PAUSED, STOPPED, FAILED with its trace), phase and snapshot progress.",
        route: || get(connectors::status),
    },
    Endpoint {
        method: "POST",
        path: "/connectors/{name}/restart",
        query: "includeTasks=true|false&onlyFailed=true|false",
        summary: "Restarts the connector, and with `includeTasks` its tasks (only failed ones with `onlyFailed`).",
        route: || post(connectors::restart),
    },
    Endpoint {
        method: "PUT",
        path: "/connectors/{name}/pause",
        query: "",
        summary: "Pauses the tasks; offsets are kept and reading resumes where it stopped.",
        route: || put(connectors::pause),
    },
    Endpoint {
        method: "PUT",
        path: "/connectors/{name}/resume",
        query: "",
        summary: "Resumes a paused or stopped connector.",
        route: || put(connectors::resume),
    },
    Endpoint {
        method: "PUT",
        path: "/connectors/{name}/stop",
        query: "",
        summary: "Stops the tasks but keeps the connector; required before changing its offsets.",
        route: || put(connectors::stop),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}/tasks",
        query: "",
        summary: "The connector's tasks with their configs.",
        route: || get(connectors::tasks),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}/tasks/{task}/status",
        query: "",
        summary: "One task's state, worker and trace.",
        route: || get(connectors::task_status),
    },
    Endpoint {
        method: "POST",
        path: "/connectors/{name}/tasks/{task}/restart",
        query: "",
        summary: "Restarts one task.",
        route: || post(connectors::restart_task),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}/topics",
        query: "",
        summary: "The topics the connector has written to or read from.",
        route: || get(connectors::topics),
    },
    Endpoint {
        method: "PUT",
        path: "/connectors/{name}/topics/reset",
        query: "",
        summary: "Forgets the topics recorded for the connector (they are recorded again as it uses them), as Connect.",
        route: || put(connectors::reset_topics),
    },
    Endpoint {
        method: "GET",
        path: "/connectors/{name}/offsets",
        query: "",
        summary: "The connector's committed offsets (source partitions and offsets).",
        route: || get(offsets::get),
    },
    Endpoint {
        method: "PATCH",
        path: "/connectors/{name}/offsets",
        query: "",
        summary: "Alters offsets from `{\"offsets\": [{\"partition\": ..., \"offset\": ...}]}` (`null` removes one); the connector must be stopped.",
        route: || patch(offsets::alter),
    },
    Endpoint {
        method: "DELETE",
        path: "/connectors/{name}/offsets",
        query: "",
        summary: "Removes every offset, so the connector starts over (e.g. a new snapshot); the connector must be stopped.",
        route: || delete(offsets::reset),
    },
];
