//! Database URLs as JDBC drivers spell them, for the JDBC sink's
//! `connection.url` and `sluice verify`:
//! `[jdbc:]postgresql|mysql|mariadb://[user[:password]@]host[:port]/database[?k=v&…]`,
//! with the TLS settings each driver reads turned into one request:
//!
//! | driver | parameters | modes |
//! |---|---|---|
//! | PostgreSQL (pgJDBC) | `sslmode`, `ssl=true` (= verify-full), `sslrootcert`, `sslcert`, `sslkey` | disable, allow/prefer, require, verify-ca, verify-full |
//! | MySQL (Connector/J) | `sslMode`, `useSSL=true` (= REQUIRED), `serverSslCert` or `sslrootcert` (PEM CA) | DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY |
//! | MariaDB (Connector/J) | `sslMode`, `useSsl=true` (= trust), `serverSslCert` | disable, trust, verify-ca, verify-full |
//!
//! `prefer` / `PREFERRED` (the drivers' defaults) and `require` / `trust`
//! encrypt without checking who answers: a man in the middle can read or
//! strip them. `verify-full` / `VERIFY_IDENTITY` check the certificate and
//! the host name.

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

/// How strictly the connection is encrypted and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain text.
    Disable,
    /// TLS when the server offers it (PostgreSQL), plain otherwise; MySQL
    /// connections under it are plain.
    #[default]
    Prefer,
    /// TLS, certificate unchecked.
    Require,
    /// TLS, certificate chained to the given CA, any host name.
    VerifyCa,
    /// TLS, certificate chained to the CA and naming the host.
    VerifyFull,
}

/// The TLS a URL asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsRequest {
    /// The mode.
    pub mode: TlsMode,
    /// CA certificate(s), PEM.
    pub root_cert: Option<String>,
    /// Client certificate, PEM (PostgreSQL `sslcert`).
    pub client_cert: Option<String>,
    /// Client key, PEM (PostgreSQL `sslkey`).
    pub client_key: Option<String>,
}

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The database kind.
    pub dialect: Dialect,
    /// User from the URL, if it names one.
    pub user: Option<String>,
    /// Password from the URL, if it has one.
    pub password: Option<String>,
    /// Host name or address.
    pub host: String,
    /// Port (the dialect's default when absent).
    pub port: u16,
    /// Database name.
    pub database: String,
    /// The TLS its parameters ask for.
    pub tls: TlsRequest,
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

/// A driver's `sslMode` value as a mode; `None` when the driver does not
/// have it.
fn mode_of(dialect: Dialect, value: &str) -> Option<TlsMode> {
    let value = value.to_ascii_lowercase().replace('_', "-");
    Some(match (dialect, value.as_str()) {
        (_, "disable" | "disabled") => TlsMode::Disable,
        (_, "allow" | "prefer" | "preferred") => TlsMode::Prefer,
        (_, "require" | "required" | "trust") => TlsMode::Require,
        (_, "verify-ca") => TlsMode::VerifyCa,
        (Dialect::Postgres, "verify-full") => TlsMode::VerifyFull,
        (Dialect::MySql, "verify-identity" | "verify-full") => TlsMode::VerifyFull,
        _ => return None,
    })
}

/// Reads the TLS parameters of a URL's query.
fn tls_request(dialect: Dialect, params: &[(String, String)]) -> Result<TlsRequest, String> {
    let mut tls = TlsRequest::default();
    let mut explicit_mode = false;
    for (key, value) in params {
        let path = || Some(value.strip_prefix("file:").unwrap_or(value).to_owned());
        match key.to_ascii_lowercase().as_str() {
            "sslmode" => {
                tls.mode = mode_of(dialect, value).ok_or_else(|| {
                    format!("sslMode={value} is not a mode the {dialect:?} drivers know")
                })?;
                explicit_mode = true;
            }
            "ssl" | "usessl" | "requiressl"
                if value.eq_ignore_ascii_case("true") && !explicit_mode =>
            {
                tls.mode = match dialect {
                    // pgJDBC's ssl=true verifies the certificate and host.
                    Dialect::Postgres => TlsMode::VerifyFull,
                    Dialect::MySql => TlsMode::Require,
                };
            }
            "ssl" | "usessl" if value.eq_ignore_ascii_case("false") && !explicit_mode => {
                tls.mode = TlsMode::Disable;
            }
            "sslrootcert" | "serversslcert" => tls.root_cert = path(),
            "sslcert" => tls.client_cert = path(),
            "sslkey" => tls.client_key = path(),
            _ => {}
        }
    }
    Ok(tls)
}

