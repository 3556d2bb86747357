//! Crash-safe file replacement.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` so that after a crash at any instant the
/// file holds either the old or the new content, never a mix: write a
/// sibling temp file, fsync it, rename it over the target, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    // Unique per writer: two writers of one file must not share a temp
    // file (one would rename the other's half-written one into place).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    });
    if let Err(e) = written {
        // A full disk fails every flush: leave no temp file per attempt.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"one").expect("write");
        write_atomically(&path, b"two").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    /// Issue 19, finding 8: a write that fails leaves no temp file (a
    /// full disk fails every flush, and each left one behind).
    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The target is a non-empty directory: the rename fails.
        let path = dir.path().join("offsets.json");
        fs::create_dir(&path).expect("dir");
        fs::write(path.join("keep"), b"x").expect("file");
        assert!(write_atomically(&path, b"new").is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("offsets.json")]);
    }

    /// Issue 19, finding 8: two writers of one file (two stores, or two
    /// workers on one directory before the lock refuses the second) must
    /// not share a temp file: one would rename the other's half-written
    /// file into place, or fail to find its own.
    #[test]
    fn concurrent_writers_never_share_a_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offsets.json");
        let writers: Vec<_> = (0..4u8)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        write_atomically(&path, &[n; 4096])?;
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer").expect("every write succeeds");
        }
        let content = fs::read(&path).expect("read");
        assert_eq!(content.len(), 4096);
        assert!(content.iter().all(|b| *b == content[0]), "a mixed file");
    }
}
