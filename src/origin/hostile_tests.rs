//! Origins that answer against the client: a redirect to another host, a
//! body far longer than the range asked. Each is a tiny HTTP/1.1 server on
//! 127.0.0.1 in a thread; no store is needed.

use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// The object the servers pretend to hold: 10 GB.
const SIZE: u64 = 10_000_000_000;
const MIB: u64 = 1 << 20;

/// A server on 127.0.0.1 that answers each request head with `answer`, one
/// thread per connection, keep-alive. Its port.
fn serve(answer: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                while let Some(head) = read_head(&mut conn) {
                    answer(&head, &mut conn);
                }
            });
        }
    });
    port
}

/// One request head, or `None` once the client is gone.
pub(super) fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) if head.len() < 65536 => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The inclusive byte range a request head asks, `bytes=A-B`.
pub(super) fn range_of(head: &str) -> Option<(u64, u64)> {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("range:"))?;
    let (a, b) = line.split_once("bytes=")?.1.trim().split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The headers every answer carries.
const META: &str = "ETag: \"e\"\r\nLast-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n";

/// A well-behaved store that must never be reached: it records every
/// request head it gets and answers it properly, so that a client that
/// follows a redirect there succeeds. Its port and the heads.
fn bystander() -> (u16, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    let port = serve(move |head, conn| {
        seen.lock().unwrap().push(head.to_string());
        let Some((a, b)) = range_of(head) else {
            // A HEAD.
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n{META}\r\n");
            let _ = conn.write_all(answer.as_bytes());
            return;
        };
        let n = b - a + 1;
        let answer = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{SIZE}\r\n\
             Content-Length: {n}\r\n{META}\r\n"
        );
        let _ = conn.write_all(answer.as_bytes());
        let _ = conn.write_all(&vec![0u8; n as usize]);
    });
    (port, heads)
}

/// A store that answers every request with a 302 to `target`.
fn redirector(target: u16) -> u16 {
    serve(move |_, conn| {
        let answer = format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target}/film.mp4\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let _ = conn.write_all(answer.as_bytes());
    })
}

fn settings(url: String) -> Settings {
    Settings {
        url,
        timeout: Duration::from_secs(10),
        ..Settings::default()
    }
}

fn object() -> Object {
    Object {
        key: "film.mp4".into(),
        size: SIZE,
        etag: Some("\"e\"".into()),
        version: None,
        modified: SystemTime::UNIX_EPOCH,
    }
}

/// The fault, checked to name a refused redirect.
fn assert_redirect_refused<T: std::fmt::Debug>(got: Result<T, Fault>) {
    match got {
        Err(Fault::Failed(detail)) => assert!(
            detail.contains("redirect (302 to http://127.0.0.1:")
                && detail.contains("not followed"),
            "{detail}"
        ),
        other => panic!("a redirect was not refused: {other:?}"),
    }
}

#[test]
fn http_origin_does_not_follow_a_redirect() {
    let (target, heads) = bystander();
    let origin = Origin::new(&settings(format!(
        "http://127.0.0.1:{}/media/",
        redirector(target)
    )))
    .unwrap();
    let rt = runtime().unwrap();
    let opened = rt.block_on(origin.open("film.mp4", 4096));
    let read = rt.block_on(origin.read(&object(), 0..MIB));
    let checked = rt.block_on(origin.check(&object()));
    let heads = heads.lock().unwrap();
    assert!(
        heads.is_empty(),
        "the redirect target got {} requests: {heads:?}",
        heads.len()
    );
    assert_redirect_refused(opened);
    assert_redirect_refused(read);
    assert_redirect_refused(checked);
}

