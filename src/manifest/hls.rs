//! HLS playlists (RFC 8216, version 7 for fMP4): a master playlist with
//! every video track a variant and every audio track an alternative of one
//! group, and one media playlist per track.

use super::{Alternative, Part, TrackId, alternatives};
use crate::mp4::cmaf::{self, Kind, Presentation, Rendition};
use std::fmt::Write;

const AUDIO_GROUP: &str = "audio";
const SUBTITLES_GROUP: &str = "subs";

/// One `EXT-X-MEDIA` alternative of `group`, without its URI.
fn media(s: &mut String, kind: &str, group: &str, a: &Alternative) {
    let _ = write!(s, "#EXT-X-MEDIA:TYPE={kind},GROUP-ID=\"{group}\"");
    if let Some(l) = &a.language {
        let _ = write!(s, ",LANGUAGE=\"{}\"", l.tag);
    }
    let default = if a.default { "YES" } else { "NO" };
    let _ = write!(s, ",NAME=\"{}\",DEFAULT={default},AUTOSELECT=YES", a.name);
}

/// `master.m3u8` of one film or of the films of a URL set (every video
/// track of each a variant; the first film's audio tracks the
/// alternatives); `query` goes after every URI.
pub fn master(parts: &[Part<'_>], query: &str) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let Some(first) = parts.first() else {
        return s;
    };
    let p = first.presentation;
    let named = |file: u8, r: &Rendition| TrackId { file, id: r.id };
    let audio: Vec<&Rendition> = (p.renditions.iter())
        .filter(|r| r.kind == Kind::Audio)
        .collect();
    let video: Vec<(u8, &Rendition)> = (parts.iter())
        .flat_map(|part| {
            (part.presentation.renditions.iter())
                .filter(|r| r.kind == Kind::Video)
                .map(move |r| (part.file, r))
        })
        .collect();
    if video.is_empty() {
        // Audio only: every track is a variant of its own.
        for r in &audio {
            let (peak, average) = super::drm::rates(r, first.drm.as_ref());
            let _ = writeln!(
                s,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"\nindex-{}.m3u8{query}",
                peak.max(1),
                average.max(1),
                r.description.codecs,
                named(first.file, r)
            );
        }
        return s;
    }
    let (audio_alternatives, subtitles) = alternatives(p);
    for a in &audio_alternatives {
        media(&mut s, "AUDIO", AUDIO_GROUP, a);
        if let Some(channels) = p.rendition(a.id).and_then(|r| channels(&r.description)) {
            let _ = write!(s, ",CHANNELS=\"{channels}\"");
        }
        let _ = writeln!(
            s,
            ",URI=\"index-{}.m3u8{query}\"",
            TrackId {
                file: first.file,
                id: a.id
            }
        );
    }
    for a in &subtitles {
        media(&mut s, "SUBTITLES", SUBTITLES_GROUP, a);
        let id = TrackId {
            file: first.file,
            id: a.id,
        };
        let _ = writeln!(s, ",URI=\"subs-{id}.m3u8{query}\"");
    }
    // The heaviest audio and subtitle renditions play beside each video.
    let (text_peak, text_average) = subtitle_rates(first);
    let audio_peak = (audio
        .iter()
        .map(|r| super::drm::rates(r, first.drm.as_ref()).0)
        .max()
        .unwrap_or(0))
    .saturating_add(text_peak);
    let audio_average = (audio
        .iter()
        .map(|r| super::drm::rates(r, first.drm.as_ref()).1)
        .max()
        .unwrap_or(0))
    .saturating_add(text_average);
    let mut audio_codecs: Vec<&str> = Vec::new();
    for r in &audio {
        if !audio_codecs.contains(&r.description.codecs.as_str()) {
            audio_codecs.push(&r.description.codecs);
        }
    }
    for (file, r) in &video {
        let drm = parts
            .iter()
            .find(|p| p.file == *file)
            .and_then(|p| p.drm.as_ref());
        let (video_peak, video_average) = super::drm::rates(r, drm);
        let mut codecs = r.description.codecs.clone();
        for c in &audio_codecs {
            codecs.push(',');
            codecs.push_str(c);
        }
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{codecs}\"",
            video_peak.saturating_add(audio_peak).max(1),
            video_average.saturating_add(audio_average).max(1),
        );
        if let Some((codecs, brand)) = &r.description.supplemental {
            let _ = write!(s, ",SUPPLEMENTAL-CODECS=\"{codecs}/{brand}\"");
        }
        if r.description.width > 0 && r.description.height > 0 {
            // As shown: the pixel aspect applied (HLS has no SAR).
            let (w, h) = r.description.displayed();
            let _ = write!(s, ",RESOLUTION={w}x{h}");
        }
        if let Some(rate) = r.frame_rate {
            let _ = write!(s, ",FRAME-RATE={rate:.3}");
        }
        // SDR, the attribute's meaning when absent, is written only where
        // a Dolby Vision brand wants it.
        if let Some(range) = r.description.video_range {
            let _ = write!(s, ",VIDEO-RANGE={range}");
        }
        if !audio.is_empty() {
            let _ = write!(s, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        if !p.texts.is_empty() {
            let _ = write!(s, ",SUBTITLES=\"{SUBTITLES_GROUP}\"");
        }
        let _ = writeln!(s, "\nindex-{}.m3u8{query}", named(*file, r));
    }
    for (file, r) in &video {
        let keys = (parts.iter().filter(|p| p.file == *file))
            .flat_map(|p| p.keys.iter())
            .find(|k| k.id == r.id);
        if let Some(k) = keys {
            i_frame_stream(&mut s, r, k, named(*file, r), query);
        }
    }
    if let Some(i) = &first.images {
        super::images::hls_stream(&mut s, i, query);
    }
    s
}

/// `EXT-X-I-FRAME-STREAM-INF` (RFC 8216 4.3.4.3) of a video rendition's
/// key frames: its own bit rates (4.3.4.2 over the I-frame playlist), no
/// audio, no FRAME-RATE.
fn i_frame_stream(s: &mut String, r: &Rendition, k: &cmaf::Keys, id: TrackId, query: &str) {
    let _ = write!(
        s,
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
        k.peak_bandwidth.max(1),
        k.average_bandwidth.max(1),
        r.description.codecs
    );
    if r.description.width > 0 && r.description.height > 0 {
        let (w, h) = r.description.displayed();
        let _ = write!(s, ",RESOLUTION={w}x{h}");
    }
    if let Some(range) = r.description.video_range {
        let _ = write!(s, ",VIDEO-RANGE={range}");
    }
    let _ = writeln!(s, ",URI=\"iframes-{id}.m3u8{query}\"");
}

/// `iframes-<track>.m3u8`: the track's key frames, each a segment of one
/// sample shown until the next (RFC 8216 4.3.3.6), after the track's init
/// segment.
pub fn i_frames(k: &cmaf::Keys, track: TrackId, query: &str) -> String {
    let target = cmaf::target_duration(&k.frames);
    let mut s = String::with_capacity(160 + k.frames.len() * 40);
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n#EXT-X-MAP:URI=\"init-{track}.mp4{query}\"\n"
    );
    for (n, f) in (1..).zip(&k.frames) {
        let _ = write!(
            s,
            "#EXTINF:{},\nkey-{n}-{track}.m4s{query}\n",
            cmaf::printed_seconds(f.shown_for)
        );
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// The peak and average bit rates (RFC 8216 4.3.4.2) of the heaviest
/// subtitle track of a film: its WebVTT segments as written, over the
/// video segments' times they follow.
fn subtitle_rates(part: &Part<'_>) -> (u64, u64) {
    let p = part.presentation;
    let reference = super::webvtt::reference(p);
    let mut rates = (0, 0);
    for t in &p.texts {
        let Some(cues) = part.cues.iter().find(|c| c.id == t.id) else {
            continue;
        };
        let sized: Vec<cmaf::Segment> = (reference.iter().enumerate())
            .map(|(k, s)| {
                let n = u32::try_from(k + 1).unwrap_or(u32::MAX);
                let bytes = super::webvtt::segment(p, cues, n).map_or(0, |v| v.len() as u64);
                cmaf::Segment { sent: bytes, ..*s }
            })
            .collect();
        let (peak, average) = cmaf::bandwidth(&sized);
        rates = (rates.0.max(peak), rates.1.max(average));
    }
    rates
}

/// `index-<track>.m3u8`: the track's init segment and media segments;
/// `None` when the presentation has no such track.
pub fn playlist(
    p: &Presentation,
    track: TrackId,
    query: &str,
    drm: Option<&super::drm::Drm<'_>>,
) -> Option<String> {
    let r = p.rendition(track.id)?;
    // TARGETDURATION bounds every EXTINF, as printed, rounded to the
    // nearest integer; BANDWIDTH's runs are measured against it too.
    let target = cmaf::target_duration(&r.segments);
    let mut s = String::with_capacity(64 + r.segments.len() * 40);
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-{track}.mp4{query}\"\n"
    );
    if let Some(d) = drm {
        s.push_str(&super::drm::hls_key(d, query));
    }
    for (k, seg) in r.segments.iter().enumerate() {
        let _ = write!(
            s,
            "#EXTINF:{},\nseg-{}-{track}.m4s{query}\n",
            cmaf::printed_seconds(seg.shown_for),
            k + 1
        );
    }
    s.push_str("#EXT-X-ENDLIST\n");
    Some(s)
}

/// An audio alternative's `CHANNELS`: the count, or for E-AC-3 with JOC
/// (Dolby Atmos) its complexity index and `JOC` (Apple's HLS authoring
/// specification, appendixes, "Values for the CODECS attribute"). A count
/// the film does not say is left out, not written 0.
fn channels(d: &cmaf::Description) -> Option<String> {
    match (d.joc, d.channels) {
        (Some(index), _) => Some(format!("{index}/JOC")),
        (None, 0) => None,
        (None, n) => Some(n.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::cmaf::testing::{presentation, rendition};

    #[test]
    fn target_duration_bounds_every_extinf_as_printed() {
        let p = presentation(vec![rendition(
            1,
            Kind::Video,
            "avc1.64001F",
            &[(6.4999997, 1000), (5.0, 1000)],
        )]);
        let text = playlist(&p, TrackId { file: 0, id: 1 }, "", None).unwrap();
        assert!(text.contains("#EXTINF:6.500000,"), "{text}");
        // 6.500000 rounds to 7 (RFC 8216 4.3.3.1).
        assert!(text.contains("#EXT-X-TARGETDURATION:7\n"), "{text}");
    }

    #[test]
    fn an_unknown_channel_count_is_not_written() {
        let mut audio = rendition(2, Kind::Audio, "mp4a.40.2", &[(6.0, 1000)]);
        audio.description.channels = 0;
        let p = presentation(vec![
            rendition(1, Kind::Video, "avc1.64001F", &[(6.0, 1000)]),
            audio,
        ]);
        let text = master(&[Part::of(&p)], "");
        assert!(text.contains("#EXT-X-MEDIA:TYPE=AUDIO"), "{text}");
        assert!(!text.contains("CHANNELS"), "{text}");
        let mut stereo = p.clone();
        stereo.renditions[1].description.channels = 2;
        let text = master(&[Part::of(&stereo)], "");
        assert!(text.contains(",CHANNELS=\"2\","), "{text}");
    }

    #[test]
    fn dolby_vision_and_atmos_are_announced() {
        let mut video = rendition(1, Kind::Video, "hvc1.2.4.L153.B0", &[(6.0, 1000)]);
        video.description.supplemental = Some(("dvh1.08.07".into(), "db4h"));
        video.description.video_range = Some("HLG");
        let mut audio = rendition(2, Kind::Audio, "ec-3", &[(6.0, 1000)]);
        audio.description.channels = 6;
        audio.description.joc = Some(16);
        let p = presentation(vec![video, audio]);
        let one = |p| master(&[Part::of(p)], "");
        let text = one(&p);
        assert!(
            text.contains(
                "CODECS=\"hvc1.2.4.L153.B0,ec-3\",SUPPLEMENTAL-CODECS=\"dvh1.08.07/db4h\","
            ),
            "{text}"
        );
        assert!(text.contains(",VIDEO-RANGE=HLG,"), "{text}");
        assert!(text.contains(",CHANNELS=\"16/JOC\","), "{text}");
        let mut plain = p.clone();
        plain.renditions[0].description.supplemental = None;
        plain.renditions[1].description.joc = None;
        let text = one(&plain);
        assert!(!text.contains("SUPPLEMENTAL-CODECS"), "{text}");
        assert!(text.contains(",CHANNELS=\"6\","), "{text}");
    }
}
