//! A walsender connection (`replication=database`) on the PostgreSQL wire
//! protocol: startup and authentication (cleartext, MD5, SCRAM-SHA-256),
//! simple queries for replication commands, and the CopyBoth stream of
//! `START_REPLICATION` with standby status updates.
//!
//! Frontend messages come from `postgres-protocol`; backend frames are read
//! here because its parser does not know CopyBothResponse.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tls::{NegotiateError, Stream, Tls};

use super::lsn::Lsn;
use super::read_pacing::{ReadPacing, READ_BUFFER};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password (may be empty for trust authentication).
    pub password: String,
    /// Database.
    pub dbname: String,
    /// Shown in `pg_stat_replication.application_name`.
    pub application_name: String,
    /// TLS as `database.sslmode` says.
    pub tls: Tls,
}

/// A failure talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or broke.
    #[error("connection to PostgreSQL at {0} failed: {1}")]
    Io(String, #[source] std::io::Error),
    /// The server answered with an error.
    #[error("PostgreSQL error {code}: {message}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Server {
        /// SQLSTATE, e.g. `42704`.
        code: String,
        /// The primary message.
        message: String,
        /// The detail line, if any.
        detail: Option<String>,
    },
    /// The server said something this client does not expect.
    #[error("unexpected reply from PostgreSQL: {0}")]
    Protocol(String),
    /// The server ended the replication stream (it is shutting down, or
    /// the walsender was told to stop); reconnecting resumes it.
    #[error("PostgreSQL ended the replication stream ({0}); reconnecting")]
    Ended(&'static str),
    /// TLS was required and could not be set up.
    #[error("{0}")]
    Tls(String),
}

impl WireError {
    /// The SQLSTATE of a server error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One backend message: its tag and body.
struct Frame {
    tag: u8,
    body: Bytes,
}

/// A message of the replication stream.
#[derive(Debug, Clone)]
pub enum StreamMessage {
    /// WAL data: one pgoutput message.
    XLogData {
        /// The WAL position the data starts at.
        start: Lsn,
        /// The server's WAL end.
        end: Lsn,
        /// The pgoutput message.
        data: Bytes,
    },
    /// The server's keepalive.
    Keepalive {
        /// The server's WAL end.
        end: Lsn,
        /// Whether the server wants a status update now.
        reply: bool,
    },
}

/// A walsender session.
pub struct ReplicationConnection {
    stream: Box<dyn Stream>,
    read: BytesMut,
    write: BytesMut,
    address: String,
    pacing: ReadPacing,
}

fn cstr(body: &mut Bytes) -> Result<String, WireError> {
    let end = body
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| WireError::Protocol("unterminated string".into()))?;
    let text = String::from_utf8_lossy(&body[..end]).into_owned();
    body.advance(end + 1);
    Ok(text)
}

/// A message shorter than the fields it announces (a broken server or
/// proxy): a protocol error, never a panic.
fn short(e: bytes::TryGetError) -> WireError {
    WireError::Protocol(format!(
        "a message ends early: {} more bytes needed, {} left",
        e.requested, e.available
    ))
}

fn server_error(mut body: Bytes) -> WireError {
    let (mut code, mut message, mut detail) = (String::new(), String::new(), None);
    while body.has_remaining() {
        let field = body.get_u8();
        if field == 0 {
            break;
        }
        let Ok(value) = cstr(&mut body) else { break };
        match field {
            b'C' => code = value,
            b'M' => message = value,
            b'D' => detail = Some(value),
            _ => {}
        }
    }
    WireError::Server {
        code,
        message,
        detail,
    }
}

impl ReplicationConnection {
    /// Connects, authenticates and waits until the session is ready.
    pub async fn connect(params: &ConnectParams, options: &str) -> Result<Self, WireError> {
        let address = format!("{}:{}", params.host, params.port);
        let stream = TcpStream::connect((params.host.as_str(), params.port))
            .await
            .map_err(|e| WireError::Io(address.clone(), e))?;
        let _ = stream.set_nodelay(true);
        let stream = params
            .tls
            .negotiate(stream, &params.host)
            .await
            .map_err(|e| match e {
                NegotiateError::Io(e) => WireError::Io(address.clone(), e),
                other => WireError::Tls(other.to_string()),
            })?;
        let mut conn = Self {
            stream,
            read: BytesMut::with_capacity(READ_BUFFER),
            write: BytesMut::with_capacity(1024),
            address,
            pacing: ReadPacing::default(),
        };
        let startup = [
            ("user", params.user.as_str()),
            ("database", params.dbname.as_str()),
            ("replication", "database"),
            ("application_name", params.application_name.as_str()),
            ("options", options),
        ];
        frontend::startup_message(startup.iter().copied(), &mut conn.write)
            .map_err(|e| WireError::Protocol(e.to_string()))?;
        conn.flush().await?;
        conn.authenticate(params).await?;
        loop {
            let frame = conn.next_frame().await?;
            match frame.tag {
                b'Z' => return Ok(conn),
                b'E' => return Err(server_error(frame.body)),
                _ => {} // ParameterStatus, BackendKeyData, notices
            }
        }
    }

