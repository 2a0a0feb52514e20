//! CMAF packaging for HLS and DASH: a film's (or a window's) segment plan,
//! each track's init segment and its media segments.
//!
//! The plan is a pure function of the index, the window and the segment
//! duration, so every worker and every node numbers segments alike and
//! caches can keep them. Init and media segments are [`Layout`]s: generated
//! boxes plus spans of the source file, like a progressive answer.

mod codecs;
mod cuts;
mod dolby;
mod figures;
mod fragments;
pub mod keys;
mod sap;
pub mod sealed;
#[cfg(test)]
pub(crate) mod testing;
pub mod thumbs;
mod vui;
mod write;

pub use codecs::Description;
pub use figures::{printed_seconds, target_duration};
pub use keys::Keys;
pub use write::init;

pub use cuts::key_frame_cuts;
use cuts::{Clock, bounded_target, cuts, pick, spans};

pub use figures::bandwidth;
use figures::frame_rate;
use sap::{HEVC_IRAP_SAP, start_sap};

use super::index::{Index, Track};
use super::layout::Layout;
use super::tables::elst::{Edit, RATE_1};
use super::tables::runs::Mark;
use super::trak::TrakInfo;
use super::{Error, Window};
use std::sync::Arc;

/// Most samples one media segment may hold unless told otherwise
/// (`--max-segment-samples`): bounds the `trun`, and the memory of writing
/// it, that a hostile (or key-frame-less) film could ask for.
pub const MAX_SEGMENT_SAMPLES: u64 = 1 << 17;

/// The most `--max-segment-samples` may allow (16 bytes each in a `trun`).
pub const MAX_SEGMENT_SAMPLES_LIMIT: u64 = 1 << 22;

/// Most segments one rendition may have (18 days at 6 s): bounds the plan
/// of a film whose header claims a duration its samples do not pay for.
pub(super) const MAX_SEGMENTS: f64 = (1u64 << 18) as f64;

/// What the packager is told besides the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Target segment duration in seconds (`--segment-duration`).
    pub segment_duration: f64,
    /// The target was not chosen by the operator: a film whose key frames
    /// come at a steady interval gets the multiple of it nearest below the
    /// target instead, so that its segments are even (a 4 s GOP makes 4 s
    /// segments, not 8 s and 4 s in turn).
    pub fit_key_frames: bool,
    /// Most samples one media segment may hold (`--max-segment-samples`).
    pub max_segment_samples: u64,
    /// `--default-language` (ISO 639-2/T): see [`choose_defaults`].
    pub default_language: Option<[u8; 3]>,
    /// `--dash-trick-mode`: MPDs list each video's key frames as a DASH-IF
    /// trick-mode adaptation set. Off by default: ffmpeg's DASH reader (and
    /// the players built on it) takes that set for one more video stream,
    /// against the rule of `EssentialProperty`, and then reads fewer
    /// frames of the others.
    pub dash_trick_mode: bool,
    /// `--thumbnail-interval` and the tiles' layout: the seek-bar previews
    /// the manifests announce (`None`: none).
    pub tiles: Option<thumbs::Tiles>,
}

