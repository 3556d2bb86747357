//! Connecting to the server and checking, before anything is read, that
//! it can be captured: binlog settings, privileges and the replica id —
//! each failure named with the fix.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use sluice_connector_api::ConnectorError;

use crate::config::{LockingMode, MySqlConfig};

/// What server the connector talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `VERSION()`.
    pub version: String,
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
    /// `@@server_id`.
    pub server_id: u32,
}

fn options(config: &MySqlConfig, tls: bool, tls_name: Option<&str>) -> OptsBuilder {
    let mut ssl = None;
    if tls {
        let mut opts =
            SslOpts::default().with_danger_tls_hostname_override(tls_name.map(str::to_owned));
        match config.ssl_mode.as_str() {
            "verify_ca" | "verify_identity" => {
                if let Some(ca) = &config.ssl_ca {
                    opts = opts
                        .with_root_certs(vec![std::path::PathBuf::from(ca).into()])
                        .with_disable_built_in_roots(true);
                }
                if config.ssl_mode == "verify_ca" {
                    opts = opts.with_danger_skip_domain_validation(true);
                }
            }
            _ => opts = opts.with_danger_accept_invalid_certs(true),
        }
        ssl = Some(opts);
    }
    OptsBuilder::default()
        .ip_or_hostname(config.host.clone())
        .tcp_port(config.port)
        .user(Some(config.user.clone()))
        .pass(Some(config.common.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl)
        // Sessions read TIMESTAMP in UTC and never time out on a long snapshot.
        .setup(vec![
            "SET time_zone = '+00:00'",
            "SET SESSION net_read_timeout = 3600, net_write_timeout = 3600",
        ])
}

/// An error from the server or the network as a connector error: access
/// problems are fatal (they need an operator), the rest retriable.
pub fn classify(context: &str, e: mysql_async::Error) -> ConnectorError {
    let text = e.to_string();
    match &e {
        mysql_async::Error::Server(s) if [1044, 1045, 1142, 1227, 1698].contains(&s.code) => {
            ConnectorError::fatal(format!("{context}: {text}"))
        }
        _ => ConnectorError::retriable(format!("{context}: {text}")),
    }
}

/// Opens a session, with TLS per `database.ssl.mode`.
pub async fn connect(config: &MySqlConfig) -> Result<Conn, ConnectorError> {
    let target = format!("{}:{}", config.host, config.port);
    let attempt = |tls: bool, tls_name: Option<String>| {
        let opts = options(config, tls, tls_name.as_deref());
        async move {
            tokio::time::timeout(config.connect_timeout, Conn::new(opts))
                .await
                .unwrap_or_else(|_| {
                    Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
                    )))
                })
        }
    };
    let tls = config.ssl_mode != "disabled";
    let result =
        match attempt(tls, None).await {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if config.ssl_mode == "preferred" => attempt(false, None).await,
            // mysql_async's rustls verifier cannot skip only the name check
            // (it looks for an error text rustls no longer writes), so
            // verify_ca checks the chain against a name the certificate lists.
            Err(e) if config.ssl_mode == "verify_ca" => match certificate_name(&e) {
                Some(name) => attempt(true, Some(name)).await,
                None => Err(e),
            },
            other => other,
        };
    result.map_err(|e| match &e {
        mysql_async::Error::Server(s) if s.code == 1045 => ConnectorError::fatal(format!(
            "cannot log in to {target} as {}: {}; check database.user and database.password",
            config.user, s.message
        )),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            ConnectorError::fatal(format!(
                "{target} does not offer TLS but database.ssl.mode={} requires it; enable TLS on the server or set database.ssl.mode=preferred",
                config.ssl_mode
            ))
        }
        _ if tls && is_tls_failure(&e) => ConnectorError::fatal(format!(
            "TLS with {target} failed: {e}; {}",
            tls_fix(&config.ssl_mode)
        )),
        _ => ConnectorError::retriable(format!(
            "cannot connect to {target}: {e}; check database.hostname and database.port and that the server is running"
        )),
    })
}

/// A DNS name the server's certificate is valid for, from rustls's
/// "not valid for name" error.
fn certificate_name(e: &mysql_async::Error) -> Option<String> {
    let text = e.to_string();
    if !text.contains("not valid for name") {
        return None;
    }
    let start = text.find("DnsName(\"")? + "DnsName(\"".len();
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_owned())
}

