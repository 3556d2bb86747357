//! The registry's operations, with Confluent Schema Registry's semantics:
//! one id per distinct schema across subjects, versions numbered per
//! subject, soft then permanent deletes, compatibility checked before a
//! version is added.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::avro_model::AvroModel;
use super::compat::{self, Level};
use super::error::RegistryError;
use super::log::{LogRecord, SchemaLog};
use super::schema_text::{self, ParsedSchema};
use super::state::{config_record, mode_record, schema_record, Mode, State};

/// A version given in a path: a number or `latest` (or `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest live version.
    Latest,
    /// A version number.
    Number(i32),
}

impl VersionSpec {
    /// Parses a path segment, with Confluent's 42202 for anything else.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        if text.eq_ignore_ascii_case("latest") || text == "-1" {
            return Ok(Self::Latest);
        }
        match text.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(Self::Number(n)),
            _ => Err(RegistryError::InvalidVersion(text.to_owned())),
        }
    }
}

/// The body of a register, look-up or compatibility request.
#[derive(Debug, Clone, Default)]
pub struct SchemaRequest {
    /// The schema text.
    pub schema: String,
    /// `AVRO` when absent; other types are refused.
    pub schema_type: Option<String>,
    /// Whether the request names schema references (not supported).
    pub has_references: bool,
    /// A caller-chosen id (IMPORT mode only).
    pub id: Option<i32>,
    /// A caller-chosen version (IMPORT mode only).
    pub version: Option<i32>,
}

/// One version of a subject, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version number.
    pub version: i32,
    /// The schema id.
    pub id: i32,
    /// The schema text.
    pub schema: Arc<str>,
}

/// A schema registry over a [`SchemaLog`].
pub struct Registry {
    log: Box<dyn SchemaLog>,
    state: Mutex<State>,
    models: Mutex<HashMap<i32, Arc<AvroModel>>>,
}

impl Registry {
    /// Opens the registry, replaying `log`.
    pub fn open(log: Box<dyn SchemaLog>) -> std::io::Result<Self> {
        let mut state = State::default();
        for record in log.replay()? {
            state.apply(&record);
        }
        Ok(Self {
            log,
            state: Mutex::new(state),
            models: Mutex::new(HashMap::new()),
        })
    }

