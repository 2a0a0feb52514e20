//! Adaptive streaming's text and names (pure): which packaged output a
//! `PATH_INFO` names, and the HLS playlists and DASH MPD of a
//! [`Presentation`]. Every URL a manifest holds is relative to the film's
//! own URL and carries the window, so a clip is its own presentation.

mod dash;
pub mod drm;
mod hls;
pub mod images;
pub mod sidecar;
pub mod webvtt;

pub use dash::mpd;
pub use hls::{i_frames, master, playlist};

use crate::mp4::Window;
use crate::mp4::cmaf::Presentation;

/// One film's segment plan in a manifest: `file` is its place in a URL
/// set (from 1), or 0 for a film on its own.
#[derive(Clone, Copy, Debug)]
pub struct Part<'a> {
    pub file: u8,
    pub presentation: &'a Presentation,
    /// How the film is protected, if it is.
    pub drm: Option<drm::Drm<'a>>,
    /// The cues of its text tracks (the index's): the subtitles' bit rates
    /// count in a variant's `BANDWIDTH`.
    pub cues: &'a [crate::mp4::cues::Cues],
    /// The key frames of its video renditions that have I-frame and
    /// trick-mode outputs (none: not announced).
    pub keys: &'a [crate::mp4::cmaf::Keys],
    /// Its seek-bar previews, if announced.
    pub images: Option<images::Images>,
}

impl<'a> Part<'a> {
    /// A film on its own, clear, without its cues (tools, tests).
    pub fn of(presentation: &'a Presentation) -> Part<'a> {
        Part {
            file: 0,
            presentation,
            drm: None,
            cues: &[],
            keys: &[],
            images: None,
        }
    }
}

/// Most films one URL set may name.
pub const MAX_SET: usize = 16;

/// A track of the film, or of film `file` (from 1) of a URL set: named
/// `<id>` or `f<file>-<id>` in URLs.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct TrackId {
    pub file: u8,
    pub id: u32,
}

impl std::fmt::Display for TrackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.file {
            0 => write!(f, "{}", self.id),
            n => write!(f, "f{n}-{}", self.id),
        }
    }
}

/// The resource of a film a URL names: the film itself (or a window of
/// it), or one of its HLS/DASH outputs under its name (`PATH_INFO`).
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub enum Resource {
    /// The film (or a window of it) as one progressive MP4.
    #[default]
    Progressive,
    /// `master.m3u8`
    Master,
    /// `index-<track>.m3u8`: one track's media playlist.
    Playlist(TrackId),
    /// `manifest.mpd`
    Mpd,
    /// `init-<track>.mp4`
    Init(TrackId),
    /// `seg-<n>-<track>.m4s`, `n` from 1.
    Segment(u32, TrackId),
    /// `subs-<track>.m3u8`: a subtitle track's playlist.
    Subtitles(TrackId),
    /// `subs-<n>-<track>.vtt`: its WebVTT segment `n`, from 1.
    Cues(u32, TrackId),
    /// `subs-<track>.vtt`: the whole track as WebVTT (DASH).
    Vtt(TrackId),
    /// `encryption.key`: the film's key, where the key file lets the pool
    /// hand it out (HLS AES-128; Clear Key without a license server).
    Key,
    /// `iframes-<track>.m3u8`: a video track's I-frame playlist.
    IFrames(TrackId),
    /// `key-<n>-<track>.m4s`: its key frame `n` (from 1) as a segment.
    KeyFrame(u32, TrackId),
    /// `thumb-<ms>[-w<width>][-h<height>].jpg`: the picture shown at that
    /// time of the presentation.
    Thumb(u32, Fit),
    /// `tiles-<n>.jpg`: seek-bar sprite `n` (from 1).
    Sprite(u32),
    /// `images.m3u8`: the sprites' HLS image playlist.
    Images,
    /// `thumbnails.vtt`: the tiles as WebVTT cues of sprite regions.
    Thumbnails,
}

pub use crate::mp4::cmaf::thumbs::Fit;

