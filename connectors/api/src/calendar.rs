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
    let mut out = String::with_capacity(15);
    push_clock(&mut out, in_day, 0);
    out
}

/// Appends the decimal digits of `n`, zero-padded to at least `width`:
/// for text written per row, where `format!` costs more than the row.
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in digits.len() - start..width {
        out.push('0');
    }
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// [`clock`] appended to `out`, with exactly `digits` (1..=6) fraction
/// digits, or trimmed for 0; written digit by digit because it runs for
/// every time and timestamp column of every row.
fn push_clock(out: &mut String, in_day: i64, digits: u32) {
    let Ok(in_day) = u64::try_from(in_day) else {
        // Not a time of day; formatted as before, sign and all.
        let (seconds, micros) = (in_day / 1_000_000, in_day % 1_000_000);
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            (seconds / 60) % 60,
            seconds % 60
        ));
        if micros != 0 {
            out.push('.');
            out.push_str(format!("{micros:06}").trim_end_matches('0'));
        }
        return;
    };
    let seconds = in_day / 1_000_000;
    let micros = in_day % 1_000_000;
    push_padded(out, seconds / 3600, 2);
    out.push(':');
    push_padded(out, (seconds / 60) % 60, 2);
    out.push(':');
    push_padded(out, seconds % 60, 2);
    if (1..=6).contains(&digits) {
        out.push('.');
        push_padded(out, micros / 10u64.pow(6 - digits), digits as usize);
    } else if micros != 0 {
        out.push('.');
        let mut fraction = micros;
        let mut width = 6;
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        push_padded(out, fraction, width);
    }
}

/// Debezium's ZonedTimestamp text of `micros` since the epoch in UTC with
/// as many fraction digits as needed, e.g. `2024-01-31T10:00:00.5Z`.
pub fn iso_utc(micros: i64) -> String {
    iso_utc_digits(micros, 0)
}

/// Debezium's ZonedTimestamp text of a column of fractional-second
/// precision `digits` (1..=6): exactly that many fraction digits, e.g.
/// `2024-01-31T10:00:00.500000Z` for 6, as Debezium writes them since 2.2
/// (DBZ-5996, DBZ-6163); 0 gives [`iso_utc`]'s text.
pub fn iso_utc_digits(micros: i64, digits: u32) -> String {
    let (year, month, day, in_day) = civil(micros);
    match (u64::try_from(year), u64::try_from(in_day)) {
        (Ok(year), Ok(in_day)) if year <= 9999 => {
            iso_utc_in_place(year, month as u64, day as u64, in_day, digits)
        }
        _ => iso_utc_general(year, month, day, in_day, digits),
    }
}

/// [`iso_utc_digits`] for years 0 to 9999, written into a stack buffer
/// and copied once: it runs for every timestamp of every row, and pushing
/// its text a character at a time cost ~890 instructions a value
/// (callgrind, `scripts/bench-mysql`).
fn iso_utc_in_place(year: u64, month: u64, day: u64, in_day: u64, digits: u32) -> String {
    let (seconds, micros) = (in_day / 1_000_000, in_day % 1_000_000);
    let (fraction, width) = if (1..=6).contains(&digits) {
        (micros / 10u64.pow(6 - digits), digits as usize)
    } else if micros == 0 {
        (0, 0)
    } else {
        // Trimmed as Java's formatter does.
        let (mut fraction, mut width) = (micros, 6);
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        (fraction, width)
    };
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], month);
    put_digits(&mut text[8..10], day);
    put_digits(&mut text[11..13], seconds / 3600);
    put_digits(&mut text[14..16], (seconds / 60) % 60);
    put_digits(&mut text[17..19], seconds % 60);
    let end = if width == 0 {
        text[19] = b'Z';
        20
    } else {
        put_digits(&mut text[20..20 + width], fraction);
        text[20 + width] = b'Z';
        21 + width
    };
    // ASCII by construction; checked anyway, as the cheapest of the checks.
    crate::text::utf8(&text[..end])
        .map(str::to_owned)
        .unwrap_or_default()
}

