//! The connection layer, framing: the codec frames everything it sends (a
//! management answer never lands inside a body record), a peer that only
//! writes is pushed back, a POST body is drained, and the development
//! listener bounds what it parses.

mod common;
#[path = "connections/mod.rs"]
mod connections;

use common::{Pool, media};
use connections::*;
use mp4_fcgi::fcgi;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- 1. framing

#[derive(Clone, Copy, Debug)]
enum Management {
    GetValues,
    UnknownType,
    SecondRequest,
}

/// A download of >= 2 MB is blocked on a full socket, mid-body, when a
/// management record (or a second request) arrives. The answer must come
/// between records, the body byte for byte, and the connection stay usable.
fn management_record_mid_body(kind: Management, query: &str) {
    let _serial = serial();
    let film = big_film();
    let pool = Pool::start(&["--workers", "1"]);
    let want = clip(&film, pool.dir.path(), query);
    assert!(
        want.len() >= 2 << 20,
        "the body must be large enough to be mid-flight: {} bytes",
        want.len()
    );
    let mut s = Strict::new(connect(&pool.socket, 10 * SEC).unwrap());
    s.stream.write_all(&request(1, &film, query, true)).unwrap();
    let others: &[u16] = match kind {
        Management::SecondRequest => &[2],
        _ => &[],
    };
    let mut got = Collected::default();
    while got.body_len() == 0 {
        let r = s
            .next()
            .unwrap_or_else(|e| panic!("before the first body record: {e}"));
        got.absorb(1, others, r).unwrap();
        assert!(got.end.is_none(), "the response ended without a body");
    }
    let waiting = wait_stalled(&s.stream);
    assert!(
        got.stdout.len() + s.buf.len() + waiting < want.len(),
        "the server must still be mid-body ({} + {} + {waiting} of {} bytes out)",
        got.stdout.len(),
        s.buf.len(),
        want.len()
    );
    let mut m = Vec::new();
    match kind {
        Management::GetValues => {
            let mut names = Vec::new();
            for n in ["FCGI_MPXS_CONNS", "FCGI_MAX_CONNS"] {
                names.extend_from_slice(&[n.len() as u8, 0]);
                names.extend_from_slice(n.as_bytes());
            }
            fcgi::encode_record(fcgi::FCGI_GET_VALUES, 0, &names, &mut m);
        }
        Management::UnknownType => fcgi::encode_record(UNKNOWN_RECORD_TYPE, 0, b"abc", &mut m),
        Management::SecondRequest => m = request(2, &media("a.mp4"), "start=1", true),
    }
    s.stream.write_all(&m).unwrap();
    let sent_at = got.body_len();
    let answered = |g: &Collected| match kind {
        Management::GetValues => g
            .management
            .iter()
            .any(|r| r.rtype == fcgi::FCGI_GET_VALUES_RESULT),
        Management::UnknownType => g
            .management
            .iter()
            .any(|r| r.rtype == fcgi::FCGI_UNKNOWN_TYPE),
        Management::SecondRequest => !g.other_ends.is_empty(),
    };
    while got.end.is_none() || !answered(&got) {
        let r = s.next().unwrap_or_else(|e| {
            panic!(
                "{kind:?} sent with {sent_at} body bytes read and {waiting} queued; then \
                 after {} more body bytes: {e}",
                got.body_len() - sent_at
            )
        });
        got.absorb(1, others, r)
            .unwrap_or_else(|e| panic!("{kind:?} sent mid-body: {e}"));
    }
    match kind {
        Management::GetValues => {
            assert_eq!(got.management.len(), 1, "one GET_VALUES_RESULT");
            let p = fcgi::Params::parse(got.management[0].content.clone())
                .expect("GET_VALUES_RESULT holds name-value pairs");
            assert_eq!(p.get(b"FCGI_MPXS_CONNS"), Some(&b"0"[..]));
        }
        Management::UnknownType => {
            assert_eq!(got.management.len(), 1, "one UNKNOWN_TYPE");
            assert_eq!(got.management[0].content[0], UNKNOWN_RECORD_TYPE);
        }
        Management::SecondRequest => {
            assert!(got.management.is_empty());
            assert_eq!(got.other_ends, vec![(2, fcgi::FCGI_CANT_MPX_CONN)]);
        }
    }
    check_clip(&got, &want).unwrap_or_else(|e| panic!("{kind:?} sent mid-body: {e}"));
    // The connection is still in step: the next request on it is served.
    let a = media("a.mp4");
    s.stream
        .write_all(&request(3, &a, "start=2&end=6", true))
        .unwrap();
    let next = read_reply(&mut s, 3, others)
        .unwrap_or_else(|e| panic!("the request after the download: {e}"));
    assert!(next.management.is_empty(), "no stray management records");
    check_clip(&next, &clip(&a, pool.dir.path(), "start=2&end=6"))
        .unwrap_or_else(|e| panic!("the request after the download: {e}"));
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn get_values_mid_body_is_answered_between_records() {
    management_record_mid_body(Management::GetValues, "");
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn unknown_type_mid_body_is_answered_between_records() {
    management_record_mid_body(Management::UnknownType, "start=10");
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn second_request_mid_body_is_refused_between_records() {
    management_record_mid_body(Management::SecondRequest, "start=5&end=50");
}

// ---------------------------------------------------------------- 2. back-pressure

#[test]
fn a_peer_that_floods_management_records_and_never_reads_is_pushed_back() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1"]);
    let worker = pool.wait_workers(1)[0];
    let a = media("a.mp4");
    let want = clip(&a, pool.dir.path(), "start=2&end=4");
    // 8-byte GET_VALUES and unknown-type records, answered with 8 and 16 bytes.
    let mut flood = Vec::with_capacity(64 << 10);
    for i in 0..8192 {
        let t = if i % 2 == 0 {
            fcgi::FCGI_GET_VALUES
        } else {
            UNKNOWN_RECORD_TYPE
        };
        fcgi::encode_record(t, 0, &[], &mut flood);
    }
    let mut s = connect(&pool.socket, 5 * SEC).unwrap();
    s.set_nonblocking(true).unwrap();
    let socket = pool.socket.clone();
    let second = thread::spawn(move || -> Result<Duration, String> {
        thread::sleep(SEC);
        let t = Instant::now();
        let mut c = Strict::new(connect(&socket, 5 * SEC).map_err(|e| e.to_string())?);
        c.stream
            .write_all(&request(1, &a, "start=2&end=4", true))
            .map_err(|e| e.to_string())?;
        let r = read_reply(&mut c, 1, &[]).map_err(|e| e.to_string())?;
        check_clip(&r, &want)?;
        Ok(t.elapsed())
    });
    let start = Instant::now();
    let (mut sent, mut pos, mut peak) = (0usize, 0usize, common::rss_kib(worker));
    let mut blocked_since: Option<Instant> = None;
    let mut sampled = Instant::now();
    let stalled = loop {
        if sampled.elapsed() >= ms(10) {
            peak = peak.max(common::rss_kib(worker));
            sampled = Instant::now();
        }
        if start.elapsed() > 8 * SEC || peak >= 32 << 10 {
            break false;
        }
        match s.write(&flood[pos..]) {
            Ok(n) => {
                sent += n;
                pos = (pos + n) % flood.len();
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if blocked_since.get_or_insert_with(Instant::now).elapsed() >= 2 * SEC {
                    break true;
                }
                thread::sleep(ms(1));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "the worker dropped the flooding connection after {sent} bytes ({e}) instead \
                 of pushing back; log:\n{}",
                log_tail(&pool)
            ),
        }
    };
    let second = second.join().unwrap();
    peak = peak.max(common::rss_kib(worker));
    drop(s);
    eprintln!(
        "flood: {sent} bytes in {:?}, writer blocked: {stalled}, worker peak RSS {peak} KiB, \
         second client: {second:?}",
        start.elapsed()
    );
    assert!(peak < 32 << 10, "worker RSS reached {peak} KiB");
    assert!(
        stalled,
        "the worker kept reading: {sent} bytes taken in {:?} without 2 s of back-pressure",
        start.elapsed()
    );
    second.unwrap_or_else(|e| panic!("a second client during the flood: {e}"));
    assert_eq!(pool.workers(), vec![worker], "the worker survived");
}

// ---------------------------------------------------------------- 7. POST

#[test]
fn a_post_with_a_640_kib_body_gets_405_and_end_request() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1"]);
    let a = media("a.mp4");
    let body = vec![b'x'; 640 << 10];
    let len = body.len().to_string();
    let mut req = Vec::new();
    fcgi::encode_begin_request(1, fcgi::FCGI_RESPONDER, true, &mut req);
    fcgi::encode_params(
        &[
            (b"SCRIPT_FILENAME", a.as_os_str().as_encoded_bytes()),
            (b"REQUEST_METHOD", b"POST"),
            (b"QUERY_STRING", b""),
            (b"CONTENT_TYPE", b"application/octet-stream"),
            (b"CONTENT_LENGTH", len.as_bytes()),
        ],
        1,
        &mut req,
    );
    for chunk in body.chunks(32 << 10) {
        fcgi::encode_record(fcgi::FCGI_STDIN, 1, chunk, &mut req);
    }
    fcgi::encode_record(fcgi::FCGI_STDIN, 1, &[], &mut req);
    let s = connect(&pool.socket, 10 * SEC).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&req).map_err(|e| e.to_string()));
    let mut c = Strict::new(s);
    let r = read_reply(&mut c, 1, &[])
        .unwrap_or_else(|e| panic!("the POST: {e}; log:\n{}", log_tail(&pool)));
    let (status, _, text) = cgi(&r.stdout).unwrap();
    assert_eq!(status, 405, "{}", String::from_utf8_lossy(text));
    assert_eq!(r.protocol_status(), Some(fcgi::FCGI_REQUEST_COMPLETE));
    let wrote = writer.join().unwrap();
    assert!(wrote.is_ok(), "the body was not taken: {wrote:?}");
    // The STDIN stream was consumed in step: the connection serves the next request.
    c.stream.write_all(&request(2, &a, "end=1", true)).unwrap();
    let next = read_reply(&mut c, 2, &[]).unwrap_or_else(|e| panic!("after the POST: {e}"));
    check_clip(&next, &clip(&a, pool.dir.path(), "end=1")).unwrap();
    let log = pool.log_text();
    assert!(!log.contains("without a complete record"), "{log}");
}

