//! Hand-made plans for the manifests' tests.

use super::*;

/// A rendition of segments of `(seconds, sample bytes)`, one sample per
/// 40 ms, presented one after the other from 0.
pub(crate) fn rendition(id: u32, kind: Kind, codecs: &str, segs: &[(f64, u64)]) -> Rendition {
    let mut segments = Vec::new();
    let (mut at, mut first) = (0.0, 0u64);
    for &(shown_for, bytes) in segs {
        let samples = ((shown_for / 0.04).round() as u64).max(1);
        segments.push(Segment {
            first,
            end: first + samples,
            time: (at * 1000.0) as u64,
            duration: (shown_for * 1000.0) as u64,
            samples,
            shown_at: at,
            shown_for,
            bytes,
            sent: bytes + write::head_len(samples, true),
            marks: Default::default(),
        });
        at += shown_for;
        first += samples;
    }
    let video = kind == Kind::Video;
    Rendition {
        id,
        kind,
        description: Description {
            codecs: codecs.to_string(),
            width: if video { 320 } else { 0 },
            height: if video { 180 } else { 0 },
            sample_rate: if video { 0 } else { 48_000 },
            channels: if video { 0 } else { 2 },
            video_range: None,
            sar: None,
            ..Description::default()
        },
        language: None,
        timescale: 1000,
        peak_bandwidth: 0,
        average_bandwidth: 0,
        frame_rate: None,
        // As the planner says of these codecs without a 'sync' group.
        sap: Some(
            if codecs.starts_with("hvc1") || codecs.starts_with("hev1") {
                HEVC_IRAP_SAP
            } else {
                1
            },
        ),
        segments,
        track: 0,
        info: TrakInfo {
            start: 0,
            id,
            handler: if video { *b"vide" } else { *b"soun" },
            codec: *b"avc1",
            timescale: 1000,
            language: None,
            edit: Default::default(),
            enabled: true,
            tag: None,
            name: None,
        },
        edits: Vec::new(),
        default: false,
    }
}

pub(crate) fn presentation(renditions: Vec<Rendition>) -> Presentation {
    let duration = renditions
        .iter()
        .map(|r| r.segments.iter().map(|s| s.shown_for).sum::<f64>())
        .fold(0.0, f64::max);
    Presentation {
        duration,
        renditions,
        movie_duration: (duration * 1000.0) as u64,
        start: 0.0,
        texts: Vec::new(),
    }
}
