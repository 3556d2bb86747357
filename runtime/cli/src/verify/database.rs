//! The two sides of `sluice verify`: a PostgreSQL or MySQL / MariaDB
//! connection that describes a table and hashes its rows by key range.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use mysql_async::prelude::Queryable;

use super::canonical::{self, Class};
use super::url::{DbUrl, Kind};

/// One column as a side sees it.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// How it is compared.
    pub class: Class,
}

/// A table's columns and primary key.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Primary-key column names in key order.
    pub key: Vec<String>,
}

/// The SQL pieces that read one table canonically on one side.
#[derive(Debug, Clone)]
pub struct RowSql {
    from: String,
    key_text: String,
    row_text: String,
    /// The first key column, when it is an integer (for range chunks).
    int_key: Option<String>,
}

/// Which rows a chunk covers (by the first key column when it is an
/// integer; else the whole table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Every row.
    All,
    /// `lo <= key < hi`.
    Between(i64, i64),
    /// `key < bound`.
    Below(i64),
    /// `key >= bound`.
    From(i64),
}

/// Chunks of about `chunk_rows` rows over the keys `min..=max` of a table
/// with `count` rows, plus open ends below and above.
fn key_ranges(min: i64, max: i64, count: u64, chunk_rows: u64) -> Vec<KeyRange> {
    let chunks = count.div_ceil(chunk_rows.max(1)).max(1);
    let span = (max as i128 - min as i128 + 1) as u128;
    let width = span.div_ceil(u128::from(chunks)).max(1) as i128;
    let mut ranges = vec![KeyRange::Below(min)];
    let mut lo = min as i128;
    while lo <= max as i128 {
        let hi = (lo + width).min(max as i128 + 1);
        match i64::try_from(hi) {
            Ok(hi) => ranges.push(KeyRange::Between(lo as i64, hi)),
            // The last chunk reaches i64::MAX: its end is open.
            Err(_) => ranges.push(KeyRange::From(lo as i64)),
        }
        lo = hi;
    }
    if max < i64::MAX {
        ranges.push(KeyRange::From(max + 1));
    }
    ranges
}

/// A connection to one side.
pub enum Database {
    /// PostgreSQL.
    Postgres(tokio_postgres::Client),
    /// MySQL or MariaDB.
    MySql(mysql_async::Conn),
}

fn quote(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        Kind::MySql => format!("`{}`", name.replace('`', "``")),
    }
}

fn qualified(kind: Kind, table: &str) -> String {
    match table.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote(kind, schema), quote(kind, name)),
        None => quote(kind, table),
    }
}

impl Database {
    /// Connects to `url`.
    pub async fn connect(url: &DbUrl) -> anyhow::Result<Self> {
        match url.kind {
            Kind::Postgres => {
                let mut config = tokio_postgres::Config::new();
                config
                    .host(&url.host)
                    .port(url.port)
                    .user(&url.user)
                    .password(&url.password)
                    .dbname(&url.database)
                    .application_name("sluice-verify");
                let tls = sluice_connector_api::database_url::postgres_tls(&url.tls)?;
                config.ssl_mode(tls.postgres_mode());
                let (client, connection) = config.connect(tls.make_connect()).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                // Canonical timestamps need one session zone.
                client.batch_execute("SET TIME ZONE 'UTC'").await?;
                Ok(Self::Postgres(client))
            }
            Kind::MySql => {
                let ssl = sluice_connector_api::database_url::mysql_tls(&url.tls)
                    .map_err(anyhow::Error::msg)?;
                let opts = mysql_async::OptsBuilder::default()
                    .ssl_opts(ssl)
                    .ip_or_hostname(url.host.clone())
                    .tcp_port(url.port)
                    .user(Some(url.user.clone()))
                    .pass(Some(url.password.clone()))
                    .db_name(Some(url.database.clone()))
                    .prefer_socket(false)
                    .setup(vec!["SET time_zone = '+00:00'"]);
                Ok(Self::MySql(mysql_async::Conn::new(opts).await?))
            }
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Postgres(_) => Kind::Postgres,
            Self::MySql(_) => Kind::MySql,
        }
    }

