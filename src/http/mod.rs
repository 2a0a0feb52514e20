//! Pure HTTP semantics: the query, Range, conditionals, status and headers.
//! Times come in as parameters; nothing here touches a socket or a clock.
#![forbid(unsafe_code)]

mod conditional;
mod query;
mod range;
mod respond;

pub use query::{
    Asked, Query, QueryError, parse_query, parse_seconds, parse_window, percent_decode,
    percent_decode_path,
};
pub use respond::{Body, Entity, Piece, RequestHead, Response, error_response, respond};

use crate::mp4;
use siphasher::sip128::SipHasher24;

/// A request refused: its status and a one-line reason for the body and
/// the log (never naming a server path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: std::borrow::Cow<'static, str>,
}

impl Refusal {
    pub const fn new(status: u16, reason: &'static str) -> Refusal {
        Refusal {
            status,
            reason: std::borrow::Cow::Borrowed(reason),
        }
    }

    pub fn owned(status: u16, reason: String) -> Refusal {
        Refusal {
            status,
            reason: std::borrow::Cow::Owned(reason),
        }
    }
}

/// The one place engine errors become statuses.
pub fn status_for(err: &mp4::Error) -> u16 {
    use mp4::Error::*;
    match err {
        PastEnd { .. } | EmptyRange { .. } | NoSuchTrack(_) => 400,
        NotMp4(_) | Truncated { .. } | Invalid { .. } | Unsupported(_) | MoovTooLarge { .. } => 415,
        Missing(_) => 404,
        Io(_) | Internal(_) => 500,
    }
}

/// The standard reason phrase (RFC 9110 §15, RFC 6585) of every status the
/// server may send, and of the others a front server might relay.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Content-Type by file extension.
pub fn content_type(path: &[u8]) -> &'static str {
    let ext = path
        .rsplit(|&b| b == b'.')
        .next()
        .filter(|e| e.len() < path.len() && !e.contains(&b'/'))
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some(b"mp4" | b"m4v" | b"mp4v") => "video/mp4",
        Some(b"m4a" | b"m4b") => "audio/mp4",
        Some(b"mov" | b"qt") => "video/quicktime",
        Some(b"3gp") => "video/3gpp",
        Some(b"3g2") => "video/3gpp2",
        Some(b"m4s") => "video/iso.segment",
        Some(b"f4v") => "video/x-f4v",
        _ => "application/octet-stream",
    }
}

