//! What a `trak` says about itself, samples aside: read once by the index,
//! used by the fragment scan, the planner and the writer.

use super::boxes::FourCC;
use super::tables::elst;

/// What a `trak` says about itself, samples aside.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TrakInfo {
    /// The `trak` box within `Index::moov`.
    pub start: usize,
    pub id: u32,
    pub handler: FourCC,
    pub codec: FourCC,
    pub timescale: u32,
    pub language: Option<[u8; 3]>,
    pub edit: elst::TrackEdit,
}

impl TrakInfo {
    pub fn is_video(&self) -> bool {
        &self.handler == b"vide"
    }
    pub fn is_audio(&self) -> bool {
        &self.handler == b"soun"
    }
}
