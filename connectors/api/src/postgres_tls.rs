//! TLS towards PostgreSQL, decided by `sslmode` as libpq (and so
//! Debezium's JDBC driver) decides it: for the source's query connection
//! (tokio-postgres) and walsender connection (its own client), and for the
//! JDBC sink and `sluice verify` (tokio-postgres), so every PostgreSQL
//! connection sluice makes checks certificates the same way.
//!
//! | mode | TLS | certificate checked |
//! |---|---|---|
//! | disable | never | — |
//! | allow, prefer | when the server offers it | no |
//! | require | always | chain only if `database.sslrootcert` is set |
//! | verify-ca | always | chain against `database.sslrootcert` |
//! | verify-full | always | chain and host name |

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// `database.sslmode`, libpq's six modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it (treated like `prefer`).
    Allow,
    /// TLS when the server offers it, plain otherwise.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with the server's certificate chained to `database.sslrootcert`.
    VerifyCa,
    /// As `verify-ca`, and the certificate names `database.hostname`.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// Whether a server without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }
}

/// Why TLS could not be set up from the configured files.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A certificate or key file could not be read or parsed.
    #[error("cannot load {what} from {path}: {reason}")]
    File {
        /// What the file should hold, with the setting that names it.
        what: String,
        /// The configured path.
        path: String,
        /// The reader's complaint.
        reason: String,
    },
    /// rustls refused the material.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// A verifying mode without a CA to verify against.
    #[error(
        "{0} needs {1}sslrootcert: the CA certificate (PEM) that signed the server's certificate"
    )]
    NoRootCert(&'static str, &'static str),
}

/// The certificate files of the connection (`sslrootcert`, `sslcert`,
/// `sslkey`, spelled `database.ssl…` in a source's config).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// How the settings are spelled before `sslrootcert` etc. in messages
    /// (`database.` for a source's keys, empty for a URL's parameters).
    pub key_prefix: &'static str,
    /// CA certificates the server's chain must end in.
    pub root_cert: Option<String>,
    /// Client certificate chain, for `cert` authentication.
    pub client_cert: Option<String>,
    /// The client certificate's private key (unencrypted PEM).
    pub client_key: Option<String>,
}

/// TLS as configured: the mode and, unless disabled, the client config.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The configured mode.
    pub mode: SslMode,
    config: Option<Arc<ClientConfig>>,
}

fn load_error(what: &str, path: &str, reason: impl ToString) -> TlsSetupError {
    TlsSetupError::File {
        what: what.to_owned(),
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn load_certs(what: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| load_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load_error(what, path, e))?;
    if certs.is_empty() {
        return Err(load_error(what, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

impl Tls {
    /// Builds the client side from the mode and the files, reading them now
    /// so a bad path is reported at validation, not at the first connect.
    pub fn new(mode: SslMode, files: &TlsFiles) -> Result<Self, TlsSetupError> {
        if mode == SslMode::Disable {
            return Ok(Self { mode, config: None });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let prefix = files.key_prefix;
        let roots = match &files.root_cert {
            Some(path) => {
                let what = format!("the CA certificate ({prefix}sslrootcert)");
                let mut roots = RootCertStore::empty();
                for cert in load_certs(&what, path)? {
                    roots.add(cert).map_err(|e| load_error(&what, path, e))?;
                }
                Some(Arc::new(roots))
            }
            None => None,
        };
        let webpki = |roots: Arc<RootCertStore>| {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))
        };
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (SslMode::VerifyFull, Some(roots)) => webpki(roots)?,
            (SslMode::VerifyCa | SslMode::Require, Some(roots)) => Arc::new(LenientVerifier {
                provider: provider.clone(),
                chain: Some(webpki(roots)?),
            }),
            (SslMode::VerifyFull, None) => {
                return Err(TlsSetupError::NoRootCert("verify-full", prefix))
            }
            (SslMode::VerifyCa, None) => {
                return Err(TlsSetupError::NoRootCert("verify-ca", prefix))
            }
            _ => Arc::new(LenientVerifier {
                provider: provider.clone(),
                chain: None,
            }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&files.client_cert, &files.client_key) {
            (Some(cert), Some(key)) => {
                let chain = load_certs(&format!("the client certificate ({prefix}sslcert)"), cert)?;
                let key = PrivateKeyDer::from_pem_file(Path::new(key))
                    .map_err(|e| load_error(&format!("the client key ({prefix}sslkey)"), key, e))?;
                builder.with_client_auth_cert(chain, key)?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) | (None, Some(_)) => {
                return Err(rustls::Error::General(format!(
                    "{prefix}sslcert and {prefix}sslkey go together: set both or neither"
                ))
                .into())
            }
        };
        Ok(Self {
            mode,
            config: Some(Arc::new(config)),
        })
    }

    /// tokio-postgres's sslmode for this mode (it knows three).
    pub fn postgres_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Pg;
        match self.mode {
            SslMode::Disable => Pg::Disable,
            SslMode::Allow | SslMode::Prefer => Pg::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Pg::Require,
        }
    }

    /// The connector tokio-postgres calls when the server accepts TLS.
    pub fn make_connect(&self) -> MakeRustls {
        MakeRustls(self.config.clone())
    }

    /// Negotiates TLS on a fresh connection as the startup protocol says
    /// (SSLRequest, then `S` or `N`), before the startup message.
    pub async fn negotiate(
        &self,
        mut tcp: TcpStream,
        host: &str,
    ) -> Result<Box<dyn Stream>, NegotiateError> {
        let Some(config) = &self.config else {
            return Ok(Box::new(tcp));
        };
        let mut request = BytesMut::new();
        postgres_protocol::message::frontend::ssl_request(&mut request);
        tcp.write_all(&request).await.map_err(NegotiateError::Io)?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer)
            .await
            .map_err(NegotiateError::Io)?;
        match answer[0] {
            b'S' => {
                let name = server_name(host).map_err(NegotiateError::Handshake)?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(NegotiateError::Handshake)?;
                Ok(Box::new(stream))
            }
            b'N' if self.mode.requires_tls() => Err(NegotiateError::Refused),
            b'N' => Ok(Box::new(tcp)),
            other => Err(NegotiateError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected answer {:?} to the TLS request", other as char),
            ))),
        }
    }
}

