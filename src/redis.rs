//! Just enough RESP (the REdis Serialization Protocol, version 2) to publish and subscribe.
//!
//! The bridge ([`crate::bridge`]) talks to Redis over two plain TCP connections; this module is
//! the byte-level half of that conversation and never sees a socket. It has two parts:
//!
//! - [`command`] encodes a command as an array of bulk strings (`*N\r\n$len\r\nbytes\r\n…`),
//!   the only form Redis accepts from clients. Bulk strings carry their length, so any bytes —
//!   a binary WebSocket frame included — travel unchanged.
//! - [`parse`] is a push parser in the style of `httparse`: hand it the bytes read so far and
//!   it answers [`Status::Complete`] with one [`Value`] and how many bytes it used, or
//!   [`Status::Partial`] ("need more bytes", which is not an error). Values borrow from the
//!   input, so a parse that ends `Partial` costs nothing to redo when more bytes arrive.
//!
//! What a subscriber hears (RESP2, <https://redis.io/docs/latest/develop/reference/protocol-spec/>):
//!
//! ```text
//!   SUBSCRIBE ch          → *3 $9 subscribe   $2 ch  :1        (one reply per channel)
//!   a PUBLISH elsewhere   → *3 $7 message     $2 ch  $N <payload>
//!   UNSUBSCRIBE ch        → *3 $11 unsubscribe $2 ch :0
//!   PING (subscribed)     → *2 $4 pong $0 ""     PING (not subscribed) → +PONG
//! ```
//!
//! DoS warning: the length prefixes come from the network. [`parse`] refuses a bulk string over
//! the `max_bulk` it is given and arrays over [`MAX_ARRAY`] elements or [`MAX_DEPTH`] levels,
//! before reserving anything, so a broken or hostile peer cannot make the reader buffer grow
//! without bound.

use std::fmt;

/// Most elements in one array we accept. Pub/sub replies have 3; a `SUBSCRIBE` of many
/// channels is answered with one 3-element array per channel, never one big array.
pub const MAX_ARRAY: usize = 64;

/// Deepest nesting of arrays we accept. Pub/sub replies are flat (depth 1).
pub const MAX_DEPTH: usize = 4;

/// Longest simple string, error or integer line we accept, in bytes (Redis' error messages are
/// a few dozen bytes).
pub const MAX_LINE: usize = 4096;

/// One RESP2 value, borrowing its bytes from the parser's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// `+OK`: a status reply.
    Simple(&'a [u8]),
    /// `-ERR …`: an error reply; the caller treats the link as faulty.
    Error(&'a [u8]),
    /// `:3`: an integer reply (e.g. how many subscribers a `PUBLISH` reached).
    Integer(i64),
    /// `$N` then N bytes: binary-safe; `None` is the null bulk string (`$-1`).
    Bulk(Option<&'a [u8]>),
    /// `*N` then N values; `None` is the null array (`*-1`).
    Array(Option<Vec<Value<'a>>>),
}

/// What [`parse`] made of the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// One whole value, and how many bytes of the input it took.
    Complete(T, usize),
    /// The input ends inside a value: read more and parse again from the same start.
    Partial,
}

/// The peer broke the protocol (or passed our limits). The caller drops the connection and
/// reconnects: there is no way to find the next value boundary in a corrupt stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// A type byte other than `+ - : $ *` (RESP3 types included: we never ask for RESP3).
    UnknownType(u8),
    /// A length or integer that is not a decimal number, or a missing `\r\n`.
    Malformed,
    /// A bulk string over `max_bulk` bytes, or a line over [`MAX_LINE`].
    TooLong,
    /// An array over [`MAX_ARRAY`] elements or nested deeper than [`MAX_DEPTH`].
    TooComplex,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::UnknownType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            RespError::Malformed => f.write_str("malformed RESP"),
            RespError::TooLong => f.write_str("RESP string over our limit"),
            RespError::TooComplex => f.write_str("RESP array over our limit"),
        }
    }
}

impl std::error::Error for RespError {}

/// Appends `args` to `out` as one command: an array of bulk strings.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.reserve(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    array_header(out, args.len());
    for arg in args {
        bulk(out, &[arg]);
    }
}

/// Appends the header of an array of `n` values; the values follow (see [`bulk`]).
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    push_header(out, b'*', n);
}

