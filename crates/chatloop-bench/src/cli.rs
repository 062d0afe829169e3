//! The command line of `chatloop bench`: its usage text, its flags and their values, and the
//! whole command (parse, run, print).
//!
//! [`lexopt`] splits the arguments into flags and values; what each flag means, its unit and
//! its checks are here and in [`units`]. A mistake is one line, [`Error::Usage`],
//! which the `chatloop` binary prints as `error: …` with exit code 2. Values are read after
//! every flag has been seen, because the defaults depend on the scenario, which may come last:
//! `chatloop bench --clients 50 ramp`.

use crate::options::{Options, Scenario};
use crate::stamp::MessageKind;
use crate::units;
use std::fmt;
use std::io;

/// `chatloop bench --help`.
pub const USAGE: &str = "\
Usage: chatloop bench SCENARIO --url ws[s]://HOST:PORT/ROOM [OPTIONS]
       chatloop bench compare --servers … --start … (see 'chatloop bench compare --help')

Load-tests a WebSocket chat or echo server from one thread (one mio loop, thousands of
connections). Scenarios:
  fanout    C clients in one room; S of them send M-byte messages, every other client
            receives. Reports deliveries/s, loss, per-sender order and latency.
  echo      C clients, one message in flight each (for 'chatloop serve --echo'): round trips/s
            and round-trip time.
  idle      open C connections and hold them; with --pid, the server's memory per connection.
  connect   open, upgrade and close connections (--concurrency at once): handshakes/s.
  ramp      add --step clients at a time; at each step S senders broadcast at --rate for
            --duration; stop when p95 latency passes --limit. Reports the largest passing step.

Options:
  --url URL               server and room, ws:// or wss:// [default: ws://127.0.0.1:1234/]
  --ca FILE               wss://: also trust the certificates in this PEM file (a
                          self-signed server, a test CA) [default: the system's roots]
  --clients N             connections (ramp: the most to try) [default: 100; ramp: 10000]
  --senders N             fanout/ramp: clients that send [default: 1]
  --size BYTES            message size, at least 16 (--text: 32) [default: 64]
  --text                  send Text messages, the stamp in hex (for servers that relay only
                          text, like Qt's simplechat) [default: binary]
  --rate N                fanout/ramp: messages/s per sender [fanout default: closed loop;
                          ramp default: 10]
  --window N              closed loop: a sender's messages that have not reached every
                          other client yet, at most [default: 32]
  --duration TIME         measured time (ramp: per step; idle: hold time) [default: 10s]
  --warmup TIME           unmeasured time before it [default: 2s; ramp: 500ms]
  --limit TIME            ramp: the p95 latency that ends the ramp [default: 500ms]
  --max-lag TIME          ramp: how far a sender may fall behind its schedule before the
                          step fails (the generator could not keep up) [default: 50ms]
  --step N                ramp: clients added per step [default: 500]
  --concurrency N         handshakes in flight at once [default: 100]
  --sources N             bind clients to 127.0.0.1 … 127.0.0.N round-robin (one source
                          address has ~28k ports) [default: 1 per 25000 clients]
  --pid PID               the server's pid: report its CPU use and memory (from /proc)
  --json                  print one JSON line instead of the table
  --quiet                 no progress line on stderr
  -h, --help              print this help

Without --rate the loop is closed: each sender keeps at most --window messages in flight,
a message being in flight until every other client has received it.
";

/// Flags that take a value (`--flag VALUE` or `--flag=VALUE`). `--json`, `--quiet` and
/// `--text` take none.
const WITH_VALUE: [&str; 15] = [
    "--url",
    "--clients",
    "--senders",
    "--size",
    "--rate",
    "--window",
    "--duration",
    "--warmup",
    "--limit",
    "--max-lag",
    "--step",
    "--concurrency",
    "--sources",
    "--pid",
    "--ca",
];

/// What `chatloop bench` was asked to do.
#[derive(Debug)]
pub enum Command {
    /// Run with these options.
    Run(Box<Options>),
    /// Print [`USAGE`].
    Help,
}

/// Why `chatloop bench` stopped early; the caller prints `error: {it}`.
#[derive(Debug)]
pub enum Error {
    /// A command-line mistake, as one line: exit code 2.
    Usage(String),
    /// The run could not start (no address, no poller) or the poller failed: exit code 1.
    /// Failed connections are not this: they are counted in the report.
    Run(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(why) => f.write_str(why),
            Error::Run(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// `chatloop bench ARGS…` (the arguments after `bench`): parses them, runs the scenario and
/// prints the report on stdout, as a table or, with `--json`, one JSON line.
pub fn main(args: impl IntoIterator<Item = String>) -> Result<(), Error> {
    let mut args = args.into_iter().peekable();
    if args.peek().map(String::as_str) == Some("compare") {
        return compare(args.skip(1));
    }
    let opts = match parse(args)? {
        Command::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Command::Run(opts) => opts,
    };
    let report = crate::run(&opts).map_err(Error::Run)?;
    if opts.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// `chatloop bench compare ARGS…`: runs the comparison and prints its summary on stdout.
fn compare(args: impl IntoIterator<Item = String>) -> Result<(), Error> {
    use crate::compare::{self, Plan};
    match Plan::from_args(args).map_err(Error::Usage)? {
        None => print!("{}", compare::plan::USAGE),
        Some(plan) => print!("{}", compare::run(&plan).map_err(Error::Run)?),
    }
    Ok(())
}

/// Parses `chatloop bench`'s arguments (without `bench` itself).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(args);
    let mut positional = Vec::new();
    let mut flags = Vec::new();
    while let Some(arg) = parser.next().map_err(lex_error)? {
        let flag = match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(v) => {
                positional.push(v.to_string_lossy().into_owned());
                continue;
            }
            Long(name) => format!("--{name}"),
            Short(c) => format!("-{c}"),
        };
        let value = match flag.as_str() {
            "--json" | "--quiet" | "--text" => String::new(),
            f if WITH_VALUE.contains(&f) => parser
                .value()
                .map_err(lex_error)?
                .to_string_lossy()
                .into_owned(),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown option '{flag}' (see 'chatloop bench --help')"
                )))
            }
        };
        flags.push((flag, value));
    }
    let scenario = match positional.first() {
        Some(name) => Scenario::from_name(name).ok_or_else(|| {
            Error::Usage(format!(
                "unknown scenario '{name}' (see 'chatloop bench --help')"
            ))
        })?,
        None => {
            return Err(Error::Usage(
                "which scenario? (see 'chatloop bench --help')".into(),
            ))
        }
    };
    if let Some(extra) = positional.get(1) {
        return Err(Error::Usage(format!("unexpected argument '{extra}'")));
    }
    let mut o = Options::new(scenario, "ws://127.0.0.1:1234/");
    for (flag, value) in &flags {
        set(&mut o, flag, value)
            .map_err(|why| Error::Usage(format!("invalid value '{value}' for {flag}: {why}")))?;
    }
    o.validate().map_err(Error::Usage)?;
    Ok(Command::Run(Box::new(o)))
}

