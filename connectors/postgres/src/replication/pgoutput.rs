//! Decoding pgoutput messages (protocol versions 1 and 2).
//!
//! Version 1 is what the connector asks for: the server decodes and sends a
//! transaction after it commits, change by change, so the connector can
//! forward each change as it arrives and never holds a whole transaction.
//! (Version 2's in-progress streaming would make the client hold, or spill,
//! changes that may still abort.) Version 2's messages are still decoded so
//! a stream started with `streaming 'on'` is understood.

use bytes::{Buf, Bytes};

use super::lsn::Lsn;

/// A column value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// A TOASTed value that did not change (not sent).
    UnchangedToast,
    /// The value in text format.
    Text(Bytes),
    /// The value in binary format.
    Binary(Bytes),
}

/// One column of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key).
    pub key: bool,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (precision/length), -1 if none.
    pub type_modifier: i32,
}

/// A table's description, sent before its first change and after DDL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Table OID.
    pub oid: u32,
    /// Schema.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// Columns in table order.
    pub columns: Vec<RelationColumn>,
}

/// A decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A transaction begins.
    Begin {
        /// LSN of its commit record.
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
        /// Transaction id.
        xid: u32,
    },
    /// A transaction commits.
    Commit {
        /// LSN of the commit record.
        commit_lsn: Lsn,
        /// End of the commit record.
        end_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
    },
    /// The origin of a replicated transaction.
    Origin,
    /// A table description.
    Relation(Relation),
    /// A type description (for non-built-in types).
    Type {
        /// Type OID.
        oid: u32,
        /// Schema.
        namespace: String,
        /// Type name.
        name: String,
    },
    /// A row inserted.
    Insert {
        /// Table OID.
        relation: u32,
        /// The new row.
        new: Vec<Datum>,
    },
    /// A row updated.
    Update {
        /// Table OID.
        relation: u32,
        /// The old key (`K`) or old row (`O`, replica identity full).
        old: Option<Vec<Datum>>,
        /// Whether `old` is the whole row.
        old_is_full: bool,
        /// The new row.
        new: Vec<Datum>,
    },
    /// A row deleted.
    Delete {
        /// Table OID.
        relation: u32,
        /// The old key or whole row.
        old: Vec<Datum>,
        /// Whether `old` is the whole row.
        old_is_full: bool,
    },
    /// Tables truncated.
    Truncate {
        /// Table OIDs.
        relations: Vec<u32>,
        /// `CASCADE` (1) and `RESTART IDENTITY` (2) bits.
        options: u8,
    },
    /// A logical decoding message (`pg_logical_emit_message`).
    LogicalMessage {
        /// Whether it belongs to a transaction.
        transactional: bool,
        /// Its LSN.
        lsn: Lsn,
        /// The prefix.
        prefix: String,
        /// The content.
        content: Bytes,
    },
    /// Version 2: a block of an in-progress transaction starts.
    StreamStart {
        /// Transaction id.
        xid: u32,
    },
    /// Version 2: the block ends.
    StreamStop,
    /// Version 2: a streamed transaction commits.
    StreamCommit {
        /// Transaction id.
        xid: u32,
        /// End of the commit record.
        end_lsn: Lsn,
    },
    /// Version 2: a streamed (sub)transaction aborts.
    StreamAbort {
        /// Transaction id.
        xid: u32,
    },
}

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed pgoutput message: {0}")]
pub struct DecodeError(pub String);

fn need(buf: &Bytes, n: usize, what: &str) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        return Err(DecodeError(format!("{what} is cut short")));
    }
    Ok(())
}

fn cstr(buf: &mut Bytes) -> Result<String, DecodeError> {
    let end = buf
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| DecodeError("unterminated string".into()))?;
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.advance(end + 1);
    Ok(text)
}

fn tuple(buf: &mut Bytes) -> Result<Vec<Datum>, DecodeError> {
    need(buf, 2, "tuple")?;
    let count = buf.get_u16() as usize;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        need(buf, 1, "tuple column")?;
        values.push(match buf.get_u8() {
            b'n' => Datum::Null,
            b'u' => Datum::UnchangedToast,
            kind @ (b't' | b'b') => {
                need(buf, 4, "column length")?;
                let len = buf.get_i32().max(0) as usize;
                need(buf, len, "column value")?;
                let value = buf.split_to(len);
                if kind == b't' {
                    Datum::Text(value)
                } else {
                    Datum::Binary(value)
                }
            }
            other => {
                return Err(DecodeError(format!(
                    "unknown column kind {:?}",
                    other as char
                )))
            }
        });
    }
    Ok(values)
}