/// `<ms>[-w<width>][-h<height>]`, each side at most
/// [`crate::mp4::cmaf::thumbs::MAX_SIDE`].
fn thumb(s: &str) -> Option<Resource> {
    let mut parts = s.split('-');
    let ms = number(parts.next()?)?;
    let mut fit = Fit::default();
    let side =
        |v: &str| number(v).filter(|&n| (1..=crate::mp4::cmaf::thumbs::MAX_SIDE).contains(&n));
    for part in parts {
        match part.split_at_checked(1)? {
            ("w", v) if fit.width == 0 && fit.height == 0 => fit.width = side(v)?,
            ("h", v) if fit.height == 0 => fit.height = side(v)?,
            _ => return None,
        }
    }
    Some(Resource::Thumb(ms, fit))
}

/// A decimal number of at most 10 digits, no sign.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn track(s: &str) -> Option<TrackId> {
    match s.strip_prefix('f') {
        None => Some(TrackId {
            file: 0,
            id: number(s)?,
        }),
        Some(rest) => {
            let (f, id) = rest.split_once('-')?;
            let file = number(f).filter(|&f| (1..=MAX_SET as u32).contains(&f))?;
            Some(TrackId {
                file: u8::try_from(file).ok()?,
                id: number(id)?,
            })
        }
    }
}

impl Resource {
    /// The output a `PATH_INFO` names (`/master.m3u8`, …); `None`: no such output.
    pub fn parse(path_info: &[u8]) -> Option<Resource> {
        let name = std::str::from_utf8(path_info).ok()?.strip_prefix('/')?;
        let between = |prefix: &str, suffix: &str| name.strip_prefix(prefix)?.strip_suffix(suffix);
        match name {
            "" => Some(Resource::Progressive),
            "master.m3u8" => Some(Resource::Master),
            "manifest.mpd" => Some(Resource::Mpd),
            "encryption.key" => Some(Resource::Key),
            "images.m3u8" => Some(Resource::Images),
            "thumbnails.vtt" => Some(Resource::Thumbnails),
            _ => {
                if let Some(t) = between("thumb-", ".jpg") {
                    thumb(t)
                } else if let Some(n) = between("tiles-", ".jpg") {
                    number(n).filter(|&n| n > 0).map(Resource::Sprite)
                } else if let Some(t) = between("iframes-", ".m3u8") {
                    track(t).map(Resource::IFrames)
                } else if let Some(t) = between("index-", ".m3u8") {
                    track(t).map(Resource::Playlist)
                } else if let Some(t) = between("init-", ".mp4") {
                    track(t).map(Resource::Init)
                } else if let Some(t) = between("subs-", ".m3u8") {
                    track(t).map(Resource::Subtitles)
                } else if let Some(t) = between("subs-", ".vtt") {
                    if let Some(t) = track(t) {
                        return Some(Resource::Vtt(t));
                    }
                    let (n, t) = t.split_once('-')?;
                    Some(Resource::Cues(number(n).filter(|&n| n > 0)?, track(t)?))
                } else if let Some(rest) = between("key-", ".m4s") {
                    let (n, t) = rest.split_once('-')?;
                    Some(Resource::KeyFrame(number(n).filter(|&n| n > 0)?, track(t)?))
                } else {
                    let (n, t) = between("seg-", ".m4s")?.split_once('-')?;
                    Some(Resource::Segment(number(n).filter(|&n| n > 0)?, track(t)?))
                }
            }
        }
    }

    /// The track an output names (`None`: the film or a manifest of it all).
    pub fn track(&self) -> Option<TrackId> {
        match *self {
            Resource::Playlist(t)
            | Resource::Init(t)
            | Resource::Segment(_, t)
            | Resource::Subtitles(t)
            | Resource::Cues(_, t)
            | Resource::Vtt(t)
            | Resource::IFrames(t)
            | Resource::KeyFrame(_, t) => Some(t),
            _ => None,
        }
    }

    /// The same output of film `file` of a URL set.
    pub fn in_file(self, file: u8) -> Resource {
        let to = |t: TrackId| TrackId { file, ..t };
        match self {
            Resource::Playlist(t) => Resource::Playlist(to(t)),
            Resource::Init(t) => Resource::Init(to(t)),
            Resource::Segment(n, t) => Resource::Segment(n, to(t)),
            Resource::Subtitles(t) => Resource::Subtitles(to(t)),
            Resource::Cues(n, t) => Resource::Cues(n, to(t)),
            Resource::Vtt(t) => Resource::Vtt(to(t)),
            Resource::IFrames(t) => Resource::IFrames(to(t)),
            Resource::KeyFrame(n, t) => Resource::KeyFrame(n, to(t)),
            o => o,
        }
    }

