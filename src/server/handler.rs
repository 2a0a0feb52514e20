//! One request: FastCGI params in, a response head and a body plan out.
//! The glue between the rooms: `http` decides, `mp4` plans, this opens files.

use super::cache::{Caches, FileKey};
use super::config::Config;
use super::stats::Stats;
use crate::fcgi::Params;
use crate::http::{self, Body, BodyPart, Entity, RequestHead, Response};
use crate::mp4::{self, Layout, Window};
use bytes::Bytes;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

/// A piece of a response body.
#[derive(Debug)]
pub enum Chunk {
    Bytes(Bytes),
    /// Bytes of the layout.
    Layout(Range<u64>),
}

/// The response to send: head, then the body chunks in order.
pub struct Prepared {
    pub status: u16,
    pub head: Vec<u8>,
    pub chunks: VecDeque<Chunk>,
    pub layout: Option<Rc<Layout>>,
    pub file: Option<Rc<File>>,
}

pub struct Ctx<'a> {
    pub config: &'a Config,
    pub caches: &'a mut Caches,
    pub stats: Stats,
    pub pool_start: u64,
    pub limits: &'a mp4::Limits,
    /// Set for FastCGI requests when `--offload x-sendfile2` is on.
    pub offload: Option<&'a mut super::offload::Offload>,
}

impl Prepared {
    fn from_response(r: Response) -> Prepared {
        let head = r.cgi_head();
        let mut chunks = VecDeque::new();
        match r.body {
            Body::Empty => {}
            Body::Text(t) => chunks.push_back(Chunk::Bytes(Bytes::from(t))),
            Body::Entity(parts) => chunks.extend(parts.into_iter().map(|p| match p {
                BodyPart::Bytes(b) => Chunk::Bytes(b),
                BodyPart::Range(r) => Chunk::Layout(r),
            })),
        }
        Prepared {
            status: r.status,
            head,
            chunks,
            layout: None,
            file: None,
        }
    }

    /// The answer to a request that arrives when the worker has no room.
    pub fn overloaded() -> Prepared {
        let mut r = http::error_response(503, "the server is busy; try again in a moment");
        r.headers.push(("Retry-After", "1".to_string()));
        Prepared::from_response(r)
    }
}

/// A refusal: status and a one-line reason for the body and the log.
struct Refusal(u16, String);

impl Refusal {
    /// Reasons never name server paths: the log line does.
    fn io(e: &io::Error) -> Refusal {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                Refusal(404, "no such file".into())
            }
            io::ErrorKind::PermissionDenied => Refusal(403, "permission denied".into()),
            _ => Refusal(500, format!("cannot read the file: {e}")),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The file a request names: SCRIPT_FILENAME (also Apache's
/// `proxy:fcgi://host/path` form), else DOCUMENT_ROOT + SCRIPT_NAME.
fn script_path(params: &Params) -> Result<PathBuf, Refusal> {
    let raw: Vec<u8> = match params.get(b"SCRIPT_FILENAME") {
        Some(sf) if sf.starts_with(b"proxy:fcgi://") => {
            let rest = &sf[b"proxy:fcgi://".len()..];
            let path = rest
                .iter()
                .position(|&b| b == b'/')
                .map_or(&b""[..], |p| &rest[p..]);
            http::percent_decode_path(path)
                .ok_or_else(|| Refusal(400, "SCRIPT_FILENAME: bad percent-encoding".into()))?
        }
        Some(sf) => sf.to_vec(),
        None => match (params.get(b"DOCUMENT_ROOT"), params.get(b"SCRIPT_NAME")) {
            (Some(root), Some(name)) => [root, name].concat(),
            _ => {
                return Err(Refusal(
                    400,
                    "the front server sent no SCRIPT_FILENAME".into(),
                ));
            }
        },
    };
    if raw.is_empty() || raw.contains(&0) {
        return Err(Refusal(
            400,
            "SCRIPT_FILENAME is empty or holds a NUL byte".into(),
        ));
    }
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&raw)))
}

/// Opens the file, refusing what lies outside `--root` or is not a regular
/// file. Also returns the path opened (resolved under `--root`).
fn open(path: &Path, root: Option<&Path>) -> Result<(File, std::fs::Metadata, PathBuf), Refusal> {
    // Resolving costs a readlink per path component: only --root needs it.
    let real = match root {
        Some(root) => {
            let real = path.canonicalize().map_err(|e| Refusal::io(&e))?;
            if !real.starts_with(root) {
                return Err(Refusal(403, "outside the served folder (--root)".into()));
            }
            real
        }
        None => path.to_path_buf(),
    };
    let file = File::open(&real).map_err(|e| Refusal::io(&e))?;
    let meta = file.metadata().map_err(|e| Refusal::io(&e))?;
    if !meta.is_file() {
        return Err(Refusal(403, "not a regular file".into()));
    }
    Ok((file, meta, real))
}

