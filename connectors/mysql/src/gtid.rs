//! GTID sets as the offsets keep them: MariaDB's `domain-server-seq` list
//! (one entry per domain) and MySQL's `uuid:1-5:7` interval sets.

use std::collections::BTreeMap;
use std::fmt;

/// The executed GTIDs seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    /// MariaDB: domain → (server, highest seq).
    mariadb: BTreeMap<u32, (u32, u64)>,
    /// MySQL: source uuid → sorted disjoint inclusive intervals.
    mysql: BTreeMap<String, Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Reads a set as the offsets (or `@@gtid_binlog_pos` /
    /// `@@gtid_executed`) write it.
    pub fn parse(text: &str) -> Self {
        let mut set = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.contains(':') {
                let mut pieces = part.split(':');
                let Some(uuid) = pieces.next() else { continue };
                for range in pieces {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                        set.add_mysql_range(uuid, a, b);
                    }
                }
            } else {
                let mut pieces = part.split('-');
                if let (Some(Ok(d)), Some(Ok(s)), Some(Ok(q))) = (
                    pieces.next().map(str::parse),
                    pieces.next().map(str::parse),
                    pieces.next().map(str::parse),
                ) {
                    set.mariadb.insert(d, (s, q));
                }
            }
        }
        set
    }

    /// Records a MariaDB GTID.
    pub fn add_mariadb(&mut self, domain: u32, server: u32, seq: u64) {
        self.mariadb.insert(domain, (server, seq));
    }

    /// Records a MySQL GTID.
    pub fn add_mysql(&mut self, uuid: &str, gno: u64) {
        self.add_mysql_range(uuid, gno, gno);
    }

    fn add_mysql_range(&mut self, uuid: &str, from: u64, to: u64) {
        let ranges = self.mysql.entry(uuid.to_ascii_lowercase()).or_default();
        ranges.push((from, to));
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ranges = merged;
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.mariadb.is_empty() && self.mysql.is_empty()
    }

    /// Only the sources `keep` accepts (`gtid.source.includes|excludes`);
    /// a MariaDB source is `domain-server`.
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> Self {
        Self {
            mariadb: self
                .mariadb
                .iter()
                .filter(|(d, (s, _))| keep(&format!("{d}-{s}")))
                .map(|(d, v)| (*d, *v))
                .collect(),
            mysql: self
                .mysql
                .iter()
                .filter(|(u, _)| keep(u))
                .map(|(u, r)| (u.clone(), r.clone()))
                .collect(),
        }
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "," };
            first = false;
            f.write_str(s)
        };
        for (domain, (server, seq)) in &self.mariadb {
            sep(f)?;
            write!(f, "{domain}-{server}-{seq}")?;
        }
        for (uuid, ranges) in &self.mysql {
            sep(f)?;
            f.write_str(uuid)?;
            for (a, b) in ranges {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// A MariaDB GTID event's body: `(seq_no, domain_id, flags)`.
pub fn parse_mariadb_gtid_event(data: &[u8]) -> Option<(u64, u32, u8)> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    let flags = *data.get(12)?;
    Some((seq, domain, flags))
}

/// MariaDB GTID flag: the event group is a single statement without
/// BEGIN/COMMIT (DDL, non-transactional).
pub const FL_STANDALONE: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_and_mysql_sets_round_trip() {
        let mut set = GtidSet::parse("0-1-100,1-2-5");
        set.add_mariadb(0, 1, 101);
        assert_eq!(set.to_string(), "0-1-101,1-2-5");
        let mut my = GtidSet::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7");
        my.add_mysql("3e11fa47-71ca-11e1-9e33-c80aa9429562", 6);
        assert_eq!(my.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7");
        my.add_mysql("3e11fa47-71ca-11e1-9e33-c80aa9429562", 9);
        assert_eq!(my.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7:9");
        let kept = GtidSet::parse("0-1-100,1-2-5").filtered(|s| s.starts_with("0-"));
        assert_eq!(kept.to_string(), "0-1-100");
    }

    #[test]
    fn mariadb_gtid_event_body() {
        let mut body = 42u64.to_le_bytes().to_vec();
        body.extend(7u32.to_le_bytes());
        body.push(FL_STANDALONE);
        assert_eq!(parse_mariadb_gtid_event(&body), Some((42, 7, 1)));
        assert_eq!(parse_mariadb_gtid_event(&body[..5]), None);
    }
}
