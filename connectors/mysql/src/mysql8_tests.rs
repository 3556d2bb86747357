//! MySQL 8 behaviour that Debian's MariaDB cannot show, against a stand-in
//! server on loopback that speaks just enough of the protocol: the default
//! login, `caching_sha2_password` (the handshake announcing the plugin, the
//! scramble check, the fast-auth answer, OK to the session setup), and
//! MySQL 8.4, where `SHOW MASTER STATUS` is gone and the binlog position is
//! read with `SHOW BINARY LOG STATUS`.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::MySqlConfig;
use crate::setup;

const NONCE: &[u8; 20] = b"0123456789abcdefghij";
const PASSWORD: &str = "s3cret-pässword";
const LONGLONG: u8 = 0x08;
const VAR_STRING: u8 = 0xfd;

/// A length-encoded string, as text-protocol rows carry values.
fn lenenc(text: &str) -> Vec<u8> {
    let mut out = vec![text.len() as u8];
    out.extend(text.as_bytes());
    out
}

/// What the stand-in server saw.
#[derive(Debug, Default)]
struct Seen {
    user: String,
    plugin: String,
    queries: Vec<String>,
}

async fn read_packet(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok((header[3], body))
}

async fn write_packet(stream: &mut TcpStream, seq: u8, body: &[u8]) -> std::io::Result<()> {
    let len = (body.len() as u32).to_le_bytes();
    stream.write_all(&[len[0], len[1], len[2], seq]).await?;
    stream.write_all(body).await
}

fn until_nul(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    (&bytes[..end], bytes.get(end + 1..).unwrap_or(&[]))
}

fn handshake() -> Vec<u8> {
    // LONG_PASSWORD | LONG_FLAG | PROTOCOL_41 | TRANSACTIONS |
    // SECURE_CONNECTION | MULTI_RESULTS | PLUGIN_AUTH |
    // PLUGIN_AUTH_LENENC_CLIENT_DATA | DEPRECATE_EOF — and no SSL.
    let caps: u32 = 0x1 | 0x4 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x200000 | 0x1000000;
    let mut p = vec![10];
    p.extend(b"8.0.36\0");
    p.extend(7u32.to_le_bytes());
    p.extend(&NONCE[..8]);
    p.push(0);
    p.extend((caps as u16).to_le_bytes());
    p.push(255);
    p.extend(2u16.to_le_bytes());
    p.extend(((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend([0u8; 10]);
    p.extend(&NONCE[8..]);
    p.push(0);
    p.extend(b"caching_sha2_password\0");
    p
}

fn ok(header: u8) -> Vec<u8> {
    vec![header, 0, 0, 2, 0, 0, 0]
}

/// A column definition of `name` with MySQL field type `field_type`.
fn column(name: &str, field_type: u8) -> Vec<u8> {
    let mut p = Vec::new();
    for text in ["def", "", "", "", name, ""] {
        p.push(text.len() as u8);
        p.extend(text.as_bytes());
    }
    p.push(0x0c);
    p.extend(63u16.to_le_bytes());
    p.extend(20u32.to_le_bytes());
    p.push(field_type);
    p.extend([0, 0, 0, 0, 0]);
    p
}

/// `XOR(SHA256(password), SHA256(SHA256(SHA256(password)) || nonce))`,
/// as MySQL's server checks it.
fn expected_scramble(password: &str) -> Vec<u8> {
    let once = Sha256::digest(password.as_bytes());
    let twice = Sha256::digest(once);
    let mut salted = Sha256::new();
    salted.update(twice);
    salted.update(NONCE);
    let salted = salted.finalize();
    once.iter().zip(salted.iter()).map(|(a, b)| a ^ b).collect()
}

/// Serves one session; the password it accepts is `PASSWORD`.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) -> std::io::Result<()> {
    write_packet(&mut stream, 0, &handshake()).await?;
    let (seq, response) = read_packet(&mut stream).await?;
    let rest = response.get(32..).unwrap_or(&[]);
    let (user, rest) = until_nul(rest);
    let len = usize::from(*rest.first().unwrap_or(&0));
    let scramble = rest.get(1..1 + len).unwrap_or(&[]).to_vec();
    let (plugin, _) = until_nul(rest.get(1 + len..).unwrap_or(&[]));
    {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.user = String::from_utf8_lossy(user).into_owned();
        seen.plugin = String::from_utf8_lossy(plugin).into_owned();
    }
    if scramble != expected_scramble(PASSWORD) {
        let mut err = vec![0xff];
        err.extend(1045u16.to_le_bytes());
        err.extend(b"#28000Access denied for user 'sluice'@'localhost' (using password: YES)");
        return write_packet(&mut stream, seq + 1, &err).await;
    }
    // Fast authentication: the password's hash was cached server-side.
    write_packet(&mut stream, seq + 1, &[0x01, 0x03]).await?;
    write_packet(&mut stream, seq + 2, &ok(0)).await?;
    loop {
        let (_, command) = match read_packet(&mut stream).await {
            Ok(p) => p,
            Err(_) => return Ok(()),
        };
        match command.first() {
            Some(0x03) => {
                let sql = String::from_utf8_lossy(&command[1..]).into_owned();
                let select = sql.starts_with("SELECT");
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .queries
                    .push(sql.clone());
                if sql == "SHOW MASTER STATUS" {
                    // MySQL 8.4 removed the statement.
                    let mut err = vec![0xff];
                    err.extend(1064u16.to_le_bytes());
                    err.extend(b"#42000You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near 'MASTER STATUS' at line 1");
                    write_packet(&mut stream, 1, &err).await?;
                } else if sql == "SHOW BINARY LOG STATUS" {
                    write_packet(&mut stream, 1, &[2]).await?;
                    write_packet(&mut stream, 2, &column("File", VAR_STRING)).await?;
                    write_packet(&mut stream, 3, &column("Position", LONGLONG)).await?;
                    let mut row = lenenc("binlog.000003");
                    row.extend(lenenc("157"));
                    write_packet(&mut stream, 4, &row).await?;
                    write_packet(&mut stream, 5, &ok(0xfe)).await?;
                } else if select {
                    // Column definitions and no rows: the driver keeps its defaults.
                    write_packet(&mut stream, 1, &[2]).await?;
                    write_packet(&mut stream, 2, &column("@@max_allowed_packet", LONGLONG)).await?;
                    write_packet(&mut stream, 3, &column("@@wait_timeout", LONGLONG)).await?;
                    write_packet(&mut stream, 4, &ok(0xfe)).await?;
                } else {
                    write_packet(&mut stream, 1, &ok(0)).await?;
                }
            }
            _ => return Ok(()),
        }
    }
}

async fn stand_in_server() -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, shared.clone()));
        }
    });
    (port, seen)
}

