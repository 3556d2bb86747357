//! A `sluice worker` process owned by a test: started on a free port with
//! its own state directory, killed or stopped as the test demands.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::api::Api;
use crate::env::TestEnv;
use crate::wait_for;

/// The sluice binary: `$SLUICE_BIN`, or the workspace's debug build.
pub fn sluice_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("SLUICE_BIN") {
        return PathBuf::from(bin);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sluice");
    assert!(
        bin.exists(),
        "{} not found; build it with `cargo build --bin sluice` or set SLUICE_BIN",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free local port")
}

/// A running worker.
pub struct Worker {
    child: Option<Child>,
    port: u16,
    state: tempfile::TempDir,
    log: PathBuf,
    bootstrap: String,
    extra_args: Vec<String>,
}

impl Worker {
    /// Starts a worker against the test broker with a fast offset flush.
    pub fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &[])
    }

    /// Starts a worker with extra command-line arguments.
    pub fn start_with(env: &TestEnv, extra: &[&str]) -> Self {
        let state = tempfile::tempdir().expect("temp state dir");
        let log = state.path().with_extension("log");
        let mut worker = Self {
            child: None,
            port: free_port(),
            log,
            state,
            bootstrap: env.bootstrap().to_owned(),
            extra_args: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        worker.spawn();
        worker
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("worker log file");
        let err = log.try_clone().expect("log handle");
        let child = Command::new(sluice_bin())
            .arg("worker")
            .args(["--bootstrap-servers", &self.bootstrap])
            .args(["--rest-listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--state-dir")
            .arg(self.state.path().join("state"))
            .args(["--offset-flush-interval-ms", "200"])
            .args(["--topic-replication-factor", "1"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn sluice worker");
        self.child = Some(child);
        let api = self.api();
        wait_for("the worker's REST API", Duration::from_secs(60), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "worker exited with {status} during startup:\n{}",
                    self.logs()
                );
            }
            api.try_get("/health").filter(|r| r.status == 200)
        });
    }

    /// A REST client for this worker.
    pub fn api(&self) -> Api {
        Api::new(format!("http://127.0.0.1:{}", self.port))
    }

    /// The worker's log so far, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The state directory (configs and offsets).
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    /// Kills the worker with SIGKILL: no chance to flush or commit.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the worker to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("worker is running");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        wait_for(
            "the worker to exit after SIGTERM",
            Duration::from_secs(60),
            || child.try_wait().ok().flatten(),
        )
    }

    /// Starts the worker again on the same port and state directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the worker before restarting it");
        self.spawn();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- worker log ----\n{}", self.logs());
        }
    }
}