impl Settings {
    /// A fixed target, as an operator sets it, and the default bounds.
    pub const fn fixed(segment_duration: f64) -> Settings {
        Settings {
            segment_duration,
            fit_key_frames: false,
            max_segment_samples: MAX_SEGMENT_SAMPLES,
            default_language: None,
            dash_trick_mode: false,
            tiles: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// One media segment of one track: samples `[first, end)` (a fragmented
/// film's: its fragments `[first, end)`), never none of the track's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub first: u64,
    pub end: u64,
    /// `tfdt`: decode time of `first` in the track's timescale.
    pub time: u64,
    /// Decode duration in the track's timescale.
    pub duration: u64,
    /// How many samples it holds.
    pub samples: u64,
    /// Presentation start and duration in seconds (`#EXTINF`, `SegmentTimeline`).
    pub shown_at: f64,
    pub shown_for: f64,
    /// Sample bytes (the `mdat` payload).
    pub bytes: u64,
    /// Bytes the segment is sent as: its `moof` and `mdat` header, then
    /// its sample bytes (what bit rates count).
    pub sent: u64,
    /// Where the `stts` and `ctts` walks stand at `first`, so writing the
    /// segment does not walk a long table from its start.
    pub(crate) marks: (Mark, Mark),
}

/// A packaged track: an HLS rendition or alternative, a DASH representation.
#[derive(Clone, Debug)]
pub struct Rendition {
    pub id: u32,
    pub kind: Kind,
    pub description: Description,
    /// `elng`'s BCP 47 tag, else `mdhd`'s ISO 639-2 code.
    pub language: Option<String>,
    pub timescale: u32,
    /// Peak and average bits per second over the whole segments (RFC 8216
    /// 4.3.4.2; see [`bandwidth`]).
    pub peak_bandwidth: u64,
    pub average_bandwidth: u64,
    /// Video: the highest frame rate of its segments (HLS `FRAME-RATE`).
    pub frame_rate: Option<f64>,
    /// The highest SAP type (ISO/IEC 23009-1 4.5.2) any of its segments
    /// may start with, for DASH's `startWithSAP`; `None`: not known to
    /// start with one at all.
    pub sap: Option<u8>,
    pub segments: Vec<Segment>,
    pub(crate) track: usize,
    /// The `trak` (a fragmented film's tracks have no samples in the moov).
    pub(crate) info: TrakInfo,
    pub(crate) edits: Vec<Edit>,
    /// Audio: the alternative a player picks unless told otherwise
    /// ([`choose_defaults`]).
    pub default: bool,
}

/// The segment plan of a film or a window.
#[derive(Clone, Debug)]
pub struct Presentation {
    /// Seconds presented.
    pub duration: f64,
    /// In `Index::tracks` order; video and audio tracks only.
    pub renditions: Vec<Rendition>,
    /// The movie timescale's duration, for `mvhd`/`mehd`.
    pub(crate) movie_duration: u64,
    /// The film's time (seconds) presented at 0: a clip's key frame.
    pub start: f64,
    /// Subtitle tracks with cues (`tx3g`), shown as WebVTT.
    pub texts: Vec<Text>,
}

/// A subtitle track of the presentation.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub id: u32,
    /// As [`Rendition::language`].
    pub language: Option<String>,
    /// The track's own name.
    pub name: Option<String>,
    /// Shown unless the viewer says otherwise ([`choose_defaults`]).
    pub default: bool,
}

impl Presentation {
    pub fn rendition(&self, id: u32) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.id == id)
    }

    /// The most segments a rendition has. Renditions may have fewer than
    /// the reference track: a track that starts after the reference's first
    /// cut or ends before its last has no empty segment there, its first or
    /// last segment covering that time instead.
    pub fn segment_count(&self) -> usize {
        self.renditions
            .iter()
            .map(|r| r.segments.len())
            .max()
            .unwrap_or(0)
    }

    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Presentation>()
            + self
                .renditions
                .iter()
                .map(|r| {
                    std::mem::size_of::<Rendition>()
                        + r.segments.capacity() * std::mem::size_of::<Segment>()
                        + r.description.codecs.len()
                })
                .sum::<usize>()
    }
}

/// The film's own edit list as entries (an empty edit, then the media edit).
pub(super) fn source_edits(info: &TrakInfo) -> Vec<Edit> {
    let e = &info.edit;
    let mut v = Vec::new();
    if e.empty > 0 {
        v.push(Edit {
            segment_duration: e.empty,
            media_time: -1,
            media_rate: RATE_1,
        });
    }
    if e.empty > 0 || e.media_time > 0 {
        v.push(Edit {
            segment_duration: e.segment,
            media_time: e.media_time,
            media_rate: RATE_1,
        });
    }
    v
}

