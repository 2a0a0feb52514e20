//! The development listener (`--http`): a thin HTTP/1.1 connection that
//! turns a request head into the params a front server would send, so the
//! same handler answers. Sans-io, with the FastCGI codec's shape: bytes in,
//! events out, one output queue. For development only: production goes
//! through a front server, which adds TLS, logging and access control.
//!
//! Two things only this listener does: the demo page (`/`, and its files
//! under `/_demo/`, [`super::demo`]) is answered here, never reaching the
//! handler; and with `--cors` every answer's head gets the CORS headers for
//! the request's own `Origin`.

use super::answer::cors_headers;
use super::config::Cors;
use super::demo;
use crate::fcgi::{Params, Request};
use crate::http::percent_decode_path;
use crate::output::BOUND;
use crate::output::Output;
use std::io::{self, Read};
use std::path::PathBuf;

/// Most bytes a request head may take, however it arrives. Input is read
/// only up to this bound, so a pipeline waits in the peer's socket.
pub const MAX_HEAD: usize = 16 << 10;

/// A response head's status line and headers, from a CGI head.
fn response_head(cgi: &[u8], keep_alive: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(cgi);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("Status: "))
        .unwrap_or("500 Internal Server Error");
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for l in lines.filter(|l| !l.is_empty()) {
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    out.into_bytes()
}