    /// Applies what other registries sharing the log appended since.
    pub fn refresh(&self) -> Result<(), RegistryError> {
        let mut state = self.state();
        for record in self
            .log
            .tail()
            .map_err(|e| RegistryError::Store(e.to_string()))?
        {
            state.apply(&record);
        }
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `records` durably, then applies them.
    fn write(&self, state: &mut State, records: Vec<LogRecord>) -> Result<(), RegistryError> {
        self.log
            .append(&records)
            .map_err(|e| RegistryError::Store(e.to_string()))?;
        for record in &records {
            state.apply(record);
        }
        Ok(())
    }

    /// Subject names, with soft-deleted ones when `deleted`.
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.state()
            .subjects
            .iter()
            .filter(|(_, versions)| deleted || versions.values().any(|v| !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// A subject's version numbers.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let state = self.state();
        let versions: Vec<i32> = state
            .subjects
            .get(subject)
            .map(|v| {
                v.iter()
                    .filter(|(_, e)| deleted || !e.deleted)
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Ok(versions)
    }

    fn resolve_version(
        state: &State,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let versions = state
            .subjects
            .get(subject)
            .filter(|v| deleted || v.values().any(|e| !e.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        let found = match spec {
            VersionSpec::Latest => versions.iter().rev().find(|(_, e)| deleted || !e.deleted),
            VersionSpec::Number(n) => versions
                .get_key_value(&n)
                .filter(|(_, e)| deleted || !e.deleted),
        };
        let (version, entry) = found.ok_or_else(|| {
            RegistryError::VersionNotFound(match spec {
                VersionSpec::Latest => "latest".to_owned(),
                VersionSpec::Number(n) => n.to_string(),
            })
        })?;
        let schema = state
            .schemas
            .get(&entry.id)
            .cloned()
            .ok_or_else(|| RegistryError::Store(format!("schema {} is missing", entry.id)))?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: *version,
            id: entry.id,
            schema,
        })
    }

    /// One version of a subject.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        Self::resolve_version(&self.state(), subject, spec, deleted)
    }

    fn parse_request(
        request: &SchemaRequest,
        normalize: bool,
    ) -> Result<ParsedSchema, RegistryError> {
        if let Some(kind) = &request.schema_type {
            if !kind.eq_ignore_ascii_case("AVRO") {
                return Err(RegistryError::InvalidSchema(format!(
                    "Invalid schema type {kind}: this registry stores AVRO schemas only"
                )));
            }
        }
        if request.has_references {
            return Err(RegistryError::InvalidSchema(
                "Schema references are not supported by this registry; inline the referenced types"
                    .to_owned(),
            ));
        }
        schema_text::parse(&request.schema, normalize)
    }

    fn model(&self, id: i32, text: &str) -> Result<Arc<AvroModel>, RegistryError> {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(model) = models.get(&id) {
            return Ok(Arc::clone(model));
        }
        let json = serde_json::from_str(text)
            .map_err(|e| RegistryError::Store(format!("stored schema {id} is not JSON: {e}")))?;
        let model = Arc::new(
            AvroModel::from_json(&json)
                .map_err(|e| RegistryError::Store(format!("stored schema {id}: {e}")))?,
        );
        models.insert(id, Arc::clone(&model));
        Ok(model)
    }

    /// Compatibility messages of `candidate` against `against` (newest
    /// first) under `level`; empty when compatible.
    fn incompatibilities(
        &self,
        state: &State,
        subject: &str,
        candidate: &ParsedSchema,
        against: &[i32],
        level: Level,
    ) -> Result<Vec<String>, RegistryError> {
        let mut messages = Vec::new();
        for version in against {
            let old = Self::resolve_version(state, subject, VersionSpec::Number(*version), false)?;
            let model = self.model(old.id, &old.schema)?;
            let found = compat::check(level, &candidate.model, &model);
            if found.is_empty() {
                continue;
            }
            messages.extend(found.iter().map(compat::Incompatibility::message));
            messages.push(format!("{{oldSchemaVersion: {version}}}"));
            messages.push(format!("{{oldSchema: '{}'}}", old.schema));
        }
        if !messages.is_empty() {
            messages.push(format!("{{compatibility: '{level}'}}"));
        }
        Ok(messages)
    }

    /// The live versions a new schema is checked against under `level`.
    fn versions_to_check(state: &State, subject: &str, level: Level) -> Vec<i32> {
        if level == Level::None {
            return Vec::new();
        }
        let live: Vec<i32> = state
            .subjects
            .get(subject)
            .map(|v| {
                v.iter()
                    .rev()
                    .filter(|(_, e)| !e.deleted)
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default();
        if level.transitive() {
            live
        } else {
            live.into_iter().take(1).collect()
        }
    }

    /// Registers `request` under `subject`; the id of the schema, existing
    /// or new.
    pub fn register(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
    ) -> Result<i32, RegistryError> {
        let parsed = Self::parse_request(request, normalize)?;
        let mut state = self.state();
        let mode = state.current_mode();
        match mode {
            Mode::ReadOnly => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is in read-only mode"
                )))
            }
            Mode::ReadWrite if request.id.is_some() => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is not in import mode; an id may only be given in IMPORT mode"
                )))
            }
            _ => {}
        }
        let existing_id = state.ids.get(parsed.canonical.as_str()).copied();
        if let (Some(id), Some(versions)) = (existing_id, state.subjects.get(subject)) {
            if let Some((_, _)) = versions.iter().find(|(_, e)| e.id == id && !e.deleted) {
                return Ok(id);
            }
        }
        if mode != Mode::Import {
            let level = state.level_for(subject);
            let against = Self::versions_to_check(&state, subject, level);
            let messages = self.incompatibilities(&state, subject, &parsed, &against, level)?;
            if !messages.is_empty() {
                return Err(RegistryError::Incompatible(format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                    messages.join(", ")
                )));
            }
        }
        let id = match (request.id, existing_id) {
            (Some(wanted), Some(existing)) if wanted != existing => {
                return Err(RegistryError::SchemaIdConflict(format!(
                    "Error while registering schema due to schema id conflict: this schema already has id {existing}, not {wanted}"
                )))
            }
            (Some(wanted), _) => {
                if let Some(other) = state.schemas.get(&wanted) {
                    if **other != *parsed.canonical {
                        return Err(RegistryError::SchemaIdConflict(format!(
                            "Error while registering schema due to schema id conflict: id {wanted} is already used by another schema"
                        )));
                    }
                }
                wanted
            }
            (None, Some(existing)) => existing,
            (None, None) => state.next_id(),
        };
        let newest = state
            .subjects
            .get(subject)
            .and_then(|v| v.keys().next_back().copied())
            .unwrap_or(0);
        let version = match request.version {
            Some(v) if mode == Mode::Import => v,
            _ => newest + 1,
        };
        let record = schema_record(subject, version, Some((id, &parsed.canonical, false)));
        self.write(&mut state, vec![record])?;
        Ok(id)
    }

    /// The version of `subject` that holds exactly this schema.
    pub fn lookup(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let parsed = Self::parse_request(request, normalize)?;
        let state = self.state();
        let versions = state
            .subjects
            .get(subject)
            .filter(|v| deleted || v.values().any(|e| !e.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        let id = state.ids.get(parsed.canonical.as_str()).copied();
        let found = versions
            .iter()
            .rev()
            .find(|(_, e)| Some(e.id) == id && (deleted || !e.deleted));
        match found {
            Some((version, entry)) => Ok(SubjectVersion {
                subject: subject.to_owned(),
                version: *version,
                id: entry.id,
                schema: Arc::from(parsed.canonical.as_str()),
            }),
            None => Err(RegistryError::SchemaNotFound("Schema not found".to_owned())),
        }
    }

    /// Deletes one version, softly unless `permanent`.
    pub fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<i32, RegistryError> {
        let mut state = self.state();
        // A numbered version is found even when soft-deleted, so deleting
        // it again says so (40406) rather than "not found".
        let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
        let found = Self::resolve_version(&state, subject, spec, include_deleted)?;
        let deleted = state
            .subjects
            .get(subject)
            .and_then(|v| v.get(&found.version))
            .is_some_and(|e| e.deleted);
        let record = match (permanent, deleted) {
            (false, true) => {
                return Err(RegistryError::VersionSoftDeleted(
                    subject.to_owned(),
                    found.version,
                ))
            }
            (true, false) => {
                return Err(RegistryError::VersionNotSoftDeleted(
                    subject.to_owned(),
                    found.version,
                ))
            }
            (false, false) => schema_record(
                subject,
                found.version,
                Some((found.id, &found.schema, true)),
            ),
            (true, true) => schema_record(subject, found.version, None),
        };
        self.write(&mut state, vec![record])?;
        Ok(found.version)
    }

    /// Deletes every version of a subject, softly unless `permanent`.
    pub fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        let mut state = self.state();
        let versions = state
            .subjects
            .get(subject)
            .cloned()
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        let any_live = versions.values().any(|e| !e.deleted);
        let mut records = Vec::new();
        if permanent {
            if any_live {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
            }
            records.extend(versions.keys().map(|v| schema_record(subject, *v, None)));
            if state.levels.contains_key(subject) {
                records.push(config_record(Some(subject), None));
            }
        } else {
            if !any_live {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
            }
            for (version, entry) in versions.iter().filter(|(_, e)| !e.deleted) {
                let text = state.schemas.get(&entry.id).cloned().unwrap_or_default();
                records.push(schema_record(
                    subject,
                    *version,
                    Some((entry.id, &text, true)),
                ));
            }
        }
        let deleted: Vec<i32> = if permanent {
            versions.keys().copied().collect()
        } else {
            versions
                .iter()
                .filter(|(_, e)| !e.deleted)
                .map(|(v, _)| *v)
                .collect()
        };
        self.write(&mut state, records)?;
        Ok(deleted)
    }

    /// The schema text with `id`.
    pub fn schema_by_id(&self, id: i32) -> Result<Arc<str>, RegistryError> {
        self.state()
            .schemas
            .get(&id)
            .cloned()
            .ok_or_else(|| RegistryError::SchemaNotFound(format!("Schema {id} not found")))
    }

    /// The subject versions that use schema `id`.
    pub fn versions_for_id(
        &self,
        id: i32,
        deleted: bool,
    ) -> Result<Vec<(String, i32)>, RegistryError> {
        let state = self.state();
        if !state.schemas.contains_key(&id) {
            return Err(RegistryError::SchemaNotFound(format!(
                "Schema {id} not found"
            )));
        }
        Ok(state
            .subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions
                    .iter()
                    .filter(|(_, e)| e.id == id && (deleted || !e.deleted))
                    .map(|(v, _)| (subject.clone(), *v))
            })
            .collect())
    }

    /// Whether `request` is compatible with `spec` of `subject` (or, with
    /// no version, with what registration would check); the messages of
    /// every finding, empty when compatible.
    pub fn test_compatibility(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        request: &SchemaRequest,
        normalize: bool,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = Self::parse_request(request, normalize)?;
        let state = self.state();
        let level = state.level_for(subject);
        let against = match spec {
            None | Some(VersionSpec::Latest) if !state.subjects.contains_key(subject) => {
                if spec.is_some() {
                    return Err(RegistryError::SubjectNotFound(subject.to_owned()));
                }
                Vec::new()
            }
            None | Some(VersionSpec::Latest) => Self::versions_to_check(&state, subject, level),
            Some(spec) => {
                let found = Self::resolve_version(&state, subject, spec, false)?;
                if level == Level::None {
                    Vec::new()
                } else {
                    vec![found.version]
                }
            }
        };
        self.incompatibilities(&state, subject, &parsed, &against, level)
    }

    /// The global compatibility level.
    pub fn global_level(&self) -> Level {
        self.state().global()
    }

    /// Sets (or with `None` resets) the global level; returns the old one.
    pub fn set_global_level(&self, level: Option<Level>) -> Result<Level, RegistryError> {
        let mut state = self.state();
        let old = state.global();
        self.write(&mut state, vec![config_record(None, level)])?;
        Ok(old)
    }

    /// A subject's own level, or the global one when `default_to_global`.
    pub fn subject_level(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<Level, RegistryError> {
        let state = self.state();
        match state.levels.get(subject) {
            Some(level) => Ok(*level),
            None if default_to_global => Ok(state.global()),
            None => Err(RegistryError::SubjectLevelCompatibilityNotConfigured(
                subject.to_owned(),
            )),
        }
    }

    /// Sets a subject's level.
    pub fn set_subject_level(&self, subject: &str, level: Level) -> Result<(), RegistryError> {
        let mut state = self.state();
        self.write(&mut state, vec![config_record(Some(subject), Some(level))])
    }

    /// Removes a subject's level; returns the level it had.
    pub fn delete_subject_level(&self, subject: &str) -> Result<Level, RegistryError> {
        let mut state = self.state();
        if !state.subjects.contains_key(subject) && !state.levels.contains_key(subject) {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        let old = state.level_for(subject);
        self.write(&mut state, vec![config_record(Some(subject), None)])?;
        Ok(old)
    }

    /// The global mode.
    pub fn mode(&self) -> Mode {
        self.state().current_mode()
    }

    /// Sets the global mode; IMPORT needs an empty registry unless `force`.
    pub fn set_mode(&self, mode: Mode, force: bool) -> Result<(), RegistryError> {
        let mut state = self.state();
        if mode == Mode::Import && !force && !state.schemas.is_empty() {
            return Err(RegistryError::OperationNotPermitted(
                "Cannot import since found existing subjects; add ?force=true to import anyway"
                    .to_owned(),
            ));
        }
        self.write(&mut state, vec![mode_record(mode)])
    }
}
