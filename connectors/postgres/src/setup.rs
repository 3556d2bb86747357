//! Connecting, the preflight checks (each failure names its fix), and the
//! publication the slot streams.

use sluice_connector_api::ConnectorError;
use tokio_postgres::Client;

use crate::catalog::Table;
use crate::config::{PostgresConfig, PublicationMode};
use crate::replication::ConnectParams;

/// Session settings that make text values unambiguous: UTC, ISO dates,
/// ISO 8601 intervals, exact floats, hex bytea.
pub const SESSION_OPTIONS: &str = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c bytea_output=hex";

/// The walsender connection parameters.
pub fn replication_params(config: &PostgresConfig) -> ConnectParams {
    ConnectParams {
        host: config.host.clone(),
        port: config.port,
        user: config.user.clone(),
        password: config.common.password.clone(),
        dbname: config.dbname.clone(),
        application_name: format!("sluice-{}", config.slot_name),
        tls: config.tls.clone(),
    }
}

/// SQLSTATE `read_only_sql_transaction`: the database takes no writes now.
const READ_ONLY: &str = "25006";

/// Whether an error is worth retrying: the server is down or restarting,
/// or it is read-only for now (a failover under way, a standby about to be
/// promoted, `default_transaction_read_only` set for maintenance), which
/// ends without anyone changing the connector.
fn retriable(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none()
        || e.code().is_some_and(|c| {
            matches!(
                c.code(),
                "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "53300" | READ_ONLY
            )
        })
}

/// An error from the query connection as a connector error.
pub fn query_error(what: &str, e: tokio_postgres::Error) -> ConnectorError {
    let mut message = format!(
        "{what}: {e}{}",
        e.as_db_error()
            .map(|d| format!(" ({})", d.message()))
            .unwrap_or_default()
    );
    if e.code().is_some_and(|c| c.code() == READ_ONLY) {
        message.push_str(
            "; the database takes no writes now (a failover under way, a standby, or default_transaction_read_only): retrying until it does; if database.hostname names a standby, point it at the primary",
        );
    }
    if retriable(&e) {
        ConnectorError::retriable(message)
    } else {
        ConnectorError::fatal(message)
    }
}

/// Opens a query connection with the session pinned as [`SESSION_OPTIONS`].
pub async fn connect(config: &PostgresConfig) -> Result<Client, ConnectorError> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host)
        .port(config.port)
        .user(&config.user)
        .password(config.common.password.as_bytes())
        .dbname(&config.dbname)
        .application_name("sluice")
        .options(SESSION_OPTIONS)
        .ssl_mode(config.tls.postgres_mode())
        .connect_timeout(std::time::Duration::from_secs(10));
    let (client, connection) = pg.connect(config.tls.make_connect()).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("TLS") {
            // Certificates and a server without TLS do not fix themselves.
            let hint = if text.contains("does not support TLS") {
                "set ssl = on in postgresql.conf, or use database.sslmode=prefer"
            } else {
                "check database.sslrootcert and that the server certificate names database.hostname (or use verify-ca)"
            };
            return ConnectorError::fatal(format!(
                "cannot connect to PostgreSQL at {}:{} over TLS (database.sslmode={}): {}; {hint}",
                config.host,
                config.port,
                config.tls.mode.as_str(),
                tls_cause(&e),
            ));
        }
        let hint = if e.as_db_error().is_some() {
            "check database.user, database.password and database.dbname, and pg_hba.conf"
        } else {
            "check database.hostname and database.port and that PostgreSQL is running"
        };
        let message = format!(
            "cannot connect to PostgreSQL at {}:{} as {}: {e}{}; {hint}",
            config.host,
            config.port,
            config.user,
            e.as_db_error()
                .map(|d| format!(" ({})", d.message()))
                .unwrap_or_default()
        );
        if e.as_db_error().is_some() && !retriable(&e) {
            ConnectorError::fatal(message)
        } else {
            ConnectorError::retriable(message)
        }
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "query connection ended");
        }
    });
    Ok(client)
}

