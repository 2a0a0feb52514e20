//! The development listener (`--http`): a thin HTTP/1.1 adapter that turns a
//! request into the same params a front server would send, so the same
//! handler answers. For development only: production goes through a front
//! server, which adds TLS, logging, access control and static files.

use crate::fcgi::Params;
use crate::http::percent_decode;
use std::path::Path;

/// Most bytes a request head may take.
pub const MAX_HEAD: usize = 16 << 10;

pub enum Parsed {
    /// Not all of the head has arrived.
    Partial,
    Request {
        consumed: usize,
        params: Params,
        keep_alive: bool,
    },
    /// Answer this status with this reason, then close.
    Bad(u16, &'static str),
}

/// Parses one request head from `input` and maps its path under `root`.
pub fn parse(input: &[u8], root: &Path) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => {
            return Parsed::Bad(431, "request head too large");
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad(400, "malformed HTTP request"),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Parsed::Bad(400, "malformed HTTP request");
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Some(path) = percent_decode(path.as_bytes()).filter(|p| p.starts_with(b"/")) else {
        return Parsed::Bad(400, "bad request path");
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let connection = header("Connection").map(|v| v.to_ascii_lowercase());
    let keep_alive = match req.version {
        Some(1) => connection.as_deref() != Some(b"close"),
        _ => connection.as_deref() == Some(b"keep-alive"),
    };
    let file = [root.as_os_str().as_encoded_bytes(), &path].concat();
    let mut pairs: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", method.as_bytes()),
        (b"SCRIPT_NAME", &path),
        (b"SCRIPT_FILENAME", &file),
        (b"QUERY_STRING", query.as_bytes()),
    ];
    for (name, param) in [
        ("Range", &b"HTTP_RANGE"[..]),
        ("If-Range", b"HTTP_IF_RANGE"),
        ("If-None-Match", b"HTTP_IF_NONE_MATCH"),
        ("If-Modified-Since", b"HTTP_IF_MODIFIED_SINCE"),
    ] {
        if let Some(v) = header(name) {
            pairs.push((param, v));
        }
    }
    Parsed::Request {
        consumed,
        params: Params::from_pairs(pairs),
        keep_alive,
    }
}

/// Turns a CGI response head (`Status: 206 Partial Content` first) into an
/// HTTP/1.1 status line and headers.
pub fn response_head(cgi: &[u8], keep_alive: bool) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_request_to_params() {
        let input = b"GET /films/a%20b.mp4?start=1%2E5 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\nextra";
        let Parsed::Request {
            consumed,
            params,
            keep_alive,
        } = parse(input, Path::new("/srv"))
        else {
            panic!("a request")
        };
        assert_eq!(
            consumed,
            input.len() - b"extra".len(),
            "the head, not what follows"
        );
        assert!(keep_alive);
        assert_eq!(
            params.get(b"SCRIPT_FILENAME"),
            Some(&b"/srv/films/a b.mp4"[..])
        );
        assert_eq!(params.get(b"QUERY_STRING"), Some(&b"start=1%2E5"[..]));
        assert_eq!(params.get(b"HTTP_RANGE"), Some(&b"bytes=0-9"[..]));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost", Path::new("/")),
            Parsed::Partial
        ));
        assert!(matches!(
            parse(b"\x01\x02 nonsense\r\n\r\n", Path::new("/")),
            Parsed::Bad(400, _)
        ));
        let Parsed::Request { keep_alive, .. } = parse(b"GET / HTTP/1.0\r\n\r\n", Path::new("/"))
        else {
            panic!()
        };
        assert!(!keep_alive);
    }

    #[test]
    fn converts_the_cgi_head() {
        let h = response_head(
            b"Status: 206 Partial Content\r\nContent-Length: 10\r\n\r\n",
            false,
        );
        assert_eq!(
            h,
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
        );
    }
}
