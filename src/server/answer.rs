//! What a request is answered with, and what every stage of it sees: the
//! [`Prepared`] response (head, body pieces, what it holds), refusals, the
//! status page, and the worker's state a request reads ([`Ctx`]).

use super::cache::Caches;
use super::config::{Config, Cors};
use super::note::Note;
use super::remote::Link;
use super::stats::Stats;
use crate::fcgi::Params;
use crate::http::{self, Body, Piece, Response};
use crate::mp4::{self, Layout};
use crate::origin::Object;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fs::File;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The response to send: head, then the body pieces in order.
pub struct Prepared {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: VecDeque<Piece>,
    pub layout: Option<Arc<Layout>>,
    pub file: Option<Rc<File>>,
    /// A remote film's object, read through the link as the body goes.
    pub remote: Option<(Arc<Link>, Arc<Object>)>,
    /// Bytes this response holds that no cache accounts for (`--max-inflight`).
    pub charge: usize,
    pub note: Note,
}

pub struct Ctx<'a> {
    pub config: &'a Config,
    pub caches: &'a mut Caches,
    pub stats: Stats,
    pub pool_start: u64,
    pub limits: &'a mp4::Limits,
    /// Set for FastCGI requests when `--offload x-sendfile2` is on.
    pub offload: Option<&'a mut super::offload::Offload>,
    /// Bytes charged to responses in flight on this worker.
    pub inflight: usize,
    /// Set with `--origin`: films are objects, not files.
    pub link: Option<&'a Arc<Link>>,
}

impl Prepared {
    pub(super) fn from_response(r: Response) -> Prepared {
        let head = r.cgi_head();
        let body = match r.body {
            Body::Empty => VecDeque::new(),
            Body::Text(t) => VecDeque::from([Piece::Bytes(Bytes::from(t))]),
            Body::Entity(pieces) => pieces.into(),
        };
        Prepared {
            status: r.status,
            head,
            body,
            layout: None,
            file: None,
            remote: None,
            charge: 0,
            note: Note::default(),
        }
    }

    /// The answer to a request that arrives when the worker has no room.
    pub fn overloaded() -> Prepared {
        Prepared::busy("the server is busy; try again in a moment")
    }

    pub fn busy(reason: &str) -> Prepared {
        let mut r = http::error_response(503, reason);
        r.headers.push(("Retry-After", "1".to_string()));
        let mut p = Prepared::from_response(r);
        p.note.reason = Some(reason.to_string());
        p
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn status_page(ctx: &Ctx<'_>, params: &Params) -> Prepared {
    let query = params.get(b"QUERY_STRING").unwrap_or(b"");
    let (body, ctype) = super::status::page(&ctx.stats, ctx.pool_start, now_secs(), query);
    Prepared::from_response(Response {
        status: 200,
        headers: vec![
            ("Content-Type", ctype.to_string()),
            ("Content-Length", body.len().to_string()),
            ("Cache-Control", "no-store".to_string()),
        ],
        body: Body::Text(body),
    })
}

/// What a page of another origin may read of an answer (`--cors`):
/// Content-Range and Accept-Ranges besides what browsers always show.
const EXPOSED: &str = "Content-Length, Content-Range, Accept-Ranges";

/// How long a browser may keep a preflight's answer, in seconds (Chromium
/// keeps it two hours at most).
const PREFLIGHT_MAX_AGE: u32 = 7200;

/// The CORS headers of an answer to a request from `origin` (its `Origin`
/// header; `None` where the answer is made without the request's headers):
/// none without `--cors`.
pub(super) fn cors_headers(cors: &Cors, origin: Option<&[u8]>) -> Vec<(&'static str, String)> {
    let mut h = Vec::new();
    if matches!(cors, Cors::Origins(_)) {
        h.push(("Vary", "Origin".to_string()));
    }
    if let Some(allowed) = cors.allow_origin(origin) {
        h.push(("Access-Control-Allow-Origin", allowed.to_string()));
        h.push(("Access-Control-Expose-Headers", EXPOSED.to_string()));
    }
    h
}

/// Adds the CORS headers for `origin` to an answer made without them (a
/// refusal of any stage), so that the page can read why.
pub(super) fn add_cors(p: &mut Prepared, cors: &Cors, origin: Option<&[u8]>) {
    let headers = cors_headers(cors, origin);
    if headers.is_empty()
        || p.head
            .windows(12)
            .any(|w| w.eq_ignore_ascii_case(b"access-contr"))
    {
        return;
    }
    if !p.head.ends_with(b"\r\n\r\n") {
        return;
    }
    let end = p.head.len() - 2;
    let mut lines = Vec::new();
    for (name, value) in headers {
        lines.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    p.head.splice(end..end, lines);
}

/// The answer to an `OPTIONS` request with `--cors` on (a CORS preflight):
/// 204, GET and HEAD allowed with a Range header. An origin not allowed
/// gets no `Access-Control-Allow-Origin`, so its browser stops there.
pub(super) fn preflight(cors: &Cors, origin: Option<&[u8]>) -> Prepared {
    let mut headers = cors_headers(cors, origin);
    headers.extend([
        ("Access-Control-Allow-Methods", "GET, HEAD".to_string()),
        ("Access-Control-Allow-Headers", "Range".to_string()),
        ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE.to_string()),
        ("Allow", "GET, HEAD, OPTIONS".to_string()),
    ]);
    Prepared::from_response(Response {
        status: 204,
        headers,
        body: Body::Empty,
    })
}

/// A refusal: the status and its reason for the client; the log line,
/// written when the answer ends, adds advice on flags where one helps.
pub(super) fn refuse(status: u16, reason: &str) -> Prepared {
    let mut p = Prepared::from_response(http::error_response(status, reason));
    let advice = if reason.starts_with("moov box of") {
        " (raise it with --max-moov)"
    } else {
        ""
    };
    p.note.reason = Some(format!("{reason}{advice}"));
    p
}
