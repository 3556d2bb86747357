//! Database URLs for `sluice verify`: `postgresql://user:pw@host:port/db`,
//! `mysql://…` / `mariadb://…`, optionally with the `jdbc:` prefix.

use anyhow::{anyhow, bail};

/// Which kind of database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

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

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a database URL, naming what is wrong.
pub fn parse(text: &str) -> anyhow::Result<DbUrl> {
    let trimmed = text.trim().strip_prefix("jdbc:").unwrap_or(text.trim());
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| {
        anyhow!("expected postgresql://user:password@host:port/database or mysql://…")
    })?;
    let (kind, default_port) = match scheme {
        "postgresql" | "postgres" => (Kind::Postgres, 5432),
        "mysql" | "mariadb" => (Kind::MySql, 3306),
        other => bail!("{other}:// is not supported; use postgresql:// or mysql:// (mariadb://)"),
    };
    let mut parts = rest.split(['?', ';', '&']);
    let rest = parts.next().unwrap_or_default();
    if let Some(tls) = parts.find(|p| {
        let p = p.to_ascii_lowercase();
        (p.starts_with("sslmode=")
            && !["sslmode=disable", "sslmode=prefer", "sslmode=allow"].contains(&p.as_str()))
            || p == "ssl=true"
            || p == "usessl=true"
    }) {
        bail!("{tls} asks for TLS, which sluice verify does not support yet");
    }
    let (authority, database) = rest
        .split_once('/')
        .ok_or_else(|| anyhow!("the URL names no database: add /<database>"))?;
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (unescape(user), unescape(pw)),
            None => (unescape(u), String::new()),
        },
        None => (String::new(), String::new()),
    };
    if user.is_empty() {
        bail!("the URL names no user: use scheme://user:password@host:port/database");
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| anyhow!("{p} is not a port"))?),
        None => (hostport, default_port),
    };
    if host.is_empty() || database.is_empty() {
        bail!("the URL needs a host and a database");
    }
    Ok(DbUrl {
        kind,
        user,
        password,
        host: host.to_owned(),
        port,
        database: database.to_owned(),
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