// ---------------------------------------------------------------- 8. --http

/// A pool with the development listener on a free port; its port.
fn dev_pool() -> (Pool, u16) {
    let port = common::free_port();
    let root = media("a.mp4")
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--http",
        &format!("127.0.0.1:{port}"),
        "--root",
        &root,
    ]);
    common::wait_port(port);
    (pool, port)
}

/// Sends `bytes` in one write and reads until the server closes.
fn http_raw(port: u16, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(5 * SEC)).unwrap();
    s.set_write_timeout(Some(5 * SEC)).unwrap();
    s.write_all(bytes).map_err(|e| format!("write: {e}"))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| {
        let first = all.split(|b| *b == b'\r').next().unwrap_or_default();
        format!(
            "not closed within 5 s ({e}) after {} bytes beginning {:?}",
            all.len(),
            String::from_utf8_lossy(first)
        )
    })?;
    Ok(all)
}

#[test]
fn dev_http_head_of_100_kib_gets_431_and_a_close() {
    let _serial = serial();
    let (_pool, port) = dev_pool();
    let mut req = b"GET /a.mp4 HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_vec();
    req.resize(100 << 10, b'f');
    req.extend_from_slice(b"\r\n\r\n");
    let all = http_raw(port, &req).unwrap_or_else(|e| panic!("100 KiB head: {e}"));
    let r = parse_http(&all).unwrap();
    assert_eq!(r.status, 431, "{}", r.head);
}

