//! Window → per-track sample ranges and edit lists; for a fragmented file,
//! which fragments and how their decode times move.
//!
//! The reference track (the first video track, else the first track) starts at
//! its last sync sample K presented at or before `start`. The clip presents
//! from the start of the reference frame on screen at `start`, and every track
//! is cut at that one instant: an edit list per track hides what comes before
//! it, so all players show audio and video in step. Each track ends after its
//! last sample presented before `end`.

use super::index::{Index, Track};
use super::layout::Rebase;
use super::tables::elst::{Edit, RATE_1};
use super::trak::TrakInfo;
use super::{Error, Window};

/// How many samples back a composition-order search may look. B-frame
/// reordering spans a handful of frames; this bounds hostile tables.
const REORDER_WINDOW: u64 = 256;

/// The plan for one output track.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrackPlan {
    pub track: usize,
    /// Source samples `[a, b)`, 0-based.
    pub a: u64,
    pub b: u64,
    /// The new edit list; `None` writes none (flash).
    pub edits: Option<Vec<Edit>>,
    /// New `mdhd` duration (media timescale).
    pub media_duration: u64,
    /// New `tkhd` duration (movie timescale).
    pub track_duration: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub tracks: Vec<TrackPlan>,
    pub movie_duration: u64,
    /// The reference key frame and where presentation starts (seconds).
    pub key_frame: f64,
    pub from: f64,
}

/// Converts seconds to a timescale, rounding to the nearest unit.
fn units(seconds: f64, timescale: u32) -> i64 {
    (seconds * f64::from(timescale)).round() as i64
}

/// Per-sample timing of one track.
struct Timing<'a> {
    t: &'a Track,
    stts: super::tables::runs::Cursor<'a>,
    ctts: Option<super::tables::runs::Cursor<'a>>,
    empty_seconds: f64,
}

impl<'a> Timing<'a> {
    fn new(t: &'a Track, movie_timescale: u32) -> Self {
        Timing {
            t,
            stts: t.stts.cursor(),
            ctts: t.ctts.as_ref().map(|c| c.cursor()),
            empty_seconds: t.info.edit.empty as f64 / f64::from(movie_timescale),
        }
    }

    fn info(&self) -> &TrakInfo {
        &self.t.info
    }

    fn dts(&mut self, s: u64) -> i64 {
        i64::try_from(self.stts.sum_before(s)).unwrap_or(i64::MAX)
    }

    /// Composition time of sample `s`.
    fn cts(&mut self, s: u64) -> i64 {
        let off = self
            .ctts
            .as_mut()
            .map_or(0, |c| i64::from(c.value(s) as i32));
        self.dts(s).saturating_add(off)
    }

    /// The composition time shown at presentation time `p` (seconds).
    fn cts_at(&self, p: f64) -> i64 {
        units(p - self.empty_seconds, self.info().timescale)
            .saturating_add(self.info().edit.media_time)
    }

    /// Presentation time (seconds) of composition time `c`.
    fn presentation(&self, c: i64) -> f64 {
        self.empty_seconds
            + c.saturating_sub(self.info().edit.media_time) as f64
                / f64::from(self.info().timescale)
    }

    /// The first sample whose decode time is at or after `c` (clamped to the count).
    fn first_dts_at_or_after(&mut self, c: i64) -> u64 {
        let n = self.t.sample_count;
        if c <= 0 {
            return 0;
        }
        self.stts.first_at_or_after(c as u64).min(n)
    }

    /// Samples decoded after this cannot be presented at or before `c`.
    fn decode_limit(&mut self, c: i64) -> u64 {
        self.first_dts_at_or_after(c.saturating_sub(self.t.min_ctts).saturating_add(1))
    }

    /// The last sync sample presented at or before composition time `c`.
    fn last_sync_at_or_before(&mut self, c: i64) -> Option<u64> {
        let limit = self.decode_limit(c);
        match &self.t.stss {
            None => {
                let mut s = limit;
                let floor = limit.saturating_sub(REORDER_WINDOW);
                while s > floor {
                    s -= 1;
                    if self.cts(s) <= c {
                        return Some(s);
                    }
                }
                None
            }
            Some(sync) => {
                let hi = sync.partition_point(|&n| u64::from(n) <= limit);
                let lo = hi.saturating_sub(REORDER_WINDOW as usize);
                for &n in sync.get(lo..hi).unwrap_or(&[]).iter().rev() {
                    let s = u64::from(n).saturating_sub(1);
                    if s < self.t.sample_count && self.cts(s) <= c {
                        return Some(s);
                    }
                }
                None
            }
        }
    }

