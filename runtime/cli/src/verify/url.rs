//! Database URLs for `sluice verify`: `postgresql://user:pw@host:port/db`,
//! `mysql://…` / `mariadb://…`, optionally with the `jdbc:` prefix, and the
//! TLS parameters their JDBC drivers read (`sslmode`, `sslrootcert`,
//! `sslMode`, `serverSslCert`, ...) — parsed as the JDBC sink parses its
//! `connection.url` (`sluice_connector_api::database_url`).

use anyhow::{anyhow, bail};
use sluice_connector_api::database_url::{self, Dialect, TlsRequest};

/// Which kind of database.
pub type Kind = Dialect;

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUrl {
    /// The database kind.
    pub kind: Kind,
    /// User name.
    pub user: String,
    /// Password (may be empty).
    pub password: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// The TLS the URL asks for.
    pub tls: TlsRequest,
}

impl DbUrl {
    /// The URL without its password, for messages.
    pub fn display(&self) -> String {
        let scheme = match self.kind {
            Kind::Postgres => "postgresql",
            Kind::MySql => "mysql",
        };
        format!(
            "{scheme}://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

/// Parses a database URL, naming what is wrong.
pub fn parse(text: &str) -> anyhow::Result<DbUrl> {
    let url = database_url::parse(text).map_err(|e| anyhow!(e))?;
    let Some(user) = url.user.filter(|u| !u.is_empty()) else {
        bail!("the URL names no user: use scheme://user:password@host:port/database");
    };
    Ok(DbUrl {
        kind: url.dialect,
        user,
        password: url.password.unwrap_or_default(),
        host: url.host,
        port: url.port,
        database: url.database,
        tls: url.tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_credentials_and_defaults() {
        let u = parse("postgresql://sluice:p%40ss@127.0.0.1:55432/shop").expect("pg");
        assert_eq!(
            (
                u.kind,
                u.user.as_str(),
                u.password.as_str(),
                u.port,
                u.database.as_str()
            ),
            (Kind::Postgres, "sluice", "p@ss", 55432, "shop")
        );
        assert!(!u.display().contains("p@ss"));
        let u = parse("jdbc:mariadb://root@db/inventory").expect("mariadb");
        assert_eq!(
            (u.kind, u.port, u.password.as_str()),
            (Kind::MySql, 3306, "")
        );
        assert!(parse("oracle://u@h/db").is_err());
        assert!(parse("mysql://h:3306/db")
            .expect_err("no user")
            .to_string()
            .contains("user"));
    }
}
