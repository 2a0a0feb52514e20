//! What the subtitles fuzz target reaches (`fuzzing` feature only).

use crate::mp4::cmaf::Presentation;
use crate::mp4::cues::{Cue, Cues};

/// A `tx3g` sample's text, as the index reads it.
pub fn tx3g_text(sample: &[u8]) -> Option<String> {
    crate::mp4::cues::text(sample)
}

/// `cues` as `subs-<track>.vtt` of a presentation that starts at the
/// film's 0 and never ends; `markup`: a sidecar's WebVTT text, else a
/// tx3g sample's plain text.
pub fn webvtt(cues: Vec<Cue>, markup: bool) -> String {
    let p = Presentation {
        duration: f64::INFINITY,
        renditions: Vec::new(),
        movie_duration: 0,
        start: 0.0,
        texts: Vec::new(),
    };
    let cues = Cues {
        id: 1,
        cues,
        markup,
        ..Cues::default()
    };
    super::super::webvtt::whole(&p, &cues)
}