/// The CGI head with the CORS headers for a request from `origin` in place
/// of any the handler put in (made without the request's `Origin`).
fn with_cors(cgi: &[u8], cors: &Cors, origin: Option<&[u8]>) -> Vec<u8> {
    let theirs = |line: &str| {
        let l = line.to_ascii_lowercase();
        !(l.starts_with("access-control-allow-origin:")
            || l.starts_with("access-control-expose-headers:")
            || l == "vary: origin")
    };
    let text = String::from_utf8_lossy(cgi);
    let mut out = String::with_capacity(cgi.len() + 128);
    for line in text.split("\r\n").filter(|l| !l.is_empty() && theirs(l)) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    for (name, value) in cors_headers(cors, origin) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// What a head asks.
enum Parsed {
    Partial,
    /// For the handler; the request's `Origin`.
    Request(Request, usize, Option<Vec<u8>>),
    /// For the demo, answered here.
    Demo(DemoAsk, usize),
    Bad(u16, &'static str),
}

/// A request the demo answers.
struct DemoAsk {
    head: bool,
    path: Vec<u8>,
    if_none_match: Option<Vec<u8>>,
    origin: Option<Vec<u8>>,
    keep_alive: bool,
}

/// What the listener serves besides films: from the pool's configuration.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--demo`: the page at `/` and its files under `/_demo/`.
    pub demo: bool,
    /// Films are local files under the root (not `--origin`): the demo
    /// lists them.
    pub local: bool,
    pub cors: Cors,
}

pub struct Conn {
    root: PathBuf,
    options: Options,
    input: Vec<u8>,
    out: Output,
    /// A request is being answered; its keep-alive.
    answering: Option<bool>,
    /// The `Origin` of the request being answered.
    origin: Option<Vec<u8>>,
    keep_open: bool,
}

impl Conn {
    pub fn new(root: PathBuf, options: Options) -> Conn {
        Conn {
            root,
            options,
            input: Vec::new(),
            out: Output::new(),
            answering: None,
            origin: None,
            keep_open: true,
        }
    }

    pub fn read_from(&mut self, r: &mut dyn Read) -> io::Result<usize> {
        let at = self.input.len();
        let room = MAX_HEAD.saturating_sub(at);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.resize(at + room, 0);
        let r = r.read(&mut self.input[at..]);
        self.input.truncate(at + *r.as_ref().unwrap_or(&0));
        r
    }

    pub fn wants_read(&self) -> bool {
        self.keep_open && self.out.buffered() < BOUND && self.input.len() < MAX_HEAD
    }

    /// The next request, once the one before it is answered. The demo's
    /// are answered on the way, one at a time while the output is below
    /// its bound (its players are large).
    pub fn next_event(&mut self) -> Option<Request> {
        loop {
            if self.answering.is_some() || !self.keep_open || self.input.is_empty() {
                return None;
            }
            match self.parse() {
                Parsed::Demo(_, _) if self.out.buffered() >= BOUND => return None,
                Parsed::Demo(ask, consumed) => {
                    self.input.drain(..consumed);
                    self.demo(ask);
                }
                other => return self.event(other),
            }
        }
    }

    /// Answers a request of the demo.
    fn demo(&mut self, ask: DemoAsk) {
        let method: &[u8] = if ask.head { b"HEAD" } else { b"GET" };
        let films = self.options.local.then_some(self.root.as_path());
        let Some(a) = demo::answer(
            method,
            &ask.path,
            ask.if_none_match.as_deref(),
            self.options.demo,
            films,
        ) else {
            return;
        };
        log::debug!(
            "{} {} {} (demo)",
            String::from_utf8_lossy(method),
            String::from_utf8_lossy(&ask.path),
            a.response.status
        );
        let mut cgi = a.response.cgi_head();
        if self.options.cors.is_on() {
            cgi = with_cors(&cgi, &self.options.cors, ask.origin.as_deref());
        }
        let keep = ask.keep_alive && self.keep_open;
        self.out.push(&response_head(&cgi, keep));
        self.out.push(&a.body);
        if !keep {
            self.keep_open = false;
            self.input = Vec::new();
        }
    }

    fn event(&mut self, parsed: Parsed) -> Option<Request> {
        match parsed {
            Parsed::Partial | Parsed::Demo(..) => None,
            Parsed::Request(r, consumed, origin) => {
                self.input.drain(..consumed);
                self.answering = Some(r.keep_conn);
                self.origin = origin;
                Some(r)
            }
            Parsed::Bad(status, why) => {
                let r = crate::http::error_response(status, why);
                self.out.push(&response_head(&r.cgi_head(), false));
                if let crate::http::Body::Text(t) = r.body {
                    self.out.push(t.as_bytes());
                }
                self.input = Vec::new();
                self.keep_open = false;
                None
            }
        }
    }

    fn parse(&self) -> Parsed {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let consumed = match req.parse(&self.input) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.input.len() >= MAX_HEAD => {
                return Parsed::Bad(431, "request head too large");
            }
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(httparse::Error::TooManyHeaders) => {
                return Parsed::Bad(431, "too many request headers");
            }
            Err(_) => return Parsed::Bad(400, "malformed HTTP request"),
        };
        let (Some(method), Some(target)) = (req.method, req.path) else {
            return Parsed::Bad(400, "malformed HTTP request");
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        // A body would be read as the next request: refuse what we do not
        // read. The framing is read one way only: a second Content-Length
        // (`0` then `N`) or a list in one would let a front and this listener
        // split the bytes into different requests (request smuggling).
        let mut lengths = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("Content-Length"))
            .map(|h| h.value.trim_ascii());
        let length = lengths.next();
        if lengths.next().is_some() {
            return Parsed::Bad(400, "more than one Content-Length");
        }
        if length.is_some_and(|v| v.is_empty() || !v.iter().all(u8::is_ascii_digit)) {
            return Parsed::Bad(400, "invalid Content-Length");
        }
        if header("Transfer-Encoding").is_some()
            || length.is_some_and(|v| v.iter().any(|&b| b != b'0'))
        {
            return Parsed::Bad(413, "request bodies are not accepted");
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let Some(path) = percent_decode_path(path.as_bytes()).filter(|p| p.starts_with(b"/"))
        else {
            return Parsed::Bad(400, "bad request path");
        };
        let connection = header("Connection").map(|v| v.to_ascii_lowercase());
        let keep_alive = match req.version {
            Some(1) => connection.as_deref() != Some(b"close"),
            _ => connection.as_deref() == Some(b"keep-alive"),
        };
        let origin = header("Origin").map(<[u8]>::to_vec);
        if matches!(method, "GET" | "HEAD") && demo::is_demo(&path, self.options.demo) {
            let ask = DemoAsk {
                head: method == "HEAD",
                path,
                if_none_match: header("If-None-Match").map(<[u8]>::to_vec),
                origin,
                keep_alive,
            };
            return Parsed::Demo(ask, consumed);
        }
        let (path, path_info) = crate::manifest::split(&path);
        let file = [self.root.as_os_str().as_encoded_bytes(), path].concat();
        let mut pairs: Vec<(&[u8], &[u8])> = vec![
            (b"REQUEST_METHOD", method.as_bytes()),
            (b"SCRIPT_NAME", path),
            (b"SCRIPT_FILENAME", &file),
            (b"QUERY_STRING", query.as_bytes()),
        ];
        if !path_info.is_empty() {
            pairs.push((b"PATH_INFO", path_info));
        }
        for (name, param) in [
            ("Range", &b"HTTP_RANGE"[..]),
            ("If-Range", b"HTTP_IF_RANGE"),
            ("If-None-Match", b"HTTP_IF_NONE_MATCH"),
            ("If-Modified-Since", b"HTTP_IF_MODIFIED_SINCE"),
            ("Origin", b"HTTP_ORIGIN"),
        ] {
            if let Some(v) = header(name) {
                pairs.push((param, v));
            }
        }
        let request = Request {
            request_id: 0,
            role: crate::fcgi::FCGI_RESPONDER,
            keep_conn: keep_alive,
            params: Params::from_pairs(pairs),
            params_overflow: false,
        };
        Parsed::Request(request, consumed, origin)
    }

    /// The response head, converted from the handler's CGI head (with the
    /// CORS headers for the request's `Origin`, with `--cors`).
    pub fn head(&mut self, cgi: &[u8]) {
        let keep = self.answering.unwrap_or(false) && self.keep_open;
        if self.options.cors.is_on() {
            let cgi = with_cors(cgi, &self.options.cors, self.origin.as_deref());
            self.out.push(&response_head(&cgi, keep));
        } else {
            self.out.push(&response_head(cgi, keep));
        }
    }

    pub fn body_file(&mut self, offset: u64, len: u64) -> usize {
        let n = usize::try_from(len).map_or(usize::MAX, |l| l).min(1 << 30);
        self.out.push_file(offset, n);
        n
    }

    /// The response is complete (or cut): a kept connection reads on.
    pub fn end(&mut self, complete: bool) {
        self.origin = None;
        if self.answering.take() != Some(true) || !complete {
            self.keep_open = false;
        }
    }

    /// Close after the response in flight.
    pub fn close_after(&mut self) {
        self.keep_open = false;
    }

    pub fn answering(&self) -> bool {
        self.answering.is_some()
    }

    pub fn receiving(&self) -> bool {
        self.answering.is_none() && !self.input.is_empty()
    }

    pub fn keep_open(&self) -> bool {
        self.keep_open
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    pub fn output_ref(&self) -> &Output {
        &self.out
    }

    pub fn release(&mut self) {
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        self.out.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Next;

    fn conn() -> Conn {
        Conn::new(PathBuf::from("/srv"), Options::default())
    }

    fn feed(c: &mut Conn, mut input: &[u8]) -> usize {
        let mut n = 0;
        while c.wants_read() && !input.is_empty() {
            n += c.read_from(&mut input).unwrap();
        }
        n
    }

    fn sent(c: &mut Conn) -> String {
        let mut v = Vec::new();
        while let Some(Next::Bytes(b)) = c.output().next() {
            v.extend_from_slice(b);
            let n = b.len();
            c.output().advance(n);
        }
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn maps_a_request_to_params() {
        let mut c = conn();
        feed(
            &mut c,
            b"GET /films/a%20b+1.mp4?start=1%2E5 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\nGET /b",
        );
        let r = c.next_event().expect("a request");
        assert!(r.keep_conn);
        assert_eq!(
            r.params.get(b"SCRIPT_FILENAME"),
            Some(&b"/srv/films/a b+1.mp4"[..]),
            "a plus in a path is a plus"
        );
        assert_eq!(r.params.get(b"QUERY_STRING"), Some(&b"start=1%2E5"[..]));
        assert_eq!(r.params.get(b"HTTP_RANGE"), Some(&b"bytes=0-9"[..]));
        assert!(c.next_event().is_none(), "one at a time");
        c.end(true);
        assert!(c.next_event().is_none(), "the next head is partial");
        assert!(c.receiving());
    }

    #[test]
    fn one_bound_for_the_head_whatever_the_split() {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(100 << 10, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        let mut c = conn();
        assert_eq!(feed(&mut c, &head), MAX_HEAD, "reading stops at the bound");
        assert!(c.next_event().is_none());
        assert!(sent(&mut c).starts_with("HTTP/1.1 431 "));
        assert!(!c.keep_open());
    }

    #[test]
    fn bodies_are_refused() {
        for h in [
            "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nGET / HTTP",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            let mut c = conn();
            feed(&mut c, h.as_bytes());
            assert!(c.next_event().is_none());
            assert!(sent(&mut c).starts_with("HTTP/1.1 413 "), "{h}");
            assert!(!c.keep_open());
        }
        let mut c = conn();
        feed(&mut c, b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(c.next_event().is_some());
    }

    /// Two Content-Lengths (`0` then `N`) once gave two answers to one
    /// request: the body was read as the next. One framing or a refusal.
    #[test]
    fn ambiguous_framing_gets_one_answer_and_a_close() {
        for (h, status) in [
            (
                "GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 27\r\n\r\nGET /x HTTP/1.1\r\nX: y\r\n\r\n",
                400,
            ),
            (
                "GET / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nContent-Length: 0, 5\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nContent-Length: +0\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nContent-Length: zero\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                413,
            ),
        ] {
            let mut c = conn();
            feed(&mut c, h.as_bytes());
            assert!(c.next_event().is_none(), "{h:?}");
            c.end(true);
            assert!(c.next_event().is_none(), "{h:?}");
            let out = sent(&mut c);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status} ")),
                "{h:?}: {out}"
            );
            assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{h:?}: {out}");
            assert!(out.contains("Connection: close\r\n"), "{h:?}");
            assert!(!c.keep_open(), "{h:?}");
        }
        let mut c = conn();
        feed(&mut c, b"GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n");
        assert!(c.next_event().is_some(), "a zero length is no body");
    }

    #[test]
    fn refusals_carry_their_reason_phrase() {
        let mut c = conn();
        feed(&mut c, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
        assert!(c.next_event().is_none());
        assert!(
            sent(&mut c).starts_with("HTTP/1.1 413 Content Too Large\r\n"),
            "the phrase is not Unknown"
        );
    }

    #[test]
    fn the_demo_is_answered_here_and_films_go_on() {
        let on = Options {
            demo: true,
            ..Options::default()
        };
        let mut c = Conn::new(PathBuf::from("/nonexistent"), on);
        feed(
            &mut c,
            b"GET / HTTP/1.1\r\n\r\nHEAD /_demo/nope HTTP/1.1\r\n\r\nGET /a.mp4 HTTP/1.1\r\n\r\n",
        );
        let r = c.next_event().expect("the film's request");
        assert_eq!(r.params.get(b"SCRIPT_NAME"), Some(&b"/a.mp4"[..]));
        let out = sent(&mut c);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Security-Policy: "), "{out}");
        assert!(out.contains("<!doctype html>"), "{out}");
        assert!(out.contains("HTTP/1.1 404 Not Found\r\n"), "{out}");
        assert!(c.keep_open());
        // Off: / is the handler's; /_demo/ stays reserved.
        let mut c = Conn::new(PathBuf::from("/srv"), Options::default());
        feed(&mut c, b"GET / HTTP/1.1\r\n\r\n");
        assert!(c.next_event().is_some());
        let mut c = Conn::new(PathBuf::from("/srv"), Options::default());
        feed(
            &mut c,
            b"GET /_demo/x.mp4 HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(c.next_event().is_none());
        assert!(sent(&mut c).starts_with("HTTP/1.1 404 "));
        assert!(!c.keep_open());
    }

    #[test]
    fn cors_answers_the_requests_own_origin() {
        let cors =
            Cors::from_values(&["https://a.example".into(), "https://b.example".into()]).unwrap();
        let mut c = Conn::new(
            PathBuf::from("/srv"),
            Options {
                cors,
                ..Options::default()
            },
        );
        feed(
            &mut c,
            b"GET /a.mp4 HTTP/1.1\r\nOrigin: https://b.example\r\n\r\nGET /a.mp4 HTTP/1.1\r\nOrigin: https://evil.example\r\n\r\n",
        );
        let r = c.next_event().unwrap();
        assert_eq!(
            r.params.get(b"HTTP_ORIGIN"),
            Some(&b"https://b.example"[..])
        );
        c.head(b"Status: 200 OK\r\nVary: Origin\r\nContent-Length: 0\r\n\r\n");
        c.end(true);
        let out = sent(&mut c);
        assert!(
            out.contains("Access-Control-Allow-Origin: https://b.example\r\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "Access-Control-Expose-Headers: Content-Length, Content-Range, Accept-Ranges\r\n"
            ),
            "{out}"
        );
        assert_eq!(out.matches("Vary: Origin\r\n").count(), 1, "{out}");
        assert!(out.contains("Content-Length: 0\r\n"), "{out}");
        assert!(c.next_event().is_some());
        c.head(b"Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
        let out = sent(&mut c);
        assert!(!out.contains("Access-Control-Allow-Origin"), "{out}");
        assert!(out.contains("Vary: Origin\r\n"), "{out}");
    }

    #[test]
    fn http_1_0_closes_and_heads_convert() {
        let mut c = conn();
        feed(&mut c, b"GET / HTTP/1.0\r\n\r\n");
        let r = c.next_event().unwrap();
        assert!(!r.keep_conn);
        c.head(b"Status: 206 Partial Content\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(
            sent(&mut c),
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
        );
        c.end(true);
        assert!(!c.keep_open());
        let mut c = conn();
        feed(&mut c, b"\x01\x02 nonsense\r\n\r\n");
        assert!(c.next_event().is_none());
        assert!(sent(&mut c).starts_with("HTTP/1.1 400 "));
    }
}
