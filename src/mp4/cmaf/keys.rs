//! Trick play: a video rendition's key frames within the presentation,
//! each a media segment of one sample (HLS I-frame playlists, DASH
//! trick-mode representations), written like any other segment.

use super::cuts::{Clock, Span};
use super::write::{self, rendition};
use super::{Kind, Presentation, Rendition, Segment};
use crate::mp4::Error;
use crate::mp4::index::Index;
use crate::mp4::layout::Layout;
use crate::mp4::tables::runs::Mark;
use std::sync::Arc;

/// Most key frames one rendition lists (a film without `stss` has every
/// sample a key frame, and a fixed-size `stsz` may declare 2^32 of them).
pub const MAX_KEYS: u64 = 1 << 18;

/// The key frames of one video rendition, each a one-sample segment.
#[derive(Clone, Debug)]
pub struct Keys {
    pub id: u32,
    /// In order; `shown_for` runs to the next key frame (the last's to the
    /// end of the presentation).
    pub frames: Vec<Segment>,
    /// Peak: the largest of any one key frame's bytes (as sent) over its
    /// duration, never under RFC 8216 4.3.4.2's peak of runs; average over
    /// the whole listing. Bits per second.
    pub peak_bandwidth: u64,
    pub average_bandwidth: u64,
    /// Samples per key frame, rounded: how much faster than normal the key
    /// frames alone play at their own rate (DASH `maxPlayoutRate`).
    pub max_playout_rate: u64,
}

/// About how many bytes of work listing the film's key frames takes (the
/// whole film's: its `stss` entries, or every sample without one), so that
/// a large listing runs as a job, off the event loop.
pub fn cost(index: &Index) -> usize {
    (index.tracks.iter())
        .filter(|t| t.info.is_video())
        .map(|t| {
            let n = t
                .stss
                .as_ref()
                .map_or(t.sample_count, |s| s.len() as u64)
                .min(MAX_KEYS.saturating_mul(2));
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .saturating_mul(std::mem::size_of::<Segment>())
        })
        .fold(0, usize::saturating_add)
}

/// The key frames of every video rendition of `p` that has some; a
/// rendition whose listing is refused (too many) is left out, and a
/// fragmented film has none.
pub fn all(index: &Index, p: &Presentation) -> Vec<Keys> {
    if index.fragments.is_some() {
        return Vec::new();
    }
    (p.renditions.iter())
        .filter(|r| r.kind == Kind::Video)
        .filter_map(|r| listing(index, p, r).ok())
        .filter(|k| !k.frames.is_empty())
        .collect()
}

/// The key frames of video track `id` of `p`.
pub fn keys(index: &Index, p: &Presentation, id: u32) -> Result<Keys, Error> {
    listing(index, p, rendition(p, id)?)
}

