//! Calendar arithmetic shared by sources that turn database dates and
//! times into Debezium's epoch-based values and ISO-8601 strings
//! (proleptic Gregorian, no time zone database needed).

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date and the microseconds into its day of `micros` since the
/// epoch: `(year, month, day, micros_in_day)`.
pub fn civil(micros: i64) -> (i64, i64, i64, i64) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, in_day)
}

/// `HH:MM:SS[.f]` with the fraction trimmed as Java's ISO formatter does.
pub fn clock(in_day: i64) -> String {
    let seconds = in_day / 1_000_000;
    let micros = in_day % 1_000_000;
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    );
    if micros != 0 {
        let fraction = format!("{micros:06}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out
}

/// Debezium's ZonedTimestamp text of `micros` since the epoch in UTC, e.g.
/// `2024-01-31T10:00:00.5Z`.
pub fn iso_utc(micros: i64) -> String {
    let (year, month, day, in_day) = civil(micros);
    format!("{year:04}-{month:02}-{day:02}T{}Z", clock(in_day))
}

/// A decimal's unscaled integer and scale, e.g. "-12.340" → (-12340, 3).
pub fn parse_decimal(text: &str) -> Option<(i128, u32)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut unscaled: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)?))?;
    }
    Some((
        if negative { -unscaled } else { unscaled },
        fraction.len() as u32,
    ))
}

/// `unscaled` at `scale` digits re-expressed at `target` digits
/// (truncating when `target` is smaller).
pub fn rescale(unscaled: i128, scale: u32, target: u32) -> Option<i128> {
    if target >= scale {
        unscaled.checked_mul(10i128.checked_pow(target - scale)?)
    } else {
        Some(unscaled / 10i128.checked_pow(scale - target)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_print_as_java_does() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        let micros = days_from_civil(2024, 1, 31) * MICROS_PER_DAY + 36_000_500_000;
        assert_eq!(iso_utc(micros), "2024-01-31T10:00:00.5Z");
        assert_eq!(civil(-1), (1969, 12, 31, MICROS_PER_DAY - 1));
        assert_eq!(parse_decimal("-12.340"), Some((-12340, 3)));
        assert_eq!(parse_decimal("x"), None);
        assert_eq!(rescale(-12340, 3, 5), Some(-1_234_000));
    }
}