/// About how many bytes a segment plan of `window` of `index` builds beyond
/// its tables (its segments, per track), so a caller can tell a quick plan
/// from one to run off the event loop, or one too large to keep, before it
/// starts.
pub fn plan_cost(index: &Index, window: &Window, settings: &Settings) -> usize {
    let whole = index.duration();
    let (start, end) = (
        window.start.unwrap_or(0.0).max(0.0),
        window.end.map_or(whole, |e| e.min(whole)),
    );
    let seconds = (end - start).max(0.0);
    let segments = (seconds / settings.segment_duration.max(0.1))
        .ceil()
        .clamp(1.0, MAX_SEGMENTS);
    let tracks = index.tracks.len().max(index.traks.len()) as f64;
    (segments * tracks * std::mem::size_of::<Segment>() as f64) as usize
}

/// Media segment `n` (1-based) of track `id`: re-fragmented from the
/// film's own fragments, or written from its sample tables.
pub fn segment(index: &Arc<Index>, p: &Presentation, n: u32, id: u32) -> Result<Layout, Error> {
    let r = write::rendition(p, id)?;
    let seg = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|k| r.segments.get(k))
        .ok_or_else(|| Error::Missing(format!("track {id} has no segment {n}")))?;
    if index.fragments.is_some() {
        fragments::segment(index, r, seg, n)
    } else {
        write::segment(index, r, seg, n)
    }
}

/// Plans the segments of `window` of the film.
pub fn presentation(
    index: &Index,
    window: &Window,
    settings: &Settings,
) -> Result<Presentation, Error> {
    if index.fragments.is_some() {
        return fragments::presentation(index, window, settings);
    }
    let (spans, movie_duration, clip_start) = spans(index, window)?;
    let mts = index.movie.timescale;
    let duration = movie_duration as f64 / f64::from(mts.max(1));
    let reference = spans
        .iter()
        .position(|s| index.tracks[s.track].info.is_video())
        .unwrap_or(0);
    let r = spans
        .get(reference)
        .ok_or_else(|| Error::Unsupported("no video or audio track to package".into()))?;
    let target = bounded_target(settings, duration)?;
    let clock = &mut Clock::new(&index.tracks[r.track], r, mts);
    let boundaries = cuts(clock, r, target, duration, settings.fit_key_frames);

    let mut renditions = Vec::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        let t = &index.tracks[span.track];
        // A track with no sample in the window (audio that ended before a
        // clip starts) has nothing to play: it is not packaged.
        if span.a >= span.b && i != reference {
            continue;
        }
        if t.stsc
            .entries()
            .iter()
            .any(|e| e.sample_description_index != 1)
        {
            return Err(Error::Unsupported(format!(
                "track {}: several sample descriptions are not packaged for HLS/DASH",
                t.info.id
            )));
        }
        let stsd = write::stsd(index, &t.info)?;
        let description = codecs::describe(&codecs::first_entry(stsd.body)?)?;
        let mut clock = Clock::new(t, span, mts);
        let starts: Vec<u64> = if i == reference {
            boundaries.iter().map(|&(s, _)| s).collect()
        } else {
            let mut from = span.a;
            let mut v = vec![span.a];
            for &(_, p) in &boundaries[1..] {
                let s = clock.first_shown_at_or_after(p, from, span.b);
                if t.info.is_video() && !is_sync(t, s) {
                    return Err(Error::Unsupported(format!(
                        "video tracks {} and {} have key frames that do not line up \
                         (at {p:.3} s); they cannot share segments",
                        index.tracks[r.track].info.id, t.info.id
                    )));
                }
                v.push(s);
                from = s;
            }
            v
        };
        // No segment may be empty (a `trun` of no samples): where the track
        // has no sample from one cut to the next (audio that starts after
        // the reference's first cut or ends before its last), its segment
        // joins the one before, or the first the one after. The track then
        // has fewer segments than the reference, which nothing relies on:
        // HLS playlists and DASH representations each list their own
        // segments, and its last (first) segment still runs to the end of
        // (from the start of) the presentation.
        let mut starts = starts;
        starts.dedup();
        if starts.len() > 1 && starts.last() == Some(&span.b) {
            starts.pop();
        }
        let sap = if starts.iter().all(|&s| is_sync(t, s)) {
            Some(start_sap(index, t, &starts))
        } else {
            None
        };
        let composition = t.ctts.is_some();
        let mut segments = Vec::with_capacity(starts.len());
        for (k, &first) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(span.b);
            if end - first > settings.max_segment_samples {
                return Err(Error::Unsupported(format!(
                    "track {}: a segment would hold {} samples (most: {}, \
                     --max-segment-samples); the film has too few key frames",
                    t.info.id,
                    end - first,
                    settings.max_segment_samples
                )));
            }
            let (time, marks) = keys::marks(&mut clock, first);
            let shown_at = if k == 0 { 0.0 } else { clock.shown(first) };
            let shown_end = if end >= span.b {
                duration
            } else {
                clock.shown(end)
            };
            let bytes = t.sizes.sum(first, end);
            segments.push(Segment {
                first,
                end,
                time,
                duration: clock.dts(end).saturating_sub(time),
                samples: end - first,
                shown_at: shown_at.clamp(0.0, duration),
                shown_for: (shown_end.min(duration) - shown_at.clamp(0.0, duration)).max(0.0),
                bytes,
                sent: write::head_len(end - first, composition).saturating_add(bytes),
                marks,
            });
        }
        let (peak, average) = bandwidth(&segments);
        let frame_rate = t
            .info
            .is_video()
            .then(|| frame_rate(&segments, t.info.timescale))
            .flatten();
        renditions.push(Rendition {
            id: t.info.id,
            kind: if t.info.is_video() {
                Kind::Video
            } else {
                Kind::Audio
            },
            description,
            language: t.info.language_tag(),
            timescale: t.info.timescale,
            peak_bandwidth: peak,
            average_bandwidth: average,
            frame_rate,
            sap,
            segments,
            track: span.track,
            info: t.info,
            edits: span.edits.clone(),
            default: false,
        });
    }
    let mut texts = texts(index, window);
    choose_defaults(&mut renditions, &mut texts, settings.default_language);
    Ok(Presentation {
        duration,
        renditions,
        movie_duration,
        start: if window.start.is_some() {
            clip_start
        } else {
            0.0
        },
        texts,
    })
}