fn listing(index: &Index, p: &Presentation, r: &Rendition) -> Result<Keys, Error> {
    if index.fragments.is_some() {
        return Err(Error::Unsupported(
            "I-frame playlists and trick mode are not made from a fragmented film yet; \
             give it a moov with its samples (ffmpeg -movflags +faststart)"
                .into(),
        ));
    }
    if r.kind != Kind::Video {
        return Err(Error::Missing(format!(
            "track {} is not video: it has no key frames to list",
            r.id
        )));
    }
    let t = index
        .tracks
        .get(r.track)
        .ok_or_else(|| Error::Missing(format!("track {}", r.id)))?;
    let (Some(first), Some(last)) = (r.segments.first(), r.segments.last()) else {
        return Ok(empty(r.id));
    };
    let span = Span {
        track: r.track,
        a: first.first,
        b: last.end,
        edits: r.edits.clone(),
    };
    // The sample numbers of the key frames in [a, b), counted before any
    // is listed.
    let (lo, hi) = match &t.stss {
        Some(sync) => (
            sync.partition_point(|&n| u64::from(n) <= span.a),
            sync.partition_point(|&n| u64::from(n) <= span.b),
        ),
        None => (0, usize::try_from(span.b - span.a).unwrap_or(usize::MAX)),
    };
    let count = hi.saturating_sub(lo) as u64;
    if count > MAX_KEYS {
        return Err(Error::Unsupported(format!(
            "track {}: {count} key frames in the presentation, more than the {MAX_KEYS} an \
             I-frame playlist may list; encode it with fewer key frames",
            r.id
        )));
    }
    let sample = |k: usize| -> u64 {
        match &t.stss {
            Some(sync) => sync
                .get(k)
                .map_or(span.b, |&n| u64::from(n).saturating_sub(1)),
            None => span.a.saturating_add(k as u64),
        }
    };
    let clock = &mut Clock::new(t, &span, index.movie.timescale);
    let duration = p.duration;
    let composition = t.ctts.is_some();
    // Bounded by MAX_KEYS.
    let mut frames: Vec<Segment> = Vec::with_capacity(count as usize);
    for k in lo..hi {
        let s = sample(k);
        if s < span.a || s >= span.b {
            continue;
        }
        let (time, marks) = marks(clock, s);
        // The presentation's first sample is shown at 0, as its first
        // segment is.
        let shown_at = if s == span.a {
            0.0
        } else {
            clock.shown(s).clamp(0.0, duration)
        };
        let bytes = u64::from(write::size(t, s));
        frames.push(Segment {
            first: s,
            end: s + 1,
            time,
            duration: clock.dts(s + 1).saturating_sub(time),
            samples: 1,
            shown_at,
            shown_for: 0.0,
            bytes,
            sent: write::head_len(1, composition).saturating_add(bytes),
            marks,
        });
    }
    // Each shown until the next; key frames out of presentation order (a
    // B-frame cannot be one, but a header can say anything) get none.
    let mut until = duration;
    for f in frames.iter_mut().rev() {
        f.shown_for = (until - f.shown_at).max(0.0);
        until = until.min(f.shown_at).max(0.0);
    }
    // Unreachable by time: not listed, so every listed one plays.
    frames.retain(|f| f.shown_for > 0.0);
    let (peak, average) = rates(&frames);
    let samples = span.b.saturating_sub(span.a);
    let max_playout_rate = (samples as f64 / (frames.len().max(1)) as f64)
        .round()
        .max(1.0) as u64;
    Ok(Keys {
        id: r.id,
        frames,
        peak_bandwidth: peak,
        average_bandwidth: average,
        max_playout_rate,
    })
}

fn empty(id: u32) -> Keys {
    Keys {
        id,
        frames: Vec::new(),
        peak_bandwidth: 0,
        average_bandwidth: 0,
        max_playout_rate: 1,
    }
}

/// The decode time of sample `s`, and where the `stts` and `ctts` walks
/// stand at it (what [`Segment::marks`] holds), as the planner finds them.
pub(super) fn marks(clock: &mut Clock<'_>, s: u64) -> (u64, (Mark, Mark)) {
    let time = clock.dts(s);
    let stts = clock.stts.mark();
    let ctts = clock.ctts.as_mut().map_or_else(Mark::default, |c| {
        c.value(s);
        c.mark()
    });
    (time, (stts, ctts))
}

/// Peak and average bits per second of key frames over their durations:
/// the peak is the largest single frame's rate (a run's rate is an
/// average of its frames', so no run of them is higher).
fn rates(frames: &[Segment]) -> (u64, u64) {
    let (peak_runs, average) = super::bandwidth(frames);
    let single = (frames.iter())
        .filter(|f| f.shown_for > 0.0)
        .map(|f| f.sent as f64 * 8.0 / f.shown_for)
        .fold(0.0f64, f64::max);
    let clamp = |b: f64| (b.ceil() as u64).min(u64::from(u32::MAX));
    (clamp(single).max(peak_runs), average)
}

