//! Compatibility levels decided by Avro's schema-resolution rules: can a
//! reader with one schema decode data written with another?
//!
//! The rules and the wording of the findings follow Apache Avro's
//! `SchemaCompatibility` as Confluent Schema Registry reports them, so
//! messages read the same as users see from Confluent.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::avro_model::{AvroModel, NamedKind, Node};

/// A subject's compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// Anything goes.
    None,
    /// New readers read the latest old data.
    Backward,
    /// New readers read all old data.
    BackwardTransitive,
    /// Old readers read new data (latest).
    Forward,
    /// All old readers read new data.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against all versions.
    FullTransitive,
}

impl Level {
    /// Confluent's name, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether every earlier version is checked, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "NONE" => Self::None,
            "BACKWARD" => Self::Backward,
            "BACKWARD_TRANSITIVE" => Self::BackwardTransitive,
            "FORWARD" => Self::Forward,
            "FORWARD_TRANSITIVE" => Self::ForwardTransitive,
            "FULL" => Self::Full,
            "FULL_TRANSITIVE" => Self::FullTransitive,
            _ => return Err(()),
        })
    }
}

/// Which Avro rule a schema pair breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A record, enum or fixed was renamed without an alias.
    NameMismatch,
    /// Fixed sizes differ.
    FixedSizeMismatch,
    /// The reader's enum lacks symbols the writer uses.
    MissingEnumSymbols,
    /// The reader has a field the writer lacks, with no default.
    ReaderFieldMissingDefaultValue,
    /// The types cannot be resolved (no promotion applies).
    TypeMismatch,
    /// The reader's union lacks a type the writer may write.
    MissingUnionBranch,
}

impl Rule {
    /// Avro's and Confluent's name for the rule.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameMismatch => "NAME_MISMATCH",
            Self::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Self::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Self::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

/// One way a reader cannot read a writer's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// The broken rule.
    pub rule: Rule,
    /// JSON-pointer-like path in the reader schema, e.g. `/fields/1/type`.
    pub path: String,
    /// The field name, missing symbols or offending type.
    pub info: String,
    /// Whether the reader is the new schema (a backward check).
    pub reader_is_new: bool,
}

impl Incompatibility {
    /// Confluent's verbose message for this finding.
    pub fn message(&self) -> String {
        let (reader, writer) = if self.reader_is_new {
            ("new", "old")
        } else {
            ("old", "new")
        };
        let path = &self.path;
        let description = match self.rule {
            Rule::ReaderFieldMissingDefaultValue => format!(
                "The field '{}' at path '{path}' in the {reader} schema has no default value and is missing in the {writer} schema",
                self.info
            ),
            Rule::TypeMismatch => format!(
                "The type (path '{path}') of a field in the {reader} schema does not match with the {writer} schema"
            ),
            Rule::NameMismatch => format!(
                "The name of the schema has changed (path '{path}')"
            ),
            Rule::MissingEnumSymbols => format!(
                "The {reader} schema is missing enum symbols '{}' at path '{path}' in the {writer} schema",
                self.info
            ),
            Rule::MissingUnionBranch => format!(
                "The {reader} schema is missing a type inside a union field at path '{path}' in the {writer} schema"
            ),
            Rule::FixedSizeMismatch => format!(
                "The size of FIXED type field at path '{path}' in the {reader} schema does not match with the {writer} schema"
            ),
        };
        format!(
            "{{errorType:'{}', description:'{description}', additionalInfo:'{}'}}",
            self.rule.as_str(),
            self.info
        )
    }
}

/// The most findings one check reports: a schema can reach one
/// incompatible type along exponentially many paths, and each would be a
/// finding (and a walk) of its own.
const MAX_FINDINGS: usize = 100;

/// The findings of checking `new` against `old` under `level`; empty when
/// compatible.
pub fn check(level: Level, new: &AvroModel, old: &AvroModel) -> Vec<Incompatibility> {
    check_counting(level, new, old).0
}

/// [`check`], and the steps it took (pairs of types compared).
fn check_counting(level: Level, new: &AvroModel, old: &AvroModel) -> (Vec<Incompatibility>, u64) {
    let mut found = Vec::new();
    let mut steps = 0;
    if level.backward() {
        let (more, taken) = walk(new, old, true);
        found.extend(more);
        steps += taken;
    }
    if level.forward() {
        let (more, taken) = walk(old, new, false);
        found.extend(more);
        steps += taken;
    }
    found.truncate(MAX_FINDINGS);
    (found, steps)
}

/// Findings that stop `reader` from decoding data written with `writer`.
pub fn can_read(
    reader: &AvroModel,
    writer: &AvroModel,
    reader_is_new: bool,
) -> Vec<Incompatibility> {
    walk(reader, writer, reader_is_new).0
}