/// [`iso_utc_digits`] of a UTC timestamp a database sent as text,
/// `YYYY-MM-DD HH:MM:SS[.f]` with at most six fraction digits, made by
/// moving its characters rather than parsing it to a number and printing
/// that back (the round trip cost ~1,300 instructions a value under
/// callgrind: PostgreSQL's `timestamptz`, MySQL's `TIMESTAMP`, in every
/// snapshot row). `digits` 1..=6 gives exactly that many fraction digits
/// (cut or padded with zeros, as the round trip truncates); 0 keeps the
/// fraction as sent when it is already trimmed. `None` for anything the
/// round trip would read differently — year 0, a month, day or time of
/// day out of range, an untrimmed fraction for 0, another layout — which
/// callers send down their general path.
pub fn iso_utc_from_text(text: &[u8], digits: i32) -> Option<String> {
    let (clock, fraction) = text.split_first_chunk::<19>()?;
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let laid_out = DIGITS.iter().all(|&i| clock[i].is_ascii_digit())
        && clock[4] == b'-'
        && clock[7] == b'-'
        && clock[10] == b' '
        && clock[13] == b':'
        && clock[16] == b':';
    if !laid_out {
        return None;
    }
    let two = |i: usize| u32::from(clock[i] - b'0') * 10 + u32::from(clock[i + 1] - b'0');
    let (year, month, day) = (two(0) * 100 + two(2), two(5), two(8));
    if year == 0
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || two(11) > 23
        || two(14) > 59
        || two(17) > 59
    {
        return None;
    }
    let fraction = match fraction {
        [] => fraction,
        [b'.', digits @ ..]
            if (1..=6).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            digits
        }
        _ => return None,
    };
    // A negative precision is refused by the general path too.
    let digits = usize::try_from(digits).ok()?;
    // Written on the stack and copied once into the string.
    let mut iso = *b"0000-00-00T00:00:00.000000Z";
    iso[..19].copy_from_slice(clock);
    iso[10] = b'T';
    let end = match digits {
        width @ 1..=6 => {
            let kept = fraction.len().min(width);
            iso[20..20 + kept].copy_from_slice(&fraction[..kept]);
            20 + width
        }
        // As many as needed: the fraction as sent, if it has no trailing
        // zeros to trim.
        _ => match fraction.last() {
            None => 19,
            Some(b'0') => return None,
            Some(_) => {
                iso[20..20 + fraction.len()].copy_from_slice(fraction);
                20 + fraction.len()
            }
        },
    };
    iso[end] = b'Z';
    crate::text::utf8(&iso[..=end]).ok().map(str::to_owned)
}

/// Writes the last `into.len()` decimal digits of `n`, zero-padded.
fn put_digits(into: &mut [u8], n: u64) {
    let mut rest = n;
    for digit in into.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

/// [`iso_utc_digits`] for any year (signed, or five digits, as Rust's
/// formatter writes them) and any time of day.
fn iso_utc_general(year: i64, month: i64, day: i64, in_day: i64, digits: u32) -> String {
    let mut out = String::with_capacity(28);
    match u64::try_from(year) {
        Ok(year) if year <= 9999 => push_padded(&mut out, year, 4),
        // Signed or five-digit years as Rust's formatter writes them.
        _ => out.push_str(&format!("{year:04}")),
    }
    out.push('-');
    push_padded(&mut out, month as u64, 2);
    out.push('-');
    push_padded(&mut out, day as u64, 2);
    out.push('T');
    push_clock(&mut out, in_day, digits);
    out.push('Z');
    out
}

/// A decimal's unscaled integer and scale, e.g. "-12.340" → (-12340, 3).
pub fn parse_decimal(text: &str) -> Option<(i128, u32)> {
    let (negative, body) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if body.len() > 19 {
        let (negative, whole, fraction) = decimal_parts(text)?;
        let unscaled = unscaled_of(whole, fraction)?;
        return Some((
            if negative { -unscaled } else { unscaled },
            fraction.len() as u32,
        ));
    }
    // At most 19 digits fit a u64 whatever they are: one pass, no
    // overflow checks, no 128-bit arithmetic per digit (splitting the
    // text first and chaining its parts cost ~320 instructions a value
    // under callgrind, `scripts/bench-mysql`; 128-bit checked digits
    // ~770).
    let mut unscaled: u64 = 0;
    let mut point = None;
    for (at, &b) in body.iter().enumerate() {
        let digit = b.wrapping_sub(b'0');
        if digit <= 9 {
            unscaled = unscaled * 10 + u64::from(digit);
        } else if b == b'.' && point.is_none() {
            point = Some(at);
        } else {
            return None;
        }
    }
    let scale = point.map_or(0, |at| body.len() - at - 1);
    if body.len() == usize::from(point.is_some()) {
        // No digits at all: "", "-", ".".
        return None;
    }
    let unscaled = i128::from(unscaled);
    Some((if negative { -unscaled } else { unscaled }, scale as u32))
}

/// A decimal's sign, whole digits and fraction digits; `None` when it has
/// no digits at all.
fn decimal_parts(text: &str) -> Option<(bool, &str, &str)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    Some((negative, whole, fraction))
}