/// Key frame `n` (1-based) of video track `id`: a media segment of that
/// one sample, its `tfdt` on the rendition's own timeline.
pub fn segment(index: &Arc<Index>, p: &Presentation, n: u32, id: u32) -> Result<Layout, Error> {
    let listing = keys(index, p, id)?;
    let r = rendition(p, id)?;
    let frame = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|k| listing.frames.get(k))
        .ok_or_else(|| Error::Missing(format!("track {id} has no key frame {n}")))?;
    write::segment(index, r, frame, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::Window;
    use crate::mp4::cmaf::{Settings, presentation};

    fn film(name: &str) -> Arc<Index> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media/").to_string() + name;
        let bytes = std::fs::read(path).unwrap();
        Arc::new(Index::build(&bytes, &crate::mp4::Limits::default()).unwrap())
    }

    #[test]
    fn every_key_frame_is_listed_and_written() {
        let index = film("a.mp4");
        let p = presentation(&index, &Window::default(), &Settings::fixed(6.0)).unwrap();
        let video = p.renditions.iter().find(|r| r.kind == Kind::Video).unwrap();
        let t = &index.tracks[video.track];
        let listing = keys(&index, &p, video.id).unwrap();
        let sync = t.stss.as_ref().unwrap();
        assert_eq!(listing.frames.len(), sync.len());
        for (f, &n) in listing.frames.iter().zip(sync) {
            assert_eq!(f.first + 1, u64::from(n));
        }
        // The durations tile the presentation.
        let total: f64 = listing.frames.iter().map(|f| f.shown_for).sum();
        assert!((total - p.duration).abs() < 1e-6, "{total} {}", p.duration);
        assert!(listing.peak_bandwidth >= listing.average_bandwidth);
        // Each key frame segment is a moof of one sample and its bytes.
        for n in 1..=listing.frames.len() as u32 {
            let l = segment(&index, &p, n, video.id).unwrap();
            let f = &listing.frames[n as usize - 1];
            assert_eq!(l.len(), f.sent, "key {n}");
        }
        assert!(matches!(
            segment(&index, &p, listing.frames.len() as u32 + 1, video.id),
            Err(Error::Missing(_))
        ));
        // Segments agree with the plan where they start on the same sample.
        for seg in &video.segments {
            let f = listing
                .frames
                .iter()
                .find(|f| f.first == seg.first)
                .unwrap();
            assert_eq!((f.time, f.marks), (seg.time, seg.marks));
        }
    }

    #[test]
    fn audio_and_fragmented_films_have_none() {
        let index = film("a.mp4");
        let p = presentation(&index, &Window::default(), &Settings::fixed(6.0)).unwrap();
        let audio = p.renditions.iter().find(|r| r.kind == Kind::Audio).unwrap();
        assert!(matches!(keys(&index, &p, audio.id), Err(Error::Missing(_))));
        assert_eq!(all(&index, &p).len(), 1);
        let frag = film("frag.mp4");
        let p = presentation(&frag, &Window::default(), &Settings::fixed(6.0)).unwrap();
        assert!(all(&frag, &p).is_empty());
        let video = p.renditions.iter().find(|r| r.kind == Kind::Video).unwrap();
        assert!(matches!(
            keys(&frag, &p, video.id),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn a_film_of_key_frames_only_is_bounded() {
        let mut index = film("a.mp4");
        let i = Arc::get_mut(&mut index).unwrap();
        let v = i.tracks.iter().position(|t| t.info.is_video()).unwrap();
        i.tracks[v].stss = None;
        let p = presentation(&index, &Window::default(), &Settings::fixed(6.0)).unwrap();
        let id = p
            .renditions
            .iter()
            .find(|r| r.kind == Kind::Video)
            .unwrap()
            .id;
        let listing = keys(&index, &p, id).unwrap();
        // Every sample a key frame, but those a B-frame's reordering shows
        // before an earlier one's time are left out; the rest tile the film.
        let count = listing.frames.len() as u64;
        let samples = index.tracks[v].sample_count;
        assert!(
            count <= samples && count > samples / 4,
            "{count} of {samples}"
        );
        let total: f64 = listing.frames.iter().map(|f| f.shown_for).sum();
        assert!((total - p.duration).abs() < 1e-6, "{total} {}", p.duration);
        assert!(listing.max_playout_rate <= 4);
        // Past the bound: refused before any is listed.
        let mut p = p;
        let r = p.renditions.iter_mut().find(|r| r.id == id).unwrap();
        r.segments.last_mut().unwrap().end = MAX_KEYS + 5;
        assert!(matches!(keys(&index, &p, id), Err(Error::Unsupported(_))));
    }
}