fn walk(
    reader: &AvroModel,
    writer: &AvroModel,
    reader_is_new: bool,
) -> (Vec<Incompatibility>, u64) {
    let mut checker = Checker {
        reader,
        writer,
        reader_is_new,
        in_progress: HashSet::new(),
        resolved: HashSet::new(),
        found: Vec::new(),
        steps: 0,
    };
    checker.pair(&reader.root, &writer.root, "");
    (checker.found, checker.steps)
}

struct Checker<'a> {
    reader: &'a AvroModel,
    writer: &'a AvroModel,
    reader_is_new: bool,
    /// Named pairs being checked further up, so recursive types terminate
    /// (a pair under check is assumed compatible, as Avro does).
    in_progress: HashSet<(usize, usize)>,
    /// Named pairs already found to resolve: not walked again, so a type
    /// reached along many paths costs one walk.
    resolved: HashSet<(usize, usize)>,
    found: Vec<Incompatibility>,
    /// Pairs of types compared so far.
    steps: u64,
}

impl Checker<'_> {
    fn report(&mut self, rule: Rule, path: &str, info: impl Into<String>) {
        self.found.push(Incompatibility {
            rule,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
            info: info.into(),
            reader_is_new: self.reader_is_new,
        });
    }

    /// Whether the pair resolves, without recording findings.
    fn resolves(&mut self, reader: &Node, writer: &Node) -> bool {
        let before = self.found.len();
        self.pair(reader, writer, "");
        let ok = self.found.len() == before;
        self.found.truncate(before);
        ok
    }

    fn pair(&mut self, reader: &Node, writer: &Node, path: &str) {
        self.steps += 1;
        // Enough said: an incompatible type reached along many paths
        // would otherwise be walked (and reported) once per path.
        if self.found.len() >= MAX_FINDINGS {
            return;
        }
        match (reader, writer) {
            (_, Node::Union(branches)) if !matches!(reader, Node::Union(_)) => {
                // Every branch the writer may use must be readable.
                for branch in branches {
                    self.pair(reader, branch, path);
                }
            }
            (Node::Union(reader_branches), Node::Union(writer_branches)) => {
                for (i, branch) in writer_branches.iter().enumerate() {
                    if !reader_branches.iter().any(|r| self.resolves(r, branch)) {
                        let info = format!(
                            "reader union lacking writer type: {}",
                            branch.type_name(self.writer).to_ascii_uppercase()
                        );
                        self.report(Rule::MissingUnionBranch, &format!("{path}/{i}"), info);
                    }
                }
            }
            (Node::Union(reader_branches), _) => {
                if !reader_branches.iter().any(|r| self.resolves(r, writer)) {
                    let info = format!(
                        "reader union lacking writer type: {}",
                        writer.type_name(self.writer).to_ascii_uppercase()
                    );
                    self.report(Rule::MissingUnionBranch, path, info);
                }
            }
            (Node::Array(r), Node::Array(w)) => self.pair(r, w, &format!("{path}/items")),
            (Node::Map(r), Node::Map(w)) => self.pair(r, w, &format!("{path}/values")),
            (Node::Named(r), Node::Named(w)) => self.named(*r, *w, path),
            (r, w) if r == w => {}
            (Node::Long, Node::Int)
            | (Node::Float, Node::Int | Node::Long)
            | (Node::Double, Node::Int | Node::Long | Node::Float)
            | (Node::Bytes, Node::String)
            | (Node::String, Node::Bytes) => {}
            _ => {
                let info = format!(
                    "reader type: {} not compatible with writer type: {}",
                    reader.type_name(self.reader).to_ascii_uppercase(),
                    writer.type_name(self.writer).to_ascii_uppercase()
                );
                self.report(Rule::TypeMismatch, path, info);
            }
        }
    }

    fn named(&mut self, r: usize, w: usize, path: &str) {
        let reader_type = &self.reader.named[r];
        let writer_type = &self.writer.named[w];
        let same_kind =
            std::mem::discriminant(&reader_type.kind) == std::mem::discriminant(&writer_type.kind);
        if !same_kind {
            let info = format!(
                "reader type: {} not compatible with writer type: {}",
                Node::Named(r).type_name(self.reader).to_ascii_uppercase(),
                Node::Named(w).type_name(self.writer).to_ascii_uppercase()
            );
            self.report(Rule::TypeMismatch, path, info);
            return;
        }
        // Avro compares unqualified names, or the writer's full name
        // against the reader's aliases.
        let names_match = reader_type.simple_name() == writer_type.simple_name()
            || reader_type.aliases.contains(&writer_type.full_name);
        if !names_match {
            let info = format!("expected: {}", writer_type.full_name);
            self.report(Rule::NameMismatch, &format!("{path}/name"), info);
            return;
        }
        if self.resolved.contains(&(r, w)) || !self.in_progress.insert((r, w)) {
            return;
        }
        let before = self.found.len();
        match (&reader_type.kind, &writer_type.kind) {
            (NamedKind::Record(reader_fields), NamedKind::Record(writer_fields)) => {
                for (i, field) in reader_fields.iter().enumerate() {
                    let source = writer_fields
                        .iter()
                        .find(|wf| wf.name == field.name || field.aliases.contains(&wf.name));
                    match source {
                        Some(wf) => {
                            self.pair(&field.node, &wf.node, &format!("{path}/fields/{i}/type"))
                        }
                        None if field.has_default => {}
                        None => self.report(
                            Rule::ReaderFieldMissingDefaultValue,
                            &format!("{path}/fields/{i}"),
                            field.name.clone(),
                        ),
                    }
                }
            }
            (
                NamedKind::Enum {
                    symbols: reader_symbols,
                    default,
                },
                NamedKind::Enum {
                    symbols: writer_symbols,
                    ..
                },
            ) if default.is_none() => {
                let missing: Vec<&str> = writer_symbols
                    .iter()
                    .filter(|s| !reader_symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    self.report(
                        Rule::MissingEnumSymbols,
                        &format!("{path}/symbols"),
                        format!("[{}]", missing.join(", ")),
                    );
                }
            }
            (NamedKind::Fixed { size: rs }, NamedKind::Fixed { size: ws }) if rs != ws => {
                self.report(
                    Rule::FixedSizeMismatch,
                    &format!("{path}/size"),
                    format!("expected: {ws}, found: {rs}"),
                );
            }
            _ => {}
        }
        self.in_progress.remove(&(r, w));
        if self.found.len() == before {
            self.resolved.insert((r, w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(schema: serde_json::Value) -> AvroModel {
        AvroModel::from_json(&schema).expect("model")
    }

    fn record(fields: serde_json::Value) -> AvroModel {
        model(json!({"type": "record", "name": "R", "fields": fields}))
    }

    #[test]
    fn added_field_needs_a_default_for_backward() {
        let old = record(json!([{"name": "a", "type": "int"}]));
        let new = record(json!([{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]));
        let found = check(Level::Backward, &new, &old);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, Rule::ReaderFieldMissingDefaultValue);
        assert_eq!(found[0].path, "/fields/1");
        assert!(found[0].message().contains("The field 'b' at path '/fields/1' in the new schema has no default value and is missing in the old schema"));
        assert!(check(Level::Forward, &new, &old).is_empty());
    }

    #[test]
    fn promotions_go_one_way() {
        let int = record(json!([{"name": "a", "type": "int"}]));
        let long = record(json!([{"name": "a", "type": "long"}]));
        assert!(check(Level::Backward, &long, &int).is_empty());
        let found = check(Level::Backward, &int, &long);
        assert_eq!(found[0].rule, Rule::TypeMismatch);
        assert_eq!(found[0].path, "/fields/0/type");
    }

    #[test]
    fn recursive_records_terminate() {
        let list = model(json!({"type": "record", "name": "L", "fields": [
            {"name": "next", "type": ["null", "L"], "default": null}]}));
        assert!(check(Level::FullTransitive, &list, &list).is_empty());
    }

    /// `depth` records, each with two fields of the next, the last holding
    /// a field of `leaf` type: 2^depth paths through a small schema.
    fn doubling(depth: usize, leaf: &str) -> AvroModel {
        let mut node = json!({"type": "record", "name": format!("R{depth}"), "fields": [
            {"name": "v", "type": leaf}]});
        for level in (0..depth).rev() {
            node = json!({"type": "record", "name": format!("R{level}"), "fields": [
                {"name": "a", "type": node}, {"name": "b", "type": format!("R{}", level + 1)}]});
        }
        model(node)
    }

    /// Issue 17 (registry limits): a posted schema whose named types are
    /// reached along exponentially many paths is checked in time and memory
    /// proportional to its size, not to its paths (40 levels: 2^40 paths).
    /// Counted in steps, not timed.
    #[test]
    fn a_schema_with_exponentially_many_paths_is_checked_in_bounded_steps() {
        let (old, same) = (doubling(40, "int"), doubling(40, "int"));
        let (found, steps) = check_counting(Level::FullTransitive, &same, &old);
        assert!(found.is_empty(), "{found:?}");
        assert!(steps < 10_000, "{steps} steps");
        // Incompatible at the bottom: reported, but a bounded number of
        // times, and the walk stops there.
        let changed = doubling(40, "string");
        let (found, steps) = check_counting(Level::Full, &changed, &old);
        assert!(!found.is_empty());
        assert!(found.len() <= MAX_FINDINGS, "{} findings", found.len());
        assert!(steps < 1_000_000, "{steps} steps");
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!("full_transitive".parse(), Ok(Level::FullTransitive));
        assert!("sideways".parse::<Level>().is_err());
    }
}