/// A failed TLS handshake or certificate check. The rustls error reaches
/// us either typed or wrapped in an I/O error, so the text decides too.
fn is_tls_failure(e: &mysql_async::Error) -> bool {
    if matches!(e, mysql_async::Error::Io(mysql_async::IoError::Tls(_))) {
        return true;
    }
    let text = e.to_string().to_ascii_lowercase();
    matches!(e, mysql_async::Error::Io(_))
        && [
            "certificate",
            "tls",
            "handshake",
            "unknownissuer",
            "notvalidforname",
        ]
        .iter()
        .any(|word| text.contains(word))
}

fn tls_fix(mode: &str) -> &'static str {
    match mode {
        "verify_identity" => "database.ssl.truststore must hold the CA that signed the server's certificate, and database.hostname must be a name the certificate lists (connect by that name, or use database.ssl.mode=verify_ca to check the CA only)",
        "verify_ca" => "database.ssl.truststore must hold the CA that signed the server's certificate",
        _ => "check the server's TLS setup, or set database.ssl.mode=disabled to connect without TLS",
    }
}

/// The server's version, flavor and id.
pub async fn server_info(conn: &mut Conn) -> Result<ServerInfo, ConnectorError> {
    let row: Option<(String, u32)> = conn
        .query_first("SELECT VERSION(), @@server_id")
        .await
        .map_err(|e| classify("reading the server version", e))?;
    let (version, server_id) = row.unwrap_or_default();
    Ok(ServerInfo {
        mariadb: version.to_ascii_lowercase().contains("mariadb"),
        version,
        server_id,
    })
}

async fn variable(conn: &mut Conn, name: &str) -> Result<String, ConnectorError> {
    let row: Option<Option<String>> = conn
        .query_first(format!("SELECT @@GLOBAL.{name}"))
        .await
        .map_err(|e| classify(&format!("reading {name}"), e))?;
    Ok(row.flatten().unwrap_or_default())
}

/// The privileges of the current user, from `SHOW GRANTS`, upper-cased.
async fn grants(conn: &mut Conn) -> Result<Vec<String>, ConnectorError> {
    let rows: Vec<String> = conn
        .query("SHOW GRANTS FOR CURRENT_USER()")
        .await
        .map_err(|e| classify("reading the user's grants", e))?;
    Ok(rows.into_iter().map(|g| g.to_ascii_uppercase()).collect())
}

/// Whether a global grant (`ON *.*`) includes `privilege`.
fn has_global(grants: &[String], privilege: &str) -> bool {
    grants
        .iter()
        .any(|g| g.contains(" ON *.* ") && (g.contains("ALL PRIVILEGES") || g.contains(privilege)))
}

/// Whether SELECT is granted globally or on `database`.
fn has_select(grants: &[String], database: &str) -> bool {
    let db = database.to_ascii_uppercase();
    grants.iter().any(|g| {
        let on_db = g.contains(" ON *.* ")
            || g.contains(&format!(" ON `{db}`.*"))
            || g.contains(&format!(" ON {db}.*"));
        on_db && (g.contains("ALL PRIVILEGES") || g.contains("SELECT"))
    })
}

/// Every check from the issue: binlog on, ROW format, FULL image, the
/// privileges, and a replica id that is not the server's own. (Another
/// replica with the same id is not checked here: the server keeps a
/// stopped session's dump thread listed for a while, which would look the
/// same.)
pub async fn preflight(
    conn: &mut Conn,
    config: &MySqlConfig,
    info: &ServerInfo,
    databases: &[String],
    snapshot: bool,
) -> Result<(), ConnectorError> {
    let log_bin = variable(conn, "log_bin").await?;
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("ON") {
        return Err(ConnectorError::fatal(
            "the binary log is off (log_bin=OFF): start the server with --log-bin (and binlog_format=ROW, binlog_row_image=FULL) so changes can be captured",
        ));
    }
    let format = variable(conn, "binlog_format").await?;
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(ConnectorError::fatal(format!(
            "binlog_format is {format}, but row-based logging is needed: SET GLOBAL binlog_format = 'ROW' (and binlog_format=ROW in the server's config file)"
        )));
    }
    let image = variable(conn, "binlog_row_image").await?;
    if !image.eq_ignore_ascii_case("FULL") {
        return Err(ConnectorError::fatal(format!(
            "binlog_row_image is {image}, but full row images are needed: SET GLOBAL binlog_row_image = 'FULL' (and in the server's config file)"
        )));
    }
    if info.server_id == config.server_id {
        return Err(ConnectorError::fatal(format!(
            "database.server.id={} is the server's own server_id; choose another id, unique among the server's replicas",
            config.server_id
        )));
    }
    let grants = grants(conn).await?;
    let mut missing = Vec::new();
    if !has_global(&grants, "REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE");
    }
    if !has_global(&grants, "REPLICATION CLIENT") && !has_global(&grants, "BINLOG MONITOR") {
        missing.push("REPLICATION CLIENT");
    }
    if snapshot && config.locking_mode == LockingMode::Minimal && !has_global(&grants, "RELOAD") {
        missing.push("RELOAD");
    }
    if !missing.is_empty() {
        let also = if missing.contains(&"RELOAD") {
            " (RELOAD is for snapshot.locking.mode=minimal's brief global read lock; snapshot.locking.mode=none does without it)"
        } else {
            ""
        };
        return Err(ConnectorError::fatal(format!(
            "user {} lacks {}: GRANT {} ON *.* TO '{}'{also}",
            config.user,
            missing.join(", "),
            missing.join(", "),
            config.user
        )));
    }
    for db in databases {
        if !has_select(&grants, db) {
            return Err(ConnectorError::fatal(format!(
                "user {} cannot SELECT from database {db}: GRANT SELECT ON `{db}`.* TO '{}'",
                config.user, config.user
            )));
        }
    }
    Ok(())
}

