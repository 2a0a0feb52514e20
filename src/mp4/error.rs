use std::fmt;
use std::io;

/// Everything that can go wrong between a source file and a [`super::Layout`].
///
/// Messages are for people: they say what is wrong and, where it helps, what to do.
#[derive(Debug)]
pub enum Error {
    /// The file does not start like an ISO base media file.
    NotMp4(&'static str),
    /// A box claims more bytes than its parent (or the file) holds.
    Truncated { fourcc: [u8; 4], offset: u64 },
    /// A box is present but malformed.
    Invalid {
        fourcc: [u8; 4],
        reason: &'static str,
    },
    /// A valid file the engine cannot serve (e.g. a `cmov` not in zlib).
    Unsupported(String),
    /// `start` is at or past the end of the film.
    PastEnd { start: f64, duration: f64 },
    /// The window holds no samples (`end` ≤ `start`).
    EmptyRange { start: f64, end: f64 },
    /// The `moov` is larger than `--max-moov`.
    MoovTooLarge { size: u64, limit: u64 },
    /// The film has no such packaged track or segment.
    Missing(String),
    /// `tracks=` or `lang=` names a track the film does not have.
    NoSuchTrack(String),
    /// Reading the source failed.
    Io(io::Error),
    /// The engine itself failed on this file (a panic caught in a job): a
    /// defect of ours, remembered so the file does not trigger it again.
    Internal(String),
}

pub(crate) fn fourcc_str(f: &[u8; 4]) -> String {
    f.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotMp4(why) => write!(f, "not an MP4 file: {why}"),
            Error::Truncated { fourcc, offset } => write!(
                f,
                "truncated file: box '{}' at offset {offset} runs past its container",
                fourcc_str(fourcc)
            ),
            Error::Invalid { fourcc, reason } => {
                write!(f, "invalid '{}' box: {reason}", fourcc_str(fourcc))
            }
            Error::Unsupported(what) => write!(f, "unsupported MP4: {what}"),
            Error::PastEnd { start, duration } => write!(
                f,
                "start {start} s is past the end of the film ({duration:.3} s)"
            ),
            Error::EmptyRange { start, end } => {
                write!(f, "empty range: end {end} s is not after start {start} s")
            }
            Error::MoovTooLarge { size, limit } => write!(
                f,
                "moov box of {size} bytes exceeds the limit of {limit} bytes"
            ),
            Error::Missing(what) | Error::NoSuchTrack(what) => write!(f, "{what}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
