//! A FastCGI client for the tests: sends requests over any stream and
//! parses the records of the answer.

use mp4_fcgi::fcgi::{self, Status};
use std::io::{Read, Write};
use std::path::Path;

/// A parsed FastCGI response.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub app_status: u32,
    pub protocol_status: u8,
    /// END_REQUEST arrived.
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits a CGI response (head + body).
pub fn parse_cgi(stdout: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&stdout[..end]).into_owned();
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.split("\r\n") {
        let (n, v) = line.split_once(": ").expect("a header line");
        if n == "Status" {
            status = v[..3].parse().expect("a status code");
        }
        headers.push((n.to_string(), v.to_string()));
    }
    (status, headers, stdout[end + 4..].to_vec())
}

/// A minimal synchronous FastCGI client on the project's own codec.
pub struct Client<S: Read + Write> {
    pub stream: S,
    next_id: u16,
    buf: Vec<u8>,
    /// STDOUT already read by [`Client::first_stdout`].
    stash: Vec<u8>,
    /// Records of other requests met while reading one reply.
    pending: Vec<(u8, u16, Vec<u8>)>,
}

impl<S: Read + Write> Client<S> {
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            next_id: 1,
            buf: Vec::new(),
            stash: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Encodes a request without sending it; returns its id.
    pub fn encode(&mut self, pairs: &[(&[u8], &[u8])], keep_conn: bool, out: &mut Vec<u8>) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        fcgi::encode_begin_request(id, fcgi::FCGI_RESPONDER, keep_conn, out);
        fcgi::encode_params(pairs, id, out);
        fcgi::encode_record(fcgi::FCGI_STDIN, id, &[], out);
        id
    }

    /// Waits for the first STDOUT record of `id` and keeps it for [`Client::reply`].
    pub fn first_stdout(&mut self, id: u16) {
        while let Some((t, rid, content)) = self.record() {
            if rid == id && t == fcgi::FCGI_STDOUT {
                self.stash.extend_from_slice(&content);
                return;
            }
        }
        panic!("connection closed before request {id} answered");
    }

    /// Sends BEGIN_REQUEST + PARAMS + empty STDIN; returns the request id.
    pub fn send(&mut self, pairs: &[(&[u8], &[u8])], keep_conn: bool) -> u16 {
        let mut out = Vec::new();
        let id = self.encode(pairs, keep_conn, &mut out);
        self.stream.write_all(&out).expect("send");
        id
    }

    /// Reads one record (type, request id, content); None at EOF.
    pub fn record(&mut self) -> Option<(u8, u16, Vec<u8>)> {
        loop {
            if let Status::Complete(h) = fcgi::parse_header(&self.buf)
                && self.buf.len() >= h.record_len()
            {
                let content = self.buf[8..8 + usize::from(h.content_length)].to_vec();
                self.buf.drain(..h.record_len());
                return Some((h.rtype, h.request_id, content));
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads the whole response to request `id`.
    pub fn reply(&mut self, id: u16) -> Reply {
        let mut stdout = std::mem::take(&mut self.stash);
        let mut r = Reply::default();
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|rec| rec.1 == id);
        self.pending = others;
        let mut queued = mine.into_iter();
        while let Some((t, rid, content)) = queued.next().or_else(|| self.record()) {
            if rid != id {
                self.pending.push((t, rid, content));
                continue;
            }
            match t {
                fcgi::FCGI_STDOUT => stdout.extend_from_slice(&content),
                fcgi::FCGI_END_REQUEST => {
                    r.app_status = u32::from_be_bytes(content[..4].try_into().unwrap());
                    r.protocol_status = content[4];
                    r.complete = true;
                    break;
                }
                _ => {}
            }
        }
        if !stdout.is_empty() {
            let (status, headers, body) = parse_cgi(&stdout);
            r.status = status;
            r.headers = headers;
            r.body = body;
        }
        r
    }

    /// One GET-like request with extra params.
    pub fn get(&mut self, file: &Path, query: &str, extra: &[(&str, &str)]) -> Reply {
        let id = self.send_get(file, query, extra);
        self.reply(id)
    }

    /// Sends a GET-like request with extra params (they replace defaults of
    /// the same name); returns its id.
    pub fn send_get(&mut self, file: &Path, query: &str, extra: &[(&str, &str)]) -> u16 {
        let f = file.as_os_str().as_encoded_bytes().to_vec();
        let mut pairs: Vec<(&[u8], &[u8])> = vec![
            (b"SCRIPT_FILENAME", &f),
            (b"QUERY_STRING", query.as_bytes()),
            (b"REQUEST_METHOD", b"GET"),
            (b"SCRIPT_NAME", b"/clip.mp4"),
        ];
        for (n, v) in extra {
            if let Some(p) = pairs.iter_mut().find(|(pn, _)| *pn == n.as_bytes()) {
                p.1 = v.as_bytes();
            } else {
                pairs.push((n.as_bytes(), v.as_bytes()));
            }
        }
        self.send(&pairs, true)
    }
}
