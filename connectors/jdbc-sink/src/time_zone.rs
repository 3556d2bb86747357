//! `use.time.zone`: the zone a zoned timestamp (`io.debezium.time.ZonedTimestamp`,
//! always UTC on the wire) is written in. A `timestamptz` column keeps the
//! instant either way; a column without a zone (`timestamp`, MySQL
//! `DATETIME`) gets the wall-clock time of that zone. IANA names come from
//! the time zone database built into the binary, so a slim image without
//! `tzdata` still knows them.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use sluice_connector_api::ConfigError;

/// `+HH:MM`, `-HH:MM` or `+HH` as a fixed zone.
fn fixed_offset(text: &str) -> Option<TimeZone> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    let seconds = sign * (hours.parse::<i32>().ok()? * 3600 + minutes.parse::<i32>().ok()? * 60);
    jiff::tz::Offset::from_seconds(seconds)
        .ok()
        .map(TimeZone::fixed)
}

/// The zone zoned timestamps are written in.
#[derive(Debug, Clone)]
pub struct WriteZone {
    zone: Option<TimeZone>,
}

impl WriteZone {
    /// The zone `use.time.zone` names: `UTC` (the default, written as
    /// received), an IANA name (`Europe/Paris`) or an offset (`+02:00`).
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("UTC") || name == "Z" {
            return Ok(Self { zone: None });
        }
        let zone = TimeZone::get(name)
            .ok()
            .or_else(|| fixed_offset(name))
            .ok_or_else(|| {
                ConfigError::new(
                    "use.time.zone",
                    format!("{name:?} is neither a time zone name (e.g. Europe/Paris) nor an offset (e.g. +02:00)"),
                )
            })?;
        Ok(Self { zone: Some(zone) })
    }

    /// Whether values are written as received (UTC).
    pub fn is_utc(&self) -> bool {
        self.zone.is_none()
    }

    /// An ISO 8601 instant as the wall-clock time of this zone with its
    /// offset (`2024-01-01T11:00:00.5+01:00`); `None` when the text is not
    /// an instant.
    pub fn local(&self, instant: &str) -> Option<String> {
        let zone = self.zone.as_ref()?;
        let at: Timestamp = instant.parse().ok()?;
        let seconds = zone.to_offset(at).seconds();
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.abs() / 60;
        Some(format!(
            "{}{sign}{:02}:{:02}",
            zone.to_datetime(at),
            minutes / 60,
            minutes % 60
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_become_wall_clock_times_of_the_zone() {
        let paris = WriteZone::parse("Europe/Paris").unwrap();
        assert_eq!(
            paris.local("2024-01-15T10:00:00.5Z").as_deref(),
            Some("2024-01-15T11:00:00.5+01:00")
        );
        assert_eq!(
            paris.local("2024-07-15T10:00:00Z").as_deref(),
            Some("2024-07-15T12:00:00+02:00"),
            "summer time"
        );
        let fixed = WriteZone::parse("-03:30").unwrap();
        assert_eq!(
            fixed.local("2024-01-15T10:00:00Z").as_deref(),
            Some("2024-01-15T06:30:00-03:30")
        );
        assert!(WriteZone::parse("UTC").unwrap().is_utc());
        assert_eq!(
            WriteZone::parse("Mars/Olympus").unwrap_err().key,
            "use.time.zone"
        );
    }
}
