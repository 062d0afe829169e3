//! Standard input for the client's loop: polled without `O_NONBLOCK`, cut into lines.
//!
//! **Why not `O_NONBLOCK`.** The usual way to poll stdin is to make it non-blocking, but
//! `O_NONBLOCK` belongs to the *open file description*, which a terminal shares with our
//! stdout, our stderr and the shell that started us: setting it would make our own writes to
//! the terminal fail with `WouldBlock` when it is busy, and leave the shell's terminal
//! non-blocking if we died before restoring it.
//!
//! **One `read` per readiness.** So stdin stays blocking, and we read it only when the poller
//! says it is readable, exactly once (a pipe returns what it holds, up to the buffer; a
//! terminal in canonical mode returns one line), then re-register it. mio's readiness is
//! edge-triggered, but re-registering (`EPOLL_CTL_MOD` on Linux) re-arms it: if more input is
//! already waiting, the next poll reports it again, so nothing is left unread.
//! What can go wrong: a spurious readiness (mio allows them; Linux does not produce them for
//! pipes and terminals) would block that one read until input arrives.
//!
//! **Files.** A regular file or `/dev/null` cannot be registered at all (`epoll_ctl` says
//! `EPERM`), and never blocks: such input is "always ready" and read whenever the loop wants
//! more.
//!
//! [`Lines`] is the pure part: bytes in, whole lines out, bounded by [`MAX_LINE_BYTES`].

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};

/// Bytes taken from standard input per read. A longer line arrives over several reads.
const STDIN_CHUNK: usize = 16 << 10;

/// A line longer than this is sent as it stands, in pieces: the server's default
/// `--max-message-bytes` is 64 KiB, so a longer message would be refused (1009) anyway.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Standard input, registered with the client's poller when it can be.
pub struct Input {
    /// A duplicate of fd 0: reading it is exactly one `read` syscall, with no hidden buffer
    /// (std's `Stdin` keeps one). `None` once input has ended.
    file: Option<File>,
    /// Its token in the poller.
    token: Token,
    /// Registered with the poller. `false` for a regular file or `/dev/null`, which epoll
    /// refuses and which never block: those are always "ready".
    polled: bool,
    /// The poller said readable and we have not read since (readiness is edge-triggered, so
    /// it is remembered until used). Set by the loop.
    pub ready: bool,
    /// Cuts what we read into lines.
    lines: Lines,
}

impl Input {
    /// Duplicates fd 0 and registers it under `token` if the poller accepts it.
    pub fn open(registry: &Registry, token: Token) -> io::Result<Input> {
        let mut input = Input {
            file: None,
            token,
            polled: false,
            ready: false,
            lines: Lines::default(),
        };
        // A closed fd 0 is simply no input.
        let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
            return Ok(input);
        };
        let file = File::from(fd);
        match registry.register(&mut SourceFd(&file.as_raw_fd()), token, Interest::READABLE) {
            Ok(()) => input.polled = true,
            // epoll_ctl(2): EPERM "the target file does not support epoll" (regular files).
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => input.ready = true,
            Err(e) => return Err(e),
        }
        input.file = Some(file);
        Ok(input)
    }

    /// True until the end of input has been read.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// True for input that is never polled (a file): the loop must not sleep while it waits.
    pub fn always_ready(&self) -> bool {
        self.is_open() && !self.polled
    }

    /// Reads once (see the module docs) and appends the complete lines to `out`. Returns
    /// `true` at the end of input, after appending the unfinished last line, if any.
    pub fn read_lines(&mut self, registry: &Registry, out: &mut Vec<String>) -> io::Result<bool> {
        let Some(file) = &mut self.file else {
            return Ok(true);
        };
        let mut buf = [0u8; STDIN_CHUNK];
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read input: {e}"))),
        };
        self.ready = !self.polled;
        if n == 0 {
            self.lines.finish(out);
            if self.polled {
                let _ = registry.deregister(&mut SourceFd(&file.as_raw_fd()));
            }
            self.file = None;
            return Ok(true);
        }
        self.lines.push(&buf[..n], out);
        if self.polled {
            // Re-arm: if more input is already waiting, the next poll reports it again.
            registry.reregister(
                &mut SourceFd(&file.as_raw_fd()),
                self.token,
                Interest::READABLE,
            )?;
        }
        Ok(false)
    }
}

/// Bytes in, lines out: the start of an unfinished line is kept, up to [`MAX_LINE_BYTES`].
#[derive(Debug, Default)]
pub struct Lines {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl Lines {
    /// Appends every line that `chunk` completes to `out`. A line that grows past
    /// [`MAX_LINE_BYTES`] is cut there (at a character boundary) and sent in pieces.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<String>) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&chunk[..end]);
            emit(&std::mem::take(&mut self.partial), out);
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
        while self.partial.len() > MAX_LINE_BYTES {
            // Cut before a character that the limit would split, so no piece ends mid-UTF-8.
            let mut cut = MAX_LINE_BYTES;
            while cut > MAX_LINE_BYTES - 4 && is_continuation(self.partial[cut]) {
                cut -= 1;
            }
            let rest = self.partial.split_off(cut);
            emit(&std::mem::replace(&mut self.partial, rest), out);
        }
    }

    /// End of input: the unfinished last line counts as a line.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        emit(&std::mem::take(&mut self.partial), out);
    }
}

/// UTF-8 continuation bytes are `10xxxxxx`.
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// One line as text: without its `\r` (text from Windows), not at all if empty.
fn emit(line: &[u8], out: &mut Vec<String>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.is_empty() {
        // RFC 6455 §5.6: a text message is UTF-8; a stray byte becomes U+FFFD.
        out.push(String::from_utf8_lossy(line).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let (mut l, mut out) = (Lines::default(), Vec::new());
        for c in chunks {
            l.push(c, &mut out);
        }
        l.finish(&mut out);
        out
    }

    /// Lines split across reads are joined; CRLF and empty lines are handled; the last
    /// unfinished line counts.
    #[test]
    fn lines_join_across_reads_and_skip_empty_ones() {
        assert_eq!(
            lines(&[b"hel", b"lo\nwor", b"ld\r\n\n\r\nlast"]),
            ["hello", "world", "last"]
        );
        assert!(lines(&[b"\n\n"]).is_empty());
    }

    /// A line longer than the limit comes out in pieces of at most the limit, none of them
    /// cutting a multi-byte character.
    #[test]
    fn long_line_is_cut_at_a_character_boundary() {
        // "é" is two bytes; an odd prefix puts a character across the limit.
        let mut long = b"x".to_vec();
        long.extend("é".repeat(MAX_LINE_BYTES).as_bytes());
        let out = lines(&[&long]);
        assert!(out.iter().all(|piece| piece.len() <= MAX_LINE_BYTES));
        assert!(out.iter().all(|piece| !piece.contains('\u{FFFD}')));
        assert_eq!(out.concat().as_bytes(), &long[..]);
    }

    /// Invalid UTF-8 is replaced, not dropped.
    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(lines(&[b"a\xffb\n"]), ["a\u{FFFD}b"]);
    }
}
