//! Decimals as Connect writes them — an unscaled two's-complement
//! big-endian integer of any width plus a scale — back as text.

/// A two's-complement big-endian unscaled integer with `scale` as decimal text.
pub fn decimal_text(bytes: &[u8], scale: u32) -> String {
    match DecimalText::of(bytes, scale) {
        Some(text) => text.as_str().to_owned(),
        None => wide_text(bytes, scale),
    }
}

/// The largest scale [`DecimalText`] writes: a 38-digit column's, and a
/// little more.
const MOST_STACK_SCALE: u32 = 40;

/// [`decimal_text`] written on the stack, for an unscaled value that fits
/// 128 bits (every column of up to 38 digits) and a scale of at most 40:
/// a sink copies it straight into the statement or `COPY` text it builds,
/// where a `String` per value (allocated, copied, freed) cost about half
/// of turning the bench table's `numeric` into text (callgrind,
/// `scripts/bench-sink`).
#[derive(Clone, Copy)]
pub struct DecimalText {
    /// The text is `text[start..]`, written from the end backwards.
    text: [u8; 48],
    start: u8,
}

impl DecimalText {
    /// The text of `bytes` at `scale`; `None` for a wider value or a
    /// larger scale, which [`decimal_text`] writes by long division.
    pub fn of(bytes: &[u8], scale: u32) -> Option<Self> {
        if scale > MOST_STACK_SCALE {
            return None;
        }
        Some(Self::narrow(crate::Value::decimal_unscaled(bytes)?, scale))
    }

    /// The digits by machine division, written from the last one back
    /// with the point in its place, so nothing is copied afterwards (the
    /// byte-wise long division of [`wide_text`] cost about 1,000
    /// instructions per value, and copying the parts into place a third
    /// of what this costs; callgrind, `scripts/bench-sink`).
    fn narrow(unscaled: i128, scale: u32) -> Self {
        let mut out = Self {
            text: [b'0'; 48],
            start: 48,
        };
        let scale = scale as usize;
        let mut written = 0;
        let mut magnitude = unscaled.unsigned_abs();
        while magnitude > u128::from(u64::MAX) {
            out.digit((magnitude % 10) as u8, &mut written, scale);
            magnitude /= 10;
        }
        let mut small = magnitude as u64;
        // At least one digit before the point ("0.05", "0").
        while small > 0 || written <= scale {
            out.digit((small % 10) as u8, &mut written, scale);
            small /= 10;
        }
        if unscaled < 0 {
            out.start -= 1;
            out.text[usize::from(out.start)] = b'-';
        }
        out
    }

    /// Writes `digit` in front of the `written` digits so far, and the
    /// point in front of it when the fraction's `scale` digits are done.
    #[inline(always)]
    fn digit(&mut self, digit: u8, written: &mut usize, scale: usize) {
        if *written == scale && scale > 0 {
            self.start -= 1;
            self.text[usize::from(self.start)] = b'.';
        }
        self.start -= 1;
        self.text[usize::from(self.start)] = b'0' + digit;
        *written += 1;
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, a sign and a point were written.
        crate::text::utf8(&self.text[usize::from(self.start)..]).unwrap_or("0")
    }
}

impl std::fmt::Debug for DecimalText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for DecimalText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
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
            for scale in [0, 1, 2, 5, 20, 38, 39, 40, 41, 45] {
                let wide = wide_text(&bytes, scale);
                assert_eq!(
                    DecimalText::narrow(n, scale.min(MOST_STACK_SCALE)).as_str(),
                    wide_text(&bytes, scale.min(MOST_STACK_SCALE)),
                    "{n} at scale {scale}"
                );
                assert_eq!(
                    DecimalText::of(&bytes, scale).map(|t| t.as_str().to_owned()),
                    (scale <= MOST_STACK_SCALE).then(|| wide.clone()),
                    "{n} at scale {scale}"
                );
                assert_eq!(decimal_text(&bytes, scale), wide);
            }
        }
    }
}
