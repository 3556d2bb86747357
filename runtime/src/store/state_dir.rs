//! Config and offset stores in the worker's state directory.
//!
//! Each store is one JSON file rewritten whole through
//! [`write_atomically`], so `kill -9` at any instant leaves the last
//! complete version. Connector counts are small, so whole-file rewrites are
//! cheap next to the fsync they need anyway.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{de::DeserializeOwned, Serialize};
use sluice_connector_api::{SourceOffset, SourcePartition};

use super::{write_atomically, ConfigStore, OffsetStore, StoreError, StoredConnector};

fn read_json<T: DeserializeOwned + Default>(path: &Path) -> Result<T, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(StoreError::Io {
            action: "reading",
            path: path.display().to_string(),
            source,
        }),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        action: "writing",
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| io(std::io::Error::other(e)))?;
    write_atomically(path, &bytes).map_err(io)
}

/// Creates the state directory (owner-only, since configs hold passwords).
pub fn prepare_state_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        action: "creating",
        path: dir.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Connector configs in `<state-dir>/connectors.json`.
#[derive(Debug)]
pub struct StateDirConfigStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl StateDirConfigStore {
    /// A store in `dir`, which must exist.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("connectors.json"),
            lock: Mutex::new(()),
        }
    }

    fn update(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, StoredConnector>),
    ) -> Result<(), StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: BTreeMap<String, StoredConnector> = read_json(&self.path)?;
        f(&mut all);
        write_json(&self.path, &all)
    }
}

impl ConfigStore for StateDirConfigStore {
    fn load(&self) -> Result<Vec<StoredConnector>, StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let all: BTreeMap<String, StoredConnector> = read_json(&self.path)?;
        Ok(all.into_values().collect())
    }

    fn put(&self, connector: &StoredConnector) -> Result<(), StoreError> {
        self.update(|all| {
            all.insert(connector.name.clone(), connector.clone());
        })
    }

    fn remove(&self, name: &str) -> Result<(), StoreError> {
        self.update(|all| {
            all.remove(name);
        })
    }
}

/// One stored partition/offset pair, as Connect's offsets API shows it.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
struct OffsetEntry {
    partition: SourcePartition,
    offset: SourceOffset,
}

/// Source offsets in `<state-dir>/offsets.json`, by connector.
///
/// The file's content is kept in memory once read: the worker holds the
/// state directory alone (`dir_lock`), so only this store writes it, and
/// parsing the whole file for each `GET /connectors/{name}/offsets` cost
/// 150,000–440,000 instructions a request (callgrind, a bench polling it).
#[derive(Debug)]
pub struct StateDirOffsetStore {
    path: PathBuf,
    /// What the file holds, once read; `None` before, and after a write
    /// that failed (the file is then read again).
    known: Mutex<Option<AllOffsets>>,
}

impl StateDirOffsetStore {
    /// A store in `dir`, which must exist.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("offsets.json"),
            known: Mutex::new(None),
        }
    }

    /// Runs `f` on the stored offsets, read from the file the first time.
    fn with_known<T>(&self, f: impl FnOnce(&AllOffsets) -> T) -> Result<T, StoreError> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let all = match &mut *known {
            Some(all) => all,
            None => known.insert(read_json(&self.path)?),
        };
        Ok(f(all))
    }

    /// Changes the stored offsets with `f` and writes them; a write that
    /// fails forgets what is in memory, so nothing unwritten is served.
    fn update(&self, f: impl FnOnce(&mut AllOffsets)) -> Result<(), StoreError> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = match known.take() {
            Some(all) => all,
            None => read_json(&self.path)?,
        };
        f(&mut all);
        write_json(&self.path, &all)?;
        *known = Some(all);
        Ok(())
    }
}

type AllOffsets = BTreeMap<String, Vec<OffsetEntry>>;

impl OffsetStore for StateDirOffsetStore {
    fn get(&self, connector: &str) -> Result<Vec<(SourcePartition, SourceOffset)>, StoreError> {
        self.with_known(|all| {
            all.get(connector)
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| (e.partition.clone(), e.offset.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn put(
        &self,
        connector: &str,
        offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<(), StoreError> {
        self.update(|all| {
            let entries = all.entry(connector.to_owned()).or_default();
            for (partition, offset) in offsets {
                entries.retain(|e| &e.partition != partition);
                if let Some(offset) = offset {
                    entries.push(OffsetEntry {
                        partition: partition.clone(),
                        offset: offset.clone(),
                    });
                }
            }
            if entries.is_empty() {
                all.remove(connector);
            }
        })
    }

    fn clear(&self, connector: &str) -> Result<(), StoreError> {
        self.update(|all| {
            all.remove(connector);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_connector_api::offset::partition;

    #[test]
    fn offsets_survive_a_new_store_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateDirOffsetStore::new(dir.path());
        let mut offset = SourceOffset::new();
        offset.insert("seq".into(), json!(7));
        store
            .put("c", &[(partition("topic", "t"), Some(offset.clone()))])
            .expect("put");
        let reopened = StateDirOffsetStore::new(dir.path());
        assert_eq!(
            reopened.get("c").expect("get"),
            vec![(partition("topic", "t"), offset)]
        );
        reopened
            .put("c", &[(partition("topic", "t"), None)])
            .expect("reset");
        assert!(reopened.get("c").expect("get").is_empty());
    }

    #[test]
    fn an_offset_that_could_not_be_written_is_never_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateDirOffsetStore::new(dir.path());
        let at = |seq: i64| {
            let mut offset = SourceOffset::new();
            offset.insert("seq".into(), json!(seq));
            offset
        };
        let p = partition("topic", "t");
        store.put("c", &[(p.clone(), Some(at(1)))]).expect("put");
        assert_eq!(store.get("c").expect("get"), vec![(p.clone(), at(1))]);
        // The file cannot be replaced while a directory stands in its place.
        let file = dir.path().join("offsets.json");
        fs::remove_file(&file).expect("remove");
        fs::create_dir(&file).expect("mkdir");
        fs::write(file.join("x"), b"x").expect("write");
        store
            .put("c", &[(p.clone(), Some(at(2)))])
            .expect_err("the write fails");
        assert!(
            store.get("c").is_err(),
            "after a failed write the store reads the file again, and never answers with the unwritten offset"
        );
        fs::remove_dir_all(&file).expect("rmdir");
        store.put("c", &[(p.clone(), Some(at(3)))]).expect("put");
        assert_eq!(
            StateDirOffsetStore::new(dir.path()).get("c").expect("get"),
            vec![(p, at(3))]
        );
    }

    #[test]
    fn configs_are_replaced_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateDirConfigStore::new(dir.path());
        let mut connector = StoredConnector {
            name: "a".into(),
            config: BTreeMap::from([("k".into(), "1".into())]),
            target_state: Default::default(),
        };
        store.put(&connector).expect("put");
        connector.config.insert("k".into(), "2".into());
        store.put(&connector).expect("put");
        assert_eq!(
            StateDirConfigStore::new(dir.path()).load().expect("load"),
            vec![connector]
        );
        store.remove("a").expect("remove");
        assert!(store.load().expect("load").is_empty());
    }

    #[test]
    fn corrupt_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("connectors.json"), b"{not json").expect("write");
        let err = StateDirConfigStore::new(dir.path())
            .load()
            .expect_err("corrupt");
        assert!(
            err.to_string().contains("connectors.json is corrupt"),
            "{err}"
        );
    }
}
