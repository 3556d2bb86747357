//! A long script run by a test with its output echoed as it comes and a
//! deadline of the test's own. `Command::output` keeps everything in
//! memory until the script ends, so a run that the test runner kills for
//! overrunning its limit leaves no trace of where it stood; echoed, the
//! lines are in the runner's captured output, and stopped at a deadline
//! inside that limit, the script still cleans up and the test fails with
//! what it printed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a script stopped at its deadline gets to clean up (stop its
/// servers, undo network cuts) before it is killed.
const CLEAN_UP: Duration = Duration::from_secs(20);

/// How long the output is waited for once the script has ended: a server
/// it left running may still hold its end of the pipe.
const LAST_LINES: Duration = Duration::from_secs(5);

/// What a script run with [`run_echoed`] did.
#[derive(Debug)]
pub struct Ran {
    /// How it ended; `None` when it was still running at the deadline.
    pub status: Option<ExitStatus>,
    /// Its stdout and stderr lines, in the order they arrived.
    pub text: String,
}

impl Ran {
    /// Whether it ended in time and with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `command`, echoing each line it prints to this process's stderr
/// (captured by the test runner), and stops it with SIGTERM if it is
/// still running after `deadline`.
pub fn run_echoed(mut command: Command, deadline: Duration) -> Ran {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the script starts");
    let text = Arc::new(Mutex::new(String::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|s| Box::new(s) as _),
        child.stderr.take().map(|s| Box::new(s) as _),
    ];
    let mut readers = 0;
    for stream in streams.into_iter().flatten() {
        readers += 1;
        let (text, done) = (Arc::clone(&text), done_tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let mut text = text.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
            let _ = done.send(());
        });
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the script's status") {
            break Some(status);
        }
        if started.elapsed() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if status.is_none() {
        stop(&mut child);
    }
    let waited = Instant::now();
    for _ in 0..readers {
        let left = LAST_LINES.saturating_sub(waited.elapsed());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let mut text = text.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if status.is_none() {
        text.push_str(&format!(
            "\n(still running after {} s: stopped by the test, which keeps what it printed; the runner would have killed it without a trace)\n",
            deadline.as_secs()
        ));
    }
    Ran { status, text }
}

/// SIGTERM, so the script's exit trap cleans up; SIGKILL if it has not
/// ended after [`CLEAN_UP`].
fn stop(child: &mut std::process::Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        let _ = child.kill();
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; `pid` is our child,
    // not yet reaped, so it names no other process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let asked = Instant::now();
    while asked.elapsed() < CLEAN_UP {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("bash");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_script_that_ends_in_time_gives_its_status_and_every_line() {
        let ran = run_echoed(
            sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(30),
        );
        assert_eq!(ran.status.and_then(|s| s.code()), Some(3));
        assert!(!ran.success());
        assert!(
            ran.text.contains("out\n") && ran.text.contains("err\n"),
            "{}",
            ran.text
        );
    }

    #[test]
    fn a_script_past_its_deadline_is_stopped_and_cleans_up_and_its_lines_are_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let marker = dir.path().join("cleaned");
        let script = format!(
            "trap 'touch {}' EXIT; echo 'where it stood'; sleep 60 & wait",
            marker.display()
        );
        let started = Instant::now();
        let ran = run_echoed(sh(&script), Duration::from_secs(1));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "stopped at once"
        );
        assert!(ran.status.is_none() && !ran.success());
        assert!(ran.text.contains("where it stood"), "{}", ran.text);
        assert!(ran.text.contains("still running after 1 s"), "{}", ran.text);
        assert!(marker.exists(), "the exit trap ran on SIGTERM");
    }
}
