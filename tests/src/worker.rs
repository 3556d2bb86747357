//! A `sluice worker` process owned by a test: started on a free port with
//! its own state directory, killed or stopped as the test demands.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;

use crate::api::Api;
use crate::env::TestEnv;
use crate::process::{free_port, SluiceProcess};

pub use crate::process::sluice_bin;

/// A running worker.
pub struct Worker {
    process: SluiceProcess,
    host: String,
    port: u16,
    /// Keeps the scratch directory (removed on drop; the log is beside it).
    _scratch: tempfile::TempDir,
    state_dir: PathBuf,
}

impl Worker {
    /// Starts a worker against the test broker with a fast offset flush.
    pub fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &[])
    }

    /// Starts a worker with extra command-line arguments.
    pub fn start_with(env: &TestEnv, extra: &[&str]) -> Self {
        Self::start_against(env.bootstrap(), extra)
    }

    /// Starts a worker serving the embedded schema registry; the worker
    /// and the registry's URL.
    pub fn with_registry(env: &TestEnv) -> (Self, String) {
        let port = free_port();
        let worker = Self::start_with(env, &["--registry-listen", &format!("127.0.0.1:{port}")]);
        (worker, format!("http://127.0.0.1:{port}"))
    }

    /// Starts a worker against the broker at `bootstrap` (e.g. the TLS
    /// broker) with extra command-line arguments.
    pub fn start_against(bootstrap: &str, extra: &[&str]) -> Self {
        let state = tempfile::tempdir().expect("temp state dir");
        let state_dir = state.path().join("state");
        Self::start_on_state(bootstrap, state, state_dir, extra)
    }

    /// Starts a worker keeping its state in `state_dir` (e.g. on a small
    /// file system a test fills); its log goes beside `scratch`.
    pub fn start_in(env: &TestEnv, scratch: tempfile::TempDir, state_dir: PathBuf) -> Self {
        Self::start_on_state(env.bootstrap(), scratch, state_dir, &[])
    }

    /// Starts a worker under `wrapper` (e.g. in a network namespace), its
    /// REST API on `rest_host`, against the broker at `bootstrap`.
    pub fn start_wrapped(
        wrapper: Vec<OsString>,
        rest_host: &str,
        bootstrap: &str,
        extra: &[&str],
    ) -> Self {
        let state = tempfile::tempdir().expect("temp state dir");
        let state_dir = state.path().join("state");
        Self::start_on(wrapper, rest_host, bootstrap, state, state_dir, extra)
    }

    fn start_on_state(
        bootstrap: &str,
        state: tempfile::TempDir,
        state_dir: PathBuf,
        extra: &[&str],
    ) -> Self {
        Self::start_on(Vec::new(), "127.0.0.1", bootstrap, state, state_dir, extra)
    }

    fn start_on(
        wrapper: Vec<OsString>,
        rest_host: &str,
        bootstrap: &str,
        state: tempfile::TempDir,
        state_dir: PathBuf,
        extra: &[&str],
    ) -> Self {
        let port = free_port();
        // Offsets stored often, so tests wait little for them, unless the
        // test asks for its own interval (clap takes a flag once).
        let flush = if extra.contains(&"--offset-flush-interval-ms") {
            &[][..]
        } else {
            &["--offset-flush-interval-ms", "200"][..]
        };
        let rest_listen = format!("{rest_host}:{port}");
        let mut args: Vec<OsString> = [
            "worker",
            "--bootstrap-servers",
            bootstrap,
            "--rest-listen",
            &rest_listen,
        ]
        .iter()
        .chain(flush)
        .chain(&["--topic-replication-factor", "1", "--state-dir"])
        .map(OsString::from)
        .collect();
        args.push(state_dir.clone().into());
        args.extend(extra.iter().map(OsString::from));
        let api = Api::new(format!("http://{rest_host}:{port}"));
        let process = SluiceProcess::start_wrapped(
            wrapper,
            args,
            state.path().with_extension("log"),
            api,
            "/health",
        );
        Self {
            process,
            host: rest_host.to_owned(),
            port,
            _scratch: state,
            state_dir,
        }
    }

    /// The worker's REST base URL.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// A REST client for this worker.
    pub fn api(&self) -> Api {
        Api::new(self.url())
    }

    /// The worker's log so far, for failure messages.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// The state directory (configs and offsets).
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }

    /// Kills the worker with SIGKILL: no chance to flush or commit.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Freezes the worker (SIGSTOP), as a long pause of the whole process.
    pub fn freeze(&self) {
        self.process.signal(libc::SIGSTOP);
    }

    /// Wakes a frozen worker (SIGCONT).
    pub fn thaw(&self) {
        self.process.signal(libc::SIGCONT);
    }

    /// Sends SIGTERM and waits for the worker to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process.terminate()
    }

    /// Starts the worker again on the same port and state directory.
    pub fn restart(&mut self) {
        self.process.restart();
    }
}
