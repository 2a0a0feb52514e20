//! A request as the handler first hears it: method, film (a file or an
//! object), window, HLS/DASH resource, Range and conditionals; the film is
//! opened (a file) or named (an object) here, and the rest waits in a
//! [`Resume`] for the index.

use super::answer::{Ctx, Prepared, refuse, status_page};
use super::cache::FileKey;
use super::config::{Config, MAX_SET_FILMS, URL_SETS_PARAM, UrlSets};
use super::local::{Refusal, open, script_path};
use super::remote;
use super::source::Source;
use crate::fcgi::Params;
use crate::http;
use crate::manifest::Resource;
use crate::mp4::cmaf::Presentation;
use crate::mp4::{Index, Window};
use crate::origin::Object;
use crate::package::Want;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A request waiting for a job, with all it needs to go on.
pub struct Resume {
    pub(super) path: PathBuf,
    pub(super) opened: PathBuf,
    pub(super) source: Source,
    pub(super) key: FileKey,
    pub(super) modified: SystemTime,
    pub(super) window: Window,
    /// The film itself, or one of its HLS/DASH outputs (`PATH_INFO`).
    pub(super) resource: Resource,
    pub(super) method: Vec<u8>,
    pub(super) range: Option<Vec<u8>>,
    pub(super) if_range: Option<Vec<u8>>,
    pub(super) if_none_match: Option<Vec<u8>>,
    pub(super) if_modified_since: Option<Vec<u8>>,
    /// What the caches held, for the log.
    pub(super) cache: &'static str,
    /// In a URL set: which film this is (from 1); 0 for a film on its own.
    pub(super) file: u8,
    /// A URL set's manifest goes in two stages. First every film's index
    /// is read (`set`: the films still to read; `indexed`: those read),
    /// their bytes counted against the set's budget and their key frames
    /// compared (`cuts`: where the segments of the first film whose cuts
    /// are known will start, and which film that is); then (`planning`) each film is planned, as a
    /// job if the plans together are large (`plan_jobs`).
    pub(super) set: VecDeque<Vec<u8>>,
    pub(super) indexed: VecDeque<Indexed>,
    pub(super) cuts: Option<(u8, Vec<f64>)>,
    pub(super) planning: bool,
    pub(super) plan_jobs: bool,
    /// The plans so far.
    pub(super) gathered: Vec<Arc<Presentation>>,
    /// A hash of the identities of the films gathered (for the entity tag).
    pub(super) set_tag: u64,
}

/// A film of a URL set's manifest whose index is read, waiting for its plan.
pub(super) struct Indexed {
    pub(super) file: u8,
    pub(super) key: FileKey,
    pub(super) path: PathBuf,
    pub(super) modified: SystemTime,
    pub(super) index: Arc<Index>,
}

impl Resume {
    pub(super) fn want(&self) -> Want {
        Want {
            window: self.window,
            resource: self.resource,
        }
    }

    /// A URL set's manifest, which needs the plans of all its films.
    pub(super) fn gathering(&self) -> bool {
        self.file > 0 && matches!(self.resource, Resource::Master | Resource::Mpd)
    }

    /// Bytes the indexes read so far hold.
    pub(super) fn index_bytes(&self) -> usize {
        self.indexed.iter().map(|f| f.index.heap_bytes()).sum()
    }

    /// Keeps this film's index and moves to the set's next film to read,
    /// if any.
    pub(super) fn keep_index(&mut self, index: Arc<Index>) -> Option<Vec<u8>> {
        self.indexed.push_back(Indexed {
            file: self.file,
            key: self.key,
            path: self.path.clone(),
            modified: self.modified,
            index,
        });
        let next = self.set.pop_front()?;
        self.file = self.file.saturating_add(1);
        Some(next)
    }

    /// Moves to the next film to plan (its index, once read), if any.
    pub(super) fn next_plan(&mut self) -> Option<Arc<Index>> {
        let f = self.indexed.pop_front()?;
        self.file = f.file;
        self.key = f.key;
        self.path = f.path;
        self.modified = f.modified;
        Some(f.index)
    }

