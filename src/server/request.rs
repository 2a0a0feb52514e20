//! A request as the handler first hears it: method, film (a file or an
//! object), window, HLS/DASH output, Range and conditionals; the film is
//! opened (a file) or named (an object) here, and the rest waits in a
//! [`Resume`] for the index.

use super::cache::{FileKey, Want};
use super::handler::{Ctx, Prepared, refuse, status_page};
use super::local::{Refusal, open, script_path};
use super::remote;
use crate::fcgi::Params;
use crate::http;
use crate::manifest::Output;
use crate::mp4::Window;
use crate::mp4::cmaf::Presentation;
use crate::origin::Object;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a request's film is.
pub(super) enum Media {
    File(Rc<File>),
    /// An object of the origin: known once opened (or remembered).
    Object {
        key: Arc<str>,
        object: Option<Arc<Object>>,
    },
}

/// A request waiting for a job, with all it needs to go on.
pub struct Resume {
    pub(super) path: PathBuf,
    pub(super) opened: PathBuf,
    pub(super) media: Media,
    pub(super) key: FileKey,
    pub(super) modified: SystemTime,
    pub(super) window: Window,
    /// The film itself, or one of its HLS/DASH outputs (`PATH_INFO`).
    pub(super) output: Output,
    pub(super) method: Vec<u8>,
    pub(super) range: Option<Vec<u8>>,
    pub(super) if_range: Option<Vec<u8>>,
    pub(super) if_none_match: Option<Vec<u8>>,
    pub(super) if_modified_since: Option<Vec<u8>>,
    /// What the caches held, for the log.
    pub(super) cache: &'static str,
    /// In a URL set: which film this is (from 1); 0 for a film on its own.
    pub(super) file: u8,
    /// A URL set's manifest: the films still to plan, and the plans so far.
    pub(super) set: VecDeque<Vec<u8>>,
    pub(super) gathered: Vec<Arc<Presentation>>,
    /// A hash of the identities of the films gathered (for the entity tag).
    pub(super) set_tag: u64,
}

impl Resume {
    pub(super) fn want(&self) -> Want {
        Want {
            window: self.window,
            output: self.output,
        }
    }

    /// A URL set's manifest, which needs the plans of all its films.
    pub(super) fn gathering(&self) -> bool {
        self.file > 0 && matches!(self.output, Output::Master | Output::Mpd)
    }

    /// Keeps this film's plan and moves to the set's next film, if any.
    pub(super) fn gather(&mut self, p: Arc<Presentation>) -> Option<Vec<u8>> {
        self.gathered.push(p);
        let k = self.key;
        for word in [k.dev, k.ino, k.size, k.mtime as u64, k.mtime_nsec as u64] {
            self.set_tag = (self.set_tag ^ word).wrapping_mul(0x0100_0000_01b3);
        }
        let next = self.set.pop_front()?;
        self.file = self.file.saturating_add(1);
        Some(next)
    }

    /// The object is known: its identity keys the caches.
    pub(super) fn set_object(&mut self, o: Arc<Object>) {
        self.key = remote::file_key(&o);
        self.modified = o.modified;
        if let Media::Object { object, .. } = &mut self.media {
            *object = Some(o);
        }
    }
}

/// Everything up to the index: method, path, query, the open file.
pub(super) fn start(
    params: &Params,
    params_overflow: bool,
    ctx: &mut Ctx<'_>,
) -> Result<Resume, Box<Prepared>> {
    if params_overflow {
        return Err(Box::new(refuse(
            431,
            "request parameters exceed --max-params",
        )));
    }
    if let (Some(sp), Some(name)) = (
        ctx.config.status_path.as_deref(),
        params.get(b"SCRIPT_NAME"),
    ) && sp.as_bytes() == name
    {
        return Err(Box::new(status_page(ctx, params)));
    }
    let method = params.get(b"REQUEST_METHOD").unwrap_or(b"GET");
    if method != b"GET" && method != b"HEAD" {
        return Err(Box::new(Prepared::from_response(http::error_response(
            405,
            "only GET and HEAD are allowed",
        ))));
    }
    let query = http::parse_query(params.get(b"QUERY_STRING").unwrap_or(b""))
        .map_err(|e| Box::new(refuse(400, &e.to_string())))?;
    let window = Window {
        start: query.start,
        end: query.end,
        flash: query.flash,
    };
    let mut output = match params.get(b"PATH_INFO").filter(|p| !p.is_empty()) {
        None => None,
        Some(info) => Some(Output::parse(info).ok_or_else(|| {
            let mut p = refuse(404, "no such HLS/DASH output of the film");
            p.note.detail = format!("PATH_INFO {}", String::from_utf8_lossy(info));
            Box::new(p)
        })?),
    };
    // Without PATH_INFO, a name like /a.mp4/init-1.mp4 is split here.
    let mut unsplit = |path: &[u8]| -> Vec<u8> {
        let (film, info) = crate::manifest::split(path);
        match Output::parse(info) {
            Some(o) if output.is_none() && o != Output::Progressive => {
                output = Some(o);
                film.to_vec()
            }
            _ => path.to_vec(),
        }
    };
    let name = match ctx.link {
        Some(_) => unsplit(params.get(b"SCRIPT_NAME").unwrap_or(b"")),
        None => {
            let path = script_path(params).map_err(|Refusal(s, why)| Box::new(refuse(s, &why)))?;
            unsplit(path.as_os_str().as_bytes())
        }
    };
    let output = chosen(output, &window)?;
    let mut r = Resume {
        window,
        output,
        ..heard(params, method)
    };
    let first = member(&name, &mut r)?;
    film(&mut r, &first, ctx)?;
    Ok(r)
}

