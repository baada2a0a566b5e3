//! Numbers as SLURM's tools print them: durations (`1-02:03:04.5`), memory sizes (`2.50G`,
//! `6108K`) and counts, plus the words that stand for "no value" (`Unknown`, `None`, ...).
//!
//! Pure functions: a value that cannot be read is `None`, never an error, so one odd field
//! never costs a whole record. TRES strings ([`super::tres`]) are built from these.

/// `s.trim()`, with a fast way out for the usual field, which has nothing to trim: a check
/// of its first and last byte instead of `trim`'s walk over Unicode whitespace (the
/// collector trims ~25 fields a sacct line).
#[inline]
pub fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [a, .., z] if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        [a] if a.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// A value SLURM prints when it has nothing to say.
pub fn is_blank(s: &str) -> bool {
    matches!(
        trim(s),
        "" | "Unknown" | "None" | "N/A" | "n/a" | "INVALID" | "(null)"
    )
}

/// Parses SLURM's durations: `MM:SS.mmm`, `MM:SS`, `HH:MM:SS`, `D-HH:MM:SS`, with optional
/// fractional seconds. `UNLIMITED`, `Partition_Limit`, `INVALID` and empty give `None`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = trim(s);
    // Every blank word begins with something other than a digit.
    if !s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    // Fields are found by byte: `str::split` sets up a searcher per call, which costs more
    // than these few bytes (a duration on every sacct line).
    let (days, rest) = match s.bytes().position(|b| b == b'-') {
        Some(i) => (s[..i].parse::<u64>().ok()?, &s[i + 1..]),
        None => (0, s),
    };
    let mut parts = [0f64; 3];
    let mut count = 0;
    let mut from = 0;
    for (i, b) in rest.bytes().chain([b':']).enumerate() {
        if b != b':' {
            continue;
        }
        if count == 3 {
            return None;
        }
        parts[count] = plain_number(&rest[from..i])?;
        count += 1;
        from = i + 1;
    }
    let secs = match count {
        1 => parts[0],
        2 => parts[0] * 60.0 + parts[1],
        3 => parts[0] * 3600.0 + parts[1] * 60.0 + parts[2],
        _ => return None,
    };
    Some(days as f64 * 86_400.0 + secs)
}

/// Parses a memory size into MiB: `K`, `M`, `G`, `T`, `P` are binary; a bare number is bytes.
pub fn parse_memory_mb(s: &str) -> Option<f64> {
    let s = trim(s);
    if is_blank(s) {
        return None;
    }
    let (num, mult) = match s.as_bytes()[s.len() - 1] {
        b'K' | b'k' => (&s[..s.len() - 1], 1.0 / 1024.0),
        b'M' | b'm' => (&s[..s.len() - 1], 1.0),
        b'G' | b'g' => (&s[..s.len() - 1], 1024.0),
        b'T' | b't' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        b'P' | b'p' => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1.0 / (1024.0 * 1024.0)),
    };
    plain_number(num)
        .map(|v| v * mult)
        .filter(|v| v.is_finite())
}