/// Appends one bulk string made of `parts` laid end to end, so a caller can send a prefix and
/// a payload as one argument without first copying them together.
pub fn bulk(out: &mut Vec<u8>, parts: &[&[u8]]) {
    push_header(out, b'$', parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// Bytes [`command`] would append for arguments of these lengths, without building it (to
/// check a queue's room first).
pub fn command_len(arg_lens: &[usize]) -> usize {
    header_len(arg_lens.len())
        + arg_lens
            .iter()
            .map(|&n| header_len(n) + n + 2)
            .sum::<usize>()
}

/// `*3\r\n` or `$12\r\n`.
fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    // Formatting an integer into a Vec cannot fail.
    std::io::Write::write_fmt(out, format_args!("{n}\r\n")).expect("writing to a Vec");
}

/// Length of the header `push_header` writes for `n`.
fn header_len(n: usize) -> usize {
    1 + n.checked_ilog10().map_or(1, |d| d as usize + 1) + 2
}

/// Parses one value from the start of `buf`. Bulk strings longer than `max_bulk` are refused.
pub fn parse(buf: &[u8], max_bulk: usize) -> Result<Status<Value<'_>>, RespError> {
    parse_at(buf, 0, max_bulk, 0)
}

/// Parses one value starting at `buf[at..]`; `Complete`'s count is the end offset in `buf`.
fn parse_at(
    buf: &[u8],
    at: usize,
    max_bulk: usize,
    depth: usize,
) -> Result<Status<Value<'_>>, RespError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(Status::Partial);
    };
    let Some((line, next)) = line(buf, at + 1)? else {
        return Ok(Status::Partial);
    };
    let value = match kind {
        b'+' => Value::Simple(line),
        b'-' => Value::Error(line),
        b':' => Value::Integer(integer(line)?),
        b'$' => {
            let len = integer(line)?;
            if len == -1 {
                return Ok(Status::Complete(Value::Bulk(None), next));
            }
            let len = usize::try_from(len).map_err(|_| RespError::Malformed)?;
            if len > max_bulk {
                return Err(RespError::TooLong);
            }
            let end = next + len;
            if buf.len() < end + 2 {
                return Ok(Status::Partial);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(RespError::Malformed);
            }
            return Ok(Status::Complete(
                Value::Bulk(Some(&buf[next..end])),
                end + 2,
            ));
        }
        b'*' => {
            let len = integer(line)?;
            if len == -1 {
                return Ok(Status::Complete(Value::Array(None), next));
            }
            let len = usize::try_from(len).map_err(|_| RespError::Malformed)?;
            if len > MAX_ARRAY || depth >= MAX_DEPTH {
                return Err(RespError::TooComplex);
            }
            let mut items = Vec::with_capacity(len);
            let mut pos = next;
            for _ in 0..len {
                match parse_at(buf, pos, max_bulk, depth + 1)? {
                    Status::Complete(v, end) => {
                        items.push(v);
                        pos = end;
                    }
                    Status::Partial => return Ok(Status::Partial),
                }
            }
            return Ok(Status::Complete(Value::Array(Some(items)), pos));
        }
        other => return Err(RespError::UnknownType(other)),
    };
    Ok(Status::Complete(value, next))
}

/// The line starting at `buf[at..]` up to `\r\n`, and the offset after it; `None` if the
/// `\r\n` has not arrived yet.
fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    let rest = buf.get(at..).unwrap_or(&[]);
    let scan = &rest[..rest.len().min(MAX_LINE + 2)];
    match scan.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some((&rest[..i], at + i + 2))),
        None if rest.len() > MAX_LINE => Err(RespError::TooLong),
        None => Ok(None),
    }
}