/// The digits of `whole` then `fraction` as one integer, in checked
/// 128-bit arithmetic: any length, `None` past `i128` or at a non-digit.
fn unscaled_of(whole: &str, fraction: &str) -> Option<i128> {
    let mut unscaled: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)?))?;
    }
    Some(unscaled)
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
    fn numbers_are_padded_to_their_width_and_never_cut() {
        let padded = |n: u64, width: usize| {
            let mut out = String::from(">");
            push_padded(&mut out, n, width);
            out
        };
        assert_eq!(padded(7, 2), ">07");
        assert_eq!(padded(2024, 4), ">2024");
        assert_eq!(padded(5, 6), ">000005");
        assert_eq!(padded(123, 1), ">123");
        assert_eq!(padded(0, 0), ">0");
        assert_eq!(padded(u64::MAX, 21), format!(">0{}", u64::MAX));
    }

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

    #[test]
    fn zoned_timestamps_carry_their_columns_fraction_width() {
        let second = days_from_civil(2024, 1, 31) * MICROS_PER_DAY + 36_000_000_000;
        let half = second + 500_000;
        assert_eq!(iso_utc_digits(half, 6), "2024-01-31T10:00:00.500000Z");
        assert_eq!(iso_utc_digits(half, 3), "2024-01-31T10:00:00.500Z");
        assert_eq!(iso_utc_digits(second, 6), "2024-01-31T10:00:00.000000Z");
        assert_eq!(
            iso_utc_digits(second + 123_456, 6),
            "2024-01-31T10:00:00.123456Z"
        );
        assert_eq!(iso_utc_digits(second, 0), "2024-01-31T10:00:00Z");
        assert_eq!(iso_utc_digits(half, 0), "2024-01-31T10:00:00.5Z");
    }

    /// What `iso_utc` wrote when it was built from `format!`.
    fn formatted(micros: i64) -> String {
        let (year, month, day, in_day) = civil(micros);
        let (seconds, fraction) = (in_day / 1_000_000, in_day % 1_000_000);
        let mut out = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            seconds / 3600,
            (seconds / 60) % 60,
            seconds % 60
        );
        if fraction != 0 {
            out.push('.');
            out.push_str(format!("{fraction:06}").trim_end_matches('0'));
        }
        out.push('Z');
        out
    }

    /// What `parse_decimal` gave when every digit went through 128-bit
    /// checked arithmetic.
    fn parsed_slowly(text: &str) -> Option<(i128, u32)> {
        let (negative, whole, fraction) = decimal_parts(text)?;
        let unscaled = unscaled_of(whole, fraction)?;
        Some((
            if negative { -unscaled } else { unscaled },
            fraction.len() as u32,
        ))
    }

    #[test]
    fn decimals_parse_as_they_did_digit_by_digit() {
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "+7",
            ".5",
            "5.",
            "-.25",
            "",
            ".",
            "-",
            "1.2.3",
            "1e5",
            "12a",
            "٣",
            " 1",
            "999999999999999999",
            "-999999999999999999.5",
            "9999999999999999999",
            "-9999999999999999999.",
            "99999999999999999999",
            "18446744073709551616",
            "1844674407370955161.6",
            "1234567890.12345678",
            "99999999999999999999999999999999999999",
            "170141183460469231731687303715884105728",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut n: u64 = 1;
        for i in 0..2_000u64 {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
            let digits = n.to_string();
            let cut = (i as usize) % (digits.len() + 1);
            let sign = ["", "-", "+"][(i % 3) as usize];
            texts.push(format!("{sign}{}.{}", &digits[..cut], &digits[cut..]));
            texts.push(format!("{sign}{digits}{digits}"));
        }
        for text in &texts {
            assert_eq!(parse_decimal(text), parsed_slowly(text), "{text:?}");
        }
    }

    #[test]
    fn zoned_timestamps_of_every_width_are_written_as_formatted() {
        let mut micros: i64 = -62_135_596_800_000_000 * 3;
        let mut step: i64 = 1;
        while micros < 400_000_000_000_000_000 {
            for digits in 0..=6 {
                let (year, month, day, in_day) = civil(micros);
                assert_eq!(
                    iso_utc_digits(micros, digits),
                    iso_utc_general(year, month, day, in_day, digits),
                    "{micros} {digits}"
                );
            }
            micros = micros.saturating_add(step * 7_919);
            step = step.saturating_mul(3) % 1_000_000_007 + 1;
        }
    }

    #[test]
    fn timestamps_are_written_digit_by_digit_exactly_as_formatted() {
        let mut micros: i64 = -62_135_596_800_000_000 * 3; // before year 1
        let mut step: i64 = 1;
        while micros < 400_000_000_000_000_000 {
            assert_eq!(iso_utc(micros), formatted(micros), "{micros}");
            micros = micros.saturating_add(step * 7_919);
            step = step.saturating_mul(3) % 1_000_000_007 + 1;
        }
        for micros in [
            0,
            1,
            10,
            999_999,
            1_000_000,
            -1,
            i64::MIN / 2,
            253_402_300_799_999_999,
        ] {
            assert_eq!(iso_utc(micros), formatted(micros), "{micros}");
        }
        assert_eq!(clock(86_400_000_000), "24:00:00", "PostgreSQL's 24:00");
        assert_eq!(clock(3_723_000_050), "01:02:03.00005");
    }

    /// A timestamp as a database sends it in a UTC session: the date and
    /// time of day, and `sent` fraction digits (None: trimmed, as
    /// PostgreSQL sends them).
    fn sent_as_text(micros: i64, sent: Option<usize>) -> String {
        let (year, month, day, in_day) = civil(micros);
        let (seconds, fraction) = (in_day / 1_000_000, in_day % 1_000_000);
        let mut text = format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
            seconds / 3600,
            (seconds / 60) % 60,
            seconds % 60
        );
        let six = format!("{fraction:06}");
        match sent {
            Some(0) => {}
            Some(n) => text.push_str(&format!(".{}", &six[..n])),
            None if fraction == 0 => {}
            None => text.push_str(&format!(".{}", six.trim_end_matches('0'))),
        }
        text
    }

    #[test]
    fn timestamps_sent_as_text_are_moved_into_what_parsing_them_writes() {
        // Years 1 to 9999, every fraction width sent, every width asked.
        let (first, last) = (
            days_from_civil(1, 1, 1) * MICROS_PER_DAY,
            days_from_civil(9999, 12, 31) * MICROS_PER_DAY + MICROS_PER_DAY - 1,
        );
        let mut micros = first;
        let mut step: i64 = 1;
        let mut moved = 0;
        while micros <= last {
            for sent in [None, Some(0), Some(1), Some(3), Some(6)] {
                let text = sent_as_text(micros, sent);
                // What the text says, to the digits it carries.
                let carried = match sent {
                    Some(n) => {
                        let unit = 10i64.pow(6 - n as u32);
                        micros - micros.rem_euclid(unit)
                    }
                    None => micros,
                };
                for digits in 0..=6 {
                    match iso_utc_from_text(text.as_bytes(), digits) {
                        Some(iso) => {
                            moved += 1;
                            assert_eq!(
                                iso,
                                iso_utc_digits(carried, digits as u32),
                                "{text:?} at {digits} digits"
                            );
                        }
                        // Only an untrimmed fraction asked to be trimmed
                        // goes the general way.
                        None => assert!(
                            digits == 0 && text.ends_with('0') && text.contains('.'),
                            "{text:?} at {digits} digits was not moved"
                        ),
                    }
                }
            }
            micros = micros.saturating_add(step * 7_919);
            step = step.saturating_mul(3) % 1_000_000_007 + 1;
        }
        assert!(moved > 10_000, "only {moved} texts moved");
        for (text, digits) in [
            ("0000-01-01 00:00:00", 0),
            ("0000-00-00 00:00:00", 6),
            ("2024-00-10 00:00:00", 0),
            ("2024-13-10 00:00:00", 0),
            ("2024-01-00 00:00:00", 0),
            ("2024-01-32 00:00:00", 0),
            ("2024-01-10 24:00:00", 0),
            ("2024-01-10 10:60:00", 0),
            ("2024-01-10 10:00:60", 0),
            ("2024-01-10T10:00:00", 0),
            ("2024-01-10 10:00:00.", 6),
            ("2024-01-10 10:00:00.1234567", 6),
            ("2024-01-10 10:00:00.12a", 6),
            ("2024-01-10 10:00:00.50", 0),
            ("2024-01-10 10:00:00", -1),
            ("12024-01-10 10:00:00", 0),
            ("2024-1-10 10:00:00", 0),
            ("2024-01-10 10:00", 0),
        ] {
            assert_eq!(iso_utc_from_text(text.as_bytes(), digits), None, "{text:?}");
        }
    }
}