    /// The composition time of the frame on screen at `c`: the greatest
    /// presented at or before it, from sample `k` on.
    fn shown_at(&mut self, k: u64, c: i64) -> Option<i64> {
        let limit = self.decode_limit(c);
        let mut shown = None;
        for s in k..limit {
            let cts = self.cts(s);
            if cts <= c && shown.is_none_or(|v| cts > v) {
                shown = Some(cts);
            }
        }
        shown
    }

    /// The first sync sample (where a decoder can start).
    fn first_sync(&self) -> u64 {
        self.t
            .stss
            .as_ref()
            .and_then(|s| s.first())
            .map_or(0, |&n| u64::from(n).saturating_sub(1))
    }

    /// One past the last sample presented before composition time `c`.
    fn end_before(&mut self, c: i64, a: u64) -> u64 {
        let j = self.first_dts_at_or_after(c.saturating_sub(self.t.min_ctts));
        let floor = j.saturating_sub(REORDER_WINDOW).max(a);
        let mut s = j;
        while s > floor {
            if self.cts(s - 1) < c {
                return s;
            }
            s -= 1;
        }
        floor
    }

    /// Total duration of samples `[a, b)`.
    fn duration(&mut self, a: u64, b: u64) -> u64 {
        let end = self.dts(b);
        u64::try_from(end.saturating_sub(self.dts(a))).unwrap_or(0)
    }
}

/// Picks the tracks to output: all, or for flash the first video and audio.
fn select(index: &Index, window: &Window) -> Result<Vec<usize>, Error> {
    let infos: Vec<&TrakInfo> = index.tracks.iter().map(|t| &t.info).collect();
    let kept = window.tracks.keep(&infos, false)?;
    if !window.flash {
        return Ok(kept);
    }
    let first = |f: fn(&TrakInfo) -> bool| kept.iter().copied().find(|&i| f(infos[i]));
    let mut v: Vec<usize> = [first(TrakInfo::is_video), first(TrakInfo::is_audio)]
        .into_iter()
        .flatten()
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// The window's (start, end) in seconds, or why it selects nothing.
pub(crate) fn bounds(window: &Window, duration: f64) -> Result<(f64, f64), Error> {
    let start = window.start.unwrap_or(0.0);
    let end = window.end.unwrap_or(f64::INFINITY);
    if start >= duration {
        return Err(Error::PastEnd { start, duration });
    }
    if end <= start {
        return Err(Error::EmptyRange { start, end });
    }
    Ok((start, end))
}

pub(crate) fn plan(index: &Index, window: &Window) -> Result<Plan, Error> {
    let (start, end) = bounds(window, index.duration())?;
    let chosen = select(index, window)?;
    let reference = chosen
        .iter()
        .copied()
        .find(|&i| index.tracks[i].info.is_video())
        .or_else(|| chosen.first().copied())
        .ok_or_else(|| Error::Unsupported("no track has samples".into()))?;

    let mts = index.movie.timescale;
    let mut rt = Timing::new(&index.tracks[reference], mts);
    let c_start = rt.cts_at(start);
    let k = rt
        .last_sync_at_or_before(c_start)
        .unwrap_or_else(|| rt.first_sync());
    let k_cts = rt.cts(k);
    let t_k = rt.presentation(k_cts).min(start);
    // Video is shown from the start of the frame on screen at `start`, and
    // every track is cut there: an edit that began mid-frame would be
    // rounded to the next frame by some players, and audio would lead.
    let start = if rt.info().is_video() {
        rt.shown_at(k, c_start)
            .map_or(start, |c| rt.presentation(c).clamp(t_k, start))
    } else {
        start
    };

    let mut tracks = Vec::new();
    for &i in &chosen {
        let t = &index.tracks[i];
        let mut tm = Timing::new(t, mts);
        let a = if i == reference {
            k
        } else {
            tm.last_sync_at_or_before(tm.cts_at(t_k))
                .unwrap_or_else(|| tm.first_sync())
        };
        let b = if end.is_finite() {
            tm.end_before(tm.cts_at(end), a)
        } else {
            t.sample_count
        };
        if b <= a {
            if i == reference {
                return Err(Error::EmptyRange { start, end });
            }
            log::debug!("track {}: no samples in the window, dropped", t.info.id);
            continue;
        }
        let media_duration = tm.duration(a, b);
        let (edits, track_duration) = if window.flash {
            let d = media_duration as f64 / f64::from(t.info.timescale);
            (None, units(d, mts).max(0) as u64)
        } else {
            let shown_end = end.min(index.track_end(t));
            if shown_end <= start {
                log::debug!("track {}: ends before the window, dropped", t.info.id);
                continue;
            }
            let edits = edit_list(&mut tm, a, start, shown_end, mts);
            let total = edits.iter().map(|e| e.segment_duration).sum();
            (Some(edits), total)
        };
        tracks.push(TrackPlan {
            track: i,
            a,
            b,
            edits,
            media_duration,
            track_duration,
        });
    }
    let movie_duration = tracks.iter().map(|t| t.track_duration).max().unwrap_or(0);
    Ok(Plan {
        tracks,
        movie_duration,
        key_frame: t_k,
        // Without an edit list (flash) the output is shown from its first
        // frame, the key frame, whatever the window asked.
        from: if window.flash { t_k } else { start },
    })
}

/// The edit list that presents source time `[start, shown_end)` of a track
/// whose output begins with source sample `a`.
fn edit_list(tm: &mut Timing<'_>, a: u64, start: f64, shown_end: f64, mts: u32) -> Vec<Edit> {
    // Output media time is source decode time minus the first sample's.
    let media_at_start = tm.cts_at(start).saturating_sub(tm.dts(a));
    let total = units(shown_end - start, mts).max(0) as u64;
    if media_at_start >= 0 {
        return vec![Edit {
            segment_duration: total,
            media_time: media_at_start,
            media_rate: RATE_1,
        }];
    }
    // The track starts later than `start`: an empty edit keeps it in place.
    let gap = units(
        -(media_at_start as f64) / f64::from(tm.info().timescale),
        mts,
    )
    .max(0) as u64;
    let gap = gap.min(total);
    vec![
        Edit {
            segment_duration: gap,
            media_time: -1,
            media_rate: RATE_1,
        },
        Edit {
            segment_duration: total - gap,
            media_time: 0,
            media_rate: RATE_1,
        },
    ]
}

/// A fragmented window: fragments `first..=last`, presented from 0.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FragmentPlan {
    pub first: usize,
    pub last: usize,
    /// Subtracted from each track's `tfdt`s.
    pub rebase: Vec<Rebase>,
    /// Media time to hide at the start of a track whose first fragment
    /// begins before the reference's (its `tfdt` cannot go below 0).
    pub hide: Vec<(u32, u64)>,
    /// The clip's duration in the movie timescale.
    pub movie_duration: u64,
    /// Where the first fragment starts in the film (seconds).
    pub from: f64,
}