    async fn authenticate(&mut self, params: &ConnectParams) -> Result<(), WireError> {
        let mut scram: Option<ScramSha256> = None;
        loop {
            let frame = self.next_frame().await?;
            if frame.tag == b'E' {
                return Err(server_error(frame.body));
            }
            if frame.tag != b'R' {
                return Err(WireError::Protocol(format!(
                    "expected authentication, got message {:?}",
                    frame.tag as char
                )));
            }
            let mut body = frame.body;
            let kind = body.try_get_i32().map_err(short)?;
            match kind {
                0 => return Ok(()),
                3 => {
                    frontend::password_message(params.password.as_bytes(), &mut self.write)
                        .map_err(|e| WireError::Protocol(e.to_string()))?;
                }
                5 => {
                    let mut salt = [0u8; 4];
                    body.try_copy_to_slice(&mut salt).map_err(short)?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        params.user.as_bytes(),
                        params.password.as_bytes(),
                        salt,
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write)
                        .map_err(|e| WireError::Protocol(e.to_string()))?;
                }
                10 => {
                    let mut offered = Vec::new();
                    while body.has_remaining() && body[0] != 0 {
                        offered.push(cstr(&mut body)?);
                    }
                    if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(WireError::Protocol(format!(
                            "the server offers SASL mechanisms {offered:?}; only SCRAM-SHA-256 is supported"
                        )));
                    }
                    let state =
                        ScramSha256::new(params.password.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, state.message(), &mut self.write)
                        .map_err(|e| WireError::Protocol(e.to_string()))?;
                    scram = Some(state);
                }
                11 => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| WireError::Protocol("SASL continue before start".into()))?;
                    state
                        .update(&body)
                        .map_err(|e| WireError::Protocol(format!("SCRAM: {e}")))?;
                    frontend::sasl_response(state.message(), &mut self.write)
                        .map_err(|e| WireError::Protocol(e.to_string()))?;
                }
                12 => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| WireError::Protocol("SASL final before start".into()))?;
                    state
                        .finish(&body)
                        .map_err(|e| WireError::Protocol(format!("SCRAM: {e}")))?;
                    continue;
                }
                other => {
                    return Err(WireError::Protocol(format!(
                        "authentication method {other} is not supported; use scram-sha-256, md5 or password in pg_hba.conf"
                    )))
                }
            }
            self.flush().await?;
        }
    }

    async fn flush(&mut self) -> Result<(), WireError> {
        let bytes = self.write.split().freeze();
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| WireError::Io(self.address.clone(), e))
    }

    async fn next_frame(&mut self) -> Result<Frame, WireError> {
        loop {
            if self.read.len() >= 5 {
                let len =
                    u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]])
                        as usize;
                if len < 4 {
                    return Err(WireError::Protocol(format!("bad message length {len}")));
                }
                if self.read.len() > len {
                    let tag = self.read[0];
                    let mut frame = self.read.split_to(len + 1);
                    frame.advance(5);
                    return Ok(Frame {
                        tag,
                        body: frame.freeze(),
                    });
                }
                self.read.reserve(len + 1 - self.read.len());
            }
            if let Some(pause) = self.pacing.pause() {
                tokio::time::sleep(pause).await;
            }
            let read = self
                .stream
                .read_buf(&mut self.read)
                .await
                .map_err(|e| WireError::Io(self.address.clone(), e))?;
            if read == 0 {
                return Err(WireError::Io(
                    self.address.clone(),
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ),
                ));
            }
            self.pacing.read(read);
        }
    }

    /// Runs `sql` (SQL or a replication command); the rows as text.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, WireError> {
        frontend::query(sql, &mut self.write).map_err(|e| WireError::Protocol(e.to_string()))?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = self.next_frame().await?;
            match frame.tag {
                b'D' => {
                    let mut body = frame.body;
                    let columns = body.try_get_i16().map_err(short)?;
                    let mut row = Vec::with_capacity(columns.max(0) as usize);
                    for _ in 0..columns {
                        let len = body.try_get_i32().map_err(short)?;
                        if len < 0 {
                            row.push(None);
                        } else {
                            if body.remaining() < len as usize {
                                return Err(short(bytes::TryGetError {
                                    requested: len as usize,
                                    available: body.remaining(),
                                }));
                            }
                            let value = body.split_to(len as usize);
                            row.push(Some(String::from_utf8_lossy(&value).into_owned()));
                        }
                    }
                    rows.push(row);
                }
                b'E' => error = Some(server_error(frame.body)),
                b'Z' => {
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    }
                }
                _ => {} // RowDescription, CommandComplete, notices
            }
        }
    }

    /// Sends `START_REPLICATION SLOT … LOGICAL` and waits for the stream.
    pub async fn start_logical(
        &mut self,
        slot: &str,
        start: Lsn,
        options: &[(&str, String)],
    ) -> Result<(), WireError> {
        let options = options
            .iter()
            .map(|(k, v)| format!("\"{k}\" '{}'", v.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("START_REPLICATION SLOT \"{slot}\" LOGICAL {start} ({options})");
        frontend::query(&sql, &mut self.write).map_err(|e| WireError::Protocol(e.to_string()))?;
        self.flush().await?;
        loop {
            let frame = self.next_frame().await?;
            match frame.tag {
                b'W' => return Ok(()),
                b'E' => return Err(server_error(frame.body)),
                _ => {}
            }
        }
    }

    /// Whether a complete message is already read and waiting, so the next
    /// [`next_message`](Self::next_message) returns without touching the
    /// socket.
    pub fn has_buffered_message(&self) -> bool {
        self.read.len() >= 5
            && self.read.len()
                > u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]])
                    as usize
    }

    /// The next stream message, or `None` if none arrives within `wait`.
    pub async fn next_message(
        &mut self,
        wait: Duration,
    ) -> Result<Option<StreamMessage>, WireError> {
        let frame = match tokio::time::timeout(wait, self.next_frame()).await {
            Err(_) => return Ok(None),
            Ok(frame) => frame?,
        };
        match frame.tag {
            b'd' => {
                let mut body = frame.body;
                match body.try_get_u8().map_err(short)? {
                    b'w' => {
                        let start = Lsn(body.try_get_u64().map_err(short)?);
                        let end = Lsn(body.try_get_u64().map_err(short)?);
                        let _server_time = body.try_get_i64().map_err(short)?;
                        Ok(Some(StreamMessage::XLogData {
                            start,
                            end,
                            data: body,
                        }))
                    }
                    b'k' => {
                        let end = Lsn(body.try_get_u64().map_err(short)?);
                        let _server_time = body.try_get_i64().map_err(short)?;
                        let reply = body.try_get_u8().map_err(short)? == 1;
                        Ok(Some(StreamMessage::Keepalive { end, reply }))
                    }
                    other => Err(WireError::Protocol(format!(
                        "unknown replication message {:?}",
                        other as char
                    ))),
                }
            }
            b'E' => Err(server_error(frame.body)),
            b'c' => Err(WireError::Ended("CopyDone")),
            b'C' => Err(WireError::Ended("CommandComplete")),
            b'Z' => Err(WireError::Ended("ReadyForQuery")),
            other => Err(WireError::Protocol(format!(
                "unexpected message {:?} in the replication stream",
                other as char
            ))),
        }
    }

    /// Tells the server what is written, flushed (durable downstream) and
    /// applied; the slot's `confirmed_flush_lsn` follows `flushed`.
    pub async fn send_status(&mut self, flushed: Lsn, reply: bool) -> Result<(), WireError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64)
            - PG_EPOCH_OFFSET_MICROS;
        let mut payload = BytesMut::with_capacity(34);
        payload.extend_from_slice(b"r");
        for lsn in [flushed, flushed, flushed] {
            payload.extend_from_slice(&lsn.0.to_be_bytes());
        }
        payload.extend_from_slice(&now.to_be_bytes());
        payload.extend_from_slice(&[u8::from(reply)]);
        let data = frontend::CopyData::new(payload.freeze())
            .map_err(|e| WireError::Protocol(e.to_string()))?;
        data.write(&mut self.write);
        self.flush().await
    }

    /// Ends the session politely.
    pub async fn close(mut self) {
        frontend::terminate(&mut self.write);
        let _ = self.flush().await;
    }
}