/// A strong entity tag from the file's identity and the window, so every
/// virtual clip of a film has its own. The inputs are hashed (SipHash-2-4,
/// 128 bits, under fixed keys: the `siphasher` crate, whose bits do not
/// change with Rust releases as `DefaultHasher`'s may): the tag changes whenever any of them does,
/// is the same in every process and on every node, and shows nothing of the
/// file's device, inode or modification time.
pub fn etag(
    dev: u64,
    ino: u64,
    size: u64,
    mtime_secs: i64,
    mtime_nsecs: i64,
    window: &mp4::Window,
    output: u64,
) -> String {
    let bits = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
    // The choice of tracks, folded in only when made: every other tag
    // stays as it was.
    let t = &window.tracks;
    let lang = t
        .lang
        .map_or(0, |l| u64::from_le_bytes([l[0], l[1], l[2], 1, 0, 0, 0, 0]));
    let chosen = t.video.rotate_left(7) ^ t.audio.rotate_left(29) ^ lang;
    let mut input = [0u8; 9 * 8];
    for (slot, word) in input.chunks_exact_mut(8).zip([
        dev,
        ino,
        size,
        mtime_secs as u64,
        mtime_nsecs as u64,
        bits(window.start),
        bits(window.end),
        u64::from(window.flash) ^ chosen,
        output,
    ]) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    // Fixed keys ("mp4-fcgi etag k1", "…k2"): never random, or the tags of
    // a restarted process, or of another node, would differ.
    let h = SipHasher24::new_with_keys(0x6d70_342d_6663_6769, 0x2065_7461_6720_6b31).hash(&input);
    format!("\"{:032x}\"", h.as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"/a/film.MP4"), "video/mp4");
        assert_eq!(content_type(b"song.m4a"), "audio/mp4");
        assert_eq!(content_type(b"clip.mov"), "video/quicktime");
        assert_eq!(content_type(b"/dir.mp4/file"), "application/octet-stream");
        assert_eq!(content_type(b"mp4"), "application/octet-stream");
    }

    #[test]
    fn etags_differ_per_window_and_are_strong() {
        let w = |s: Option<f64>| mp4::Window {
            start: s,
            end: None,
            flash: false,
            tracks: Default::default(),
        };
        let a = etag(1, 2, 3, 4, 5, &w(None), 0);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_ne!(a, etag(1, 2, 3, 4, 5, &w(Some(1.0)), 0));
        assert_ne!(a, etag(1, 2, 3, 4, 6, &w(None), 0));
        assert_eq!(a, etag(1, 2, 3, 4, 5, &w(None), 0));
        assert_ne!(a, etag(1, 2, 3, 4, 5, &w(None), 7), "a packaged output");
    }

    #[test]
    fn every_status_sent_has_its_phrase() {
        for (status, phrase) in [
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (502, "Bad Gateway"),
            (504, "Gateway Timeout"),
            (416, "Range Not Satisfiable"),
        ] {
            assert_eq!(reason_phrase(status), phrase);
        }
        // Every status the server sends (stats.rs counts them; the origin
        // answers 502 and 504, an object key 414).
        for status in [
            200, 206, 304, 400, 403, 404, 405, 412, 413, 414, 415, 416, 431, 500, 502, 503, 504,
        ] {
            assert_ne!(reason_phrase(status), "Unknown", "{status}");
        }
    }

    #[test]
    fn etags_hide_the_files_identity() {
        let w = mp4::Window {
            start: Some(2.5),
            end: None,
            flash: false,
            tracks: Default::default(),
        };
        let (dev, ino, size, secs, nsecs) = (
            0x0803_5a17_u64,
            0xdead_beef_cafe_u64,
            0x1234_5678_u64,
            0x6553_f100_i64,
            0x1dcd_6599_i64,
        );
        let t = etag(dev, ino, size, secs, nsecs, &w, 0);
        assert_eq!(
            t, "\"bfadeb1d5dc941c6965b47bbcbc9d372\"",
            "the same in every process, on every node"
        );
        for shown in [
            format!("{dev:x}"),
            format!("{ino:x}"),
            format!("{secs:x}"),
            format!("{nsecs:x}"),
            dev.to_string(),
            ino.to_string(),
            secs.to_string(),
            nsecs.to_string(),
        ] {
            assert!(!t.contains(&shown), "{t} shows {shown}");
        }
        // Each input still changes the tag.
        let other = mp4::Window {
            end: Some(9.0),
            ..w
        };
        for changed in [
            etag(dev + 1, ino, size, secs, nsecs, &w, 0),
            etag(dev, ino + 1, size, secs, nsecs, &w, 0),
            etag(dev, ino, size + 1, secs, nsecs, &w, 0),
            etag(dev, ino, size, secs + 1, nsecs, &w, 0),
            etag(dev, ino, size, secs, nsecs + 1, &w, 0),
            etag(dev, ino, size, secs, nsecs, &other, 0),
            etag(
                dev,
                ino,
                size,
                secs,
                nsecs,
                &mp4::Window { flash: true, ..w },
                0,
            ),
            etag(dev, ino, size, secs, nsecs, &w, 1),
        ] {
            assert_ne!(t, changed);
        }
    }

    #[test]
    fn statuses_for_engine_errors() {
        assert_eq!(
            status_for(&mp4::Error::PastEnd {
                start: 1.0,
                duration: 0.5
            }),
            400
        );
        assert_eq!(status_for(&mp4::Error::NotMp4("x")), 415);
        assert_eq!(
            status_for(&mp4::Error::Io(std::io::ErrorKind::Other.into())),
            500
        );
    }
}
