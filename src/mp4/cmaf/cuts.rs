//! Where segments are cut: each track's samples in the window, their
//! presentation times through the edit list, and the key frames nearest
//! each multiple of the target duration, found by time (binary search over
//! `stts` and `stss`), never by walking every sample.

use super::super::index::{Index, Track};
use super::super::tables::elst::Edit;
use super::super::{Error, Window, plan};
use super::{MAX_SEGMENTS, Settings, source_edits};

/// One track's samples `[a, b)` and its edit list, before cutting.
pub(super) struct Span {
    pub(super) track: usize,
    pub(super) a: u64,
    pub(super) b: u64,
    pub(super) edits: Vec<Edit>,
}

/// Per-sample presentation times of a track, its edit list applied.
pub(super) struct Clock<'a> {
    t: &'a Track,
    pub(super) stts: super::super::tables::runs::Cursor<'a>,
    pub(super) ctts: Option<super::super::tables::runs::Cursor<'a>>,
    base: u64,
    /// Seconds of leading empty edits.
    empty: f64,
    /// Media time shown at the end of the empty edits.
    media_time: i64,
}

impl<'a> Clock<'a> {
    pub(super) fn new(t: &'a Track, span: &Span, movie_timescale: u32) -> Self {
        let mut stts = t.stts.cursor();
        let base = stts.sum_before(span.a);
        let empty: u64 = span
            .edits
            .iter()
            .take_while(|e| e.media_time == -1)
            .map(|e| e.segment_duration)
            .sum();
        let media_time = span
            .edits
            .iter()
            .find(|e| e.media_time != -1)
            .map_or(0, |e| e.media_time);
        Clock {
            t,
            stts,
            ctts: t.ctts.as_ref().map(|c| c.cursor()),
            base,
            empty: empty as f64 / f64::from(movie_timescale.max(1)),
            media_time,
        }
    }

    /// Moves the walks to where a segment's [`super::Segment::marks`] say
    /// they stand at its first sample: a look-up deep in a long track then
    /// starts there, not at the track's start.
    pub(super) fn jump(
        &mut self,
        marks: (
            super::super::tables::runs::Mark,
            super::super::tables::runs::Mark,
        ),
    ) {
        self.stts = self.t.stts.cursor_at(marks.0);
        self.ctts = self.t.ctts.as_ref().map(|c| c.cursor_at(marks.1));
    }

    pub(super) fn timescale(&self) -> f64 {
        f64::from(self.t.info.timescale.max(1))
    }

    /// Output decode time of sample `s`.
    pub(super) fn dts(&mut self, s: u64) -> u64 {
        self.stts.sum_before(s).saturating_sub(self.base)
    }

    /// Presentation time (seconds) of sample `s`.
    pub(super) fn shown(&mut self, s: u64) -> f64 {
        let off = self
            .ctts
            .as_mut()
            .map_or(0, |c| i64::from(c.value(s) as i32));
        let media = i64::try_from(self.dts(s))
            .unwrap_or(i64::MAX)
            .saturating_add(off)
            .saturating_sub(self.media_time);
        self.empty + media as f64 / self.timescale()
    }

    /// The first sample at or after `[from, b)` decoded at or after the
    /// presentation time `p` (audio and other tracks follow video's cuts).
    pub(super) fn first_shown_at_or_after(&mut self, p: f64, from: u64, b: u64) -> u64 {
        let units = ((p - self.empty) * self.timescale()).round() as i64;
        let c = units
            .saturating_add(self.media_time)
            .saturating_add(i64::try_from(self.base).unwrap_or(i64::MAX));
        let s = if c <= 0 {
            0
        } else {
            self.stts.first_at_or_after(c as u64)
        };
        s.clamp(from, b)
    }
}

/// The tracks' sample spans: all samples, or the window's plan.
/// With the film's time presented at 0 (the clip's key frame).
pub(super) fn spans(index: &Index, window: &Window) -> Result<(Vec<Span>, u64, f64), Error> {
    let packaged = |t: &Track| t.info.is_video() || t.info.is_audio();
    if window.start.is_none() && window.end.is_none() {
        let infos: Vec<_> = index.tracks.iter().map(|t| &t.info).collect();
        let spans = (window.tracks.keep(&infos, true)?.into_iter())
            .filter_map(|i| index.tracks.get(i).map(|t| (i, t)))
            .map(|(i, t)| Span {
                track: i,
                a: 0,
                b: t.sample_count,
                edits: source_edits(&t.info),
            })
            .collect();
        let mts = f64::from(index.movie.timescale);
        return Ok((spans, (index.duration() * mts).round() as u64, 0.0));
    }
    // A packaged clip starts on its key frame: segmented players (and
    // ffmpeg's HLS and DASH readers) decode and show what an edit list would
    // hide, so the window is moved back to the key frame instead.
    let window = Window {
        flash: false,
        ..*window
    };
    let key_frame = plan::plan(index, &window)?.key_frame;
    let p = plan::plan(
        index,
        &Window {
            start: window.start.map(|_| key_frame),
            ..window
        },
    )?;
    let spans = (p.tracks.into_iter())
        .filter(|tp| index.tracks.get(tp.track).is_some_and(packaged))
        .map(|tp| Span {
            track: tp.track,
            a: tp.a,
            b: tp.b,
            edits: tp.edits.unwrap_or_default(),
        })
        .collect();
    Ok((spans, p.movie_duration, key_frame))
}

