//! The pure engine: bytes of a file in, a [`Layout`] out.
//!
//! The engine never opens a file or a socket. It reads the source through
//! [`ReadAt`] (a `pread`-like trait the caller implements) and answers with a
//! [`Layout`]: generated header bytes plus spans of the source file, whose total
//! length is known before any body byte is produced.

mod error;
mod layout;
mod source;

pub use error::Error;
pub use layout::{Cursor, Layout, Part, Segment};
pub use source::ReadAt;

/// Hard caps that protect a worker from hostile files. Each is a setting.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest `moov` the engine will load (`--max-moov`).
    pub max_moov: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_moov: 64 << 20 }
    }
}

/// The requested time window, in seconds of presentation time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// `client=flash`: one video and one audio track, no edit lists.
    pub flash: bool,
}

impl Window {
    /// No `start` and no `end`: the whole file.
    pub fn is_whole(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }
}

mod boxes;
mod fragmented;
mod index;
mod plan;
mod tables;
mod write;
pub use index::{Index, Info, TrackInfo};
