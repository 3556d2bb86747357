//! One process per state directory. Two workers on one directory would
//! overwrite each other's offsets and configs and append to one schema log
//! at once; the second one is refused at start instead.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::StoreError;

/// An exclusive lock on a state directory, held while this value lives
/// (the operating system releases it when the process dies, even by
/// `kill -9`, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct StateDirLock {
    _file: File,
}

/// Locks `dir` (which must exist) for this process, or says which
/// process holds it.
pub fn lock_state_dir(dir: &Path) -> Result<StateDirLock, StoreError> {
    let path = dir.join("lock");
    let io = |action: &'static str| {
        let path = path.display().to_string();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("opening"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StoreError::Locked {
                dir: dir.display().to_string(),
                holder: holder.trim().to_owned(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io("locking")(e)),
    }
    // Who holds it, for the message another process would show.
    file.set_len(0).map_err(io("writing"))?;
    file.rewind().map_err(io("writing"))?;
    writeln!(file, "pid {}", std::process::id()).map_err(io("writing"))?;
    Ok(StateDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 8: a second process on one state directory is
    /// refused, naming the holder and the fix; the lock goes with its
    /// holder.
    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock_state_dir(dir.path()).expect("first lock");
        let refused = lock_state_dir(dir.path()).expect_err("second lock");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("--state-dir"), "{message}");
        drop(first);
        lock_state_dir(dir.path()).expect("free again");
    }
}