fn layout_for(
    ctx: &mut Ctx<'_>,
    file: &File,
    key: FileKey,
    window: &Window,
) -> Result<Rc<Layout>, mp4::Error> {
    if let Some(l) = ctx.caches.layout(key, window) {
        return Ok(l);
    }
    let index = match ctx.caches.index(key) {
        Some(i) => {
            ctx.stats.get().cache_hits.fetch_add(1, Relaxed);
            i
        }
        None => {
            ctx.stats.get().cache_misses.fetch_add(1, Relaxed);
            let i = Rc::new(mp4::Index::build(file, ctx.limits)?);
            ctx.caches.put_index(key, i.clone());
            i
        }
    };
    let layout = Rc::new(index.plan(window)?);
    ctx.caches.put_layout(key, window, layout.clone());
    Ok(layout)
}

fn status_page(ctx: &Ctx<'_>, params: &Params) -> Prepared {
    let q = http::parse_query(params.get(b"QUERY_STRING").unwrap_or(b"")).unwrap_or_default();
    let (body, ctype) = if q.json {
        (
            ctx.stats.json(ctx.pool_start, now_secs()),
            "application/json",
        )
    } else {
        (
            ctx.stats.text(ctx.pool_start, now_secs()),
            "text/plain; charset=utf-8",
        )
    };
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

fn refuse(status: u16, reason: &str, path: Option<&Path>) -> Prepared {
    let shown = path.map_or_else(|| "-".into(), |p| p.display().to_string());
    if status >= 500 {
        log::error!("{shown}: {status} {reason}");
    } else {
        log::warn!("{shown}: {status} {reason}");
    }
    Prepared::from_response(http::error_response(status, reason))
}

/// Hands a one-range body to the front server as `X-Sendfile2` pieces.
/// Multipart bodies (their boundaries live nowhere on disk) stream as usual.
fn offload(
    o: &mut super::offload::Offload,
    response: &mut Response,
    media: &Path,
    key: FileKey,
    window: &Window,
    layout: &Layout,
) {
    let Body::Entity(parts) = &response.body else {
        return;
    };
    let [BodyPart::Range(range)] = parts.as_slice() else {
        return;
    };
    if range.is_empty() {
        return;
    }
    if let Some(v) = o.header_value(media, key, window, layout, range.clone()) {
        response.headers.push(("X-Sendfile2", v));
        response.body = Body::Empty;
    }
}

/// Answers one request.
pub fn handle(params: &Params, params_overflow: bool, ctx: &mut Ctx<'_>) -> Prepared {
    ctx.stats.get().requests.fetch_add(1, Relaxed);
    let p = answer(params, params_overflow, ctx);
    if p.status >= 400 {
        ctx.stats.get().errors.fetch_add(1, Relaxed);
    }
    p
}

fn answer(params: &Params, params_overflow: bool, ctx: &mut Ctx<'_>) -> Prepared {
    if params_overflow {
        return refuse(431, "request parameters exceed --max-params", None);
    }
    if let (Some(sp), Some(name)) = (
        ctx.config.status_path.as_deref(),
        params.get(b"SCRIPT_NAME"),
    ) && sp.as_bytes() == name
    {
        return status_page(ctx, params);
    }
    let method = params.get(b"REQUEST_METHOD").unwrap_or(b"GET");
    if method != b"GET" && method != b"HEAD" {
        return Prepared::from_response(http::error_response(405, "only GET and HEAD are allowed"));
    }
    let path = match script_path(params) {
        Ok(p) => p,
        Err(Refusal(s, why)) => return refuse(s, &why, None),
    };
    let query = match http::parse_query(params.get(b"QUERY_STRING").unwrap_or(b"")) {
        Ok(q) => q,
        Err(e) => return refuse(400, &e.to_string(), Some(&path)),
    };
    let (file, meta, opened) = match open(&path, ctx.config.root.as_deref()) {
        Ok(f) => f,
        Err(Refusal(s, why)) => return refuse(s, &why, Some(&path)),
    };
    let key = FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
    };
    let window = Window {
        start: query.start,
        end: query.end,
        flash: query.flash,
    };
    let layout = match layout_for(ctx, &file, key, &window) {
        Ok(l) => l,
        Err(e) => return refuse(http::status_for(&e), &e.to_string(), Some(&path)),
    };
    let etag = http::etag(
        key.dev,
        key.ino,
        key.size,
        key.mtime,
        key.mtime_nsec,
        &window,
    );
    let entity = Entity {
        len: layout.len(),
        etag: &etag,
        last_modified: meta.modified().unwrap_or(UNIX_EPOCH),
        content_type: http::content_type(path.as_os_str().as_bytes()),
    };
    let head = RequestHead {
        method,
        range: params.get(b"HTTP_RANGE"),
        if_range: params.get(b"HTTP_IF_RANGE"),
        if_none_match: params.get(b"HTTP_IF_NONE_MATCH"),
        if_modified_since: params.get(b"HTTP_IF_MODIFIED_SINCE"),
    };
    let mut response = http::respond(&head, &entity);
    if let Some(o) = ctx.offload.as_deref_mut() {
        offload(o, &mut response, &opened, key, &window, &layout);
    }
    if response.status >= 400 {
        log::warn!(
            "{}: {} {}",
            path.display(),
            response.status,
            http::reason_phrase(response.status)
        );
    }
    let mut p = Prepared::from_response(response);
    p.layout = Some(layout);
    p.file = Some(Rc::new(file));
    p
}
