//! The last stage: the answer. A planned layout becomes the [`Prepared`]
//! response (head, body pieces, what it holds); also refusals, the status
//! page, and the worker's state every stage reads ([`Ctx`]).

use super::cache::Caches;
use super::config::Config;
use super::note::Note;
use super::remote::Link;
use super::stats::Stats;
use super::walk::Walk;
use crate::fcgi::Params;
use crate::http::{self, Body, Entity, Piece, RequestHead, Response};
use crate::manifest::Resource;
use crate::mp4::{self, Layout};
use crate::origin::Object;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
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

/// What sets a packaged resource's bytes apart from the window's others
/// (mixed into its entity tag); 0 for the film itself.
fn packaged(resource: Resource, segment_duration: f64) -> u64 {
    match resource {
        Resource::Progressive => 0,
        o => o.tag() ^ segment_duration.to_bits().rotate_left(17),
    }
}

/// The response for a planned window: status, headers, which bytes.
pub(super) fn respond(w: &Walk, layout: Arc<Layout>, ctx: &mut Ctx<'_>) -> Prepared {
    // What the caches hold is counted by their budgets; a response is
    // charged only for what it alone keeps alive.
    let charge = if ctx.caches.holds_layout(w.key, &w.want()) {
        0
    } else {
        layout.heap_bytes()
    } + layout
        .index()
        .filter(|_| !ctx.caches.retains(w.key))
        .map_or(0, |i| i.heap_bytes())
        + w.source.body_charge(ctx.config);
    if ctx.inflight.saturating_add(charge) > ctx.config.max_inflight {
        let mut p = Prepared::busy("the server is busy; try again in a moment");
        p.note.reason = Some(format!(
            "responses in flight hold {} bytes; this one needs {charge} more \
             (--max-inflight {})",
            ctx.inflight, ctx.config.max_inflight
        ));
        p.note.detail = format!("file {}", w.path.display());
        return p;
    }
    let etag = http::etag(
        w.key.dev,
        w.key.ino,
        w.key.size,
        w.key.mtime,
        w.key.mtime_nsec,
        &w.window,
        packaged(w.resource, ctx.config.segment_duration) ^ w.set_tag,
    );
    let entity = Entity {
        len: layout.len(),
        etag: &etag,
        last_modified: w.modified,
        content_type: w
            .resource
            .content_type()
            .unwrap_or_else(|| http::content_type(w.path.as_os_str().as_bytes())),
    };
    let head = RequestHead {
        method: &w.method,
        range: w.range.as_deref(),
        if_range: w.if_range.as_deref(),
        if_none_match: w.if_none_match.as_deref(),
        if_modified_since: w.if_modified_since.as_deref(),
    };
    let mut response = http::respond(&head, &entity, SystemTime::now());
    if let Some(cc) = &ctx.config.cache_control
        && matches!(response.status, 200 | 206 | 304)
    {
        response.headers.push(("Cache-Control", cc.clone()));
    }
    if let Some(o) = ctx.offload.as_deref_mut()
        && w.resource == Resource::Progressive
    {
        offload(o, &mut response, w, &layout);
    }
    let mut p = Prepared::from_response(response);
    if p.status >= 400 {
        p.note.reason = Some(http::reason_phrase(p.status).to_string());
    }
    let clip = layout.clip();
    p.note.detail = format!(
        "file {}, window {}-{} s, key frame {:.3} s, shown from {:.3} s for {:.3} s, {}",
        w.path.display(),
        w.window.start.unwrap_or(0.0),
        w.window.end.map_or_else(|| "end".into(), |e| e.to_string()),
        clip.key_frame,
        clip.from,
        clip.duration,
        w.cache
    );
    p.layout = Some(layout);
    w.source.feed(&mut p, ctx.link);
    p.charge = charge;
    p
}

/// Hands a one-range body to the front server as `X-Sendfile2` pieces.
/// Multipart bodies (their boundaries live nowhere on disk) stream as usual.
fn offload(
    o: &mut super::offload::Offload,
    response: &mut Response,
    w: &Walk,
    layout: &Arc<Layout>,
) {
    let Body::Entity(pieces) = &response.body else {
        return;
    };
    let [Piece::Range(range)] = pieces.as_slice() else {
        return;
    };
    if range.is_empty() {
        return;
    }
    let Some(file) = w.source.local_file() else {
        return;
    };
    if let Some(v) = o.header_value(&w.opened, file, w.key, &w.window, layout, range.clone()) {
        response.headers.push(("X-Sendfile2", v));
        response.body = Body::Empty;
    }
}