/// The presentation's subtitle tracks: those with cues (the film's own,
/// and files beside it). They go with every choice of tracks but a
/// `tracks=` list.
pub(super) fn texts(index: &Index, window: &Window) -> Vec<Text> {
    if window.tracks.video != 0 || window.tracks.audio != 0 {
        return Vec::new();
    }
    (index.cues().iter())
        .filter(|c| !c.cues.is_empty())
        .map(|c| {
            let info = index.traks.iter().find(|t| t.id == c.id);
            Text {
                id: c.id,
                // A sidecar has no trak: its name says its language.
                language: info
                    .and_then(TrakInfo::language_tag)
                    .or_else(|| c.tag.clone()),
                name: info.and_then(|t| t.name).map(|n| n.as_str().to_string()),
                default: false,
            }
        })
        .collect()
}

/// Marks the default audio rendition: the first in the operator's
/// language (`--default-language`, compared by language, not region), else
/// the first enabled one (`tkhd`), else the first; and the first subtitle
/// track in the operator's language when no audio is in it.
pub(super) fn choose_defaults(
    renditions: &mut [Rendition],
    texts: &mut [Text],
    language: Option<[u8; 3]>,
) {
    let theirs = |code: Option<[u8; 3]>| language.is_some() && code == language;
    let mut audio: Vec<&mut Rendition> = (renditions.iter_mut())
        .filter(|r| r.kind == Kind::Audio)
        .collect();
    let spoken = audio.iter().position(|r| theirs(r.info.language));
    let default = spoken
        .or_else(|| audio.iter().position(|r| r.info.enabled))
        .unwrap_or(0);
    for (i, r) in audio.iter_mut().enumerate() {
        r.default = i == default;
    }
    let code = |t: &Text| {
        t.language
            .as_deref()
            .and_then(super::tracks::primary_language)
    };
    let shown = (texts.iter())
        .position(|t| theirs(code(t)))
        .filter(|_| spoken.is_none());
    for (i, t) in texts.iter_mut().enumerate() {
        t.default = Some(i) == shown;
    }
}

