//! A `sluice` process owned by a test: started with its output in a log
//! file, ready once an HTTP endpoint answers, killed or stopped as the
//! test demands, and killed when dropped.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::api::Api;
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

/// A finished command's stdout followed by its stderr, as text.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A local port nothing listens on right now.
pub fn free_port() -> u16 {
    // The listener closes at once, so the kernel may hand the same port out
    // again: a worker once got one port for REST and registry alike. No
    // port is returned twice in one test process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free local port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A running (or stopped) sluice process.
pub struct SluiceProcess {
    child: Option<Child>,
    /// A command sluice runs under (e.g. `ip netns exec NAME`), which must
    /// exec it so that signals reach sluice.
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    log: PathBuf,
    ready: (Api, String),
}

impl SluiceProcess {
    /// Starts `sluice <args>` and waits until `ready_path` on `api` answers 200.
    pub fn start(args: Vec<OsString>, log: PathBuf, api: Api, ready_path: &str) -> Self {
        Self::start_wrapped(Vec::new(), args, log, api, ready_path)
    }

    /// Starts `<wrapper> sluice <args>` (the wrapper execs sluice) and
    /// waits until `ready_path` on `api` answers 200.
    pub fn start_wrapped(
        wrapper: Vec<OsString>,
        args: Vec<OsString>,
        log: PathBuf,
        api: Api,
        ready_path: &str,
    ) -> Self {
        let mut process = Self {
            child: None,
            wrapper,
            args,
            log,
            ready: (api, ready_path.to_owned()),
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("process log file");
        let err = log.try_clone().expect("log handle");
        let mut command = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(sluice_bin());
                command
            }
            None => Command::new(sluice_bin()),
        };
        let child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn sluice");
        self.child = Some(child);
        let (api, path) = self.ready.clone();
        wait_for("sluice to answer", Duration::from_secs(60), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sluice {:?} exited with {status} during startup:\n{}",
                    self.args,
                    self.logs()
                );
            }
            api.try_get(&path).filter(|r| r.status == 200)
        });
    }

    /// The output so far, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills with SIGKILL: no chance to flush or commit.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) to the running process.
    pub fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("process is running");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("process is running");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        wait_for(
            "sluice to exit after SIGTERM",
            Duration::from_secs(60),
            || child.try_wait().ok().flatten(),
        )
    }

    /// Starts again with the same arguments.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop the process before restarting it"
        );
        self.spawn();
    }
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- sluice {:?} log ----\n{}", self.args, self.logs());
        }
    }
}

/// The Python interpreter with `tests/python/requirements.txt` installed
/// (`SLUICE_PYTHON`, else the venv `scripts/test` makes).
pub fn python() -> std::path::PathBuf {
    let path = std::env::var_os("SLUICE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/sluice/venv/bin/python")
        });
    assert!(
        path.exists(),
        "{} not found: run scripts/test (it installs tests/python/requirements.txt into ~/.cache/sluice/venv) or set SLUICE_PYTHON",
        path.display()
    );
    path
}
