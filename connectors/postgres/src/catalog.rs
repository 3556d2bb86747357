//! What the database says about tables and types: captured tables, their
//! columns with resolved types, primary keys and replica identity.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::types::PgType;
use sluice_connector_api::filters::Filters;

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type OID (before domain resolution).
    pub type_oid: u32,
    /// Type modifier.
    pub modifier: i32,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The column's DEFAULT expression as PostgreSQL prints it.
    pub default: Option<String>,
}

/// A column as schemas are built from it: name, type OID, type modifier,
/// nullable, DEFAULT expression.
pub type ColumnDef = (String, u32, i32, bool, Option<String>);

impl Column {
    /// This column as schemas are built from it.
    pub fn def(&self) -> ColumnDef {
        (
            self.name.clone(),
            self.type_oid,
            self.modifier,
            self.nullable,
            self.default.clone(),
        )
    }
}

/// A captured table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Table OID.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Primary key columns in key order.
    pub primary_key: Vec<String>,
    /// `d`, `n`, `f` or `i`.
    pub replica_identity: char,
    /// `pg_class.reltuples`: the planner's row estimate.
    pub estimated_rows: i64,
}

/// A catalog query failed.
#[derive(Debug, thiserror::Error)]
#[error("reading the PostgreSQL catalog ({what}): {source}")]
pub struct CatalogError {
    what: &'static str,
    #[source]
    source: tokio_postgres::Error,
}

fn err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> CatalogError {
    move |source| CatalogError { what, source }
}

/// The captured tables, in schema.table order.
pub async fn tables(client: &Client, filters: &Filters) -> Result<Vec<Table>, CatalogError> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relreplident::text, \
                    GREATEST(c.reltuples, 0)::int8 \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
             ORDER BY n.nspname, c.relname",
            &[],
        )
        .await
        .map_err(err("tables"))?;
    let mut out = Vec::new();
    for row in rows {
        let (schema, name): (String, String) = (row.get(1), row.get(2));
        if !filters.table(&schema, &name) {
            continue;
        }
        let oid: u32 = row.get(0);
        let identity: String = row.get(3);
        out.push(Table {
            oid,
            columns: columns(client, oid).await?,
            primary_key: primary_key(client, oid).await?,
            replica_identity: identity.chars().next().unwrap_or('d'),
            estimated_rows: row.get(4),
            schema,
            name,
        });
    }
    Ok(out)
}

/// A table's live columns.
pub async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>, CatalogError> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, NOT a.attnotnull, \
                    CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(err("columns"))?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            type_oid: r.get(1),
            modifier: r.get(2),
            nullable: r.get(3),
            default: r.get(4),
        })
        .collect())
}

/// A table's primary key columns in key order.
pub async fn primary_key(client: &Client, oid: u32) -> Result<Vec<String>, CatalogError> {
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1 AND i.indisprimary \
             ORDER BY array_position(i.indkey, a.attnum)",
            &[&oid],
        )
        .await
        .map_err(err("primary key"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Resolves type OIDs to [`PgType`]s, following domains to their base
/// type and remembering what it has looked up.
#[derive(Debug, Default)]
pub struct TypeCache {
    known: HashMap<(u32, i32), PgType>,
}

impl TypeCache {
    /// The type of a column with `oid` and `modifier`.
    pub async fn resolve(
        &mut self,
        client: &Client,
        oid: u32,
        modifier: i32,
    ) -> Result<PgType, CatalogError> {
        if let Some(found) = self.known.get(&(oid, modifier)) {
            return Ok(found.clone());
        }
        let (mut current, mut current_modifier) = (oid, modifier);
        // Domains nest; arrays point at their element type, which is
        // never itself an array type in PostgreSQL.
        let resolved = loop {
            let row = client
                .query_opt(
                    "SELECT typname::text, typtype::text, typbasetype, typtypmod, typelem, typcategory::text \
                     FROM pg_type WHERE oid = $1",
                    &[&current],
                )
                .await
                .map_err(err("types"))?;
            let Some(row) = row else {
                break PgType::base("unknown", current_modifier);
            };
            let (name, kind, base, base_modifier, element, category): (
                String,
                String,
                u32,
                i32,
                u32,
                String,
            ) = (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
            );
            if kind == "d" {
                current = base;
                if base_modifier >= 0 {
                    current_modifier = base_modifier;
                }
                continue;
            }
            if category == "A" && element != 0 {
                let inner = Box::pin(self.resolve(client, element, current_modifier)).await?;
                break PgType::Array(Box::new(inner));
            }
            if kind == "e" {
                let labels = client
                    .query(
                        "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder",
                        &[&current],
                    )
                    .await
                    .map_err(err("enum labels"))?;
                break PgType::Enum(labels.iter().map(|r| r.get(0)).collect());
            }
            break PgType::base(name, current_modifier);
        };
        self.known.insert((oid, modifier), resolved.clone());
        Ok(resolved)
    }
}
