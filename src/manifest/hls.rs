//! HLS playlists (RFC 8216, version 7 for fMP4): a master playlist with
//! every video track a variant and every audio track an alternative of one
//! group, and one media playlist per track.

use super::{Part, TrackId, language, text_language};
use crate::mp4::cmaf::{self, Kind, Presentation, Rendition};
use std::fmt::Write;

const AUDIO_GROUP: &str = "audio";
const SUBTITLES_GROUP: &str = "subs";

/// The subtitle alternatives (WebVTT, `subs-<track>.m3u8`), named like the
/// audio ones; none chosen by default.
fn subtitles(s: &mut String, p: &Presentation, file: u8, query: &str) {
    let mut names: Vec<String> = Vec::new();
    for t in &p.texts {
        let lang = text_language(p, t.id);
        let base = lang
            .as_ref()
            .map_or_else(|| format!("subtitles {}", t.id), |l| l.name.clone());
        let name = if names.contains(&base) {
            format!("{base} ({})", t.id)
        } else {
            base
        };
        let _ = write!(
            s,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLES_GROUP}\""
        );
        if let Some(l) = &lang {
            let _ = write!(s, ",LANGUAGE=\"{}\"", l.tag);
        }
        let _ = writeln!(
            s,
            ",NAME=\"{name}\",DEFAULT=NO,AUTOSELECT=YES,URI=\"subs-{}.m3u8{query}\"",
            TrackId { file, id: t.id }
        );
        names.push(name);
    }
}

/// Unique, quoted-string-safe names for the audio alternatives.
fn audio_names(p: &Presentation) -> Vec<(u32, String)> {
    let mut names: Vec<(u32, String)> = Vec::new();
    for r in p.renditions.iter().filter(|r| r.kind == Kind::Audio) {
        let base = language(p, r.id).map_or_else(|| format!("audio {}", r.id), |l| l.name);
        let name = if names.iter().any(|(_, n)| *n == base) {
            format!("{base} ({})", r.id)
        } else {
            base
        };
        names.push((r.id, name));
    }
    names
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
            let _ = writeln!(
                s,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"\nindex-{}.m3u8{query}",
                r.peak_bandwidth.max(1),
                r.average_bandwidth.max(1),
                r.description.codecs,
                named(first.file, r)
            );
        }
        return s;
    }
    for (i, (id, name)) in audio_names(p).iter().enumerate() {
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = write!(s, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\"");
        if let Some(l) = language(p, *id) {
            let _ = write!(s, ",LANGUAGE=\"{}\"", l.tag);
        }
        let _ = write!(s, ",NAME=\"{name}\",DEFAULT={default},AUTOSELECT=YES");
        // A channel count the film does not say is left out, not written 0.
        match p.rendition(*id).map_or(0, |r| r.description.channels) {
            0 => {}
            channels => {
                let _ = write!(s, ",CHANNELS=\"{channels}\"");
            }
        }
        let _ = writeln!(
            s,
            ",URI=\"index-{}.m3u8{query}\"",
            TrackId {
                file: first.file,
                id: *id
            }
        );
    }
    subtitles(&mut s, p, first.file, query);
    let audio_peak = audio.iter().map(|r| r.peak_bandwidth).max().unwrap_or(0);
    let audio_average = audio.iter().map(|r| r.average_bandwidth).max().unwrap_or(0);
    let mut audio_codecs: Vec<&str> = Vec::new();
    for r in &audio {
        if !audio_codecs.contains(&r.description.codecs.as_str()) {
            audio_codecs.push(&r.description.codecs);
        }
    }
    for (file, r) in &video {
        let mut codecs = r.description.codecs.clone();
        for c in &audio_codecs {
            codecs.push(',');
            codecs.push_str(c);
        }
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{codecs}\"",
            r.peak_bandwidth.saturating_add(audio_peak).max(1),
            r.average_bandwidth.saturating_add(audio_average).max(1),
        );
        if r.description.width > 0 && r.description.height > 0 {
            // As shown: the pixel aspect applied (HLS has no SAR).
            let (w, h) = r.description.displayed();
            let _ = write!(s, ",RESOLUTION={w}x{h}");
        }
        if let Some(rate) = r.frame_rate {
            let _ = write!(s, ",FRAME-RATE={rate:.3}");
        }
        // SDR, the attribute's meaning when absent, is not written.
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
    s
}

/// `index-<track>.m3u8`: the track's init segment and media segments;
/// `None` when the presentation has no such track.
pub fn playlist(p: &Presentation, track: TrackId, query: &str) -> Option<String> {
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
        let text = playlist(&p, TrackId { file: 0, id: 1 }, "").unwrap();
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
        let text = master(
            &[Part {
                file: 0,
                presentation: &p,
            }],
            "",
        );
        assert!(text.contains("#EXT-X-MEDIA:TYPE=AUDIO"), "{text}");
        assert!(!text.contains("CHANNELS"), "{text}");
        let mut stereo = p.clone();
        stereo.renditions[1].description.channels = 2;
        let text = master(
            &[Part {
                file: 0,
                presentation: &stereo,
            }],
            "",
        );
        assert!(text.contains(",CHANNELS=\"2\","), "{text}");
    }
}