fn is_sync(t: &Track, s: u64) -> bool {
    match &t.stss {
        None => true,
        Some(sync) => u32::try_from(s + 1).is_ok_and(|n| sync.binary_search(&n).is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn film(name: &str) -> Index {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media/").to_string() + name;
        let bytes = std::fs::read(path).unwrap();
        Index::build(&bytes, &crate::mp4::Limits::default()).unwrap()
    }

    const SIX: Settings = Settings::fixed(6.0);

    #[test]
    fn one_audio_rendition_is_the_default() {
        // Audio of (language, enabled), after a video track.
        let plan = |audio: &[(&[u8; 3], bool)]| {
            let mut v = vec![testing::rendition(1, Kind::Video, "avc1", &[(6.0, 1)])];
            for (i, (lang, enabled)) in audio.iter().enumerate() {
                let mut r = testing::rendition(i as u32 + 2, Kind::Audio, "mp4a", &[(6.0, 1)]);
                r.info.language = Some(**lang);
                r.info.enabled = *enabled;
                v.push(r);
            }
            v
        };
        let text = |lang: &str| Text {
            id: 9,
            language: Some(lang.into()),
            name: None,
            default: false,
        };
        let chosen = |r: &[Rendition], t: &[Text]| {
            let audio = r.iter().filter(|r| r.kind == Kind::Audio);
            let audio: Vec<bool> = audio.map(|r| r.default).collect();
            (audio, t.iter().map(|t| t.default).collect::<Vec<_>>())
        };
        let mut r = plan(&[(b"eng", false), (b"fra", true), (b"deu", true)]);
        let mut t = [text("fra"), text("de-AT")];
        choose_defaults(&mut r, &mut t, None);
        assert_eq!(
            chosen(&r, &t),
            (vec![false, true, false], vec![false, false])
        );
        assert!(!r[0].default, "video is never the default audio");
        // The operator's language first; its subtitles only without its audio.
        choose_defaults(&mut r, &mut t, Some(*b"deu"));
        assert_eq!(
            chosen(&r, &t),
            (vec![false, false, true], vec![false, false])
        );
        choose_defaults(&mut r, &mut t, Some(*b"por"));
        assert_eq!(
            chosen(&r, &t),
            (vec![false, true, false], vec![false, false])
        );
        let mut r = plan(&[(b"eng", false), (b"fra", true)]);
        choose_defaults(&mut r, &mut t, Some(*b"deu"));
        assert_eq!(chosen(&r, &t), (vec![false, true], vec![false, true]));
        // None enabled: the first.
        let mut r = plan(&[(b"eng", false), (b"fra", false)]);
        choose_defaults(&mut r, &mut [], None);
        assert_eq!(chosen(&r, &[]).0, [true, false]);
    }

    #[test]
    fn a_track_that_ends_early_has_no_empty_segment() {
        let mut index = film("a.mp4");
        let audio = index.tracks.iter().position(|t| t.info.is_audio()).unwrap();
        // 300 AAC frames: 6.4 s of the film's 20.
        index.tracks[audio].sample_count = 300;
        let p = presentation(&index, &Window::default(), &SIX).unwrap();
        for r in &p.renditions {
            assert!(!r.segments.is_empty());
            for (k, s) in r.segments.iter().enumerate() {
                assert!(
                    s.end > s.first && s.bytes > 0,
                    "track {} segment {k}: {s:?}",
                    r.id
                );
            }
            // The last segment runs to the end of the presentation.
            let last = r.segments.last().unwrap();
            assert!((last.shown_at + last.shown_for - p.duration).abs() < 1e-6);
        }
        let a = p.renditions.iter().find(|r| r.kind == Kind::Audio).unwrap();
        assert_eq!(a.segments.last().unwrap().end, 300);
        // Every segment the plan lists can be written.
        let index = Arc::new(index);
        for r in &p.renditions {
            for n in 1..=r.segments.len() as u32 {
                segment(&index, &p, n, r.id).unwrap();
            }
        }
    }
}
