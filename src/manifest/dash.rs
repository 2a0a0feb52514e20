//! The DASH MPD (ISO/IEC 23009-1, live profile with `SegmentTemplate` and
//! `SegmentTimeline`) over the same init and media segments as HLS.

use super::drm::Drm;
use super::{Alternative, Part, TrackId, alternatives};
use crate::mp4::cmaf::{Kind, Rendition};
use std::fmt::Write;

/// `&`, `<`, `>`, `"` escaped for an XML attribute.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An `xs:duration` of seconds.
fn duration(seconds: f64) -> String {
    format!("PT{:.3}S", seconds.max(0.0))
}

/// An `xs:duration` of at least `seconds`: milliseconds rounded up.
fn duration_up(seconds: f64) -> String {
    duration((seconds.max(0.0) * 1000.0).ceil() / 1000.0)
}

/// ` startWithSAP="n"`: the highest SAP type any of `renditions`' segments
/// starts with; nothing when one is not known to start with a SAP (see
/// `cmaf::Rendition::sap`: HEVC key frames may be open-GOP CRA pictures,
/// SAP type 3, so 1 is never claimed for them on the codec alone).
fn start_with_sap<'a>(renditions: impl IntoIterator<Item = &'a Rendition>) -> String {
    let mut most = Some(0u8);
    for r in renditions {
        most = most.zip(r.sap).map(|(a, b)| a.max(b));
    }
    match most {
        Some(n) if n > 0 => format!(" startWithSAP=\"{n}\""),
        _ => String::new(),
    }
}

/// `manifest.mpd` of one film or of the films of a URL set (every video
/// track of each a representation of one adaptation set; the first film's
/// audio); `query` goes after every URL.
pub fn mpd(parts: &[Part<'_>], query: &str) -> String {
    let q = xml(query);
    let mut s = String::with_capacity(1024);
    let Some(first) = parts.first() else {
        return s;
    };
    let p = first.presentation;
    let max_segment = (parts.iter())
        .flat_map(|part| part.presentation.renditions.iter())
        .flat_map(|r| r.segments.iter().map(|s| s.shown_for))
        .fold(1.0, f64::max);
    // SCTE 214-1's attributes (Dolby Vision's supplemental codecs) need
    // their namespace; an MPD without them stays as it was.
    let scte214 = (parts.iter())
        .flat_map(|part| part.presentation.renditions.iter())
        .any(|r| r.description.supplemental.is_some());
    let ns = if scte214 {
        " xmlns:scte214=\"urn:scte:dash:scte214-extensions\""
    } else {
        ""
    };
    let protected =
        (parts.iter()).any(|part| part.drm.is_some_and(|d| d.protection.scheme.in_samples()));
    let cenc_ns = if protected {
        super::drm::CENC_NAMESPACE
    } else {
        ""
    };
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"{ns}{cenc_ns} profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" \
         type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"{}\" maxSegmentDuration=\"{}\">\n\
         <Period id=\"0\" start=\"PT0S\">\n",
        duration(p.duration),
        // DASH-IF IOP: a player must be able to hold a whole segment.
        duration_up(max_segment),
        duration_up(max_segment)
    );
    let video: Vec<(u8, &Rendition)> = (parts.iter())
        .flat_map(|part| {
            (part.presentation.renditions.iter())
                .filter(|r| r.kind == Kind::Video)
                .map(move |r| (part.file, r))
        })
        .collect();
    if !video.is_empty() {
        let _ = writeln!(
            s,
            "<AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" \
             segmentAlignment=\"true\"{}>",
            start_with_sap(video.iter().map(|(_, r)| *r))
        );
        if let Some(d) = &first.drm {
            s.push_str(&super::drm::dash_protection(d));
        }
        for (file, r) in &video {
            let drm = parts
                .iter()
                .find(|p| p.file == *file)
                .and_then(|p| p.drm.as_ref());
            representation(&mut s, *file, r, &q, drm);
        }
        s.push_str("</AdaptationSet>\n");
        trick_mode(&mut s, parts, &video, &q);
    }
    // One adaptation set per language and own name; tracks without a
    // language each have their own. A set is labelled as its first track
    // is named in HLS.
    let (audio, subtitles) = alternatives(p);
    let mut sets: Vec<(&Alternative, Vec<&Rendition>, bool)> = Vec::new();
    for a in &audio {
        let Some(r) = p.rendition(a.id) else { continue };
        let same =
            |b: &Alternative| b.language.is_some() && b.language == a.language && b.own == a.own;
        match sets.iter_mut().find(|(b, ..)| same(b)) {
            Some((_, v, default)) => {
                v.push(r);
                *default |= a.default;
            }
            None => sets.push((a, vec![r], a.default)),
        }
    }
    for (i, (first_track, tracks, default)) in sets.iter().enumerate() {
        let lang = &first_track.language;
        let _ = write!(
            s,
            "<AdaptationSet id=\"{}\" contentType=\"audio\" mimeType=\"audio/mp4\" \
             segmentAlignment=\"true\"{}",
            i + 1,
            start_with_sap(tracks.iter().copied())
        );
        if let Some(l) = lang {
            let _ = write!(s, " lang=\"{}\"", l.tag);
        }
        s.push_str(">\n");
        let _ = writeln!(s, "<Label>{}</Label>", xml(&first_track.name));
        if let Some(d) = &first.drm {
            s.push_str(&super::drm::dash_protection(d));
        }
        let role = if *default { "main" } else { "alternate" };
        let _ = writeln!(
            s,
            "<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>"
        );
        for r in tracks {
            representation(&mut s, first.file, r, &q, first.drm.as_ref());
        }
        s.push_str("</AdaptationSet>\n");
    }
    // Subtitles: the whole track as one WebVTT file (dash.js and Shaka
    // read a text/vtt Representation by its BaseURL).
    for (i, t) in subtitles.iter().enumerate() {
        let _ = write!(
            s,
            "<AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"text/vtt\"",
            100 + i
        );
        if let Some(l) = &t.language {
            let _ = write!(s, " lang=\"{}\"", l.tag);
        }
        s.push_str(">\n");
        let _ = writeln!(s, "<Label>{}</Label>", xml(&t.name));
        s.push_str("<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n");
        let id = TrackId {
            file: first.file,
            id: t.id,
        };
        let _ = writeln!(
            s,
            "<Representation id=\"{id}\" bandwidth=\"256\">\n<BaseURL>subs-{id}.vtt{q}</BaseURL>\n</Representation>"
        );
        s.push_str("</AdaptationSet>\n");
    }
    if let Some(i) = &first.images {
        super::images::dash_set(&mut s, i, &q);
    }
    s.push_str("</Period>\n</MPD>\n");
    s
}