/// Decodes one message; `streaming` says whether it sits inside a v2
/// stream block (where changes carry a transaction id first).
pub fn decode(mut buf: Bytes, streaming: bool) -> Result<Message, DecodeError> {
    need(&buf, 1, "message")?;
    let tag = buf.get_u8();
    let skip_xid = |buf: &mut Bytes| -> Result<(), DecodeError> {
        if streaming {
            need(buf, 4, "transaction id")?;
            buf.advance(4);
        }
        Ok(())
    };
    Ok(match tag {
        b'B' => {
            need(&buf, 20, "Begin")?;
            Message::Begin {
                final_lsn: Lsn(buf.get_u64()),
                commit_time: buf.get_i64(),
                xid: buf.get_u32(),
            }
        }
        b'C' => {
            need(&buf, 25, "Commit")?;
            buf.advance(1);
            Message::Commit {
                commit_lsn: Lsn(buf.get_u64()),
                end_lsn: Lsn(buf.get_u64()),
                commit_time: buf.get_i64(),
            }
        }
        b'O' => Message::Origin,
        b'R' => {
            skip_xid(&mut buf)?;
            need(&buf, 4, "Relation")?;
            let oid = buf.get_u32();
            let namespace = cstr(&mut buf)?;
            let name = cstr(&mut buf)?;
            need(&buf, 3, "Relation")?;
            let replica_identity = buf.get_u8();
            let count = buf.get_u16() as usize;
            let mut columns = Vec::with_capacity(count);
            for _ in 0..count {
                need(&buf, 1, "Relation column")?;
                let flags = buf.get_u8();
                let name = cstr(&mut buf)?;
                need(&buf, 8, "Relation column")?;
                columns.push(RelationColumn {
                    key: flags & 1 == 1,
                    name,
                    type_oid: buf.get_u32(),
                    type_modifier: buf.get_i32(),
                });
            }
            Message::Relation(Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => {
            skip_xid(&mut buf)?;
            need(&buf, 4, "Type")?;
            let oid = buf.get_u32();
            Message::Type {
                oid,
                namespace: cstr(&mut buf)?,
                name: cstr(&mut buf)?,
            }
        }
        b'I' => {
            skip_xid(&mut buf)?;
            need(&buf, 5, "Insert")?;
            let relation = buf.get_u32();
            buf.advance(1); // 'N'
            Message::Insert {
                relation,
                new: tuple(&mut buf)?,
            }
        }
        b'U' => {
            skip_xid(&mut buf)?;
            need(&buf, 5, "Update")?;
            let relation = buf.get_u32();
            let mut kind = buf.get_u8();
            let (mut old, mut old_is_full) = (None, false);
            if kind == b'K' || kind == b'O' {
                old_is_full = kind == b'O';
                old = Some(tuple(&mut buf)?);
                need(&buf, 1, "Update")?;
                kind = buf.get_u8();
            }
            if kind != b'N' {
                return Err(DecodeError(format!(
                    "Update without a new tuple ({:?})",
                    kind as char
                )));
            }
            Message::Update {
                relation,
                old,
                old_is_full,
                new: tuple(&mut buf)?,
            }
        }
        b'D' => {
            skip_xid(&mut buf)?;
            need(&buf, 5, "Delete")?;
            let relation = buf.get_u32();
            let old_is_full = buf.get_u8() == b'O';
            Message::Delete {
                relation,
                old: tuple(&mut buf)?,
                old_is_full,
            }
        }
        b'T' => {
            skip_xid(&mut buf)?;
            need(&buf, 5, "Truncate")?;
            let count = buf.get_u32() as usize;
            let options = buf.get_u8();
            need(&buf, count * 4, "Truncate")?;
            Message::Truncate {
                relations: (0..count).map(|_| buf.get_u32()).collect(),
                options,
            }
        }
        b'M' => {
            skip_xid(&mut buf)?;
            need(&buf, 9, "Message")?;
            let transactional = buf.get_u8() & 1 == 1;
            let lsn = Lsn(buf.get_u64());
            let prefix = cstr(&mut buf)?;
            need(&buf, 4, "Message")?;
            let len = buf.get_u32() as usize;
            need(&buf, len, "Message")?;
            Message::LogicalMessage {
                transactional,
                lsn,
                prefix,
                content: buf.split_to(len),
            }
        }
        b'S' => {
            need(&buf, 4, "Stream Start")?;
            Message::StreamStart { xid: buf.get_u32() }
        }
        b'E' => Message::StreamStop,
        b'c' => {
            need(&buf, 29, "Stream Commit")?;
            let xid = buf.get_u32();
            buf.advance(1 + 8);
            Message::StreamCommit {
                xid,
                end_lsn: Lsn(buf.get_u64()),
            }
        }
        b'A' => {
            need(&buf, 4, "Stream Abort")?;
            Message::StreamAbort { xid: buf.get_u32() }
        }
        other => {
            return Err(DecodeError(format!(
                "unknown message type {:?}",
                other as char
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn decodes_relation_and_update_with_old_key() {
        let mut r = bytes::BytesMut::new();
        r.put_u8(b'R');
        r.put_u32(16384);
        r.put_slice(b"public\0orders\0");
        r.put_u8(b'd');
        r.put_u16(2);
        r.put_u8(1);
        r.put_slice(b"id\0");
        r.put_u32(23);
        r.put_i32(-1);
        r.put_u8(0);
        r.put_slice(b"note\0");
        r.put_u32(25);
        r.put_i32(-1);
        let Message::Relation(rel) = decode(r.freeze(), false).expect("relation") else {
            panic!("relation expected")
        };
        assert_eq!(rel.name, "orders");
        assert!(rel.columns[0].key && !rel.columns[1].key);

        let mut u = bytes::BytesMut::new();
        u.put_u8(b'U');
        u.put_u32(16384);
        u.put_u8(b'K');
        u.put_u16(2);
        u.put_u8(b't');
        u.put_i32(1);
        u.put_slice(b"7");
        u.put_u8(b'n');
        u.put_u8(b'N');
        u.put_u16(2);
        u.put_u8(b't');
        u.put_i32(1);
        u.put_slice(b"8");
        u.put_u8(b'u');
        let msg = decode(u.freeze(), false).expect("update");
        assert_eq!(
            msg,
            Message::Update {
                relation: 16384,
                old: Some(vec![Datum::Text(Bytes::from_static(b"7")), Datum::Null]),
                old_is_full: false,
                new: vec![Datum::Text(Bytes::from_static(b"8")), Datum::UnchangedToast],
            }
        );
    }

    #[test]
    fn cut_short_messages_are_errors_not_panics() {
        assert!(decode(Bytes::from_static(b"B\0\0"), false).is_err());
        assert!(decode(
            Bytes::from_static(b"I\0\0\0\x01N\0\x01t\0\0\0\x09ab"),
            false
        )
        .is_err());
    }

    /// Issue 19 (bad input): every prefix of valid messages, valid
    /// messages with bytes overwritten, and random bytes behind every tag
    /// decode to a message or an error, never a panic. A deterministic
    /// stand-in for `cargo fuzz`, which needs a nightly toolchain.
    #[test]
    fn mutated_and_random_messages_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let samples: Vec<&[u8]> = vec![
            b"R\0\0@\0public\0orders\0d\0\x02\x01id\0\0\0\0\x17\xff\xff\xff\xff\0note\0\0\0\0\x19\xff\xff\xff\xff",
            b"U\0\0@\0K\0\x02t\0\0\0\x017nN\0\x02t\0\0\0\x018u",
            b"B\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x02\x03",
            b"M\x01\0\0\0\0\x01\0\0\0ping\0\0\0\0\x02hi",
            b"T\0\0\0\x01\0\0\0\0@\0",
        ];
        for sample in &samples {
            for len in 0..=sample.len() {
                let _ = decode(Bytes::copy_from_slice(&sample[..len]), false);
                let _ = decode(Bytes::copy_from_slice(&sample[..len]), true);
            }
            for _ in 0..2000 {
                let mut bytes = sample.to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                let _ = decode(Bytes::from(bytes), next() % 2 == 0);
            }
        }
        for tag in b"BCORYIUDTMSEcApKbPr\0" {
            for _ in 0..2000 {
                let len = (next() % 48) as usize;
                let mut bytes = vec![*tag];
                bytes.extend((0..len).map(|_| next() as u8));
                let _ = decode(Bytes::from(bytes), next() % 2 == 0);
            }
        }
    }
}