#[test]
fn s3_origin_does_not_send_its_token_through_a_redirect() {
    let (target, heads) = bystander();
    let origin = Origin::with_credentials(
        &Settings {
            endpoint: Some(format!("http://127.0.0.1:{}", redirector(target))),
            region: Some("us-east-1".into()),
            addressing: Addressing::Path,
            ..settings("s3://bucket/films".into())
        },
        Some((
            "AKIDTEST".into(),
            "secret".into(),
            Some("TOKEN-SECRET".into()),
        )),
    )
    .unwrap();
    let rt = runtime().unwrap();
    let opened = rt.block_on(origin.open("films/film.mp4", 4096));
    let heads = heads.lock().unwrap();
    assert!(
        heads.is_empty(),
        "the redirect target got {} requests: {heads:?}",
        heads.len()
    );
    assert_redirect_refused(opened);
}

/// A store that answers a range with the right `Content-Range` but a
/// `Content-Length` 512 MiB too long, then sends zeros until the client
/// goes away (or 96 MiB, so that a client that reads it all ends). Its
/// port and the bytes of body it managed to write.
fn inflater() -> (u16, Arc<AtomicU64>) {
    let written = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&written);
    let port = serve(move |head, conn| {
        let (a, b) = range_of(head).expect("a range request");
        let Some(n) = (b + 1).checked_sub(a) else {
            let _ =
                conn.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        let inflated = n + 512 * MIB;
        let answer = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{SIZE}\r\n\
             Content-Length: {inflated}\r\n{META}\r\n"
        );
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
        let zeros = vec![0u8; 64 << 10];
        while count.load(SeqCst) < 96 * MIB {
            if conn.write_all(&zeros).is_err() {
                break;
            }
            count.fetch_add(zeros.len() as u64, SeqCst);
        }
        let _ = conn.shutdown(std::net::Shutdown::Both);
    });
    (port, written)
}

/// The fault, checked to be a refused oversized body, and the bytes the
/// server wrote, checked to be a few MiB at most: the kernel's socket
/// buffers on both sides, not the 96 MiB on offer.
fn assert_cut_off<T: std::fmt::Debug>(got: Result<T, Fault>, written: &AtomicU64) {
    // The server's last writes fail once the client has closed.
    std::thread::sleep(Duration::from_millis(200));
    let written = written.load(SeqCst);
    assert!(
        written < 24 * MIB,
        "the client took {} MiB for a 1 MiB range ({got:?})",
        written / MIB
    );
    match got {
        Err(Fault::Failed(detail)) => assert!(detail.contains("more than"), "{detail}"),
        other => panic!("an oversized answer was not refused: {other:?}"),
    }
}

#[test]
fn read_stops_at_the_range_asked() {
    let (port, written) = inflater();
    let origin = Origin::new(&settings(format!("http://127.0.0.1:{port}/"))).unwrap();
    let rt = runtime().unwrap();
    let got = rt.block_on(origin.read(&object(), 5 * MIB..6 * MIB));
    assert_cut_off(got, &written);
}

#[test]
fn open_stops_at_the_range_asked() {
    let (port, written) = inflater();
    let origin = Origin::new(&settings(format!("http://127.0.0.1:{port}/"))).unwrap();
    let rt = runtime().unwrap();
    let got = rt.block_on(origin.open("film.mp4", MIB));
    assert_cut_off(got, &written);
}

#[test]
fn an_https_origin_is_spoken_to_in_tls_over_ring() {
    // The client is built without aws-lc-rs: its TLS must still start (a
    // ClientHello), and an untrusted certificate (here: none) must fail
    // the request, not panic for want of a crypto provider.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hello = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut first = [0u8; 3];
        conn.read_exact(&mut first).unwrap();
        first
    });
    let origin = Origin::new(&settings(format!("https://127.0.0.1:{port}/"))).unwrap();
    let rt = runtime().unwrap();
    let got = rt.block_on(origin.open("film.mp4", MIB));
    // A TLS handshake record, version 3.x.
    assert_eq!(&hello.join().unwrap()[..2], &[0x16, 0x03]);
    assert!(got.is_err());
}
