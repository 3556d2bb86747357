//! Where the registry keeps its history: an ordered log of key/value
//! records in the format of Confluent's `_schemas` topic.
//!
//! Keys are `{"keytype":"SCHEMA","subject":S,"version":V,"magic":1}`,
//! `{"keytype":"CONFIG","subject":S|null,"magic":0}` and
//! `{"keytype":"MODE","subject":null,"magic":0}`; values are the schema
//! (`{"subject","version","id","schema","deleted"}`), the config
//! (`{"compatibilityLevel"}`) or the mode (`{"mode"}`); a null value is a
//! tombstone. The state is whatever replaying the log yields, last record
//! per key winning, which is exactly how a compacted Kafka topic behaves:
//! a shared store for several registries is this trait over a
//! `_schemas` topic (one partition, `cleanup.policy=compact`, acks=all
//! before a request is answered, a consumer replaying it to the end before
//! serving). Standalone workers use [`FileLog`] in the state directory.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value as Json};

/// One record: a key and a value (`None` is a tombstone).
pub type LogRecord = (Json, Option<Json>);

/// An append-only, durable record log.
pub trait SchemaLog: Send + Sync {
    /// Every record in append order.
    fn replay(&self) -> std::io::Result<Vec<LogRecord>>;
    /// Appends `records`; returns only once they are durable.
    fn append(&self, records: &[LogRecord]) -> std::io::Result<()>;
    /// Records others appended since the last replay or tail, for a log
    /// shared by several registries; a log with one writer has none.
    fn tail(&self) -> std::io::Result<Vec<LogRecord>> {
        Ok(Vec::new())
    }
}

/// A [`SchemaLog`] in a JSON-lines file, fsynced on every append.
pub struct FileLog {
    path: PathBuf,
    file: Mutex<Option<Appender>>,
}

/// The open log and the length of its complete records: an append that
/// fails half-way (a full disk) is cut back to it, and the next append
/// starts there, so a torn record never sits in the middle of the log.
struct Appender {
    file: File,
    valid_len: u64,
}

impl FileLog {
    /// The log at `dir/schemas.log`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("schemas.log"),
            file: Mutex::new(None),
        }
    }
}

impl SchemaLog for FileLog {
    fn replay(&self) -> std::io::Result<Vec<LogRecord>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        let mut valid_len: u64 = 0;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader.read_line(&mut line)?;
            if read == 0 {
                break;
            }
            // A line without its newline is a write cut short by a crash;
            // its request was never answered, so dropping it loses nothing.
            if !line.ends_with('\n') {
                tracing::warn!(path = %self.path.display(), "dropping a torn last record of the schema log");
                break;
            }
            let parsed: Json = serde_json::from_str(&line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is corrupt at byte {valid_len}: {e}; restore it from a backup or the _schemas topic",
                        self.path.display()
                    ),
                )
            })?;
            let key = parsed.get("key").cloned().unwrap_or(Json::Null);
            let value = parsed.get("value").cloned().filter(|v| !v.is_null());
            records.push((key, value));
            valid_len += read as u64;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        if file.metadata()?.len() != valid_len {
            file.set_len(valid_len)?;
        }
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(Appender { file, valid_len });
        Ok(records)
    }

    fn append(&self, records: &[LogRecord]) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.path)?;
            let valid_len = file.metadata()?.len();
            *guard = Some(Appender { file, valid_len });
        }
        let Some(log) = guard.as_mut() else {
            return Err(std::io::Error::other("schema log is not open"));
        };
        let mut buf = Vec::new();
        for (key, value) in records {
            serde_json::to_writer(&mut buf, &json!({ "key": key, "value": value }))?;
            buf.push(b'\n');
        }
        // A torn tail left by an earlier failed append goes first.
        if log.file.metadata()?.len() != log.valid_len {
            log.file.set_len(log.valid_len)?;
        }
        let written = log.file.write_all(&buf).and_then(|()| log.file.sync_data());
        match written {
            Ok(()) => {
                log.valid_len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Not answered, so not kept; if even this fails, the next
                // append cuts it.
                let _ = log.file.set_len(log.valid_len);
                Err(e)
            }
        }
    }
}

/// A log held in memory, for tests and throwaway registries.
#[derive(Default)]
pub struct MemoryLog(Mutex<Vec<LogRecord>>);

impl SchemaLog for MemoryLog {
    fn replay(&self) -> std::io::Result<Vec<LogRecord>> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn append(&self, records: &[LogRecord]) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(records);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 8: an append cut short (a full disk) leaves a
    /// torn tail while the worker runs on; the next append must not glue
    /// its record to it, or the log is corrupt mid-file and the worker
    /// cannot start again.
    #[test]
    fn an_append_after_a_torn_one_starts_on_its_own_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::in_dir(dir.path());
        assert!(log.replay().expect("empty").is_empty());
        log.append(&[(json!({"k": 1}), Some(json!({"v": 1})))])
            .expect("append");
        // What a write that failed half-way leaves behind.
        let path = dir.path().join("schemas.log");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"key\":{\"k\":2},\"va").expect("torn");
        drop(f);
        log.append(&[(json!({"k": 3}), Some(json!({"v": 3})))])
            .expect("append after the torn one");
        let replayed = FileLog::in_dir(dir.path()).replay().expect("the log reads");
        let keys: Vec<Json> = replayed.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![json!({"k": 1}), json!({"k": 3})]);
    }

    #[test]
    fn torn_tail_is_dropped_and_log_continues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FileLog::in_dir(dir.path());
        log.append(&[(json!({"k": 1}), Some(json!({"v": 1})))])
            .expect("append");
        let path = dir.path().join("schemas.log");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"key\":{\"k\":2},\"val")
            .expect("torn write");
        drop(f);
        let reopened = FileLog::in_dir(dir.path());
        assert_eq!(reopened.replay().expect("replay").len(), 1);
        reopened.append(&[(json!({"k": 3}), None)]).expect("append");
        let records = FileLog::in_dir(dir.path()).replay().expect("replay");
        assert_eq!(records.len(), 2);
        assert_eq!(records[1], (json!({"k": 3}), None));
    }
}
