//! Subtitles as WebVTT: an HLS subtitle playlist whose segments follow the
//! video's (RFC 8216 §3.5), each segment the cues it overlaps, and the
//! whole track as one file for DASH. Times are the presentation's: a clip's
//! cues are shifted to its start and cut to its length.

use super::TrackId;
use crate::mp4::cmaf::{Kind, Presentation, Segment};
use crate::mp4::cues::Cues;
use std::fmt::Write;

/// `00:01:02.345`
fn timestamp(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    format!(
        "{h:02}:{:02}:{:02}.{:03}",
        rest / 60_000,
        (rest % 60_000) / 1000,
        rest % 1000
    )
}

/// The segments subtitles follow: the first video track's, else the first
/// track's.
pub(super) fn reference(p: &Presentation) -> &[Segment] {
    (p.renditions.iter())
        .find(|r| r.kind == Kind::Video)
        .or(p.renditions.first())
        .map_or(&[], |r| &r.segments)
}

/// A cue's text as WebVTT allows it: no blank line (it would end the cue;
/// CR ends a line as LF does), no `-->`, and for plain text (a tx3g
/// sample's) `&`, `<` escaped; `markup` (a sidecar's) is WebVTT already.
fn cue_text(text: &str, markup: bool) -> String {
    let escaped = if markup {
        text.replace("-->", "--&gt;")
    } else {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace("-->", "--&gt;")
    };
    escaped
        .split(['\n', '\r'])
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// WebVTT of the cues shown within `[from, to)` (presentation seconds).
fn vtt(p: &Presentation, cues: &Cues, from: f64, to: f64) -> String {
    // The cues' times are the presentation's (MPEGTS 0 is its time 0, as
    // the media segments' `tfdt` say).
    let mut s = String::from("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n");
    for c in &cues.cues {
        let (start, end) = (c.start - p.start, (c.end - p.start).min(p.duration));
        if end <= from || start >= to || end <= start.max(0.0) {
            continue;
        }
        let text = cue_text(&c.text, cues.markup);
        if text.is_empty() {
            continue;
        }
        let _ = write!(s, "\n{} --> {}\n{text}\n", timestamp(start), timestamp(end));
    }
    s
}

/// `subs-<track>.m3u8`: one WebVTT segment per video segment.
pub fn playlist(p: &Presentation, track: TrackId, query: &str) -> Option<String> {
    p.texts.iter().find(|t| t.id == track.id)?;
    let segments = reference(p);
    let target = crate::mp4::cmaf::target_duration(segments);
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    for (k, seg) in segments.iter().enumerate() {
        let _ = writeln!(
            s,
            "#EXTINF:{},\nsubs-{}-{track}.vtt{query}",
            crate::mp4::cmaf::printed_seconds(seg.shown_for),
            k + 1
        );
    }
    s.push_str("#EXT-X-ENDLIST\n");
    Some(s)
}

/// `subs-<n>-<track>.vtt`: the cues of segment `n` (from 1).
pub fn segment(p: &Presentation, cues: &Cues, n: u32) -> Option<String> {
    let seg = reference(p).get(usize::try_from(n).ok()?.checked_sub(1)?)?;
    let last = reference(p).len() == usize::try_from(n).ok()?;
    // The last segment runs to the end, so no cue is lost to rounding.
    let to = if last {
        f64::INFINITY
    } else {
        seg.shown_at + seg.shown_for
    };
    Some(vtt(p, cues, seg.shown_at, to))
}

/// `subs-<track>.vtt`: every cue of the presentation, for DASH.
pub fn whole(p: &Presentation, cues: &Cues) -> String {
    vtt(p, cues, 0.0, f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::cmaf::{Text, testing};
    use crate::mp4::cues::Cue;

    #[test]
    fn cues_follow_the_video_segments() {
        let v = testing::rendition(
            1,
            Kind::Video,
            "avc1.64001F",
            &[(6.0, 1), (6.0, 1), (2.0, 1)],
        );
        let mut p = testing::presentation(vec![v]);
        p.texts.push(Text {
            id: 3,
            language: Some("eng".into()),
            name: None,
            default: false,
        });
        let cue = |start: f64, end: f64, text: &str| Cue {
            start,
            end,
            text: text.into(),
        };
        let cues = Cues {
            id: 3,
            cues: vec![
                cue(1.0, 2.5, "one"),
                cue(5.5, 6.5, "across <b> & -->"),
                cue(13.0, 20.0, "past the end"),
            ],
            ..Cues::default()
        };
        let list = playlist(&p, TrackId { file: 0, id: 3 }, "?start=1").unwrap();
        assert_eq!(list.matches("#EXTINF").count(), 3, "{list}");
        assert!(list.contains("subs-2-3.vtt?start=1"), "{list}");
        assert!(playlist(&p, TrackId { file: 0, id: 4 }, "").is_none());
        let first = segment(&p, &cues, 1).unwrap();
        assert!(first.starts_with("WEBVTT\n"), "{first}");
        assert!(
            first.contains("00:00:01.000 --> 00:00:02.500\none"),
            "{first}"
        );
        assert!(first.contains("across &lt;b> &amp; --&gt;"), "{first}");
        // A cue across a boundary is in both segments.
        assert!(
            segment(&p, &cues, 2)
                .unwrap()
                .contains("00:00:05.500 --> 00:00:06.500")
        );
        // Cut to the presentation's end (14 s).
        assert!(
            segment(&p, &cues, 3)
                .unwrap()
                .contains("00:00:13.000 --> 00:00:14.000")
        );
        assert!(segment(&p, &cues, 4).is_none());
        // A clip from 5 s: shifted, and what ended before it is gone.
        p.start = 5.0;
        let all = whole(&p, &cues);
        assert!(!all.contains("one"), "{all}");
        assert!(all.contains("00:00:00.500 --> 00:00:01.500"), "{all}");
        assert_eq!(timestamp(3725.0004), "01:02:05.000");
    }

    #[test]
    fn a_lone_cr_ends_a_line_and_markup_stays() {
        // A blank line would end the cue: "a\n\rb" is two lines, not three.
        assert_eq!(cue_text("a\n\rb", false), "a\nb");
        assert_eq!(cue_text("\ra & <b>", false), "a &amp; &lt;b>");
        assert_eq!(
            cue_text("<i>a</i> &amp; b --> c", true),
            "<i>a</i> &amp; b --&gt; c"
        );
    }
}