/// The binlog files the server still has.
pub async fn binlog_files(conn: &mut Conn) -> Result<Vec<String>, ConnectorError> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| classify("listing the binlog files (SHOW BINARY LOGS)", e))?;
    Ok(rows.iter().filter_map(|r| r.get::<String, _>(0)).collect())
}

/// MySQL's "You have an error in your SQL syntax".
const ER_PARSE_ERROR: u16 = 1064;

/// The server's current binlog file and position.
pub async fn current_position(conn: &mut Conn) -> Result<(String, u64), ConnectorError> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        // MySQL 8.4 removed SHOW MASTER STATUS for SHOW BINARY LOG STATUS
        // (MariaDB and MySQL before 8.2 know only the old name).
        Err(mysql_async::Error::Server(e)) if e.code == ER_PARSE_ERROR => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|e| classify("reading the binlog position (SHOW BINARY LOG STATUS)", e))?,
        other => {
            other.map_err(|e| classify("reading the binlog position (SHOW MASTER STATUS)", e))?
        }
    };
    let row = row.ok_or_else(|| {
        ConnectorError::fatal("SHOW MASTER STATUS returned nothing: the binary log is off; start the server with --log-bin")
    })?;
    match (row.get::<String, _>(0), row.get::<u64, _>(1)) {
        (Some(file), Some(pos)) => Ok((file, pos)),
        _ => Err(ConnectorError::retriable(
            "SHOW MASTER STATUS gave no file/position",
        )),
    }
}

/// The executed GTID set (`@@gtid_binlog_pos` on MariaDB,
/// `@@gtid_executed` on MySQL); empty when GTIDs are off. A failed read
/// is an error (a connection lost, as a rule), not an empty set: the set
/// goes into the offsets, where an empty one would silently drop the
/// GTIDs a resume and a Debezium reading those offsets go by.
pub async fn gtid_position(conn: &mut Conn, mariadb: bool) -> Result<String, ConnectorError> {
    let name = if mariadb {
        "gtid_binlog_pos"
    } else {
        "gtid_executed"
    };
    let set = conn
        .query_first::<Option<String>, _>(format!("SELECT @@GLOBAL.{name}"))
        .await
        .map_err(|e| {
            classify(
                &format!("reading the executed GTID set (@@GLOBAL.{name})"),
                e,
            )
        })?;
    Ok(set.flatten().unwrap_or_default().replace('\n', ""))
}

/// Waits a little between reconnect attempts, longer each time.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_ca_finds_the_name_the_certificate_lists() {
        let error = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: certificate not valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\"db.internal\") or DnsName(\"localhost\")",
        )));
        assert_eq!(certificate_name(&error).as_deref(), Some("db.internal"));
        assert!(is_tls_failure(&error));
        let refused = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )));
        assert_eq!(certificate_name(&refused), None);
        assert!(!is_tls_failure(&refused));
    }

    #[test]
    fn grants_are_read_globally_and_per_database() {
        let grants = vec![
            "GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%`".to_owned(),
            "GRANT SELECT ON `INVENTORY`.* TO `u`@`%`".to_owned(),
        ];
        assert!(has_global(&grants, "REPLICATION SLAVE"));
        assert!(has_global(&grants, "BINLOG MONITOR"));
        assert!(!has_global(&grants, "REPLICATION CLIENT"));
        assert!(has_select(&grants, "inventory"));
        assert!(!has_select(&grants, "other"));
        let all = vec!["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`".to_owned()];
        assert!(has_global(&all, "RELOAD") && has_select(&all, "x"));
    }
}
