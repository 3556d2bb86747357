//! pgoutput changes as change events: a relation's schema from its
//! description and the catalog, a row's values from its text datums, and
//! the events of an insert, update, delete or truncate.

use std::collections::HashMap;

use sluice_connector_api::transaction::OpenTransaction;
use sluice_connector_api::{ConnectorError, SourceRecord, Value};
use tokio_postgres::Client;

use super::Capture;
use crate::catalog::{self, ColumnDef, TypeCache};
use crate::events::{self, EventContext, Op};
use crate::offset::Position;
use crate::replication::pgoutput::{Datum, Message, Relation};
use crate::table_schema::TableSchema;
use crate::types::Mapping;

impl Capture {
    pub(super) async fn relation_schema(
        &self,
        client: &Client,
        types: &mut TypeCache,
        relation: &Relation,
    ) -> Result<Option<TableSchema>, ConnectorError> {
        if !self
            .config
            .filters
            .table(&relation.namespace, &relation.name)
        {
            return Ok(None);
        }
        // Nullability and the primary key come from the catalog; the
        // columns and types from the message, which matches the WAL. A
        // catalog that cannot be read now (the server restarting, the
        // connection cut) fails the stream, which reconnects and is sent
        // the relation again: taking every column as nullable instead
        // registered a schema the recovered one was incompatible with,
        // and the task failed for good (scripts/chaos --seed 65536). A
        // table dropped since gives no rows, and the message's columns.
        let retriable = |e: catalog::CatalogError| ConnectorError::retriable(e.to_string());
        let live = catalog::columns(client, relation.oid)
            .await
            .map_err(retriable)?;
        let primary_key = catalog::primary_key(client, relation.oid)
            .await
            .map_err(retriable)?;
        let primary_key = if primary_key.is_empty() {
            relation
                .columns
                .iter()
                .filter(|c| c.key)
                .map(|c| c.name.clone())
                .collect()
        } else {
            primary_key
        };
        let columns: Vec<ColumnDef> = relation
            .columns
            .iter()
            .map(|c| {
                let nullable = live
                    .iter()
                    .find(|l| l.name == c.name)
                    .is_none_or(|l| l.nullable);
                let default = live
                    .iter()
                    .find(|l| l.name == c.name)
                    .and_then(|l| l.default.clone());
                (
                    c.name.clone(),
                    c.type_oid,
                    c.type_modifier,
                    nullable,
                    default,
                )
            })
            .collect();
        Ok(Some(
            super::table_schema(
                &self.config,
                client,
                types,
                &relation.namespace,
                &relation.name,
                &columns,
                &primary_key,
            )
            .await?,
        ))
    }

    fn row(
        &self,
        schema: &TableSchema,
        datums: &[Datum],
        mapping: Mapping,
    ) -> Result<Value, String> {
        let placeholder = self.config.unavailable_placeholder.as_str();
        let lossy: Vec<Option<std::borrow::Cow<'_, str>>>;
        let refs: Vec<Option<&str>> = match texts_in_place(datums, placeholder) {
            Some(refs) => refs,
            None => {
                lossy = texts_lossy(datums, placeholder);
                lossy.iter().map(|t| t.as_deref()).collect()
            }
        };
        // Unchanged TOASTed values are not in the WAL: Debezium's
        // placeholder takes their place where the type is text-like, and
        // NULL (or the type's fallback) where it is not.
        match schema.row(&refs, mapping) {
            Ok(value) => Ok(value),
            Err(_) if datums.contains(&Datum::UnchangedToast) => {
                let cleared: Vec<Option<&str>> = refs
                    .iter()
                    .zip(datums)
                    .map(|(r, d)| {
                        if *d == Datum::UnchangedToast {
                            None
                        } else {
                            *r
                        }
                    })
                    .collect();
                schema.row(&cleared, mapping)
            }
            Err(e) => Err(e),
        }
    }

