//! Speaking to the server byte by byte, for what a WebSocket library will not send: broken
//! HTTP, hand-built frames, a handshake read without consuming what follows it.
//!
//! Frames follow RFC 6455 §5.2: a first byte (FIN, RSV1-3, opcode), a length (7 bits, or 126
//! and 16 bits, or 127 and 64 bits), a masking key on client frames only (§5.3), the payload.

use super::READ_TIMEOUT;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// A raw TCP connection to `addr` with a read timeout, for speaking broken HTTP or WebSocket.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// A TCP connection to `addr` whose receive buffer is `bytes` (the kernel doubles it), with a
/// read and a write timeout: a reader that is slow, or stuck, cannot hide behind a large one.
pub fn small_buffer(addr: SocketAddr, bytes: usize) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(bytes).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// Reads from `s` until the peer closes (or errors); panics if it stays open past the timeout.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("connection still open after {READ_TIMEOUT:?}: {e}"),
        }
    }
}

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// Reads the server's `101 Switching Protocols` head from `s`, byte by byte so that nothing
/// after it (the first frames) is consumed; panics on any other answer.
pub fn read_101(s: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("101 response");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "upgraded: {}",
        String::from_utf8_lossy(&head)
    );
}

/// A raw socket that has completed the upgrade to `path` (the 101 head is consumed).
pub fn upgraded(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(upgrade_request(path).as_bytes()).unwrap();
    read_101(&mut s);
    s
}

/// A masked client frame of any length: `first` is the whole first byte (FIN, RSV, opcode),
/// so a test can set what a library never would (reserved bits and opcodes, no FIN on a
/// control frame).
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    // §5.3: a client masks every frame. A fixed key is fine for tests: the server must unmask
    // whatever key it is given.
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A Close frame's payload (§5.5.1): the code, then the reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Splits what a server sent after its 101 into frames `(first byte, payload)`; panics on a
/// masked frame (§5.1: a server never masks) or a partial one at the end.
pub fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        assert_eq!(bytes[1] & 0x80, 0, "server frames are not masked");
        let (len, at) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        out.push((bytes[0], bytes[at..at + len].to_vec()));
        bytes = &bytes[at + len..];
    }
    assert!(bytes.is_empty(), "no partial frame at the end");
    out
}

/// Sends a plain `GET path` to `addr` and returns the whole response as text.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = raw(addr);
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    String::from_utf8(read_to_end(&mut s)).unwrap()
}