fn config(port: u16, password: &str) -> MySqlConfig {
    let config = [
        ("database.hostname", "127.0.0.1".to_owned()),
        ("database.port", port.to_string()),
        ("database.user", "sluice".to_owned()),
        ("database.password", password.to_owned()),
        ("database.server.id", "5400".to_owned()),
        ("database.ssl.mode", "disabled".to_owned()),
        ("topic.prefix", "shop".to_owned()),
    ]
    .into_iter()
    .collect();
    MySqlConfig::parse(&config).expect("a valid config")
}

#[tokio::test]
async fn caching_sha2_password_logs_in_and_sets_up_the_session() {
    let (port, seen) = stand_in_server().await;
    let conn = setup::connect(&config(port, PASSWORD))
        .await
        .expect("logs in with caching_sha2_password");
    drop(conn);
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(seen.user, "sluice");
    assert_eq!(seen.plugin, "caching_sha2_password");
    assert!(
        seen.queries
            .iter()
            .any(|q| q.contains("time_zone = '+00:00'")),
        "the session is set to UTC: {:?}",
        seen.queries
    );
}

#[tokio::test]
async fn a_wrong_caching_sha2_password_names_the_keys_to_fix() {
    let (port, _) = stand_in_server().await;
    let error = setup::connect(&config(port, "wrong"))
        .await
        .expect_err("the server refuses the scramble");
    let text = error.to_string();
    assert!(
        text.contains("cannot log in")
            && text.contains("database.user and database.password")
            && text.contains("Access denied"),
        "{text}"
    );
}

#[tokio::test]
async fn the_binlog_position_is_read_where_show_master_status_is_gone() {
    let (port, seen) = stand_in_server().await;
    let mut conn = setup::connect(&config(port, PASSWORD))
        .await
        .expect("logs in");
    let position = setup::current_position(&mut conn)
        .await
        .expect("falls back to SHOW BINARY LOG STATUS");
    assert_eq!(position, ("binlog.000003".to_owned(), 157));
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let asked: Vec<&str> = seen
        .queries
        .iter()
        .map(String::as_str)
        .filter(|q| q.starts_with("SHOW"))
        .collect();
    assert_eq!(asked, ["SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"]);
}
