//! Log sequence numbers: positions in the WAL, written `16/B374D848`.

use std::fmt;
use std::str::FromStr;

/// A WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (high, low) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s} is not an LSN like 16/B374D848"))?;
        let part = |p: &str| u64::from_str_radix(p, 16).map_err(|e| format!("{s}: {e}"));
        Ok(Self((part(high)? << 32) | part(low)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text() {
        let lsn: Lsn = "16/B374D848".parse().expect("valid");
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("nonsense".parse::<Lsn>().is_err());
    }
}
