//! The options of `chatloop connect`, their help text and the URL check.
//!
//! Parsed with the same hand-written [`Args`] lexer as `chatloop serve`; a mistake is a
//! one-line [`UsageError`] (exit status 2). The URL is checked here, before any connection,
//! so a typo never looks like a network problem.

use crate::cli::{parse_time, Args, UsageError};
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

/// `chatloop connect --help`.
pub const CONNECT_USAGE: &str = "\
Usage: chatloop connect URL [OPTIONS]

Connects to a chatloop (or any WebSocket) server. Each line of standard input is sent as a
text message; every message received is printed on its own line. Connection events go to
standard error. At the end of input, waits --wait for replies, then closes (code 1000).

  chatloop connect ws://127.0.0.1:1234/kitchen --name ada
  printf 'hello\\n' | chatloop connect ws://127.0.0.1:1234/
  chatloop connect wss://chat.example/kitchen
  chatloop connect wss://192.168.1.20:1234/ --ca board.pem

Options:
  --name NAME     send each line as 'NAME: line', as the browser page does
  --ca FILE       wss://: also trust the certificates in this PEM file (a self-signed
                  server's certificate, or a private CA) [default: the system's roots]
  --wait TIME     after the end of input, how long to wait for replies before closing
                  [default: 0s from a terminal, 1s otherwise]
  -h, --help      print this help

TIME takes a number with a unit: 500ms, 10s, 2m. Empty lines are not sent.
A message that arrives while you type is printed where the cursor is; what you typed is
still sent whole when you press Enter (Ctrl-R redraws it on a line of its own).
Exit status: 0 after a normal close, 1 on errors or when the server closes with another
code, 2 for usage errors, 130 after Ctrl-C.
";

/// What `chatloop connect` was asked to do.
#[derive(Debug)]
pub enum ConnectCommand {
    /// Connect with these options.
    Run(ClientConfig),
    /// Print [`CONNECT_USAGE`].
    Help,
}

/// The options of `chatloop connect`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's URL, `ws://host:port/room` or `wss://…`; checked by
    /// [`ClientConfig::from_args`].
    pub url: String,
    /// For `wss://`: more certificates to trust, from a PEM file (`--ca`).
    pub ca: Option<PathBuf>,
    /// Prefix for every line sent (`NAME: line`), like the browser page's nickname.
    pub name: Option<String>,
    /// After the end of input: time to wait for replies before closing.
    pub wait: Duration,
}

impl ClientConfig {
    /// Parses `chatloop connect`'s arguments (without the subcommand itself).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<ConnectCommand, UsageError> {
        let mut args = Args::new(args);
        let (mut name, mut wait, mut ca) = (None, None, None);
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--name" => name = Some(args.value(&flag, parse_name)?),
                "--wait" => wait = Some(args.value(&flag, parse_time)?),
                "--ca" => ca = Some(args.value(&flag, |v| Ok(PathBuf::from(v)))?),
                "-h" | "--help" => return Ok(ConnectCommand::Help),
                _ => {
                    return Err(UsageError(format!(
                        "unknown option '{flag}' (see 'chatloop connect --help')"
                    )))
                }
            }
        }
        let url = match args.positional.as_slice() {
            [url] => url.clone(),
            [] => {
                return Err(UsageError(
                    "connect needs a URL, like ws://127.0.0.1:1234/".into(),
                ))
            }
            [_, extra, ..] => return Err(UsageError(format!("unexpected argument '{extra}'"))),
        };
        check_url(&url).map_err(|why| UsageError(format!("bad URL '{url}': {why}")))?;
        // Someone typing can leave with Ctrl-D at once; a pipe is over before replies come.
        let wait = wait.unwrap_or(if io::stdin().is_terminal() {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        });
        Ok(ConnectCommand::Run(ClientConfig {
            url,
            ca,
            name,
            wait,
        }))
    }
}

/// `--name`: something visible, on one line (it starts every line sent).
fn parse_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.contains('\n') {
        return Err("a name needs at least one visible character and no line break".into());
    }
    Ok(s.to_owned())
}

/// Where a URL points, as the client uses it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `host:port`, to resolve.
    pub(super) host_port: String,
    /// The host alone (no brackets for IPv6): the name the server's certificate must carry.
    pub(super) host: String,
    /// `wss://`: TLS under the WebSocket.
    pub(super) secure: bool,
}

/// Checks the URL the way the client will use it.
pub(super) fn check_url(url: &str) -> Result<Endpoint, String> {
    let uri: tungstenite::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    // RFC 6455 §3: the default port of ws:// is 80, of wss:// 443.
    let (secure, default_port) = match uri.scheme_str() {
        Some("ws") => (false, 80),
        Some("wss") if cfg!(feature = "tls") => (true, 443),
        Some("wss") => {
            return Err(
                "wss:// needs TLS: this chatloop was built without the `tls` feature".into(),
            )
        }
        _ => return Err("expected ws://HOST:PORT/ROOM or wss://…".into()),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or("no host")?;
    Ok(Endpoint {
        host_port: format!("{host}:{}", uri.port_u16().unwrap_or(default_port)),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        secure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ClientConfig, UsageError> {
        match ClientConfig::from_args(args.iter().map(|s| s.to_string()))? {
            ConnectCommand::Run(c) => Ok(c),
            ConnectCommand::Help => panic!("help"),
        }
    }

    /// URL, name and wait parse in either flag spelling, in any order.
    #[test]
    fn url_name_and_wait_parse() {
        let c = parse(&[
            "--name=ada",
            "ws://127.0.0.1:1234/kitchen",
            "--wait",
            "250ms",
        ])
        .unwrap();
        assert_eq!(c.url, "ws://127.0.0.1:1234/kitchen");
        assert_eq!(c.name.as_deref(), Some("ada"));
        assert_eq!(c.wait, Duration::from_millis(250));
    }

    /// The URL check gives host:port, with ws://'s default port 80 and wss://'s 443.
    #[test]
    fn url_check_gives_host_and_port() {
        let host_port = |url| check_url(url).unwrap().host_port;
        assert_eq!(host_port("ws://127.0.0.1:1234/"), "127.0.0.1:1234");
        assert_eq!(host_port("ws://example.org/room"), "example.org:80");
        assert_eq!(host_port("ws://[::1]:9/"), "[::1]:9");
        #[cfg(feature = "tls")]
        {
            let secure = check_url("wss://[::1]/").unwrap();
            assert_eq!(
                (secure.host_port.as_str(), secure.host.as_str()),
                ("[::1]:443", "::1")
            );
            assert!(secure.secure);
        }
    }

    /// Bad URLs, names and arguments are usage errors that say what is wrong.
    #[test]
    fn mistakes_are_usage_errors() {
        let err = |args: &[&str]| parse(args).unwrap_err().0;
        assert!(err(&[]).contains("needs a URL"));
        assert!(err(&["http://h/"]).contains("expected ws://"));
        #[cfg(not(feature = "tls"))]
        assert!(err(&["wss://h/"]).contains("tls"));
        assert!(err(&["ws://"]).contains("bad URL"));
        assert!(err(&["ws://h/", "ws://i/"]).contains("unexpected argument"));
        assert!(err(&["ws://h/", "--name", " "]).contains("--name"));
        assert!(err(&["ws://h/", "--wait", "1"]).contains("--wait"));
        assert!(err(&["ws://h/", "--bogus"]).contains("--bogus"));
    }
}
