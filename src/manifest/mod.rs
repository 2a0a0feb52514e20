//! Adaptive streaming's text and names (pure): which packaged output a
//! `PATH_INFO` names, and the HLS playlists and DASH MPD of a
//! [`Presentation`]. Every URL a manifest holds is relative to the film's
//! own URL and carries the window, so a clip is its own presentation.

mod dash;
mod hls;

pub use dash::mpd;
pub use hls::{master, playlist};

use crate::mp4::Window;
use crate::mp4::cmaf::Presentation;

/// What a request asks of a film.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub enum Output {
    /// The film (or a window of it) as one progressive MP4.
    #[default]
    Progressive,
    /// `master.m3u8`
    Master,
    /// `index-<track>.m3u8`: one track's media playlist.
    Playlist(u32),
    /// `manifest.mpd`
    Mpd,
    /// `init-<track>.mp4`
    Init(u32),
    /// `seg-<n>-<track>.m4s`, `n` from 1.
    Segment(u32, u32),
}

impl Output {
    /// The output a `PATH_INFO` names (`/master.m3u8`, …); `None`: no such output.
    pub fn parse(path_info: &[u8]) -> Option<Output> {
        let name = std::str::from_utf8(path_info).ok()?.strip_prefix('/')?;
        let number = |s: &str| -> Option<u32> {
            if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let between = |prefix: &str, suffix: &str| name.strip_prefix(prefix)?.strip_suffix(suffix);
        match name {
            "" => Some(Output::Progressive),
            "master.m3u8" => Some(Output::Master),
            "manifest.mpd" => Some(Output::Mpd),
            _ => {
                if let Some(t) = between("index-", ".m3u8") {
                    number(t).map(Output::Playlist)
                } else if let Some(t) = between("init-", ".mp4") {
                    number(t).map(Output::Init)
                } else {
                    let (n, t) = between("seg-", ".m4s")?.split_once('-')?;
                    Some(Output::Segment(number(n).filter(|&n| n > 0)?, number(t)?))
                }
            }
        }
    }

    /// A manifest (text) rather than media.
    pub fn is_manifest(&self) -> bool {
        matches!(self, Output::Master | Output::Playlist(_) | Output::Mpd)
    }

    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Output::Progressive => None,
            Output::Master | Output::Playlist(_) => Some("application/vnd.apple.mpegurl"),
            Output::Mpd => Some("application/dash+xml"),
            Output::Init(_) => Some("video/mp4"),
            Output::Segment(..) => Some("video/iso.segment"),
        }
    }

    /// A stable number for cache keys and entity tags.
    pub fn tag(&self) -> u64 {
        let (kind, a, b) = match *self {
            Output::Progressive => (0u64, 0u32, 0u32),
            Output::Master => (1, 0, 0),
            Output::Playlist(t) => (2, t, 0),
            Output::Mpd => (3, 0, 0),
            Output::Init(t) => (4, t, 0),
            Output::Segment(n, t) => (5, t, n),
        };
        (kind << 60) ^ (u64::from(a) << 32) ^ u64::from(b)
    }
}

/// The query every URL of a window's manifest carries (`?start=…&end=…`),
/// or nothing for the whole film.
pub fn query(window: &Window) -> String {
    match (window.start, window.end) {
        (None, None) => String::new(),
        (Some(s), None) => format!("?start={s}"),
        (None, Some(e)) => format!("?end={e}"),
        (Some(s), Some(e)) => format!("?start={s}&end={e}"),
    }
}

/// Splits `/films/a.mp4/master.m3u8` after the film's extension, as
/// nginx's `fastcgi_split_path_info ^(.+\.(?:mp4|m4v|m4a|mov))(/.+)$`
/// does: the film's path, then `PATH_INFO` (empty when there is none).
/// The pool splits what a front server did not (lighttpd passes
/// `/a.mp4/init-1.mp4` whole: it ends in `.mp4`), as PHP's
/// `cgi.fix_pathinfo` does.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    const FILMS: [&[u8]; 4] = [b".mp4/", b".m4v/", b".m4a/", b".mov/"];
    let end = (0..path.len().saturating_sub(4))
        .rev()
        .find(|&i| {
            FILMS
                .iter()
                .any(|e| path[i..].len() > e.len() && path[i..i + e.len()].eq_ignore_ascii_case(e))
        })
        .map(|i| i + 4);
    match end {
        Some(e) => path.split_at(e),
        None => (path, &[]),
    }
}

/// A language tag for people and players: `None` for `und`.
fn language(p: &Presentation, id: u32) -> Option<&str> {
    p.rendition(id)
        .and_then(|r| r.language.as_deref())
        .filter(|l| *l != "und" && l.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = |s: &str| Output::parse(s.as_bytes());
        assert_eq!(p("/master.m3u8"), Some(Output::Master));
        assert_eq!(p("/manifest.mpd"), Some(Output::Mpd));
        assert_eq!(p("/index-2.m3u8"), Some(Output::Playlist(2)));
        assert_eq!(p("/init-1.mp4"), Some(Output::Init(1)));
        assert_eq!(p("/seg-12-1.m4s"), Some(Output::Segment(12, 1)));
        assert_eq!(p(""), None);
        assert_eq!(p("/"), Some(Output::Progressive));
        for bad in [
            "/seg-0-1.m4s",
            "/seg-1.m4s",
            "/seg--1-1.m4s",
            "/seg-1-1.mp4",
            "/init-.mp4",
            "/init-+1.mp4",
            "/index-99999999999.m3u8",
            "/master.m3u8/x",
            "/../master.m3u8",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_info_splits_after_the_film() {
        let s = |p: &str| {
            let (a, b) = split(p.as_bytes());
            (
                String::from_utf8_lossy(a).into_owned(),
                String::from_utf8_lossy(b).into_owned(),
            )
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(s("/f/a.mp4/master.m3u8"), pair("/f/a.mp4", "/master.m3u8"));
        assert_eq!(s("/f/a.MP4/seg-1-1.m4s"), pair("/f/a.MP4", "/seg-1-1.m4s"));
        assert_eq!(
            s("/x.mp4/b.mov/manifest.mpd"),
            pair("/x.mp4/b.mov", "/manifest.mpd")
        );
        assert_eq!(s("/f/a.mp4"), pair("/f/a.mp4", ""));
        assert_eq!(s("/f/a.mp4/"), pair("/f/a.mp4/", ""));
        assert_eq!(s("/f/a.mp4x/y"), pair("/f/a.mp4x/y", ""));
    }

    #[test]
    fn window_query() {
        let w = |start, end| Window {
            start,
            end,
            flash: false,
        };
        assert_eq!(query(&w(None, None)), "");
        assert_eq!(query(&w(Some(45.5), Some(60.0))), "?start=45.5&end=60");
        assert_eq!(query(&w(None, Some(3.25))), "?end=3.25");
    }
}
