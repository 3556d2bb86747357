//! The registry's state as replayed from its log: schemas by id, subjects
//! with their versions, compatibility levels and the mode.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::compat::Level;
use super::log::LogRecord;

/// The registry's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normal operation.
    ReadWrite,
    /// Registration refused.
    ReadOnly,
    /// Registration with caller-chosen ids and versions (migrations).
    Import,
}

impl Mode {
    /// Confluent's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadWrite => "READWRITE",
            Self::ReadOnly => "READONLY",
            Self::Import => "IMPORT",
        }
    }
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Self::ReadWrite),
            "READONLY" => Ok(Self::ReadOnly),
            "IMPORT" => Ok(Self::Import),
            _ => Err(()),
        }
    }
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    /// The schema id.
    pub id: i32,
    /// Soft-deleted: hidden unless asked for, not checked against.
    pub deleted: bool,
}

/// Everything the registry knows.
#[derive(Debug, Default)]
pub struct State {
    /// Schema text by id.
    pub schemas: BTreeMap<i32, Arc<str>>,
    /// Id by schema text.
    pub ids: HashMap<Arc<str>, i32>,
    /// Versions per subject.
    pub subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    /// Subject-level compatibility.
    pub levels: BTreeMap<String, Level>,
    /// The global compatibility level; `None` means the default, BACKWARD.
    pub global_level: Option<Level>,
    /// The global mode; `None` means READWRITE.
    pub mode: Option<Mode>,
}

impl State {
    /// The global level in force.
    pub fn global(&self) -> Level {
        self.global_level.unwrap_or(Level::Backward)
    }

    /// The level in force for `subject`.
    pub fn level_for(&self, subject: &str) -> Level {
        self.levels
            .get(subject)
            .copied()
            .unwrap_or_else(|| self.global())
    }

    /// The mode in force.
    pub fn current_mode(&self) -> Mode {
        self.mode.unwrap_or(Mode::ReadWrite)
    }

    /// The next free schema id.
    pub fn next_id(&self) -> i32 {
        self.schemas.keys().next_back().map_or(1, |id| id + 1)
    }

    /// Applies one log record; unknown record types are skipped so logs
    /// written by newer versions (or Confluent's NOOP records) replay.
    pub fn apply(&mut self, (key, value): &LogRecord) {
        let subject = key.get("subject").and_then(Json::as_str);
        match key.get("keytype").and_then(Json::as_str) {
            Some("SCHEMA") => {
                let (Some(subject), Some(version)) =
                    (subject, key.get("version").and_then(Json::as_i64))
                else {
                    return;
                };
                let version = version as i32;
                match value {
                    None => {
                        if let Some(versions) = self.subjects.get_mut(subject) {
                            versions.remove(&version);
                            if versions.is_empty() {
                                self.subjects.remove(subject);
                            }
                        }
                    }
                    Some(value) => {
                        let id = value.get("id").and_then(Json::as_i64).unwrap_or(0) as i32;
                        let deleted = value
                            .get("deleted")
                            .and_then(Json::as_bool)
                            .unwrap_or(false);
                        if let Some(text) = value.get("schema").and_then(Json::as_str) {
                            let text: Arc<str> = Arc::from(text);
                            self.ids.entry(Arc::clone(&text)).or_insert(id);
                            self.schemas.entry(id).or_insert(text);
                        }
                        self.subjects
                            .entry(subject.to_owned())
                            .or_default()
                            .insert(version, VersionEntry { id, deleted });
                    }
                }
            }
            Some("CONFIG") => {
                let level = value
                    .as_ref()
                    .and_then(|v| v.get("compatibilityLevel"))
                    .and_then(Json::as_str)
                    .and_then(|l| l.parse().ok());
                match (subject, level) {
                    (Some(s), Some(level)) => {
                        self.levels.insert(s.to_owned(), level);
                    }
                    (Some(s), None) => {
                        self.levels.remove(s);
                    }
                    (None, level) => self.global_level = level,
                }
            }
            Some("MODE") => {
                self.mode = value
                    .as_ref()
                    .and_then(|v| v.get("mode"))
                    .and_then(Json::as_str)
                    .and_then(|m| m.parse().ok());
            }
            _ => {}
        }
    }
}

/// The log record for a subject version.
pub fn schema_record(subject: &str, version: i32, value: Option<(i32, &str, bool)>) -> LogRecord {
    let key = json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1});
    let value = value.map(|(id, schema, deleted)| {
        json!({"subject": subject, "version": version, "id": id, "schema": schema, "deleted": deleted})
    });
    (key, value)
}

/// The log record for a compatibility level (`None` subject: global).
pub fn config_record(subject: Option<&str>, level: Option<Level>) -> LogRecord {
    let key = json!({"keytype": "CONFIG", "subject": subject, "magic": 0});
    (
        key,
        level.map(|l| json!({ "compatibilityLevel": l.as_str() })),
    )
}

/// The log record for the global mode.
pub fn mode_record(mode: Mode) -> LogRecord {
    let key = json!({"keytype": "MODE", "subject": null, "magic": 0});
    (key, Some(json!({ "mode": mode.as_str() })))
}