/// A representation's `AudioChannelConfiguration`: AC-3 and E-AC-3 in
/// Dolby's scheme, their layout in 4 hex digits (DASH-IF IOP, "Enhanced
/// AC-3"), others as a count; and E-AC-3's JOC (Dolby Atmos) as ETSI TS
/// 103 420 (D.2) says it.
fn audio_channels(s: &mut String, d: &crate::mp4::cmaf::Description) {
    match d.dolby_layout {
        Some(layout) => {
            let _ = writeln!(
                s,
                "<AudioChannelConfiguration schemeIdUri=\"tag:dolby.com,2014:dash:audio_channel_configuration:2011\" value=\"{layout:04X}\"/>"
            );
        }
        None if d.channels > 0 => {
            let _ = writeln!(
                s,
                "<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                d.channels
            );
        }
        None => {}
    }
    if let Some(index) = d.joc {
        let _ = writeln!(
            s,
            "<SupplementalProperty schemeIdUri=\"tag:dolby.com,2018:dash:EC3_ExtensionType:2018\" value=\"JOC\"/>\n\
             <SupplementalProperty schemeIdUri=\"tag:dolby.com,2018:dash:EC3_ExtensionComplexityIndex:2018\" value=\"{index}\"/>"
        );
    }
}

/// Where a run of `n + 1` segments of `d` from `t` ends (saturating: the
/// times come from the film).
fn after(t: u64, d: u64, n: u32) -> u64 {
    t.saturating_add(d.saturating_mul(u64::from(n) + 1))
}