/// Parses a URL, naming what is wrong.
pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
    let trimmed = url.trim();
    let rest = trimmed.strip_prefix("jdbc:").unwrap_or(trimmed);
    let (scheme, rest) = rest.split_once("://").ok_or_else(|| {
        format!("{url} is not [jdbc:]<postgresql|mysql|mariadb>://[user[:password]@]host[:port]/database")
    })?;
    let (dialect, default_port) = match scheme {
        "postgresql" | "postgres" => (Dialect::Postgres, 5432),
        "mysql" | "mariadb" => (Dialect::MySql, 3306),
        other => {
            return Err(format!(
                "{other} databases are not supported; use postgresql://, mysql:// or mariadb://"
            ))
        }
    };
    let mut parts = rest.split(['?', ';', '&']);
    let location = parts.next().unwrap_or_default();
    let params: Vec<(String, String)> = parts
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), unescape(v))
        })
        .collect();
    let (authority, database) = location.split_once('/').unwrap_or((location, ""));
    if database.is_empty() {
        return Err(format!(
            "{url} names no database: add /<database> after the host"
        ));
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (Some(unescape(user)), Some(unescape(pw))),
            None => (Some(unescape(u)), None),
        },
        None => (None, None),
    };
    // An IPv6 address comes in brackets: [::1]:5432.
    let (host, port) = match hostport.strip_prefix('[') {
        Some(bracketed) => {
            let (h, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("{url}: an IPv6 host needs its closing ]"))?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{p} in {url} is not a port"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("{url} names no host"));
    }
    Ok(DatabaseUrl {
        dialect,
        user,
        password,
        host: host.to_owned(),
        port,
        database: database.to_owned(),
        tls: tls_request(dialect, &params)?,
    })
}

/// The PostgreSQL TLS setup a request asks for (`sslrootcert` etc. named
/// as URL parameters in errors).
#[cfg(feature = "postgres-tls")]
pub fn postgres_tls(
    request: &TlsRequest,
) -> Result<crate::postgres_tls::Tls, crate::postgres_tls::TlsSetupError> {
    use crate::postgres_tls::{SslMode, Tls, TlsFiles};
    let mode = match request.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require => SslMode::Require,
        TlsMode::VerifyCa => SslMode::VerifyCa,
        TlsMode::VerifyFull => SslMode::VerifyFull,
    };
    Tls::new(
        mode,
        &TlsFiles {
            key_prefix: "",
            root_cert: request.root_cert.clone(),
            client_cert: request.client_cert.clone(),
            client_key: request.client_key.clone(),
        },
    )
}

/// The mysql_async TLS options a request asks for (`None`: plain text;
/// `PREFERRED` connects in plain text too, as it cannot be verified).
#[cfg(feature = "mysql-tls")]
pub fn mysql_tls(request: &TlsRequest) -> Result<Option<mysql_async::SslOpts>, String> {
    use mysql_async::SslOpts;
    let mut opts = SslOpts::default();
    match request.mode {
        TlsMode::Disable | TlsMode::Prefer => return Ok(None),
        TlsMode::Require => opts = opts.with_danger_accept_invalid_certs(true),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let ca = request.root_cert.as_ref().ok_or(
                "a verifying sslMode needs the CA certificate: add serverSslCert=<PEM file> to the URL",
            )?;
            if !std::path::Path::new(ca).is_file() {
                return Err(format!("{ca} (serverSslCert) is not a readable file"));
            }
            opts = opts
                .with_root_certs(vec![std::path::PathBuf::from(ca).into()])
                .with_disable_built_in_roots(true);
            if request.mode == TlsMode::VerifyCa {
                opts = opts.with_danger_skip_domain_validation(true);
            }
        }
    }
    Ok(Some(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_urls_of_each_driver() {
        let pg = parse(
            "jdbc:postgresql://db.example:5433/shop?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(
            (pg.dialect, pg.host.as_str(), pg.port, pg.database.as_str()),
            (Dialect::Postgres, "db.example", 5433, "shop")
        );
        assert_eq!(pg.tls.mode, TlsMode::VerifyFull);
        assert_eq!(pg.tls.root_cert.as_deref(), Some("/etc/ca.pem"));
        let my = parse("jdbc:mysql://h/shop?sslMode=VERIFY_IDENTITY&serverSslCert=file:/ca.pem")
            .unwrap();
        assert_eq!((my.dialect, my.port), (Dialect::MySql, 3306));
        assert_eq!(my.tls.mode, TlsMode::VerifyFull);
        assert_eq!(my.tls.root_cert.as_deref(), Some("/ca.pem"));
        let maria = parse("jdbc:mariadb://h:3307/shop?sslMode=trust").unwrap();
        assert_eq!(maria.tls.mode, TlsMode::Require);
        assert_eq!(
            parse("jdbc:mysql://h/shop?useSSL=true").unwrap().tls.mode,
            TlsMode::Require
        );
        assert_eq!(
            parse("postgresql://h/shop?ssl=true").unwrap().tls.mode,
            TlsMode::VerifyFull
        );
        assert_eq!(
            parse("postgresql://h/shop").unwrap().tls.mode,
            TlsMode::Prefer
        );
    }

    #[test]
    fn credentials_ipv6_and_mistakes() {
        let u = parse("postgresql://ann:p%40ss@[::1]:5432/db").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("ann"), Some("p@ss"))
        );
        assert_eq!(u.host, "::1");
        assert!(parse("jdbc:oracle://h/db")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse("postgresql://h").unwrap_err().contains("no database"));
        assert!(parse("postgresql://h:x/db")
            .unwrap_err()
            .contains("not a port"));
        assert!(parse("mysql://h/db?sslMode=sometimes")
            .unwrap_err()
            .contains("sometimes"));
    }
}