/// A number as SLURM prints one: digits with at most one decimal point. `f64`'s own parser
/// also takes `1e308`, `inf` and `NaN`, which made infinite CPU times and memory (found by
/// the fuzzer).
fn plain_number(s: &str) -> Option<f64> {
    // Most fields are whole numbers ("00:05:17"): summed digit by digit, exact below 2^53
    // as f64's parser would give them, without its slower general path.
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let n = b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        return Some(n as f64);
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let ok =
        digits > 0 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && digits + 1 >= s.len();
    ok.then(|| s.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

/// Parses a non-negative integer field; `None` for blanks and garbage.
pub fn parse_int(s: &str) -> Option<i64> {
    let s = trim(s);
    if s.is_empty() || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer: huge values must be rejected, not become infinite.
    #[test]
    fn huge_values_are_rejected() {
        assert_eq!(parse_duration("1e308:00:00"), None);
        assert_eq!(parse_duration("1-inf:00:00"), None);
        assert_eq!(parse_duration("01:02:03.5"), Some(3723.5));
        assert_eq!(parse_memory_mb("1e308P"), None);
        assert_eq!(parse_memory_mb("NaNM"), None);
        assert_eq!(parse_memory_mb("1.5G"), Some(1536.0));
        assert_eq!(parse_memory_mb("1..5G"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("00:10.189"), Some(10.189));
        assert_eq!(parse_duration("00:05.448"), Some(5.448));
        assert_eq!(parse_duration("00:00:00"), Some(0.0));
        assert_eq!(parse_duration("01:02:03"), Some(3723.0));
        assert_eq!(parse_duration("2-01:00:00"), Some(2.0 * 86_400.0 + 3600.0));
        assert_eq!(parse_duration("12:34"), Some(754.0));
        assert_eq!(parse_duration("1-00:00:00.500"), Some(86_400.5));
        for bad in [
            "",
            "UNLIMITED",
            "Partition_Limit",
            "INVALID",
            "Unknown",
            "1:2:3:4",
            "a:b",
            "-5",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    /// The digit-by-digit path gives f64's own values, up to its 15-digit limit and past it.
    #[test]
    fn whole_numbers_parse_as_f64_parses_them() {
        for s in [
            "0",
            "7",
            "05",
            "86400",
            "4294967294",
            "999999999999999",
            "1000000000000000",
            "18446744073709551615",
            "123456789012345678901234567890",
        ] {
            assert_eq!(plain_number(s), s.parse::<f64>().ok(), "{s}");
        }
        assert_eq!(plain_number(""), None);
        assert_eq!(plain_number("1a"), None);
    }

    #[test]
    fn memory_units_are_binary_and_bare_is_bytes() {
        assert_eq!(parse_memory_mb("6108K"), Some(6108.0 / 1024.0));
        assert_eq!(parse_memory_mb("100M"), Some(100.0));
        assert_eq!(parse_memory_mb("2.50G"), Some(2560.0));
        assert_eq!(parse_memory_mb("1T"), Some(1_048_576.0));
        assert_eq!(parse_memory_mb("1048576"), Some(1.0));
        assert_eq!(parse_memory_mb("0"), Some(0.0));
        assert_eq!(parse_memory_mb("0.01M"), Some(0.01));
        assert_eq!(parse_memory_mb(""), None);
        assert_eq!(parse_memory_mb("lots"), None);
    }

    #[test]
    fn ints_and_blanks() {
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("-1"), None);
        assert_eq!(parse_int("Unknown"), None);
        assert!(is_blank("(null)") && is_blank(" None ") && !is_blank("0"));
    }

    /// Random texts over the bytes that matter (digits, `-`, `:`, `.`, spaces, Unicode
    /// whitespace and letters): `trim` is `str::trim`, and `parse_duration` reads exactly
    /// what the splitter-based version before it read.
    #[test]
    fn byte_level_parsing_agrees_with_the_std_splitters() {
        fn std_duration(s: &str) -> Option<f64> {
            let s = s.trim();
            if is_blank(s) || !s.as_bytes()[0].is_ascii_digit() {
                return None;
            }
            let (days, rest) = match s.split_once('-') {
                Some((d, r)) => (d.parse::<u64>().ok()?, r),
                None => (0, s),
            };
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() > 3 {
                return None;
            }
            let p: Vec<f64> = parts
                .iter()
                .map(|p| plain_number(p))
                .collect::<Option<_>>()?;
            let secs = match p[..] {
                [s] => s,
                [m, s] => m * 60.0 + s,
                [h, m, s] => h * 3600.0 + m * 60.0 + s,
                _ => return None,
            };
            Some(days as f64 * 86_400.0 + secs)
        }
        let alphabet = [
            "0", "1", "5", "9", "-", ":", ".", " ", "\t", "\u{a0}", "\u{2003}", "x", "é",
        ];
        let mut rng = crate::synth::Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..200_000 {
            let text = rng.text(&alphabet, 11);
            assert_eq!(trim(&text), text.trim(), "{text:?}");
            assert_eq!(
                parse_duration(&text).map(f64::to_bits),
                std_duration(&text).map(f64::to_bits),
                "{text:?}"
            );
        }
    }
}
