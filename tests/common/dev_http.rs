//! A client for the development listener (`--http`): one request per
//! connection, the whole answer read.

use std::io::{Read, Write};

/// An answer: status, head and body.
pub struct Got {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Got {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head[9..12].parse().unwrap();
    Got {
        status,
        head,
        body: all[end + 4..].to_vec(),
    }
}

pub fn get(port: u16, target: &str) -> Got {
    let g = request(port, "GET", target, &[]);
    assert_eq!(g.status, 200, "{target}: {}\n{}", g.head, g.text());
    g
}

/// A one-worker pool serving `root` over its development HTTP listener,
/// with `extra` arguments; its port once it accepts.
pub fn serve_root(root: &std::path::Path, extra: &[&str]) -> (super::Pool, u16) {
    let port = super::free_port();
    let addr = format!("127.0.0.1:{port}");
    let root = root.to_str().expect("a UTF-8 path");
    let mut args = vec!["--http", &addr, "--root", root, "--workers", "1"];
    args.extend_from_slice(extra);
    let pool = super::Pool::start(&args);
    super::wait_port(port);
    (pool, port)
}