/// Why TLS negotiation failed on a connection.
#[derive(Debug, thiserror::Error)]
pub enum NegotiateError {
    /// The socket failed.
    #[error("{0}")]
    Io(io::Error),
    /// The server does not do TLS and the mode requires it.
    #[error("the server does not accept TLS connections, which database.sslmode requires; set ssl = on in postgresql.conf (with ssl_cert_file and ssl_key_file), or use database.sslmode=prefer")]
    Refused,
    /// The handshake failed (certificate not trusted, wrong name…).
    #[error("TLS handshake failed: {0}; check database.sslrootcert and that the server certificate names database.hostname (or use verify-ca)")]
    Handshake(io::Error),
}

fn server_name(host: &str) -> Result<ServerName<'static>, io::Error> {
    ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("host name {host:?}: {e}"),
        )
    })
}

/// A byte stream the walsender client reads and writes, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Checks the server's certificate as the mode asks: not at all
/// (`require` without a CA, libpq's behaviour), or its chain against the
/// configured CA while tolerating a name mismatch (`verify-ca`; webpki
/// checks the chain before the name, so a name error means the chain
/// passed). Handshake signatures are always checked.
#[derive(Debug)]
struct LenientVerifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for LenientVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres's hook: makes a [`RustlsConnect`] for the host.
#[derive(Clone)]
pub struct MakeRustls(Option<Arc<ClientConfig>>);

/// Wraps one query connection's socket in TLS.
pub struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    name: ServerName<'static>,
}

/// A TLS session over a query connection's socket.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        Ok(RustlsConnect {
            config: self.0.clone(),
            name: server_name(domain)?,
        })
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let config = self.config.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "TLS is disabled (database.sslmode=disable)",
                )
            })?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(self.name, stream)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))?;
            Ok(RustlsStream(stream))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_spells_them() {
        assert_eq!(SslMode::parse("verify-full"), Some(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("VERIFY_FULL"), None);
        assert!(SslMode::Require.requires_tls());
        assert!(!SslMode::Prefer.requires_tls());
    }

    #[test]
    fn verifying_modes_need_a_root_certificate() {
        let files = TlsFiles {
            key_prefix: "database.",
            ..TlsFiles::default()
        };
        let err = Tls::new(SslMode::VerifyFull, &files).unwrap_err();
        assert!(err.to_string().contains("database.sslrootcert"), "{err}");
        assert!(Tls::new(SslMode::Require, &TlsFiles::default()).is_ok());
        assert!(Tls::new(SslMode::Disable, &TlsFiles::default()).is_ok());
    }

    #[test]
    fn a_missing_certificate_file_is_named() {
        let files = TlsFiles {
            root_cert: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let err = Tls::new(SslMode::VerifyCa, &files).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/ca.pem") && err.contains("sslrootcert"),
            "{err}"
        );
    }
}
