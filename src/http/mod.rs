//! Pure HTTP semantics: the query, Range, conditionals, status and headers.
//! Times come in as parameters; nothing here touches a socket or a clock.

mod conditional;
mod query;
mod range;
mod respond;

pub use query::{
    Query, QueryError, parse_query, parse_seconds, parse_window, percent_decode,
    percent_decode_path,
};
pub use respond::{Body, Entity, Piece, RequestHead, Response, error_response, respond};

use crate::mp4;

/// The one place engine errors become statuses.
pub fn status_for(err: &mp4::Error) -> u16 {
    use mp4::Error::*;
    match err {
        PastEnd { .. } | EmptyRange { .. } => 400,
        NotMp4(_) | Truncated { .. } | Invalid { .. } | Unsupported(_) | MoovTooLarge { .. } => 415,
        Missing(_) => 404,
        Io(_) => 500,
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
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
/// virtual clip of a film has its own.
pub fn etag(
    dev: u64,
    ino: u64,
    size: u64,
    mtime_secs: i64,
    mtime_nsecs: i64,
    window: &mp4::Window,
    output: u64,
) -> String {
    // FNV-1a over the window: stable across processes and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bits = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
    for word in [
        bits(window.start),
        bits(window.end),
        u64::from(window.flash),
        output,
    ]
    .into_iter()
    // The film's own tags stay as they were before packaged outputs.
    .take(if output == 0 { 3 } else { 4 })
    {
        for b in word.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("\"{dev:x}-{ino:x}-{size:x}-{mtime_secs:x}.{mtime_nsecs:x}-{h:016x}\"")
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
        };
        let a = etag(1, 2, 3, 4, 5, &w(None), 0);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_ne!(a, etag(1, 2, 3, 4, 5, &w(Some(1.0)), 0));
        assert_ne!(a, etag(1, 2, 3, 4, 6, &w(None), 0));
        assert_eq!(a, etag(1, 2, 3, 4, 5, &w(None), 0));
        assert_ne!(a, etag(1, 2, 3, 4, 5, &w(None), 7), "a packaged output");
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
