//! The response decision for an entity (the trimmed MP4): status, headers
//! and which bytes of the entity make the body.

use super::conditional::{if_range_matches, none_match, not_modified_since};
use super::range::{Decision, decide};
use super::reason_phrase;
use bytes::Bytes;
use std::ops::Range;
use std::time::SystemTime;

/// What the request says that matters here (from FastCGI params).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestHead<'a> {
    pub method: &'a [u8],
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
}

/// The entity: the output the engine planned.
#[derive(Clone, Copy, Debug)]
pub struct Entity<'a> {
    pub len: u64,
    pub etag: &'a str,
    pub last_modified: SystemTime,
    pub content_type: &'static str,
}

/// A piece of a response body.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// Bytes of their own (a multipart boundary, an error text).
    Bytes(Bytes),
    /// Bytes of the entity.
    Range(Range<u64>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Empty,
    Text(String),
    Entity(Vec<Piece>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    /// The CGI response head: `Status:` and the headers, then a blank line.
    pub fn cgi_head(&self) -> Vec<u8> {
        let mut h = format!("Status: {} {}\r\n", self.status, reason_phrase(self.status));
        for (name, value) in &self.headers {
            h.push_str(name);
            h.push_str(": ");
            // Nothing from the request may split a header.
            h.extend(
                value
                    .chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
            );
            h.push_str("\r\n");
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    pub fn body_len(&self) -> u64 {
        match &self.body {
            Body::Empty => 0,
            Body::Text(t) => t.len() as u64,
            Body::Entity(parts) => parts
                .iter()
                .map(|p| match p {
                    Piece::Bytes(b) => b.len() as u64,
                    Piece::Range(r) => r.end - r.start,
                })
                .sum(),
        }
    }
}

/// A text/plain error with a one-line reason.
pub fn error_response(status: u16, reason: &str) -> Response {
    let body = format!("{reason}\n");
    let mut headers = vec![
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Content-Length", body.len().to_string()),
    ];
    if status == 405 {
        headers.push(("Allow", "GET, HEAD".to_string()));
    }
    Response {
        status,
        headers,
        body: Body::Text(body),
    }
}

fn boundary(etag: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in etag.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("mp4fcgi{h:016x}")
}

/// The response to `req` for `e`; `now` is the server's clock (an
/// If-Modified-Since later than it is ignored).
pub fn respond(req: &RequestHead<'_>, e: &Entity<'_>, now: SystemTime) -> Response {
    let head = req.method == b"HEAD";
    if !head && req.method != b"GET" {
        return error_response(405, "only GET and HEAD are allowed");
    }
    let validators = vec![
        ("Last-Modified", httpdate::fmt_http_date(e.last_modified)),
        ("ETag", e.etag.to_string()),
    ];
    let not_modified = match (req.if_none_match, req.if_modified_since) {
        (Some(inm), _) => none_match(inm, e.etag),
        (None, Some(ims)) => not_modified_since(ims, e.last_modified, now) == Some(true),
        (None, None) => false,
    };
    if not_modified {
        return Response {
            status: 304,
            headers: validators,
            body: Body::Empty,
        };
    }
    let mut headers = vec![("Content-Type", e.content_type.to_string())];
    headers.extend(validators);
    headers.push(("Accept-Ranges", "bytes".to_string()));
    let ranged = match (head, req.range) {
        (false, Some(r))
            if req
                .if_range
                .is_none_or(|ir| if_range_matches(ir, e.etag, e.last_modified)) =>
        {
            decide(r, e.len)
        }
        _ => Decision::Full,
    };
    let (status, body) = match ranged {
        Decision::Full => (200, vec![Piece::Range(0..e.len)]),
        Decision::Unsatisfiable => {
            let mut r = error_response(416, "the range is outside the clip");
            r.headers
                .push(("Content-Range", format!("bytes */{}", e.len)));
            return r;
        }
        Decision::Ranges(ranges) if ranges.len() == 1 => {
            let r = ranges[0].clone();
            headers.push((
                "Content-Range",
                format!("bytes {}-{}/{}", r.start, r.end - 1, e.len),
            ));
            (206, vec![Piece::Range(r)])
        }
        Decision::Ranges(ranges) => {
            let b = boundary(e.etag);
            headers[0].1 = format!("multipart/byteranges; boundary={b}");
            let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
            for r in ranges {
                let part_head = format!(
                    "\r\n--{b}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                    e.content_type,
                    r.start,
                    r.end - 1,
                    e.len
                );
                parts.push(Piece::Bytes(Bytes::from(part_head)));
                parts.push(Piece::Range(r));
            }
            parts.push(Piece::Bytes(Bytes::from(format!("\r\n--{b}--\r\n"))));
            (206, parts)
        }
    };
    let mut r = Response {
        status,
        headers,
        body: Body::Entity(body),
    };
    r.headers.push(("Content-Length", r.body_len().to_string()));
    if head {
        r.body = Body::Empty;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn entity() -> Entity<'static> {
        Entity {
            len: 1000,
            etag: "\"e1\"",
            last_modified: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            content_type: "video/mp4",
        }
    }

    /// The clock in these tests: an hour after the entity's Last-Modified.
    fn respond(req: &RequestHead<'_>, e: &Entity<'_>) -> Response {
        super::respond(req, e, e.last_modified + Duration::from_secs(3600))
    }

    fn get<'a>() -> RequestHead<'a> {
        RequestHead {
            method: b"GET",
            ..Default::default()
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn plain_get_and_head() {
        let r = respond(&get(), &entity());
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "Content-Length"), Some("1000"));
        assert_eq!(header(&r, "Accept-Ranges"), Some("bytes"));
        assert_eq!(header(&r, "ETag"), Some("\"e1\""));
        assert_eq!(
            header(&r, "Last-Modified"),
            Some("Tue, 14 Nov 2023 22:13:20 GMT")
        );
        assert_eq!(r.body, Body::Entity(vec![Piece::Range(0..1000)]));
        let h = respond(
            &RequestHead {
                method: b"HEAD",
                range: Some(b"bytes=0-1"),
                ..get()
            },
            &entity(),
        );
        assert_eq!((h.status, h.body.clone()), (200, Body::Empty));
        assert_eq!(header(&h, "Content-Length"), Some("1000"));
    }

    #[test]
    fn methods() {
        let r = respond(
            &RequestHead {
                method: b"POST",
                ..get()
            },
            &entity(),
        );
        assert_eq!(r.status, 405);
        assert_eq!(header(&r, "Allow"), Some("GET, HEAD"));
    }

    #[test]
    fn ranges() {
        let r = respond(
            &RequestHead {
                range: Some(b"bytes=0-99"),
                ..get()
            },
            &entity(),
        );
        assert_eq!(r.status, 206);
        assert_eq!(header(&r, "Content-Range"), Some("bytes 0-99/1000"));
        assert_eq!(header(&r, "Content-Length"), Some("100"));
        let r = respond(
            &RequestHead {
                range: Some(b"bytes=5000-"),
                ..get()
            },
            &entity(),
        );
        assert_eq!(r.status, 416);
        assert_eq!(header(&r, "Content-Range"), Some("bytes */1000"));
        let r = respond(
            &RequestHead {
                range: Some(b"bytes=0-9,20-29"),
                ..get()
            },
            &entity(),
        );
        assert_eq!(r.status, 206);
        assert!(
            header(&r, "Content-Type")
                .unwrap()
                .starts_with("multipart/byteranges; boundary=")
        );
        assert_eq!(
            header(&r, "Content-Length").unwrap(),
            r.body_len().to_string()
        );
        let Body::Entity(parts) = &r.body else {
            panic!()
        };
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[1], Piece::Range(0..10));
        let Piece::Bytes(p) = &parts[2] else { panic!() };
        assert!(
            std::str::from_utf8(p)
                .unwrap()
                .contains("Content-Range: bytes 20-29/1000")
        );
    }

    #[test]
    fn if_range() {
        let e = entity();
        let lm = httpdate::fmt_http_date(e.last_modified);
        for (ir, status) in [
            (&b"\"e1\""[..], 206),
            (b"\"old\"", 200),
            (lm.as_bytes(), 206),
            (b"Wed, 01 Jan 2020 00:00:00 GMT", 200),
        ] {
            let r = respond(
                &RequestHead {
                    range: Some(b"bytes=0-9"),
                    if_range: Some(ir),
                    ..get()
                },
                &e,
            );
            assert_eq!(r.status, status, "{:?}", std::str::from_utf8(ir));
        }
    }

    #[test]
    fn conditionals() {
        let e = entity();
        let r = respond(
            &RequestHead {
                if_none_match: Some(b"\"e1\""),
                ..get()
            },
            &e,
        );
        assert_eq!((r.status, r.body.clone()), (304, Body::Empty));
        assert!(header(&r, "Content-Length").is_none());
        assert_eq!(header(&r, "ETag"), Some("\"e1\""));
        // If-None-Match that fails wins over a matching If-Modified-Since.
        let lm = httpdate::fmt_http_date(e.last_modified);
        let r = respond(
            &RequestHead {
                if_none_match: Some(b"\"x\""),
                if_modified_since: Some(lm.as_bytes()),
                ..get()
            },
            &e,
        );
        assert_eq!(r.status, 200);
        let r = respond(
            &RequestHead {
                if_modified_since: Some(lm.as_bytes()),
                ..get()
            },
            &e,
        );
        assert_eq!(r.status, 304);
        let r = respond(
            &RequestHead {
                if_modified_since: Some(b"Thu, 01 Jan 2015 00:00:00 GMT"),
                ..get()
            },
            &e,
        );
        assert_eq!(r.status, 200);
        let r = respond(
            &RequestHead {
                if_modified_since: Some(b"yesterday"),
                ..get()
            },
            &e,
        );
        assert_eq!(r.status, 200);
    }

    /// RFC 9110 §13.1.3: a date later than the server's clock is invalid,
    /// and the header is ignored.
    #[test]
    fn if_modified_since_in_the_future_is_ignored() {
        let e = entity();
        let now = e.last_modified + Duration::from_secs(3600);
        let ims = |t: SystemTime| httpdate::fmt_http_date(t);
        let at = |t: SystemTime| {
            let ims = ims(t);
            super::respond(
                &RequestHead {
                    if_modified_since: Some(ims.as_bytes()),
                    ..get()
                },
                &e,
                now,
            )
            .status
        };
        assert_eq!(at(now + Duration::from_secs(86_400)), 200);
        assert_eq!(at(now + Duration::from_secs(2)), 200);
        assert_eq!(at(now), 304);
        assert_eq!(at(e.last_modified), 304);
    }

    #[test]
    fn cgi_head_never_splits_headers() {
        let mut r = error_response(404, "no such file");
        r.headers.push(("X-Path", "a\r\nSet-Cookie: x".to_string()));
        let h = String::from_utf8(r.cgi_head()).unwrap();
        assert!(h.starts_with("Status: 404 Not Found\r\n"));
        assert!(h.ends_with("\r\n\r\n"));
        assert_eq!(h.matches("\r\n").count(), 5);
        assert_eq!(r.body_len(), 13);
    }
}
