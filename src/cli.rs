//! The command-line lexer every subcommand shares, and the value parsers its flags use.
//!
//! Hand-written in the style of `lexopt`: [`Args`] hands out `--flag value`, `--flag=value`
//! and bare flags one at a time, and collects positional arguments on the way; each
//! subcommand matches the flags it knows (`Config::from_args` for `serve`,
//! `ClientConfig::from_args` for `connect`). Mistakes are one-line [`UsageError`]s that `main`
//! prints as `error: …` with exit code 2.
//!
//! Nothing here knows a flag's meaning: that lives with the knob it sets (`config.rs`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A command-line mistake: printed as `error: …` and exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a [`UsageError`] from format arguments.
macro_rules! usage {
    ($($t:tt)*) => { $crate::cli::UsageError(format!($($t)*)) };
}
pub(crate) use usage;

/// A small hand-written argument reader: `--flag value`, `--flag=value`, bare flags.
pub struct Args {
    args: std::vec::IntoIter<String>,
    /// The `value` part of a `--flag=value` just read.
    pending: Option<String>,
    /// Arguments that are not flags, in order.
    pub positional: Vec<String>,
}

impl Args {
    /// Wraps the arguments after the subcommand.
    pub fn new(args: impl IntoIterator<Item = String>) -> Args {
        Args {
            args: args.into_iter().collect::<Vec<_>>().into_iter(),
            pending: None,
            positional: Vec::new(),
        }
    }

    /// The next flag; positional arguments are collected into `positional` on the way.
    pub fn next_flag(&mut self) -> Result<Option<String>, UsageError> {
        if let Some(v) = self.pending.take() {
            return Err(usage!("unexpected value '{v}'"));
        }
        for arg in self.args.by_ref() {
            if !arg.starts_with('-') || arg == "-" {
                self.positional.push(arg);
                continue;
            }
            return Ok(Some(match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    self.pending = Some(value.to_owned());
                    flag.to_owned()
                }
                _ => arg,
            }));
        }
        Ok(None)
    }

    /// The value of `flag`, parsed by `parse`.
    pub fn value<T>(
        &mut self,
        flag: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, UsageError> {
        let raw = match self.pending.take().or_else(|| self.args.next()) {
            Some(v) => v,
            None => return Err(usage!("{flag} needs a value")),
        };
        parse(&raw).map_err(|why| usage!("invalid value '{raw}' for {flag}: {why}"))
    }
}

/// `127.0.0.1:1234`, `[::1]:1234`, `localhost:1234`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no address".to_owned())
}

/// A plain non-negative integer.
pub fn parse_count(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| "expected a whole number".to_owned())
}

/// Splits `64KiB` into 64 and `KiB`; `example` goes into the error message.
fn number_and_unit<'a>(s: &'a str, example: &str) -> Result<(u64, &'a str), String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n = digits.parse().map_err(|_| format!("expected {example}"))?;
    Ok((n, unit))
}

/// `4096`, `64KiB`, `1MiB`, `1G` … (binary multiples, whatever the spelling).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let (n, unit) = number_and_unit(s, "a size like 4096, 64KiB or 1MiB")?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("unknown unit '{unit}' (use KiB, MiB or GiB)")),
    };
    n.checked_mul(1 << shift)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| "too large".to_owned())
}

/// `500ms`, `10s`, `2m`.
pub fn parse_time(s: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(s, "a time like 500ms, 10s or 2m")?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err("the unit must be ms, s or m".to_owned()),
    }
}

/// `error`, `warn`, `info`, `debug`, `trace` or `off`.
pub fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| "expected error, warn, info, debug, trace or off".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(|s| s.to_string()))
    }

    /// `--flag value`, `--flag=value` and bare flags come out in order; the rest is positional.
    #[test]
    fn flags_values_and_positionals_come_out_in_order() {
        let mut a = args(&["ws://x", "--wait", "1s", "--name=ada", "--echo", "extra"]);
        assert_eq!(a.next_flag().unwrap().as_deref(), Some("--wait"));
        assert_eq!(a.value("--wait", parse_time), Ok(Duration::from_secs(1)));
        assert_eq!(a.next_flag().unwrap().as_deref(), Some("--name"));
        assert_eq!(a.value("--name", |v| Ok(v.to_owned())).unwrap(), "ada");
        assert_eq!(a.next_flag().unwrap().as_deref(), Some("--echo"));
        assert_eq!(a.next_flag().unwrap(), None);
        assert_eq!(a.positional, ["ws://x", "extra"]);
    }

    /// A value given to a bare flag (`--echo=1`) is a mistake, not silently dropped.
    #[test]
    fn a_value_on_a_bare_flag_is_an_error() {
        let mut a = args(&["--echo=1"]);
        assert_eq!(a.next_flag().unwrap().as_deref(), Some("--echo"));
        assert!(a
            .next_flag()
            .unwrap_err()
            .0
            .contains("unexpected value '1'"));
    }

    /// Sizes take binary suffixes in any spelling; times need a unit.
    #[test]
    fn sizes_and_times_parse_with_their_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert!(parse_bytes("1TiB").is_err());
        assert_eq!(parse_time("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_time("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_time("10").is_err());
    }
}
