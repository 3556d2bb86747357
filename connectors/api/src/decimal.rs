//! Decimals as Connect writes them — an unscaled two's-complement
//! big-endian integer of any width plus a scale — back as text.

/// A two's-complement big-endian unscaled integer with `scale` as decimal text.
pub fn decimal_text(bytes: &[u8], scale: u32) -> String {
    match crate::Value::decimal_unscaled(bytes) {
        Some(unscaled) => narrow_text(unscaled, scale),
        None => wide_text(bytes, scale),
    }
}

/// [`decimal_text`] of an unscaled value that fits 128 bits (every column
/// of up to 38 digits): the digits by machine division, in place. The
/// byte-wise long division of [`wide_text`] cost about 1,000 instructions
/// per value, a tenth of a sink's work per row of the bench table
/// (callgrind, `scripts/bench-sink`).
fn narrow_text(unscaled: i128, scale: u32) -> String {
    // 39 digits at most, plus the zeros a scale may need in front.
    let mut digits = [0u8; 40];
    let mut start = digits.len();
    let mut magnitude = unscaled.unsigned_abs();
    while magnitude > u128::from(u64::MAX) {
        start -= 1;
        digits[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
    }
    let mut small = magnitude as u64;
    while small > 0 {
        start -= 1;
        digits[start] = b'0' + (small % 10) as u8;
        small /= 10;
    }
    let written = &digits[start..];
    let scale = scale as usize;
    let mut out = String::with_capacity(written.len().max(scale + 1) + 2);
    if unscaled < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    let written = crate::text::utf8(written).unwrap_or("0");
    if written.len() > scale {
        let (whole, fraction) = written.split_at(written.len() - scale);
        out.push_str(whole);
        if scale > 0 {
            out.push('.');
            out.push_str(fraction);
        }
    } else {
        out.push('0');
        if scale > 0 {
            out.push('.');
            out.extend(std::iter::repeat_n('0', scale - written.len()));
            out.push_str(written);
        }
    }
    out
}

/// [`decimal_text`] of any width, by long division over the bytes.
fn wide_text(bytes: &[u8], scale: u32) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude as big-endian bytes.
    let mut magnitude: Vec<u8> = if negative {
        let mut inverted: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in inverted.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
        inverted
    } else {
        bytes.to_vec()
    };
    let mut digits = Vec::new();
    while magnitude.iter().any(|b| *b != 0) {
        let mut remainder = 0u32;
        for b in magnitude.iter_mut() {
            let current = (remainder << 8) | u32::from(*b);
            *b = (current / 10) as u8;
            remainder = current % 10;
        }
        digits.push(b'0' + remainder as u8);
    }
    while digits.len() <= scale as usize {
        digits.push(b'0');
    }
    digits.reverse();
    let split = digits.len() - scale as usize;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(crate::text::utf8(&digits[..split]).unwrap_or("0"));
    if scale > 0 {
        out.push('.');
        out.push_str(crate::text::utf8(&digits[split..]).unwrap_or("0"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_render_from_twos_complement() {
        assert_eq!(decimal_text(&[0x04, 0xd2], 2), "12.34");
        assert_eq!(decimal_text(&[0xfb, 0x2e], 2), "-12.34");
        assert_eq!(decimal_text(&[0x05], 3), "0.005");
        assert_eq!(decimal_text(&[0x00], 0), "0");
        // Wider than 128 bits.
        let mut big = vec![0x01];
        big.extend([0u8; 20]);
        assert_eq!(
            decimal_text(&big, 0),
            "1461501637330902918203684832716283019655932542976"
        );
    }

    #[test]
    fn narrow_and_wide_ways_agree() {
        let mut unscaled: Vec<i128> = vec![0, 1, -1, 9, 10, -10, 12345, i128::MAX, i128::MIN];
        for shift in [7u32, 31, 63, 64, 65, 100, 126] {
            let n = 1i128 << shift;
            unscaled.extend([n - 1, n, n + 1, -n, -(n - 1), -(n + 1)]);
        }
        for n in [u64::MAX as i128, -(u64::MAX as i128), u64::MAX as i128 + 1] {
            unscaled.push(n);
        }
        for n in unscaled {
            let crate::Value::Bytes(bytes) = crate::Value::decimal(n) else {
                unreachable!("decimal always yields bytes")
            };
            for scale in [0, 1, 2, 5, 20, 38, 45] {
                assert_eq!(
                    narrow_text(n, scale),
                    wide_text(&bytes, scale),
                    "{n} at scale {scale}"
                );
                assert_eq!(decimal_text(&bytes, scale), wide_text(&bytes, scale));
            }
        }
    }
}
