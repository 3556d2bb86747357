//! A small blocking client for the REST API that never hides a status code.

use std::time::Duration;

use serde_json::Value;

/// A response: status code and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
    /// Raw body text.
    pub text: String,
}

impl Reply {
    /// The `message` of a Connect error body.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// A REST client for one worker.
#[derive(Clone)]
pub struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    /// A client for the worker at `base` (e.g. `http://127.0.0.1:8083`).
    pub fn new(base: impl Into<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            base: base.into(),
            agent,
        }
    }

    fn finish(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Reply {
        let mut response = result.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        Self::finish(self.agent.get(&url).call(), &format!("GET {url}"))
    }

    /// GET `path` with an `Authorization` header.
    pub fn get_as(&self, path: &str, authorization: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let req = self.agent.get(&url).header("authorization", authorization);
        Self::finish(req.call(), &format!("GET {url}"))
    }

    /// POST JSON to `path` with an `Authorization` header.
    pub fn post_as(&self, path: &str, body: &Value, authorization: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", authorization);
        Self::finish(req.send(body.to_string()), &format!("POST {url}"))
    }

    /// GET `path`, or `None` if the worker does not answer (yet).
    pub fn try_get(&self, path: &str) -> Option<Reply> {
        let url = format!("{}{path}", self.base);
        self.agent
            .get(&url)
            .call()
            .ok()
            .map(|r| Self::finish(Ok(r), &url))
    }

    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        Self::finish(self.agent.delete(&url).call(), &format!("DELETE {url}"))
    }

    /// POST `body` (raw text) to `path`.
    pub fn post_raw(&self, path: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .post(&url)
            .header("content-type", "application/json");
        Self::finish(req.send(body), &format!("POST {url}"))
    }

    /// POST JSON to `path`.
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, &body.to_string())
    }

    /// POST with no body.
    pub fn post_empty(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        Self::finish(self.agent.post(&url).send_empty(), &format!("POST {url}"))
    }

    /// PUT `body` (raw text) to `path`.
    pub fn put_raw(&self, path: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .put(&url)
            .header("content-type", "application/json");
        Self::finish(req.send(body), &format!("PUT {url}"))
    }

    /// PUT JSON to `path`.
    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.put_raw(path, &body.to_string())
    }

    /// PUT with no body.
    pub fn put_empty(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        Self::finish(self.agent.put(&url).send_empty(), &format!("PUT {url}"))
    }

    /// PATCH JSON to `path`.
    pub fn patch(&self, path: &str, body: &Value) -> Reply {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .patch(&url)
            .header("content-type", "application/json");
        Self::finish(req.send(body.to_string()), &format!("PATCH {url}"))
    }
}