    /// A thumbnail or sprite: decoded from the film, not laid out.
    pub fn is_picture(&self) -> bool {
        matches!(self, Resource::Thumb(..) | Resource::Sprite(_))
    }

    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Resource::Progressive => None,
            Resource::Master
            | Resource::Playlist(_)
            | Resource::Subtitles(_)
            | Resource::IFrames(_)
            | Resource::Images => Some("application/vnd.apple.mpegurl"),
            Resource::Cues(..) | Resource::Vtt(_) | Resource::Thumbnails => {
                Some("text/vtt; charset=utf-8")
            }
            Resource::Thumb(..) | Resource::Sprite(_) => Some("image/jpeg"),
            Resource::Mpd => Some("application/dash+xml"),
            Resource::Init(_) => Some("video/mp4"),
            Resource::Segment(..) | Resource::KeyFrame(..) => Some("video/iso.segment"),
            Resource::Key => Some("application/octet-stream"),
        }
    }

    /// A stable number for cache keys and entity tags.
    pub fn tag(&self) -> u64 {
        let (kind, n, t) = match *self {
            Resource::Progressive => (0u64, 0u32, TrackId::default()),
            Resource::Master => (1, 0, TrackId::default()),
            Resource::Playlist(t) => (2, 0, t),
            Resource::Mpd => (3, 0, TrackId::default()),
            Resource::Init(t) => (4, 0, t),
            Resource::Segment(n, t) => (5, n, t),
            Resource::Subtitles(t) => (6, 0, t),
            Resource::Cues(n, t) => (7, n, t),
            Resource::Vtt(t) => (8, 0, t),
            Resource::Key => (9, 0, TrackId::default()),
            Resource::IFrames(t) => (10, 0, t),
            Resource::KeyFrame(n, t) => (11, n, t),
            // Sides of at most 4096 (12 bits each).
            Resource::Thumb(ms, fit) => (
                12,
                ms,
                TrackId {
                    file: 0,
                    id: (fit.width << 12) | fit.height,
                },
            ),
            Resource::Sprite(n) => (13, n, TrackId::default()),
            Resource::Images => (14, 0, TrackId::default()),
            Resource::Thumbnails => (15, 0, TrackId::default()),
        };
        (kind << 60) ^ (u64::from(t.file) << 52) ^ (u64::from(t.id) << 20) ^ u64::from(n)
    }
}

/// The films a URL set names, nginx-vod-module's convention:
/// `/films/lecture_,360,720,.mp4.urlset` → `/films/lecture_360.mp4` and
/// `/films/lecture_720.mp4`. `None`: not a URL set (or not a valid one).
pub fn url_set(path: &[u8]) -> Option<Vec<Vec<u8>>> {
    let path = path.strip_suffix(b".urlset")?;
    let slash = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let (dir, name) = path.split_at(slash);
    let parts: Vec<&[u8]> = name.split(|&b| b == b',').collect();
    let [prefix, middle @ .., suffix] = parts.as_slice() else {
        return None;
    };
    let films: Vec<Vec<u8>> = middle
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| [dir, prefix, m, suffix].concat())
        .collect();
    (!films.is_empty() && films.len() <= MAX_SET).then_some(films)
}

