//! Helpers for tests that drive Chromium through chromedriver's WebDriver
//! HTTP API (tests/browser.rs, tests/players.rs).

use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

/// One WebDriver command over HTTP/1.1 with `Connection: close`, read by
/// Content-Length (chromedriver may keep the connection open); `wait`
/// bounds the answer.
pub fn wd(port: u16, method: &str, path: &str, body: Option<Value>, wait: Duration) -> Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver may keep the connection open: read by Content-Length.
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = all.windows(4).position(|w: &[u8]| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&all[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{path}: no Content-Length in {head}"));
            if all.len() >= end + 4 + len {
                return serde_json::from_slice(&all[end + 4..end + 4 + len])
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
        let n = s.read(&mut buf).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            n > 0,
            "{path}: chromedriver closed early: {:?}",
            String::from_utf8_lossy(&all)
        );
        all.extend_from_slice(&buf[..n]);
    }
}

/// A screenshot's base64 (WebDriver's encoding) decoded.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    clean
        .chunks(4)
        .flat_map(|q| {
            let n = q
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &c)| n | (u32::from(val(c)) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes[..q.len().saturating_sub(1)].to_vec()
        })
        .collect()
}
