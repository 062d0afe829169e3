//! The values of `chatloop bench`'s flags: whole numbers, sizes and times.
//!
//! The spellings are the ones `chatloop serve` accepts, so one habit works for both commands:
//! a size is a plain number of bytes or takes a binary suffix (`64KiB`, `1MiB`; `K`, `KB`,
//! `M`, `MB`… mean the same), a time always takes its unit (`500ms`, `10s`, `2m`). Each
//! parser returns the reason a value is wrong; [`cli`](crate::cli) puts the flag's name in
//! front of it.

use std::time::Duration;

/// The size suffixes (any case) and the power of two each stands for.
const SIZE_UNITS: [(&[&str], u32); 4] = [
    (&["", "b"], 0),
    (&["k", "kb", "kib"], 10),
    (&["m", "mb", "mib"], 20),
    (&["g", "gb", "gib"], 30),
];

/// How a number of one time unit becomes a duration.
type ToDuration = fn(u64) -> Duration;

/// The time units (exact spelling) and their conversions.
const TIME_UNITS: [(&str, ToDuration); 3] = [
    ("ms", Duration::from_millis),
    ("s", Duration::from_secs),
    ("m", minutes),
];

/// A plain non-negative integer: `100`, `20000`.
pub fn count(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| "expected a whole number".to_owned())
}

/// Bytes: `4096`, `64KiB`, `1MiB`, `1G` … (binary multiples, whatever the spelling).
pub fn size(s: &str) -> Result<usize, String> {
    let (n, suffix) = leading_number(s).ok_or("expected a size like 4096, 64KiB or 1MiB")?;
    let lower = suffix.to_ascii_lowercase();
    let (_, shift) = SIZE_UNITS
        .iter()
        .find(|(names, _)| names.contains(&lower.as_str()))
        .ok_or_else(|| format!("unknown unit '{suffix}' (use KiB, MiB or GiB)"))?;
    n.checked_mul(1 << shift)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| "too large".to_owned())
}

/// A time with its unit: `500ms`, `10s`, `2m`.
pub fn time(s: &str) -> Result<Duration, String> {
    let (n, unit) = leading_number(s).ok_or("expected a time like 500ms, 10s or 2m")?;
    let (_, of) = TIME_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or("the unit must be ms, s or m")?;
    Ok(of(n))
}

/// `n` minutes (saturating: an absurdly long time is still a time).
fn minutes(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(60))
}

/// The decimal digits at the front of `s` as a number, and what follows them; `None` if `s`
/// does not start with a number that fits in 64 bits.
fn leading_number(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    Some((s[..digits].parse().ok()?, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes take binary suffixes in any spelling; times need one of three units.
    #[test]
    fn sizes_and_times_parse_with_their_units() {
        assert_eq!(size("64"), Ok(64));
        assert_eq!(size("64b"), Ok(64));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("1mb"), Ok(1 << 20));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert_eq!(time("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(time("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(time("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(count("20000"), Ok(20_000));
    }

    /// Each mistake says what was expected.
    #[test]
    fn mistakes_say_what_was_expected() {
        assert!(size("KiB").unwrap_err().contains("expected a size"));
        assert_eq!(
            size("64XB").unwrap_err(),
            "unknown unit 'XB' (use KiB, MiB or GiB)"
        );
        assert_eq!(size("99999999999G").unwrap_err(), "too large");
        assert_eq!(time("10").unwrap_err(), "the unit must be ms, s or m");
        assert!(time("s").unwrap_err().contains("expected a time"));
        assert!(count("-1").is_err() && count("1.5").is_err());
    }
}