fn representation(s: &mut String, file: u8, r: &Rendition, q: &str, drm: Option<&Drm<'_>>) {
    let d = &r.description;
    let _ = write!(
        s,
        "<Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
        TrackId { file, id: r.id },
        xml(&d.codecs),
        super::drm::rates(r, drm).0.max(1)
    );
    if d.width > 0 && d.height > 0 {
        let _ = write!(s, " width=\"{}\" height=\"{}\"", d.width, d.height);
        if let Some((h, v)) = d.sar {
            let _ = write!(s, " sar=\"{h}:{v}\"");
        }
    }
    if d.sample_rate > 0 {
        let _ = write!(s, " audioSamplingRate=\"{}\"", d.sample_rate);
    }
    // Dolby Vision over the base layer `codecs` names (SCTE 214-1 11.1.6;
    // Dolby, "Dolby Vision Streams Within the MPEG-DASH Format").
    if let Some((codecs, brand)) = &d.supplemental {
        let _ = write!(
            s,
            " scte214:supplementalCodecs=\"{}\" scte214:supplementalProfiles=\"{brand}\"",
            xml(codecs)
        );
    }
    s.push_str(">\n");
    audio_channels(s, d);
    let ts = r.timescale.max(1);
    let _ = writeln!(
        s,
        "<SegmentTemplate timescale=\"{ts}\" initialization=\"init-$RepresentationID$.mp4{q}\" \
         media=\"seg-$Number$-$RepresentationID$.m4s{q}\" startNumber=\"1\">"
    );
    timeline(s, ts, &r.segments);
    s.push_str("</SegmentTemplate>\n</Representation>\n");
}

