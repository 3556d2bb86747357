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
#[derive(Debug)]
pub struct StateDirOffsetStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl StateDirOffsetStore {
    /// A store in `dir`, which must exist.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("offsets.json"),
            lock: Mutex::new(()),
        }
    }
}

type AllOffsets = BTreeMap<String, Vec<OffsetEntry>>;

impl OffsetStore for StateDirOffsetStore {
    fn get(&self, connector: &str) -> Result<Vec<(SourcePartition, SourceOffset)>, StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let all: AllOffsets = read_json(&self.path)?;
        Ok(all
            .get(connector)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| (e.partition.clone(), e.offset.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn put(
        &self,
        connector: &str,
        offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<(), StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: AllOffsets = read_json(&self.path)?;
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
        write_json(&self.path, &all)
    }

    fn clear(&self, connector: &str) -> Result<(), StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: AllOffsets = read_json(&self.path)?;
        all.remove(connector);
        write_json(&self.path, &all)
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
