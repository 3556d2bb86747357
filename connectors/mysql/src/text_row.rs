//! The fields of one row of a text-protocol result set, read straight
//! from the server's packet: per column a length-encoded string, or the
//! byte `0xFB` for NULL.
//!
//! The snapshot reads rows this way rather than as `mysql_async::Row`s,
//! which copy every field into a vector of its own and are freed again a
//! moment later: about 950 of the ~5,900 instructions a snapshot row took
//! to read (callgrind, `scripts/bench-mysql`).

/// The byte a NULL field is sent as.
const NULL: u8 = 0xFB;

/// The fields of a row's `packet`, room made for `columns` of them:
/// `None` for a NULL, the field's bytes otherwise. A packet that ends
/// inside a field is refused.
pub fn split(mut packet: &[u8], columns: usize) -> Result<Vec<Option<&[u8]>>, String> {
    let mut fields = Vec::with_capacity(columns);
    while let Some((&first, rest)) = packet.split_first() {
        if first == NULL {
            fields.push(None);
            packet = rest;
            continue;
        }
        let (len, rest) = length(first, rest)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= rest.len())
            .ok_or_else(|| {
                format!(
                    "a result row field of {len} bytes where {} are left",
                    rest.len()
                )
            })?;
        let (field, rest) = rest.split_at(len);
        fields.push(Some(field));
        packet = rest;
    }
    Ok(fields)
}

/// A length-encoded integer whose first byte is `first`, and what follows.
fn length(first: u8, rest: &[u8]) -> Result<(u64, &[u8]), String> {
    let width = match first {
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        0xFF => return Err("a result row field with the length byte 0xFF".into()),
        short => return Ok((u64::from(short), rest)),
    };
    if rest.len() < width {
        return Err("a result row that ends inside a field's length".into());
    }
    let (bytes, rest) = rest.split_at(width);
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    Ok((u64::from_le_bytes(le), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(packet: &[u8]) -> Result<Vec<Option<Vec<u8>>>, String> {
        Ok(split(packet, 3)?
            .into_iter()
            .map(|f| f.map(<[u8]>::to_vec))
            .collect())
    }

    #[test]
    fn short_fields_nulls_and_empty_text() {
        assert_eq!(
            fields(b"\x0212\xfb\x00\x06note 1").unwrap(),
            [
                Some(b"12".to_vec()),
                None,
                Some(Vec::new()),
                Some(b"note 1".to_vec())
            ]
        );
    }

    #[test]
    fn long_fields_carry_two_three_or_eight_length_bytes() {
        let mid = vec![b'x'; 300];
        let big = vec![b'y'; 70_000];
        let mut packet = vec![0xFC, 0x2C, 0x01];
        packet.extend_from_slice(&mid);
        packet.extend_from_slice(&[0xFD, 0x70, 0x11, 0x01]);
        packet.extend_from_slice(&big);
        packet.extend_from_slice(&[0xFE, 1, 0, 0, 0, 0, 0, 0, 0, b'z']);
        assert_eq!(
            fields(&packet).unwrap(),
            [Some(mid), Some(big), Some(b"z".to_vec())]
        );
    }

    #[test]
    fn a_packet_cut_inside_a_field_is_refused() {
        assert!(fields(b"\x05abc").unwrap_err().contains("5 bytes where 3"));
        assert!(fields(b"\xfc\x01").unwrap_err().contains("length"));
        assert!(fields(b"\xff").unwrap_err().contains("0xFF"));
    }
}