/// A signed decimal integer, as in `:42` or `$-1`.
fn integer(digits: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Value<'_>, usize) {
        match parse(buf, 1 << 20).unwrap() {
            Status::Complete(v, n) => (v, n),
            Status::Partial => panic!("partial: {buf:?}"),
        }
    }

    /// A command is an array of bulk strings, and `command_len` predicts its size.
    #[test]
    fn command_is_an_array_of_bulk_strings() {
        let mut out = Vec::new();
        let args: [&[u8]; 3] = [b"PUBLISH", b"chatloop:room:/", b"a\r\nb"];
        command(&mut out, &args);
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$15\r\nchatloop:room:/\r\n$4\r\na\r\nb\r\n"
        );
        assert_eq!(command_len(&[7, 15, 4]), out.len());
        let big = vec![0u8; 12345];
        assert_eq!(command_len(&[big.len()]), {
            let mut o = Vec::new();
            command(&mut o, &[&big]);
            o.len()
        });
        assert_eq!(command_len(&[0]), b"*1\r\n$0\r\n\r\n".len());
        let mut parts = Vec::new();
        array_header(&mut parts, 1);
        bulk(&mut parts, &[b"ab", b"", b"c"]);
        assert_eq!(parts, b"*1\r\n$3\r\nabc\r\n");
    }

    /// Every reply type Redis sends us parses, and the count says where the next one starts.
    #[test]
    fn each_reply_type_parses() {
        assert_eq!(complete(b"+OK\r\n"), (Value::Simple(b"OK"), 5));
        assert_eq!(
            complete(b"-ERR unknown\r\nrest"),
            (Value::Error(b"ERR unknown"), 14)
        );
        assert_eq!(complete(b":-12\r\n"), (Value::Integer(-12), 6));
        assert_eq!(complete(b"$-1\r\n"), (Value::Bulk(None), 5));
        assert_eq!(complete(b"$0\r\n\r\n"), (Value::Bulk(Some(b"")), 6));
        assert_eq!(complete(b"*-1\r\n"), (Value::Array(None), 5));
        assert_eq!(complete(b"*0\r\n"), (Value::Array(Some(vec![])), 4));
    }

    /// A pub/sub message parses into its three parts, and binary payloads (CR, LF, NUL, 0xFF)
    /// come out byte for byte: bulk strings are length-prefixed, not delimited.
    #[test]
    fn pubsub_message_with_binary_payload_survives() {
        let payload: Vec<u8> = (0..=255).chain(*b"\r\n\r\n").collect();
        let mut wire =
            format!("*3\r\n$7\r\nmessage\r\n$3\r\n/ab\r\n${}\r\n", payload.len()).into_bytes();
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(b"\r\n");
        let (v, n) = complete(&wire);
        assert_eq!(n, wire.len());
        assert_eq!(
            v,
            Value::Array(Some(vec![
                Value::Bulk(Some(b"message")),
                Value::Bulk(Some(b"/ab")),
                Value::Bulk(Some(&payload)),
            ]))
        );
    }

    /// Every strict prefix of a value is `Partial`, never an error and never a wrong value.
    #[test]
    fn every_prefix_is_partial() {
        let wire = b"*3\r\n$7\r\nmessage\r\n$1\r\n/\r\n$5\r\nh\r\nlo\r\n";
        for cut in 0..wire.len() {
            assert_eq!(
                parse(&wire[..cut], 1 << 20),
                Ok(Status::Partial),
                "cut at {cut}"
            );
        }
        assert!(matches!(
            parse(wire, 1 << 20),
            Ok(Status::Complete(_, n)) if n == wire.len()
        ));
    }

    /// Two values back to back parse one after the other.
    #[test]
    fn pipelined_replies_parse_in_turn() {
        let wire = b":1\r\n:2\r\n+PONG\r\n";
        let (a, n) = complete(wire);
        let (b, m) = complete(&wire[n..]);
        let (c, _) = complete(&wire[n + m..]);
        assert_eq!(
            (a, b, c),
            (Value::Integer(1), Value::Integer(2), Value::Simple(b"PONG"))
        );
    }

    /// Lengths from the network are checked before anything is buffered or allocated.
    #[test]
    fn hostile_lengths_are_refused_early() {
        assert_eq!(parse(b"$1000\r\n", 999), Err(RespError::TooLong));
        assert_eq!(parse(b"*100000\r\n", 1024), Err(RespError::TooComplex));
        assert_eq!(
            parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 1024),
            Err(RespError::TooComplex)
        );
        let long_line = [b'+'; MAX_LINE + 8];
        assert_eq!(parse(&long_line, 1024), Err(RespError::TooLong));
    }

    /// Garbage is an error, not a hang waiting for more bytes.
    #[test]
    fn garbage_is_an_error() {
        assert_eq!(parse(b"?\r\n", 10), Err(RespError::UnknownType(b'?')));
        assert_eq!(parse(b":12a\r\n", 10), Err(RespError::Malformed));
        assert_eq!(parse(b"$-2\r\n", 10), Err(RespError::Malformed));
        assert_eq!(parse(b"$2\r\nabXY", 10), Err(RespError::Malformed));
        assert_eq!(parse(b">1\r\n", 10), Err(RespError::UnknownType(b'>')));
    }
}
