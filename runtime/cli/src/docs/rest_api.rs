//! `rest-api.md`: the endpoints, from the table the router is built from.

use std::fmt::Write;

use super::markdown::{cell, code_or_dash, generated_banner};
use sluice_runtime::rest::endpoints::ENDPOINTS;

/// The page.
pub fn page() -> String {
    let mut out = generated_banner("REST API reference");
    out.push_str(
        "The worker serves the Kafka Connect REST API (default \
         `http://127.0.0.1:8083`, set with `--rest-listen`) with Connect's paths, \
         bodies and status codes, so `curl` recipes, `kcctl` and Connect UIs work \
         unchanged. Bodies are JSON. Errors are \
         `{\"error_code\": <HTTP status>, \"message\": \"...\"}`: 400 for a \
         malformed body or an invalid config (every bad key listed), 404 for an \
         unknown connector or path, 405 for a wrong method, 409 for a duplicate \
         name or an offset change on a running connector. Values of secret keys \
         (`*password*`, `*secret*`) and `${env:…}` / `${file:…}` placeholders are \
         shown as `[hidden]`. Connector config keys: \
         [connectors.md](connectors.md).\n\n",
    );
    out.push_str("| Endpoint | Query | What it does |\n|---|---|---|\n");
    for endpoint in ENDPOINTS {
        let _ = writeln!(
            out,
            "| `{} {}` | {} | {} |",
            endpoint.method,
            endpoint.path,
            code_or_dash(endpoint.query),
            cell(endpoint.summary)
        );
    }
    out
}
