//! A standalone `sluice registry` process owned by a test.

use std::ffi::OsString;

use crate::api::Api;
use crate::process::{free_port, SluiceProcess};

/// A running registry with its own state directory.
pub struct RegistryServer {
    /// The process, for kill -9 and restarts.
    pub process: SluiceProcess,
    port: u16,
    _state: tempfile::TempDir,
}

impl RegistryServer {
    /// Starts `sluice registry` on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts `sluice registry` on `port`.
    pub fn start_on(port: u16) -> Self {
        let state = tempfile::tempdir().expect("temp state dir");
        let args: Vec<OsString> = vec![
            "registry".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
            "--state-dir".into(),
            state.path().join("registry").into(),
        ];
        let process = SluiceProcess::start(
            args,
            state.path().with_extension("log"),
            Api::new(format!("http://127.0.0.1:{port}")),
            "/config",
        );
        Self {
            process,
            port,
            _state: state,
        }
    }

    /// The registry's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client for the registry API.
    pub fn api(&self) -> Api {
        Api::new(self.url())
    }
}