/// The innermost cause of a connection error (tokio-postgres wraps it).
fn tls_cause(e: &tokio_postgres::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn setting(client: &Client, name: &str) -> Result<String, ConnectorError> {
    let row = client
        .query_one("SELECT current_setting($1)", &[&name])
        .await
        .map_err(|e| query_error(&format!("reading {name}"), e))?;
    Ok(row.get(0))
}

/// The checks Debezium users hit most, each with the fix.
pub async fn preflight(
    client: &Client,
    config: &PostgresConfig,
    tables: &[Table],
) -> Result<(), ConnectorError> {
    let wal_level = setting(client, "wal_level").await?;
    if wal_level != "logical" {
        return Err(ConnectorError::fatal(format!(
            "wal_level is {wal_level}, but logical decoding needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL"
        )));
    }
    let row = client
        .query_one(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| query_error("reading the user's attributes", e))?;
    if !row.get::<_, bool>(0) {
        return Err(ConnectorError::fatal(format!(
            "user {} lacks the REPLICATION attribute needed for a replication slot: run ALTER ROLE \"{}\" REPLICATION;",
            config.user, config.user
        )));
    }
    let slot = client
        .query_opt(
            "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&config.slot_name],
        )
        .await
        .map_err(|e| query_error("reading replication slots", e))?;
    match slot {
        Some(row) if row.get::<_, bool>(0) => {
            let pid: Option<i32> = row.get(1);
            return Err(ConnectorError::retriable(format!(
                "replication slot {} is in use by another client (PID {}); stop that client or connector, or give this one another slot.name",
                config.slot_name,
                pid.map_or("unknown".into(), |p| p.to_string())
            )));
        }
        Some(_) => {}
        None => {
            let row = client
                .query_one(
                    "SELECT count(*)::int8, current_setting('max_replication_slots')::int8 FROM pg_replication_slots",
                    &[],
                )
                .await
                .map_err(|e| query_error("counting replication slots", e))?;
            let (used, max): (i64, i64) = (row.get(0), row.get(1));
            if used >= max {
                return Err(ConnectorError::fatal(format!(
                    "all {max} replication slots are taken (max_replication_slots); drop an unused slot with SELECT pg_drop_replication_slot('name') or raise max_replication_slots and restart PostgreSQL"
                )));
            }
        }
    }
    let row = client
        .query_one(
            "SELECT count(*)::int8, current_setting('max_wal_senders')::int8 FROM pg_stat_replication",
            &[],
        )
        .await
        .map_err(|e| query_error("counting WAL senders", e))?;
    let (senders, max): (i64, i64) = (row.get(0), row.get(1));
    if senders >= max {
        return Err(ConnectorError::retriable(format!(
            "all {max} WAL senders are busy (max_wal_senders); stop an unused replication client or raise max_wal_senders and restart PostgreSQL"
        )));
    }
    let keyless: Vec<String> = tables
        .iter()
        .filter(|t| {
            t.replica_identity == 'n'
                || (t.replica_identity == 'd'
                    && t.primary_key.is_empty()
                    && config.filters.key_columns(&t.schema, &t.name).is_none())
        })
        .map(|t| format!("{}.{}", t.schema, t.name))
        .collect();
    if !keyless.is_empty() {
        return Err(ConnectorError::fatal(format!(
            "tables without a primary key and with REPLICA IDENTITY DEFAULT (or NOTHING): {}; their updates and deletes would carry no key (and PostgreSQL refuses them once published). Add a primary key, or run ALTER TABLE <table> REPLICA IDENTITY FULL, or leave them out with table.exclude.list",
            keyless.join(", ")
        )));
    }
    Ok(())
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Makes sure the publication exists as `publication.autocreate.mode` says.
pub async fn ensure_publication(
    client: &Client,
    config: &PostgresConfig,
    tables: &[Table],
) -> Result<(), ConnectorError> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&config.publication_name],
        )
        .await
        .map_err(|e| query_error("reading publications", e))?
        .is_some();
    let name = quote(&config.publication_name);
    let table_list = tables
        .iter()
        .map(|t| format!("{}.{}", quote(&t.schema), quote(&t.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match (config.publication_mode, exists) {
        (PublicationMode::Disabled, false) => {
            return Err(ConnectorError::fatal(format!(
                "publication {} does not exist and publication.autocreate.mode is disabled; create it with CREATE PUBLICATION {name} FOR ALL TABLES; (or FOR TABLE ...)",
                config.publication_name
            )))
        }
        (PublicationMode::Disabled, true) | (PublicationMode::AllTables, true) => return Ok(()),
        (PublicationMode::AllTables, false) => format!("CREATE PUBLICATION {name} FOR ALL TABLES"),
        (PublicationMode::Filtered, _) if tables.is_empty() => {
            return Err(ConnectorError::fatal(
                "no table matches the include/exclude lists, so a filtered publication would be empty; check table.include.list and schema.include.list",
            ))
        }
        (PublicationMode::Filtered, false) => format!("CREATE PUBLICATION {name} FOR TABLE {table_list}"),
        (PublicationMode::Filtered, true) => format!("ALTER PUBLICATION {name} SET TABLE {table_list}"),
    };
    client.batch_execute(&sql).await.map_err(|e| {
        // A read-only database says why itself; a missing privilege not.
        let hint = if e.code().is_some_and(|c| c.code() == READ_ONLY) {
            ""
        } else {
            " (the user needs CREATE on the database, and superuser for FOR ALL TABLES; or create the publication yourself and set publication.autocreate.mode=disabled)"
        };
        query_error(&format!("{sql} failed{hint}"), e)
    })
}