/// The query every URL of a window's manifest carries (`?start=…&end=…`,
/// and the choice of tracks), or nothing for the whole film.
pub fn query(window: &Window) -> String {
    let mut parts = Vec::new();
    if let Some(s) = window.start {
        parts.push(format!("start={s}"));
    }
    if let Some(e) = window.end {
        parts.push(format!("end={e}"));
    }
    let tracks = window.tracks.query();
    if !tracks.is_empty() {
        parts.push(tracks);
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Splits `/films/a.mp4/master.m3u8` after the film's extension, as
/// nginx's `fastcgi_split_path_info ^(.+\.(?:mp4|m4v|m4a|mov))(/.+)$`
/// does: the film's path, then `PATH_INFO` (empty when there is none).
/// The pool splits what a front server did not (lighttpd passes
/// `/a.mp4/init-1.mp4` whole: it ends in `.mp4`), as PHP's
/// `cgi.fix_pathinfo` does.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    const FILMS: [&[u8]; 5] = [b".mp4/", b".m4v/", b".m4a/", b".mov/", b".urlset/"];
    let end = (0..path.len().saturating_sub(4)).rev().find_map(|i| {
        FILMS
            .iter()
            .find(|e| path[i..].len() > e.len() && path[i..i + e.len()].eq_ignore_ascii_case(e))
            .map(|e| i + e.len() - 1)
    });
    match end {
        Some(e) => path.split_at(e),
        None => (path, &[]),
    }
}

/// A track's language for players and for people.
#[derive(Clone, Debug, PartialEq)]
struct Language {
    /// BCP 47's shortest tag: ISO 639-1 where the language has a code there
    /// (`en` for `eng`), else its ISO 639-2/T code; `elng`'s region and
    /// script stay (`pt-BR`).
    tag: String,
    /// The language's name in itself ("Deutsch"), else in English, else
    /// the tag.
    name: String,
    /// ISO 639-2/T, compared with the operator's `--default-language`.
    code: Option<[u8; 3]>,
}

/// The language of a tag or an `mdhd` code: `None` for `und` or what is no
/// language's tag at all.
fn language_of(tag: &str) -> Option<Language> {
    let tag = crate::mp4::tracks::shortest_tag(tag)?;
    let code = crate::mp4::tracks::primary_language(&tag);
    let known = code.and_then(|c| isolang::Language::from_639_3(std::str::from_utf8(&c).ok()?));
    Some(Language {
        name: known.map_or_else(
            || tag.clone(),
            |l| l.to_autonym().unwrap_or(l.to_name()).to_string(),
        ),
        tag,
        code,
    })
}

/// An audio or subtitle alternative as the manifests show it.
#[derive(Clone, Debug, PartialEq)]
struct Alternative {
    id: u32,
    language: Option<Language>,
    /// The track's own name, if it has one.
    own: Option<String>,
    /// Its own name, else its language's, else "Audio N" (N: its place in
    /// the group): unique within the group, and without `"` (HLS's
    /// quoted-string has no escape).
    name: String,
    /// The one a player picks unless told otherwise.
    default: bool,
}

/// A track of a group, before it is named.
struct Member {
    id: u32,
    language: Option<Language>,
    own: Option<String>,
    default: bool,
}

/// The audio alternatives and the subtitle ones of a presentation.
fn alternatives(p: &Presentation) -> (Vec<Alternative>, Vec<Alternative>) {
    let own = |n: Option<&str>| n.map(|n| n.replace('"', "'"));
    let audio: Vec<Member> = (p.renditions.iter())
        .filter(|r| r.kind == crate::mp4::cmaf::Kind::Audio)
        .map(|r| Member {
            id: r.id,
            language: r.language.as_deref().and_then(language_of),
            own: own(r.info.name.as_ref().map(|n| n.as_str())),
            default: r.default,
        })
        .collect();
    let texts: Vec<Member> = (p.texts.iter())
        .map(|t| Member {
            id: t.id,
            language: t.language.as_deref().and_then(language_of),
            own: own(t.name.as_deref()),
            default: t.default,
        })
        .collect();
    (named(audio, "Audio"), named(texts, "Subtitles"))
}

/// Names a group's members, each unique: a name taken already gets " (2)",
/// " (3)"… after it.
fn named(members: Vec<Member>, kind: &str) -> Vec<Alternative> {
    let mut out: Vec<Alternative> = Vec::with_capacity(members.len());
    for (i, m) in members.into_iter().enumerate() {
        let base = (m.own.clone())
            .or_else(|| m.language.as_ref().map(|l| l.name.clone()))
            .unwrap_or_else(|| format!("{kind} {}", i.saturating_add(1)));
        let taken = |n: &str| out.iter().any(|a| a.name == n);
        let name = if taken(&base) {
            (2..=out.len().saturating_add(1))
                .map(|k| format!("{base} ({k})"))
                .find(|n| !taken(n))
                .unwrap_or(base)
        } else {
            base
        };
        out.push(Alternative {
            id: m.id,
            language: m.language,
            own: m.own,
            name,
            default: m.default,
        });
    }
    out
}

#[cfg(test)]
mod tests;