    /// Appends to `out` the records one decoded change becomes (none for
    /// a table without a schema or a change that is skipped), counting
    /// each in the open transaction's metadata.
    pub(super) fn change_records(
        &self,
        ctx: &EventContext,
        relations: &HashMap<u32, Option<TableSchema>>,
        change: Message,
        position: &Position,
        (commit_us, now): (i64, i64),
        (transaction, sources, out): (
            &mut Option<OpenTransaction>,
            &mut events::StreamSources,
            &mut Vec<SourceRecord>,
        ),
    ) -> Result<(), ConnectorError> {
        let mapping = self.mapping();
        // Each emitted change is counted in its transaction's metadata.
        let mut block = |schema: &TableSchema| -> Value {
            match transaction.as_mut() {
                Some(open) => open.block(&format!("{}.{}", schema.schema, schema.table)),
                None => Value::Null,
            }
        };
        // A change whose values cannot be read fails the task or is
        // skipped, as event.processing.failure.handling.mode says.
        let undecodable = |problem: String| -> Result<(), ConnectorError> {
            self.config
                .common
                .failure_handling
                .undecodable(problem, &format!("{position:?}"))
        };
        let lookup = |oid: u32| -> Result<Option<&TableSchema>, ConnectorError> {
            match relations.get(&oid) {
                Some(schema) => Ok(schema.as_ref()),
                None => Err(ConnectorError::fatal(format!(
                    "a change for relation {oid} arrived before its description"
                ))),
            }
        };
        match change {
            Message::Insert { relation, new } => match lookup(relation)? {
                None => {}
                Some(schema) => {
                    let after = match self.row(schema, &new, mapping) {
                        Ok(after) => after,
                        Err(problem) => return undecodable(problem),
                    };
                    out.extend(events::stream_change(
                        ctx,
                        sources,
                        schema,
                        Op::Create,
                        (None, Some(after)),
                        position,
                        (commit_us, now),
                        block(schema),
                    ));
                }
            },
            Message::Update {
                relation,
                old,
                old_is_full,
                new,
            } => match lookup(relation)? {
                None => {}
                Some(schema) => {
                    let after = match self.row(schema, &new, mapping) {
                        Ok(after) => after,
                        Err(problem) => return undecodable(problem),
                    };
                    let before = match (old, old_is_full) {
                        (Some(old), true) => match self.row(schema, &old, mapping) {
                            Ok(before) => Some(before),
                            Err(problem) => return undecodable(problem),
                        },
                        _ => None,
                    };
                    // skip.messages.without.change: the emitted columns
                    // are the same before and after.
                    if self.config.common.skip_unchanged && before.as_ref() == Some(&after) {
                        return Ok(());
                    }
                    out.extend(events::stream_change(
                        ctx,
                        sources,
                        schema,
                        Op::Update,
                        (before, Some(after)),
                        position,
                        (commit_us, now),
                        block(schema),
                    ));
                }
            },
            Message::Delete { relation, old, .. } => match lookup(relation)? {
                None => {}
                Some(schema) => {
                    // With REPLICA IDENTITY DEFAULT only the key columns
                    // are set; the others are NULL, as in Debezium.
                    let before = match self.row(schema, &old, mapping) {
                        Ok(before) => before,
                        Err(problem) => return undecodable(problem),
                    };
                    out.extend(events::stream_change(
                        ctx,
                        sources,
                        schema,
                        Op::Delete,
                        (Some(before), None),
                        position,
                        (commit_us, now),
                        block(schema),
                    ));
                }
            },
            Message::Truncate {
                relations: oids, ..
            } => {
                if self.config.common.skipped_operations.contains(&'t') {
                    return Ok(());
                }
                for oid in oids {
                    if let Some(schema) = lookup(oid)? {
                        let records = events::stream_change(
                            ctx,
                            sources,
                            schema,
                            Op::Truncate,
                            (None, None),
                            position,
                            (commit_us, now),
                            block(schema),
                        );
                        // A truncate has no key (Debezium's truncate events).
                        out.extend(records.map(|mut r| {
                            r.key = None;
                            r.key_schema = None;
                            r
                        }));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A row's column values as text, read in place: values are UTF-8 (the
/// database's encoding, as the slot sends them), and reading them so costs
/// less than the lossy reading. `None` when one is not UTF-8.
fn texts_in_place<'a>(datums: &'a [Datum], placeholder: &'a str) -> Option<Vec<Option<&'a str>>> {
    datums
        .iter()
        .map(|d| match d {
            Datum::Null => Some(None),
            Datum::UnchangedToast => Some(Some(placeholder)),
            Datum::Text(b) | Datum::Binary(b) => std::str::from_utf8(b).ok().map(Some),
        })
        .collect()
}

/// A row's column values as text, bytes that are not UTF-8 replaced.
fn texts_lossy<'a>(
    datums: &'a [Datum],
    placeholder: &'a str,
) -> Vec<Option<std::borrow::Cow<'a, str>>> {
    datums
        .iter()
        .map(|d| match d {
            Datum::Null => None,
            Datum::UnchangedToast => Some(std::borrow::Cow::Borrowed(placeholder)),
            Datum::Text(b) | Datum::Binary(b) => Some(String::from_utf8_lossy(b)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_text_is_read_in_place_unless_it_is_not_utf8() {
        let datums = vec![
            Datum::Null,
            Datum::UnchangedToast,
            Datum::Text(bytes::Bytes::from_static("café".as_bytes())),
        ];
        assert_eq!(
            texts_in_place(&datums, "__unavailable"),
            Some(vec![None, Some("__unavailable"), Some("café")])
        );
        let bad = vec![Datum::Text(bytes::Bytes::from_static(b"caf\xe9"))];
        assert_eq!(texts_in_place(&bad, "_"), None);
        let lossy = texts_lossy(&bad, "_");
        assert_eq!(lossy[0].as_deref(), Some("caf\u{fffd}"));
    }
}
