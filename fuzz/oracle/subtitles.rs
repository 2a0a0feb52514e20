//! Subtitles' fuzz oracle, shared by the fuzz target
//! (fuzz_targets/subtitles.rs) and tests/fuzz_regressions.rs: the input as
//! an SRT and as a WebVTT sidecar, and as a `tx3g` sample; every cue read
//! then goes through the WebVTT writer, whose file must read back whole.

use mp4_fcgi::manifest::sidecar::{self, MAX_TEXT, fuzzing};
use mp4_fcgi::mp4::cues::Cue;

/// Small, so that inputs reach the bound.
const MAX_CUES: usize = 32;

/// Runs one input; panics on a broken invariant.
pub fn subtitles(data: &[u8]) {
    for name in ["a.srt", "a.vtt"] {
        if let Ok(s) = sidecar::parse(name, data, MAX_CUES) {
            assert_eq!(s.skipped > 0, s.first_skipped.is_some());
            assert!(s.cues.len() <= MAX_CUES);
            assert!(s.cues.is_sorted_by(|a, b| a.start <= b.start));
            for c in &s.cues {
                assert!(
                    0.0 <= c.start && c.start < c.end && c.end.is_finite(),
                    "{c:?}"
                );
                // Text WebVTT can carry as it is: no blank line, no arrow.
                assert!(c.text.len() <= MAX_TEXT);
                assert!(!c.text.contains("-->"), "{c:?}");
                assert!(c.text.split('\n').all(|l| !l.trim().is_empty()), "{c:?}");
            }
            round_trip(&s.cues, true);
        }
    }
    // As a TTML document (an stpp sample): well-timed cues with text.
    for (begin, end, text) in mp4_fcgi::mp4::fuzzing::ttml(data) {
        assert!(begin.is_finite() && end.is_finite() && begin >= 0.0 && begin < end);
        assert!(!text.trim().is_empty());
    }
    if let Some(text) = fuzzing::tx3g_text(data) {
        assert!(!text.trim().is_empty());
        let cue = Cue {
            start: 1.5,
            end: 2.25,
            text,
        };
        // A lone CR ends a WebVTT line as LF does: the writer splits at
        // both, so no blank line ends the cue early.
        round_trip(&[cue], false);
    }
}

/// `cues` written as WebVTT read back as as many cues, at the same times,
/// with no block skipped.
fn round_trip(cues: &[Cue], markup: bool) {
    let vtt = fuzzing::webvtt(cues.to_vec(), markup);
    let back = sidecar::parse("a.vtt", vtt.as_bytes(), MAX_CUES).expect("WebVTT the writer wrote");
    assert_eq!(back.cues.len(), cues.len(), "{vtt}");
    for (a, b) in cues.iter().zip(&back.cues) {
        assert_eq!((a.start, a.end), (b.start, b.end), "{vtt}");
    }
    assert_eq!(back.skipped, 0, "{vtt}");
}
