//! A Tansu broker of a test's own, on an address the test chooses (e.g.
//! one a network namespace can be cut off from); stopped on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::env::TestEnv;
use crate::process::free_port;
use crate::wait_for;

/// A running broker.
pub struct OwnBroker {
    child: Child,
    bootstrap: String,
}

impl OwnBroker {
    /// Starts the test environment's Tansu on `host` and a free port, with
    /// in-memory storage.
    pub fn start(env: &TestEnv, host: &str) -> Self {
        let bootstrap = format!("{host}:{}", free_port());
        let url = format!("tcp://{bootstrap}");
        let child = Command::new(env.get("SLUICE_TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        wait_for("the broker to listen", Duration::from_secs(30), || {
            TcpStream::connect(&bootstrap).ok()
        });
        Self { child, bootstrap }
    }

    /// `host:port`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Sends `signal` to the broker: SIGSTOP leaves its connections open
    /// and unanswered, as a broker stalled or cut off mid-request does,
    /// until SIGCONT.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