/// Where each segment of the reference track starts: its key frame nearest
/// each multiple of the target duration. A film without key frames that
/// close gets longer segments; a last segment under a quarter of the target
/// joins the one before. `end`: when the presentation ends; `fit`: the
/// target may follow a steady GOP ([`fitted`]).
pub(super) fn cuts(
    clock: &mut Clock<'_>,
    span: &Span,
    target: f64,
    end: f64,
    fit: bool,
) -> Vec<(u64, f64)> {
    let t = clock.t;
    let mut keys: Vec<(u64, f64)> = Vec::new();
    match &t.stss {
        Some(sync) => {
            let lo = sync.partition_point(|&n| u64::from(n) <= span.a + 1);
            for &n in sync.get(lo..).unwrap_or(&[]) {
                let s = u64::from(n).saturating_sub(1);
                if s >= span.b {
                    break;
                }
                keys.push((s, clock.shown(s)));
            }
        }
        None => {
            // Every sample is a key frame: the candidates are the samples
            // either side of each multiple of the target, found by time, so
            // the work follows the segments, not the samples (a fixed-size
            // `stsz` declares 2^32 samples in 20 bytes).
            let goals = (end / target).ceil().max(0.0) as u64;
            for k in 1..=goals {
                let goal = k as f64 * target;
                let s = clock.first_shown_at_or_after(goal, span.a + 1, span.b);
                for c in [s.saturating_sub(1), s] {
                    if c > span.a && c < span.b && keys.last().is_none_or(|&(l, _)| l < c) {
                        keys.push((c, clock.shown(c)));
                    }
                }
            }
        }
    }
    let target = match (fit, &t.stss) {
        (true, Some(_)) => fitted(&keys, target),
        _ => target,
    };
    pick(span.a, &keys, target, end)
}

/// With key frames at a steady interval (every gap within 1 % of the first,
/// at least two gaps), the largest multiple of that interval up to
/// `target`, or the interval itself when it is longer: every segment then
/// holds the same number of GOPs. Else `target`.
pub(super) fn fitted(keys: &[(u64, f64)], target: f64) -> f64 {
    let [(_, a), (_, b), ..] = keys else {
        return target;
    };
    let gop = b - a;
    let steady = keys.len() >= 3
        && gop >= 0.1
        && keys
            .windows(2)
            .all(|w| (w[1].1 - w[0].1 - gop).abs() <= gop / 100.0);
    if !steady {
        return target;
    }
    // A hair under a whole multiple still counts as one (6 s of 2 s GOPs).
    let n = (target / gop + 1e-6).floor().max(1.0);
    n * gop
}

/// From candidate cuts `keys` (a sample or fragment, and its presentation
/// time, in order), the one nearest each multiple of `target` after `first`.
pub(super) fn pick(first: u64, keys: &[(u64, f64)], target: f64, end: f64) -> Vec<(u64, f64)> {
    let mut out = vec![(first, 0.0)];
    let mut next = 0usize;
    let mut k = 1u64;
    while next < keys.len() {
        let last = out.last().map_or(0.0, |&(_, p)| p);
        // After a long GOP the next goal lies past it, not behind.
        k = k.max(((last / target).floor() as u64).saturating_add(1));
        let goal = k as f64 * target;
        k = k.saturating_add(1);
        let rest = &keys[next..];
        let i = rest.partition_point(|&(_, p)| p < goal);
        let pick = match (i.checked_sub(1).and_then(|j| rest.get(j)), rest.get(i)) {
            (Some(&before), Some(&after)) if goal - before.1 < after.1 - goal => i - 1,
            (Some(_), None) => i - 1,
            _ => i,
        };
        let Some(&(s, p)) = rest.get(pick) else { break };
        // A key frame too close to the last cut makes no segment of its own.
        if p > last + target / 2.0 && p < end - target / 4.0 {
            out.push((s, p));
        }
        next += pick + 1;
    }
    out
}

/// Where the whole film's video segments will start (seconds), from its
/// index and the cuts alone, no track planned: what a URL set's films are
/// compared by before any plan. `None` for a fragmented film (its cuts
/// are its fragments'); empty without video.
pub fn key_frame_cuts(index: &Index, settings: &Settings) -> Result<Option<Vec<f64>>, Error> {
    if index.fragments.is_some() {
        return Ok(None);
    }
    let (spans, movie_duration, _) = spans(index, &Window::default())?;
    let mts = index.movie.timescale;
    let duration = movie_duration as f64 / f64::from(mts.max(1));
    let Some(r) = spans.iter().find(|s| index.tracks[s.track].info.is_video()) else {
        return Ok(Some(Vec::new()));
    };
    let target = bounded_target(settings, duration)?;
    let clock = &mut Clock::new(&index.tracks[r.track], r, mts);
    let boundaries = cuts(clock, r, target, duration, settings.fit_key_frames);
    // As `presentation` shows them: the first at 0, each within the film.
    Ok(Some(
        (boundaries.iter().enumerate())
            .map(|(k, &(_, p))| if k == 0 { 0.0 } else { p.clamp(0.0, duration) })
            .collect(),
    ))
}

/// The target segment duration, once the film is known not to need more
/// than [`MAX_SEGMENTS`] of them (checked before any walk, so a header's
/// claim costs nothing but this refusal).
pub(super) fn bounded_target(settings: &Settings, duration: f64) -> Result<f64, Error> {
    let target = settings.segment_duration.max(0.1);
    let segments = duration / target;
    if segments.is_nan() || segments > MAX_SEGMENTS {
        return Err(Error::Unsupported(format!(
            "the film would have {segments:.0} segments of {target} s (most: {MAX_SEGMENTS}); \
             it lasts {duration:.0} s"
        )));
    }
    Ok(target)
}
