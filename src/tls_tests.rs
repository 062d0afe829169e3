//! Unit tests for `tls.rs` and `tls/stream.rs`: loading and reloading the certificate, and a
//! [`TlsStream`] driven by a real rustls client over an in-memory pipe (no sockets, no sleep).

use super::*;
use crate::conn::Socket;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

/// A certificate authority and one server certificate it signed, for `localhost` and
/// 127.0.0.1, written to a fresh directory.
struct TestPki {
    dir: PathBuf,
    ca_der: Vec<u8>,
}

impl TestPki {
    fn new(name: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!("chatloop-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "chatloop test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let pki = TestPki {
            dir,
            ca_der: ca.der().to_vec(),
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(pki.cert(), cert.pem()).unwrap();
        std::fs::write(pki.key(), key.serialize_pem()).unwrap();
        pki
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// A client that trusts only this CA.
    fn client(&self) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).unwrap();
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        ClientConnection::new(Arc::new(config), name).unwrap()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One direction of an in-memory socket pair.
type Pipe = Rc<RefCell<VecDeque<u8>>>;

/// One end of an in-memory socket pair: reads say `WouldBlock` when empty, writes take at most
/// `room` bytes (then `WouldBlock`, like a full socket buffer), and every write is counted.
struct End {
    rx: Pipe,
    tx: Pipe,
    room: Rc<Cell<usize>>,
    writes: Rc<Cell<usize>>,
}

fn pair() -> (End, End) {
    let (a, b) = (Pipe::default(), Pipe::default());
    let end = |rx: &Pipe, tx: &Pipe| End {
        rx: rx.clone(),
        tx: tx.clone(),
        room: Rc::new(Cell::new(usize::MAX)),
        writes: Rc::new(Cell::new(0)),
    };
    (end(&a, &b), end(&b, &a))
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rx = self.rx.borrow_mut();
        if rx.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rx.len().min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(rx.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.room.get());
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.room.set(self.room.get() - n);
        self.writes.set(self.writes.get() + 1);
        self.tx.borrow_mut().extend(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for End {
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The client writes what it has, the server reads, the client reads the answer: repeated
/// until both sides finished the handshake.
fn handshake(client: &mut ClientConnection, end: &mut End, server: &mut TlsStream<End>) {
    for _ in 0..10 {
        while client.wants_write() {
            client.write_tls(end).unwrap();
        }
        let mut buf = [0; 64];
        match server.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("no plaintext expected during the handshake: {other:?}"),
        }
        while !end.rx.borrow().is_empty() {
            client.read_tls(end).unwrap();
            client.process_new_packets().unwrap();
        }
        if !client.is_handshaking() && server.is_established() {
            return;
        }
    }
    panic!("handshake did not finish");
}

/// Everything the client has decrypted so far.
fn client_reads(client: &mut ClientConnection, end: &mut End) -> Vec<u8> {
    while !end.rx.borrow().is_empty() {
        client.read_tls(end).unwrap();
        client.process_new_packets().unwrap();
    }
    let mut got = Vec::new();
    match client.reader().read_to_end(&mut got) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("unexpected client read: {other:?}"),
    }
    got
}

/// A server and a handshaken client over a pipe.
fn connected(pki: &TestPki) -> (ClientConnection, End, TlsStream<End>) {
    let tls = ServerTls::load(&pki.cert(), &pki.key()).unwrap();
    let (mut client_end, server_end) = pair();
    let mut server = tls.wrap(server_end);
    let mut client = pki.client();
    handshake(&mut client, &mut client_end, &mut server);
    (client, client_end, server)
}

/// A missing certificate file is one line naming the file and the reason.
#[test]
fn missing_certificate_is_one_line_naming_the_file() {
    let pki = TestPki::new("missing");
    let err = ServerTls::load(&pki.dir.join("nope.pem"), &pki.key())
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("cannot read the TLS certificate "), "{err}");
    assert!(err.contains("nope.pem") && !err.contains('\n'), "{err}");
}

/// A certificate file without PEM, or a key file without a key, is named as such.
#[test]
fn files_without_pem_are_named() {
    let pki = TestPki::new("nopem");
    let junk = pki.dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let err = ServerTls::load(&junk, &pki.key()).err().unwrap();
    assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
    let err = ServerTls::load(&pki.cert(), &junk).err().unwrap();
    assert!(matches!(err, TlsError::NoKey(_)), "{err}");
    // The certificate is not a key, either.
    let err = ServerTls::load(&pki.cert(), &pki.cert()).err().unwrap();
    assert!(matches!(err, TlsError::NoKey(_)), "{err}");
}

/// A key that belongs to another certificate is refused at load.
#[test]
fn key_of_another_certificate_is_refused() {
    let pki = TestPki::new("mismatch");
    let other = rcgen::KeyPair::generate().unwrap();
    let other_key = pki.dir.join("other.pem");
    std::fs::write(&other_key, other.serialize_pem()).unwrap();
    let err = ServerTls::load(&pki.cert(), &other_key).err().unwrap();
    assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not belong"), "{err}");
}

/// A reload that fails keeps the old configuration; one that succeeds replaces it for new
/// connections while an open connection keeps working.
#[test]
fn reload_replaces_the_config_only_when_the_new_files_are_good() {
    let pki = TestPki::new("reload");
    let mut tls = ServerTls::load(&pki.cert(), &pki.key()).unwrap();
    let before = tls.config();
    let (mut client, mut end, mut server) = connected(&pki);

    std::fs::write(pki.key(), "half-written").unwrap();
    assert!(matches!(tls.reload(), Err(TlsError::NoKey(_))));
    assert!(
        Arc::ptr_eq(&before, &tls.config()),
        "a failed reload keeps the config"
    );

    let fresh = TestPki::new("reload-next");
    std::fs::copy(fresh.cert(), pki.cert()).unwrap();
    std::fs::copy(fresh.key(), pki.key()).unwrap();
    tls.reload().unwrap();
    assert!(
        !Arc::ptr_eq(&before, &tls.config()),
        "a good reload swaps the config"
    );

    // The connection opened before the reload still carries data both ways.
    client.writer().write_all(b"still here").unwrap();
    client.write_tls(&mut end).unwrap();
    let mut buf = [0; 32];
    let n = server.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here");
    server.write_all(b"yes").unwrap();
    assert_eq!(client_reads(&mut client, &mut end), b"yes");
}

/// After the handshake, plaintext flows both ways, and an idle stream keeps no buffer.
#[test]
fn data_flows_both_ways_and_idle_streams_hold_no_buffers() {
    let pki = TestPki::new("flow");
    let (mut client, mut end, mut server) = connected(&pki);
    assert_eq!(
        server.buffered_capacity(),
        0,
        "no buffer after the handshake"
    );

    client.writer().write_all(b"hello over tls").unwrap();
    client.write_tls(&mut end).unwrap();
    let mut buf = [0; 64];
    let n = server.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello over tls");
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    server.write_all(b"and back").unwrap();
    assert_eq!(client_reads(&mut client, &mut end), b"and back");
    assert_eq!(server.buffered_capacity(), 0, "no buffer between messages");
}

/// Plaintext larger than the caller's buffer is handed over in order across reads.
#[test]
fn a_record_larger_than_the_read_buffer_arrives_whole_across_reads() {
    let pki = TestPki::new("large");
    let (mut client, mut end, mut server) = connected(&pki);
    let message: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    client.writer().write_all(&message).unwrap();
    while client.wants_write() {
        client.write_tls(&mut end).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0; 1000];
    while got.len() < message.len() {
        let n = server.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, message);
}

/// A burst of records read in one go is handed over in order through a small buffer: what
/// does not fit waits (as ciphertext or plaintext) for the next read.
#[test]
fn a_burst_of_records_arrives_in_order_through_a_small_buffer() {
    let pki = TestPki::new("burst");
    let (mut client, mut end, mut server) = connected(&pki);
    let mut sent = Vec::new();
    for i in 0..200 {
        let line = format!("message {i};");
        client.writer().write_all(line.as_bytes()).unwrap(); // one record each
        sent.extend_from_slice(line.as_bytes());
    }
    while client.wants_write() {
        client.write_tls(&mut end).unwrap();
    }
    let (mut got, mut buf) = (Vec::new(), [0; 7]);
    while got.len() < sent.len() {
        let n = server.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, sent);
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        server.buffered_capacity(),
        0,
        "nothing held once all is read"
    );
}

/// A burst of ciphertext larger than the per-thread read buffer (records cut at its end)
/// arrives whole and in order.
#[test]
fn a_burst_larger_than_the_read_buffer_arrives_whole() {
    let pki = TestPki::new("flood");
    let (mut client, mut end, mut server) = connected(&pki);
    let mut sent = Vec::new();
    for i in 0..20_000 {
        let line = format!("m{i};");
        client.writer().write_all(line.as_bytes()).unwrap(); // one record each
        sent.extend_from_slice(line.as_bytes());
        while client.wants_write() {
            client.write_tls(&mut end).unwrap();
        }
    }
    let (mut got, mut buf) = (Vec::new(), vec![0; 64 << 10]);
    while got.len() < sent.len() {
        let n = server.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, sent);
}

/// Many frames handed over in one `write_vectored` leave in one socket write.
#[test]
fn many_frames_leave_in_one_socket_write() {
    let pki = TestPki::new("gather");
    let (mut client, mut end, mut server) = connected(&pki);
    let frames: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("frame {i};").into_bytes())
        .collect();
    let slices: Vec<IoSlice> = frames.iter().map(|f| IoSlice::new(f)).collect();
    let writes_before = server.get_ref().writes.get();
    let total: usize = frames.iter().map(Vec::len).sum();
    assert_eq!(server.write_vectored(&slices).unwrap(), total);
    assert_eq!(server.get_ref().writes.get() - writes_before, 1);
    assert_eq!(client_reads(&mut client, &mut end), frames.concat());
}

/// Ciphertext the socket does not take waits; meanwhile writes take nothing, and `flush`
/// sends it once the socket has room.
#[test]
fn ciphertext_the_socket_refuses_waits_and_blocks_further_writes() {
    let pki = TestPki::new("full");
    let (mut client, mut end, mut server) = connected(&pki);
    server.get_ref().room.set(10);
    assert_eq!(server.write(b"first message").unwrap(), 13);
    assert!(server.holds_output());
    assert_eq!(
        server.write(b"second").unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    server.get_ref().room.set(usize::MAX);
    server.flush().unwrap();
    assert!(!server.holds_output());
    assert_eq!(client_reads(&mut client, &mut end), b"first message");
}

/// A client speaking plain HTTP to the TLS port gets an error, not a hang.
#[test]
fn plain_http_fails_the_handshake() {
    let pki = TestPki::new("plain");
    let tls = ServerTls::load(&pki.cert(), &pki.key()).unwrap();
    let (mut client_end, server_end) = pair();
    let mut server = tls.wrap(server_end);
    client_end
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let err = server.read(&mut [0; 64]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

/// Half a ClientHello yields only `WouldBlock`: the request timeout decides, as for any
/// slow request; nothing can be written before the handshake.
#[test]
fn half_a_client_hello_waits_and_nothing_is_written_before_the_handshake() {
    let pki = TestPki::new("half");
    let tls = ServerTls::load(&pki.cert(), &pki.key()).unwrap();
    let (mut client_end, server_end) = pair();
    let mut server = tls.wrap(server_end);
    let mut client = pki.client();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    client_end.write_all(&hello[..hello.len() / 2]).unwrap();
    assert_eq!(
        server.read(&mut [0; 64]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        server.write(b"408").unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
}

/// The client's close_notify reads as the end of the stream.
#[test]
fn close_notify_is_the_end_of_the_stream() {
    let pki = TestPki::new("close");
    let (mut client, mut end, mut server) = connected(&pki);
    client.send_close_notify();
    client.write_tls(&mut end).unwrap();
    assert_eq!(server.read(&mut [0; 64]).unwrap(), 0);
}