    /// Keeps this film's plan (in the set's order).
    pub(super) fn gather(&mut self, p: Arc<Presentation>) {
        self.gathered.push(p);
        let k = self.key;
        for word in [k.dev, k.ino, k.size, k.mtime as u64, k.mtime_nsec as u64] {
            self.set_tag = (self.set_tag ^ word).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The object is known: its identity keys the caches.
    pub(super) fn set_object(&mut self, o: Arc<Object>) {
        self.key = remote::file_key(&o);
        self.modified = o.modified;
        self.source.confirm(o);
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
    let mut resource = match params.get(b"PATH_INFO").filter(|p| !p.is_empty()) {
        None => None,
        Some(info) => Some(Resource::parse(info).ok_or_else(|| {
            let mut p = refuse(404, "no such HLS/DASH output of the film");
            p.note.detail = format!("PATH_INFO {}", String::from_utf8_lossy(info));
            Box::new(p)
        })?),
    };
    // Without PATH_INFO, a name like /a.mp4/init-1.mp4 is split here.
    let mut unsplit = |path: &[u8]| -> Vec<u8> {
        let (film, info) = crate::manifest::split(path);
        match Resource::parse(info) {
            Some(o) if resource.is_none() && o != Resource::Progressive => {
                resource = Some(o);
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
    let resource = chosen(resource, &window)?;
    let mut r = Resume {
        window,
        resource,
        ..heard(params, method)
    };
    let first = member(&name, &mut r, params, ctx.config)?;
    if r.gathering() {
        set_budget(&r, &first, ctx)?;
    }
    film(&mut r, &first, ctx)?;
    Ok(r)
}

const _: () = assert!(MAX_SET_FILMS <= crate::manifest::MAX_SET);

/// How many films a URL set's name lists (beyond what
/// [`crate::manifest::url_set`] accepts too); `None`: not a URL set.
fn set_size(name: &[u8]) -> Option<usize> {
    let name = name.strip_suffix(b".urlset")?;
    let base = &name[name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    let parts: Vec<&[u8]> = base.split(|&b| b == b',').collect();
    let [_, middle @ .., _] = parts.as_slice() else {
        return None;
    };
    Some(middle.iter().filter(|m| !m.is_empty()).count()).filter(|&n| n > 0)
}

/// Whether URL sets are served for this request (`--url-sets`, and the
/// front server's `MP4_FCGI_URL_SETS`); else a 403 saying which refused.
fn url_sets_allowed(params: &Params, config: &Config) -> Result<(), Box<Prepared>> {
    let said = params.get(URL_SETS_PARAM.as_bytes());
    let yes = said.is_some_and(|v| matches!(v, b"1" | b"on" | b"yes"));
    let no = said.is_some_and(|v| matches!(v, b"0" | b"off" | b"no"));
    let why = match config.url_sets {
        UrlSets::Off => "URL sets are not served here (--url-sets off)".to_string(),
        UrlSets::On if !no => return Ok(()),
        UrlSets::Param if yes => return Ok(()),
        UrlSets::Param if !no => format!(
            "URL sets are served only where the front server passes \
             {URL_SETS_PARAM}=1 (--url-sets param)"
        ),
        _ => format!("URL sets are not served here (the front server passes {URL_SETS_PARAM}=0)"),
    };
    Err(Box::new(refuse(403, &why)))
}

/// Refuses a URL set's manifest whose films' indexes would hold more than
/// the set's budget (half of `--cache-size`), before any is built: a
/// cached index counts its bytes, a film not indexed yet its `moov` box,
/// which its index holds whole (the index is two to three times that). A
/// film's size bounds nothing useful: a 2-hour film of a gigabyte has an
/// index of about 10 MB. A film whose index is cached costs a `stat`
/// here; the others are opened as they will be to be indexed (refused
/// here if they cannot be).
fn set_budget(r: &Resume, first: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Box<Prepared>> {
    let budget = ctx.config.set_index_budget();
    let mut bound = 0u64;
    let names = std::iter::once(first).chain(r.set.iter().map(Vec::as_slice));
    for (i, name) in names.enumerate() {
        bound = bound.saturating_add(index_bound(name, ctx)?);
        if bound > budget {
            let mut p = refuse(413, &over_budget(bound, budget));
            p.note.detail = format!(
                "URL set, films 1 to {} ({}): known before any index build",
                i + 1,
                String::from_utf8_lossy(name)
            );
            return Err(Box::new(p));
        }
    }
    Ok(())
}

/// The refusal of a URL set whose indexes exceed the set's budget.
pub(super) fn over_budget(bytes: u64, budget: u64) -> String {
    format!(
        "the URL set's films need at least {bytes} bytes of indexes; a set may use \
         at most {budget} (half of --cache-size)"
    )
}

/// At least the bytes film `name`'s index will hold: its cached index's,
/// else its `moov` box's size (0 when unknown: an object not opened yet).
fn index_bound(name: &[u8], ctx: &mut Ctx<'_>) -> Result<u64, Box<Prepared>> {
    let cached = |key: FileKey, ctx: &mut Ctx<'_>| match ctx.caches.index(key) {
        Some(Ok(index)) => Some(index.heap_bytes() as u64),
        _ => None,
    };
    if ctx.link.is_some() {
        let mut f = blank();
        film(&mut f, name, ctx)?;
        let Some(key) = f.source.object_key() else {
            return Ok(0);
        };
        let fresh = ctx.config.origin_revalidate;
        let now = std::time::Instant::now();
        let known = ctx.caches.objects.get(key, fresh, now);
        return Ok(known
            .and_then(|(o, _)| cached(remote::file_key(&o), ctx))
            .unwrap_or(0));
    }
    // Its identity, to find its index; the film itself is opened safely
    // (within --root, never blocking) when it is indexed or read.
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
        && let Some(bytes) = cached(file_key(&meta), ctx)
    {
        return Ok(bytes);
    }
    let mut f = blank();
    film(&mut f, name, ctx)?;
    Ok(f.source.moov_bound(f.key.size, moov_size))
}

/// A file's identity, from its metadata.
fn file_key(meta: &std::fs::Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
    }
}

/// The size of the `moov` box, from the top-level box headers (at most 16
/// read, a few bytes each); 0 if not among them.
fn moov_size(file: &File, size: u64) -> u64 {
    let mut at = 0u64;
    for _ in 0..16 {
        let mut h = [0u8; 16];
        let n = size.saturating_sub(at).min(16) as usize;
        if n < 8 || file.read_exact_at(&mut h[..n], at).is_err() {
            return 0;
        }
        let len = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
            0 => size - at,
            1 if n == 16 => {
                u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]])
            }
            1 => return 0,
            l => u64::from(l),
        };
        if len < 8 {
            return 0;
        }
        if &h[4..8] == b"moov" {
            return len.min(size - at);
        }
        at = at.saturating_add(len);
    }
    0
}

/// For a URL set, which of its films this request reads first (the rest
/// of a manifest's films wait in `r.set`); else the film itself. URL sets
/// are refused where the operator does not serve them, and beyond
/// [`MAX_SET_FILMS`] films.
fn member(
    name: &[u8],
    r: &mut Resume,
    params: &Params,
    config: &Config,
) -> Result<Vec<u8>, Box<Prepared>> {
    let with_path = |mut p: Prepared| {
        p.note.detail = format!("path {}", String::from_utf8_lossy(name));
        Box::new(p)
    };
    let not_found = |why: &str| with_path(refuse(404, why));
    let track = r.resource.track();
    let Some(count) = set_size(name) else {
        if track.is_some_and(|t| t.file > 0) {
            return Err(not_found(
                "f<N>- names a film of a URL set; this is one film",
            ));
        }
        return Ok(name.to_vec());
    };
    url_sets_allowed(params, config).map_err(|p| with_path(*p))?;
    if count > MAX_SET_FILMS {
        return Err(with_path(refuse(
            400,
            &format!("a URL set names at most {MAX_SET_FILMS} films; this one names {count}"),
        )));
    }
    let Some(films) = crate::manifest::url_set(name) else {
        return Err(not_found("not a URL set"));
    };
    match (r.resource, track) {
        (Resource::Master | Resource::Mpd, _) => {
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
        r.source = Source::Object {
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
    r.key = file_key(&meta);
    r.modified = meta.modified().unwrap_or(UNIX_EPOCH);
    r.path = path;
    r.opened = opened;
    r.source = Source::File(Rc::new(file));
    Ok(())
}

/// The resource asked for, once a packaged one is known not to conflict
/// with the query.
fn chosen(resource: Option<Resource>, window: &Window) -> Result<Resource, Box<Prepared>> {
    let resource = resource.unwrap_or_default();
    if resource != Resource::Progressive && window.flash {
        return Err(Box::new(refuse(
            400,
            "client=flash applies to progressive downloads, not HLS/DASH",
        )));
    }
    Ok(resource)
}

/// What a request asks besides its film: method, Range and conditionals;
/// the film's fields are placeholders for the caller to fill.
fn heard(params: &Params, method: &[u8]) -> Resume {
    let owned = |name: &[u8]| params.get(name).map(<[u8]>::to_vec);
    Resume {
        method: method.to_vec(),
        range: owned(b"HTTP_RANGE"),
        if_range: owned(b"HTTP_IF_RANGE"),
        if_none_match: owned(b"HTTP_IF_NONE_MATCH"),
        if_modified_since: owned(b"HTTP_IF_MODIFIED_SINCE"),
        ..blank()
    }
}

/// A request that asks nothing yet: every field a placeholder.
fn blank() -> Resume {
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
        resource: Resource::Progressive,
        path: PathBuf::new(),
        opened: PathBuf::new(),
        source: Source::Object {
            key: Arc::from(""),
            object: None,
        },
        method: b"GET".to_vec(),
        range: None,
        if_range: None,
        if_none_match: None,
        if_modified_since: None,
        cache: "",
        file: 0,
        set: VecDeque::new(),
        indexed: VecDeque::new(),
        cuts: None,
        planning: false,
        plan_jobs: false,
        gathered: Vec::new(),
        set_tag: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_set_counts_its_films_beyond_the_names_accepted() {
        assert_eq!(set_size(b"/f/lecture_,360,720,.mp4.urlset"), Some(2));
        let many = format!("/x_{}.mp4.urlset", ",1".repeat(40) + ",");
        assert_eq!(set_size(many.as_bytes()), Some(40));
        assert_eq!(set_size(b"/f/lecture.mp4.urlset"), None);
        assert_eq!(set_size(b"/f/lecture_,,.mp4.urlset"), None);
        assert_eq!(set_size(b"/f/a.mp4"), None);
    }

    #[test]
    fn the_moov_size_is_read_from_the_top_level_boxes() {
        let mut film = Vec::new();
        film.extend_from_slice(&[0, 0, 0, 16]);
        film.extend_from_slice(b"ftypisom\0\0\0\0");
        // A 64-bit mdat, then the moov at the end.
        film.extend_from_slice(&[0, 0, 0, 1]);
        film.extend_from_slice(b"mdat");
        film.extend_from_slice(&(16u64 + 100).to_be_bytes());
        film.extend_from_slice(&[7; 100]);
        film.extend_from_slice(&[0, 0, 0, 40]);
        film.extend_from_slice(b"moov");
        film.extend_from_slice(&[0; 32]);
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &film).unwrap();
        assert_eq!(moov_size(&f, film.len() as u64), 40);
        // No moov among the boxes, or a size past the end: nothing known.
        assert_eq!(moov_size(&f, 132), 0);
        film[0..4].copy_from_slice(&[0, 0, 0, 4]);
        let mut g = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut g, &film).unwrap();
        assert_eq!(moov_size(&g, film.len() as u64), 0);
    }
}