#[test]
fn dev_http_get_with_a_body_is_refused_and_the_smuggled_request_not_answered() {
    let _serial = serial();
    let (_pool, port) = dev_pool();
    let req = b"GET /a.mp4?end=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n\
                GET /a.mp4?end=2 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let all = http_raw(port, req).unwrap_or_else(|e| panic!("GET with a body: {e}"));
    let r = parse_http(&all).unwrap();
    assert!(
        matches!(r.status, 400 | 413),
        "a GET with a body: {}",
        r.head
    );
    let answers = all.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    assert_eq!(
        answers,
        1,
        "the request inside the body was answered: {}",
        String::from_utf8_lossy(&all)
    );
}

#[test]
fn dev_http_pipeline_of_2000_heads_is_answered_in_order() {
    let _serial = serial();
    let (_pool, port) = dev_pool();
    // Each window has its own ETag: the answers' order shows in them.
    let etag = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("etag: "))
            .map(str::to_string)
    };
    let windows: Vec<String> = (0..20)
        .map(|k| {
            let all = http_raw(
                port,
                format!(
                    "HEAD /a.mp4?start={k} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            let r = parse_http(&all).unwrap();
            assert_eq!(r.status, 200, "{}", r.head);
            etag(&r.head).expect("an ETag")
        })
        .collect();
    let pad = "p".repeat(90);
    let mut pipeline = Vec::new();
    for i in 0..2000 {
        write!(
            pipeline,
            "HEAD /a.mp4?start={} HTTP/1.1\r\nHost: localhost\r\nX-Seq: {i:04}\r\nX-Pad: {pad}\r\n\r\n",
            i % 20
        )
        .unwrap();
    }
    assert!(pipeline.len() > 280 << 10, "{} bytes", pipeline.len());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(10 * SEC)).unwrap();
    s.set_write_timeout(Some(10 * SEC)).unwrap();
    let mut r = s.try_clone().unwrap();
    let reader = thread::spawn(move || -> Result<Vec<String>, String> {
        let mut heads = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            while heads.len() < 2000
                && let Some(end) = find(&buf, b"\r\n\r\n")
            {
                heads.push(String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase());
                buf.drain(..end + 4);
            }
            if heads.len() == 2000 {
                return Ok(heads);
            }
            match r.read(&mut chunk) {
                Ok(0) => return Err(format!("closed after {} answers", heads.len())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("{e} after {} answers", heads.len())),
            }
        }
    });
    let wrote = s.write_all(&pipeline);
    let heads = reader.join().unwrap();
    assert!(wrote.is_ok(), "writing the pipeline: {wrote:?} ({heads:?})");
    let heads = heads.unwrap_or_else(|e| panic!("2000 pipelined HEADs: {e}"));
    for (i, h) in heads.iter().enumerate() {
        assert!(h.starts_with("http/1.1 200"), "answer {i}: {h}");
        assert_eq!(
            etag(h).as_deref(),
            Some(windows[i % 20].as_str()),
            "answer {i} is for another request"
        );
    }
}