    /// Columns and primary key of `table` (empty when it does not exist).
    pub async fn shape(&mut self, table: &str) -> anyhow::Result<Shape> {
        match self {
            Self::Postgres(client) => {
                let name = if table.contains('.') {
                    qualified(Kind::Postgres, table)
                } else {
                    format!("public.{}", quote(Kind::Postgres, table))
                };
                let rows = client
                    .query(
                        "SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                        &[&name],
                    )
                    .await?;
                let columns = rows
                    .iter()
                    .map(|r| {
                        let ty: String = r.get(1);
                        Column {
                            name: r.get(0),
                            class: canonical::class(Kind::Postgres, &ty, &ty),
                        }
                    })
                    .collect();
                let key = client
                    .query(
                        "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a \
                           ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                         WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
                         ORDER BY array_position(i.indkey::int2[], a.attnum)",
                        &[&name],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                Ok(Shape { columns, key })
            }
            Self::MySql(conn) => {
                let (db, name) = match table.split_once('.') {
                    Some((d, n)) => (Some(d), n),
                    None => (None, table),
                };
                let columns: Vec<(String, String, String)> = conn
                    .exec(
                        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS \
                         WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                        (db, name),
                    )
                    .await?;
                let key: Vec<String> = conn
                    .exec(
                        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                         WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
                         ORDER BY ORDINAL_POSITION",
                        (db, name),
                    )
                    .await?;
                Ok(Shape {
                    columns: columns
                        .into_iter()
                        .map(|(name, ty, full)| Column {
                            name,
                            class: canonical::class(Kind::MySql, &ty, &full),
                        })
                        .collect(),
                    key,
                })
            }
        }
    }

    /// The canonical row and key texts for `columns` of `table`.
    pub fn row_sql(&self, table: &str, columns: &[Column], key: &[Column]) -> RowSql {
        let kind = self.kind();
        let values: Vec<String> = columns
            .iter()
            .map(|c| canonical::expr(kind, c.class, &quote(kind, &c.name)))
            .collect();
        let keys: Vec<String> = key
            .iter()
            .map(|c| canonical::expr(kind, c.class, &quote(kind, &c.name)))
            .collect();
        RowSql {
            from: qualified(kind, table),
            key_text: canonical::row(kind, &keys),
            row_text: canonical::row(kind, &values),
            int_key: key
                .first()
                .filter(|c| c.class == Class::Int)
                .map(|c| quote(kind, &c.name)),
        }
    }

    /// Chunks covering every key, sized by the source's row count; the
    /// open ends catch target rows outside the source's key span.
    pub async fn ranges(&mut self, sql: &RowSql, chunk_rows: u64) -> anyhow::Result<Vec<KeyRange>> {
        let Some(key) = &sql.int_key else {
            return Ok(vec![KeyRange::All]);
        };
        let query = format!(
            "SELECT CAST(MIN({key}) AS CHAR(32)), CAST(MAX({key}) AS CHAR(32)), CAST(COUNT(*) AS CHAR(32)) FROM {}",
            sql.from
        )
        .replace(
            "AS CHAR(32)",
            if self.kind() == Kind::Postgres { "AS text" } else { "AS CHAR" },
        );
        let row = self.texts(&query).await?;
        let (Some(Some(min)), Some(Some(max)), Some(Some(count))) =
            (row.first(), row.get(1), row.get(2))
        else {
            return Ok(vec![KeyRange::All]);
        };
        let (min, max, count): (i64, i64, u64) = (
            min.parse().context("min key")?,
            max.parse().context("max key")?,
            count.parse().context("row count")?,
        );
        Ok(key_ranges(min, max, count, chunk_rows))
    }

    fn filter(sql: &RowSql, range: &KeyRange) -> String {
        match (&sql.int_key, range) {
            (Some(k), KeyRange::Between(lo, hi)) => format!(" WHERE {k} >= {lo} AND {k} < {hi}"),
            (Some(k), KeyRange::Below(b)) => format!(" WHERE {k} < {b}"),
            (Some(k), KeyRange::From(b)) => format!(" WHERE {k} >= {b}"),
            _ => String::new(),
        }
    }

    /// Row count and hash sum of one chunk.
    pub async fn chunk_hash(
        &mut self,
        sql: &RowSql,
        range: &KeyRange,
    ) -> anyhow::Result<(u64, String)> {
        let kind = self.kind();
        let count = if kind == Kind::Postgres {
            "count(*)::text"
        } else {
            "CAST(COUNT(*) AS CHAR)"
        };
        let query = format!(
            "SELECT {count}, {} FROM {}{}",
            canonical::hash_sum(kind, &sql.row_text),
            sql.from,
            Self::filter(sql, range)
        );
        let row = self.texts(&query).await?;
        let count = row
            .first()
            .cloned()
            .flatten()
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        Ok((count, row.get(1).cloned().flatten().unwrap_or_default()))
    }

    /// Key text → row MD5 of one chunk.
    pub async fn chunk_rows(
        &mut self,
        sql: &RowSql,
        range: &KeyRange,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let kind = self.kind();
        let query = format!(
            "SELECT {}, {} FROM {}{}",
            sql.key_text,
            canonical::row_md5(kind, &sql.row_text),
            sql.from,
            Self::filter(sql, range)
        );
        let display = |k: String| k.replace('\u{1f}', ", ");
        Ok(match self {
            Self::Postgres(client) => client
                .query(&query, &[])
                .await?
                .iter()
                .map(|r| (display(r.get(0)), r.get(1)))
                .collect(),
            Self::MySql(conn) => conn
                .query::<(String, String), _>(&query)
                .await?
                .into_iter()
                .map(|(k, h)| (display(k), h))
                .collect(),
        })
    }

    /// The first row of `query` as optional texts.
    async fn texts(&mut self, query: &str) -> anyhow::Result<Vec<Option<String>>> {
        match self {
            Self::Postgres(client) => {
                let rows = client.query(query, &[]).await?;
                let Some(row) = rows.first() else {
                    bail!("no row from {query}")
                };
                Ok((0..row.len())
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect())
            }
            Self::MySql(conn) => {
                let row: Option<mysql_async::Row> = conn.query_first(query).await?;
                let Some(row) = row else {
                    bail!("no row from {query}")
                };
                Ok((0..row.len())
                    .map(|i| {
                        row.get_opt::<Option<String>, _>(i)
                            .and_then(Result::ok)
                            .flatten()
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `key` falls in `range`, as the SQL filter selects it.
    fn covers(range: &KeyRange, key: i64) -> bool {
        match range {
            KeyRange::All => true,
            KeyRange::Between(lo, hi) => key >= *lo && key < *hi,
            KeyRange::Below(b) => key < *b,
            KeyRange::From(b) => key >= *b,
        }
    }

    /// Issue 19, finding 10: with `i64::MAX` as the largest key the last
    /// chunk's exclusive end overflowed, the chunk selected nothing on
    /// either side, and verify said EQUAL over differing rows.
    #[test]
    fn every_key_is_in_exactly_one_chunk_up_to_i64_max() {
        for (min, max, count) in [
            (1, 1000, 1000),
            (i64::MAX - 10, i64::MAX, 11),
            (i64::MIN, i64::MAX, 5),
            (-5, i64::MAX, 3),
        ] {
            let ranges = key_ranges(min, max, count, 4);
            for key in [min, min.saturating_add(1), max / 2, max - 1, max] {
                let hits = ranges.iter().filter(|r| covers(r, key)).count();
                assert_eq!(hits, 1, "key {key} in {hits} chunks of {ranges:?}");
            }
        }
    }
}