/// The trick-mode adaptation set (DASH-IF IOP 3.2.9) of the video
/// renditions that have key frames listed: each key frame a segment of
/// one sample. A representation's id cannot be its track's (ids are
/// unique in the MPD), so its template names the track itself.
fn trick_mode(s: &mut String, parts: &[Part<'_>], video: &[(u8, &Rendition)], q: &str) {
    let listed: Vec<(u8, &Rendition, &crate::mp4::cmaf::Keys)> = (video.iter())
        .filter_map(|&(file, r)| {
            let part = parts.iter().find(|p| p.file == file)?;
            Some((file, r, part.keys.iter().find(|k| k.id == r.id)?))
        })
        .collect();
    if listed.is_empty() {
        return;
    }
    // After the audio (1…) and subtitle (100…) sets' ids.
    let _ = writeln!(
        s,
        "<AdaptationSet id=\"{TRICK_MODE_SET}\" contentType=\"video\" mimeType=\"video/mp4\" \
         segmentAlignment=\"true\">\n\
         <EssentialProperty schemeIdUri=\"http://dashif.org/guidelines/trickmode\" value=\"0\"/>"
    );
    for (file, r, k) in listed {
        let d = &r.description;
        let id = TrackId { file, id: r.id };
        let _ = write!(
            s,
            "<Representation id=\"iframes-{id}\" codecs=\"{}\" bandwidth=\"{}\"",
            xml(&d.codecs),
            k.peak_bandwidth.max(1)
        );
        if d.width > 0 && d.height > 0 {
            let _ = write!(s, " width=\"{}\" height=\"{}\"", d.width, d.height);
            if let Some((h, v)) = d.sar {
                let _ = write!(s, " sar=\"{h}:{v}\"");
            }
        }
        let ts = r.timescale.max(1);
        let _ = writeln!(
            s,
            " maxPlayoutRate=\"{}\" codingDependency=\"false\">\n\
             <SegmentTemplate timescale=\"{ts}\" initialization=\"init-{id}.mp4{q}\" \
             media=\"key-$Number$-{id}.m4s{q}\" startNumber=\"1\">",
            k.max_playout_rate.max(1)
        );
        timeline(s, ts, &k.frames);
        s.push_str("</SegmentTemplate>\n</Representation>\n");
    }
    s.push_str("</AdaptationSet>\n");
}

/// The trick-mode set's id: past the audio sets' and the subtitles'.
const TRICK_MODE_SET: u32 = 1000;

/// A `SegmentTimeline` of `segments` in timescale `ts`.
fn timeline(s: &mut String, ts: u32, segments: &[crate::mp4::cmaf::Segment]) {
    s.push_str("<SegmentTimeline>\n");
    // Times on the presentation timeline; each start rounded once, so the
    // durations add up to the end without drift.
    let at = |secs: f64| (secs * f64::from(ts)).round() as u64;
    let mut runs: Vec<(u64, u64, u32)> = Vec::new();
    for seg in segments {
        let t = at(seg.shown_at);
        let d = at(seg.shown_at + seg.shown_for).saturating_sub(t);
        match runs.last_mut() {
            Some((t0, d0, n)) if *d0 == d && after(*t0, *d0, *n) == t => *n += 1,
            _ => runs.push((t, d, 0)),
        }
    }
    for (i, (t, d, n)) in runs.iter().enumerate() {
        s.push_str("<S");
        if i == 0 || {
            let (pt, pd, pn) = runs[i - 1];
            after(pt, pd, pn) != *t
        } {
            let _ = write!(s, " t=\"{t}\"");
        }
        let _ = write!(s, " d=\"{d}\"");
        if *n > 0 {
            let _ = write!(s, " r=\"{n}\"");
        }
        s.push_str("/>\n");
    }
    s.push_str("</SegmentTimeline>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::cmaf::testing::{presentation, rendition};

    fn one(p: &crate::mp4::cmaf::Presentation) -> String {
        mpd(&[Part::of(p)], "")
    }

    /// The seconds of an `xs:duration` attribute `name`.
    fn seconds(text: &str, name: &str) -> f64 {
        let v = text.split(&format!("{name}=\"PT")).nth(1).unwrap();
        v[..v.find('S').unwrap()].parse().unwrap()
    }

    #[test]
    fn min_buffer_time_holds_the_longest_segment() {
        let p = presentation(vec![
            rendition(
                1,
                Kind::Video,
                "avc1.64001F",
                &[(12.0004, 1000), (4.0, 1000)],
            ),
            rendition(2, Kind::Audio, "mp4a.40.2", &[(12.0, 1000), (4.0004, 1000)]),
        ]);
        let text = one(&p);
        assert!(seconds(&text, "minBufferTime") >= 12.0004, "{text}");
        assert!(seconds(&text, "maxSegmentDuration") >= 12.0004, "{text}");
    }

    /// The `startWithSAP` of the adaptation set of `content`, if any.
    fn sap<'a>(text: &'a str, content: &str) -> Option<&'a str> {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("contentType=\"{content}\"")))
            .unwrap();
        let v = line.split("startWithSAP=\"").nth(1)?;
        Some(&v[..v.find('"').unwrap()])
    }

    #[test]
    fn hevc_key_frames_are_not_claimed_to_be_sap_type_1() {
        let avc = presentation(vec![
            rendition(1, Kind::Video, "avc1.64001F", &[(6.0, 1000)]),
            rendition(2, Kind::Audio, "mp4a.40.2", &[(6.0, 1000)]),
        ]);
        let text = one(&avc);
        assert_eq!(sap(&text, "video"), Some("1"), "{text}");
        assert_eq!(sap(&text, "audio"), Some("1"), "{text}");
        let hevc = presentation(vec![
            rendition(1, Kind::Video, "hvc1.1.6.L93.90", &[(6.0, 1000)]),
            rendition(2, Kind::Audio, "mp4a.40.2", &[(6.0, 1000)]),
        ]);
        let text = one(&hevc);
        assert_ne!(sap(&text, "video"), Some("1"), "{text}");
        assert_eq!(sap(&text, "audio"), Some("1"), "{text}");
    }

    #[test]
    fn dolby_vision_and_atmos_are_described() {
        let mut video = rendition(1, Kind::Video, "hvc1.2.4.L153.B0", &[(6.0, 1000)]);
        video.description.supplemental = Some(("dvh1.08.07".into(), "db1p"));
        let mut audio = rendition(2, Kind::Audio, "ec-3", &[(6.0, 1000)]);
        audio.description.dolby_layout = Some(0xF801);
        audio.description.joc = Some(16);
        let p = presentation(vec![video, audio]);
        let text = one(&p);
        assert!(
            text.contains(" xmlns:scte214=\"urn:scte:dash:scte214-extensions\" "),
            "{text}"
        );
        assert!(
            text.contains(
                "codecs=\"hvc1.2.4.L153.B0\" bandwidth=\"1\" width=\"320\" height=\"180\" \
                 scte214:supplementalCodecs=\"dvh1.08.07\" scte214:supplementalProfiles=\"db1p\">"
            ),
            "{text}"
        );
        for line in [
            "<AudioChannelConfiguration schemeIdUri=\"tag:dolby.com,2014:dash:audio_channel_configuration:2011\" value=\"F801\"/>",
            "<SupplementalProperty schemeIdUri=\"tag:dolby.com,2018:dash:EC3_ExtensionType:2018\" value=\"JOC\"/>",
            "<SupplementalProperty schemeIdUri=\"tag:dolby.com,2018:dash:EC3_ExtensionComplexityIndex:2018\" value=\"16\"/>",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        // Neither: the MPEG scheme, no namespace.
        let plain = presentation(vec![
            rendition(1, Kind::Video, "hvc1.2.4.L153.B0", &[(6.0, 1000)]),
            rendition(2, Kind::Audio, "mp4a.40.2", &[(6.0, 1000)]),
        ]);
        let text = one(&plain);
        assert!(
            !text.contains("scte214") && !text.contains("dolby"),
            "{text}"
        );
        assert!(
            text.contains("audio_channel_configuration:2011\" value=\"2\""),
            "{text}"
        );
    }
}