/// Picks the fragments that cover the window and how their times move so
/// that the clip presents from 0 with every track in step.
pub(crate) fn fragments(index: &Index, window: &Window) -> Result<FragmentPlan, Error> {
    let frags = index
        .fragments
        .as_ref()
        .ok_or(Error::NotMp4("not fragmented"))?;
    let (start, end) = bounds(window, frags.duration())?;
    let list = &frags.list;
    let first = list
        .iter()
        .rposition(|f| frags.seconds(f.start) <= start)
        .unwrap_or(0);
    let last = list
        .iter()
        .rposition(|f| frags.seconds(f.start) < end)
        .unwrap_or(first)
        .max(first);
    let reference = frags.reference;
    let base_ref = list.get(first).map_or(0, |f| f.start);
    let shift = base_ref as f64 / f64::from(reference.timescale);
    let mut rebase = Vec::new();
    let mut hide = Vec::new();
    let sent = list.get(first..=last).unwrap_or(&[]);
    for t in &index.traks {
        // The track's first decode time in the fragments sent.
        let first_time = sent.iter().find_map(|f| {
            frags
                .patches
                .get(f.patches.clone())?
                .iter()
                .find_map(|p| match p.kind {
                    super::fragmented::PatchKind::DecodeTime { track, time, .. }
                        if track == t.id =>
                    {
                        Some(time)
                    }
                    _ => None,
                })
        });
        let Some(first_time) = first_time else {
            continue;
        };
        let want = if t.id == reference.id {
            base_ref
        } else {
            units(shift, t.timescale).max(0) as u64
        };
        let base = want.min(first_time);
        rebase.push(Rebase { track: t.id, base });
        if want > base {
            hide.push((t.id, want - base));
        }
    }
    let ticks: u64 = sent.iter().map(|f| f.duration).sum();
    let seconds = ticks as f64 / f64::from(reference.timescale);
    Ok(FragmentPlan {
        first,
        last,
        rebase,
        hide,
        movie_duration: units(seconds, index.movie.timescale).max(0) as u64,
        from: frags.seconds(base_ref),
    })
}
