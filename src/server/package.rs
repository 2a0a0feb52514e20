//! What a request wants, laid out: a progressive window through the
//! engine's planner, or an HLS/DASH output (manifest, init or media segment)
//! through the segment plan. Pure over the index; runs on the event loop or,
//! for a large index, as a job.

use super::cache::Want;
use crate::manifest::{self, Output};
use crate::mp4::cmaf::{self, Presentation, Settings};
use crate::mp4::{self, Index, Layout, Piece};
use bytes::Bytes;
use std::sync::Arc;

/// A layout, and the segment plan it was cut from (to keep beside the index).
pub struct Built {
    pub layout: Arc<Layout>,
    pub presentation: Option<Arc<Presentation>>,
}

/// Lays out `want`; `known` is the window's segment plan if it is cached.
pub fn build(
    index: &Arc<Index>,
    want: &Want,
    style: &mp4::Style,
    settings: &Settings,
    known: Option<Arc<Presentation>>,
) -> Result<Built, mp4::Error> {
    if want.output == Output::Progressive {
        return Ok(Built {
            layout: Arc::new(mp4::plan(index, &want.window, style)?),
            presentation: None,
        });
    }
    let p = match known {
        Some(p) => p,
        None => Arc::new(cmaf::presentation(index, &want.window, settings)?),
    };
    let query = manifest::query(&want.window);
    let text = |s: String| Layout::from_pieces([Piece::Bytes(Bytes::from(s))]);
    let layout = match want.output {
        Output::Master => text(manifest::master(&p, &query)),
        Output::Mpd => text(manifest::mpd(&p, &query)),
        Output::Playlist(id) => text(manifest::playlist(&p, id, &query).ok_or_else(|| {
            mp4::Error::Missing(format!("the film has no video or audio track {id}"))
        })?),
        Output::Init(id) => cmaf::init(index, &p, id)?,
        Output::Segment(n, id) => cmaf::segment(index, &p, n, id)?,
        // Laid out by the planner above.
        Output::Progressive => Layout::new(),
    };
    Ok(Built {
        layout: Arc::new(layout),
        presentation: Some(p),
    })
}