/// For a URL set, which of its films this request reads first (the rest
/// of a manifest's films wait in `r.set`); else the film itself.
fn member(name: &[u8], r: &mut Resume) -> Result<Vec<u8>, Box<Prepared>> {
    let not_found = |why: &str| {
        let mut p = refuse(404, why);
        p.note.detail = format!("path {}", String::from_utf8_lossy(name));
        Box::new(p)
    };
    let track = r.output.track();
    let Some(films) = crate::manifest::url_set(name) else {
        if track.is_some_and(|t| t.file > 0) {
            return Err(not_found(
                "f<N>- names a film of a URL set; this is one film",
            ));
        }
        return Ok(name.to_vec());
    };
    match (r.output, track) {
        (Output::Master | Output::Mpd, _) => {
            let mut films = VecDeque::from(films);
            let first = films.pop_front().unwrap_or_default();
            r.file = 1;
            r.set = films;
            Ok(first)
        }
        (_, Some(t)) if t.file > 0 => {
            r.file = t.file;
            films
                .into_iter()
                .nth(usize::from(t.file) - 1)
                .ok_or_else(|| not_found("the URL set has no such film"))
        }
        _ => Err(not_found(
            "a URL set has HLS/DASH outputs only: master.m3u8, manifest.mpd, \
             and tracks named f<N>-<id>",
        )),
    }
}

/// Opens the film `name` (a file) or names it (an object) for `r`.
pub(super) fn film(r: &mut Resume, name: &[u8], ctx: &Ctx<'_>) -> Result<(), Box<Prepared>> {
    if let Some(link) = ctx.link {
        let key = link.origin.key(name).map_err(|e| {
            let mut p = refuse(e.status, e.reason);
            p.note.detail = format!("path {}", String::from_utf8_lossy(name));
            Box::new(p)
        })?;
        r.path = PathBuf::from(&key);
        r.opened = PathBuf::from(&key);
        r.media = Media::Object {
            key: key.into(),
            object: None,
        };
        return Ok(());
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name));
    let (file, meta, opened) =
        open(&path, ctx.config.root.as_deref()).map_err(|Refusal(s, why)| {
            let mut p = refuse(s, &why);
            // The client is never told server paths; the log is.
            p.note.detail = format!("file {}", path.display());
            p
        })?;
    r.key = FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
    };
    r.modified = meta.modified().unwrap_or(UNIX_EPOCH);
    r.path = path;
    r.opened = opened;
    r.media = Media::File(Rc::new(file));
    Ok(())
}

/// The output asked for, once a packaged one is known not to conflict
/// with the query.
fn chosen(output: Option<Output>, window: &Window) -> Result<Output, Box<Prepared>> {
    let output = output.unwrap_or_default();
    if output != Output::Progressive && window.flash {
        return Err(Box::new(refuse(
            400,
            "client=flash applies to progressive downloads, not HLS/DASH",
        )));
    }
    Ok(output)
}

/// What a request asks besides its film: method, Range and conditionals;
/// the film's fields are placeholders for the caller to fill.
fn heard(params: &Params, method: &[u8]) -> Resume {
    let owned = |name: &[u8]| params.get(name).map(<[u8]>::to_vec);
    Resume {
        key: FileKey {
            dev: 0,
            ino: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
        },
        modified: UNIX_EPOCH,
        window: Window::default(),
        output: Output::Progressive,
        path: PathBuf::new(),
        opened: PathBuf::new(),
        media: Media::Object {
            key: Arc::from(""),
            object: None,
        },
        method: method.to_vec(),
        range: owned(b"HTTP_RANGE"),
        if_range: owned(b"HTTP_IF_RANGE"),
        if_none_match: owned(b"HTTP_IF_NONE_MATCH"),
        if_modified_since: owned(b"HTTP_IF_MODIFIED_SINCE"),
        cache: "",
        file: 0,
        set: VecDeque::new(),
        gathered: Vec::new(),
        set_tag: 0,
    }
}