/// Sets the option `flag` (one [`WITH_VALUE`], `--json`, `--quiet` or `--text`) from `value`; the
/// error says why the value is wrong.
fn set(o: &mut Options, flag: &str, value: &str) -> Result<(), String> {
    let small = |n: usize, what: &str| u32::try_from(n).map_err(|_| what.to_owned());
    match flag {
        "--url" => o.url = value.to_owned(),
        "--clients" => o.clients = units::count(value)?,
        "--senders" => o.senders = units::count(value)?,
        "--size" => o.size = units::size(value)?,
        "--rate" => {
            let r: f64 = value
                .parse()
                .map_err(|_| "expected messages per second".to_owned())?;
            o.rate = Some(r);
        }
        "--window" => o.window = small(units::count(value)?, "too large")?,
        "--duration" => o.duration = units::time(value)?,
        "--warmup" => o.warmup = units::time(value)?,
        "--limit" => o.limit = units::time(value)?,
        "--max-lag" => o.max_lag = units::time(value)?,
        "--step" => o.step = units::count(value)?,
        "--concurrency" => o.concurrency = units::count(value)?,
        "--sources" => o.sources = Some(units::count(value)?),
        "--pid" => o.pid = Some(small(units::count(value)?, "not a pid")?),
        "--ca" => o.ca = Some(value.into()),
        "--json" => o.json = true,
        "--quiet" => o.progress = false,
        "--text" => o.kind = MessageKind::Text,
        // `parse` only passes the flags above.
        _ => unreachable!("unhandled flag {flag}"),
    }
    Ok(())
}

/// The lexer's complaints in the words `chatloop serve` uses for the same mistakes.
fn lex_error(e: lexopt::Error) -> Error {
    Error::Usage(match e {
        lexopt::Error::UnexpectedValue { value, .. } => {
            format!("unexpected value '{}'", value.to_string_lossy())
        }
        lexopt::Error::MissingValue { option: Some(flag) } => format!("{flag} needs a value"),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `a` as `chatloop bench`'s arguments.
    fn args(a: &[&str]) -> Result<Command, Error> {
        parse(a.iter().map(|s| s.to_string()))
    }

    /// Options parse in both spellings, in any order; `--help` wins.
    #[test]
    fn options_parse_in_any_order() {
        let Ok(Command::Run(o)) = args(&[
            "--clients",
            "20",
            "fanout",
            "--senders=2",
            "--rate",
            "5",
            "--json",
            "--size=1KiB",
            "--duration",
            "2s",
        ]) else {
            panic!("valid arguments");
        };
        assert_eq!(o.scenario, Scenario::Fanout);
        assert_eq!(
            (o.clients, o.senders, o.rate, o.json, o.size),
            (20, 2, Some(5.0), true, 1024)
        );
        assert_eq!(o.duration, std::time::Duration::from_secs(2));
        assert!(matches!(args(&["--help"]), Ok(Command::Help)));
        assert!(args(&["fanout", "--bogus", "-h"]).is_err());
        assert!(matches!(
            args(&["fanout", "-h", "--bogus"]),
            Ok(Command::Help)
        ));
    }

    /// Each mistake is one line that names the flag or argument.
    #[test]
    fn mistakes_name_the_flag() {
        let error = |a: &[&str]| args(a).unwrap_err().to_string();
        assert_eq!(
            error(&["fanout", "--bogus"]),
            "unknown option '--bogus' (see 'chatloop bench --help')"
        );
        assert_eq!(
            error(&["nope"]),
            "unknown scenario 'nope' (see 'chatloop bench --help')"
        );
        assert_eq!(error(&[]), "which scenario? (see 'chatloop bench --help')");
        assert_eq!(error(&["echo", "idle"]), "unexpected argument 'idle'");
        assert_eq!(error(&["fanout", "--url"]), "--url needs a value");
        assert_eq!(error(&["fanout", "--json=yes"]), "unexpected value 'yes'");
        assert_eq!(
            error(&["fanout", "--size", "8"]),
            "--size must be at least 16 (sender id, sequence number, send time)"
        );
        assert_eq!(
            error(&["fanout", "--duration", "10"]),
            "invalid value '10' for --duration: the unit must be ms, s or m"
        );
        assert_eq!(
            error(&["fanout", "--pid", "99999999999"]),
            "invalid value '99999999999' for --pid: not a pid"
        );
        assert!(error(&["fanout", "--senders", "0"]).contains("--senders"));
    }
}
