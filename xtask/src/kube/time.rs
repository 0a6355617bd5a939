//! Timestamps as the API server writes them (RFC 3339), without a date-time crate.

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn rfc3339_secs(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// `(seconds, nanoseconds)` since the epoch of an RFC 3339 timestamp with any fraction (kubectl's and
/// docker's `--timestamps` write RFC 3339 with nanoseconds, trailing zeros dropped).
pub fn rfc3339_nanos(s: &str) -> Option<(i64, u32)> {
    let secs = rfc3339_secs(s)?;
    let nanos = match s.get(19..).and_then(|r| r.strip_prefix('.')) {
        Some(frac) => {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(9)
                .collect();
            format!("{digits:0<9}").parse::<u32>().ok()?
        }
        None => 0,
    };
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_secs("2026-11-25T21:40:03Z"), Some(1_795_642_803));
        assert_eq!(
            rfc3339_secs("2023-07-10T05:31:39.694297Z"),
            rfc3339_secs("2023-07-10T05:31:39Z")
        );
        assert_eq!(
            rfc3339_secs("2023-07-10T07:31:39+02:00"),
            rfc3339_secs("2023-07-10T05:31:39Z")
        );
        assert_eq!(rfc3339_secs("garbage"), None);
        assert_eq!(
            rfc3339_nanos("2026-12-01T10:00:00.1234Z"),
            Some((1_796_119_200, 123_400_000))
        );
        assert!(
            rfc3339_nanos("2026-12-01T10:00:00.9Z")
                > rfc3339_nanos("2026-12-01T10:00:00.123456789Z")
        );
    }
}
