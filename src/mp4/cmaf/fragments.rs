//! Packaging a fragmented film: segments are runs of its own fragments
//! (cut at the fragment nearest each multiple of the target duration), and
//! a media segment is re-fragmented from its `trun`s: one `trun` of the
//! track's samples, their bytes as file spans.

use super::write::{head, head_len};
use super::{Kind, MAX_SEGMENT_SAMPLES_LIMIT, Presentation, Rendition, Segment, Settings};
use crate::mp4::boxes::children;
use crate::mp4::index::Index;
use crate::mp4::layout::{Layout, Stored};
use crate::mp4::tables::frag::{Defaults, Traf, read_trafs};
use crate::mp4::tables::put_u32;
use crate::mp4::{Error, Window};
use std::sync::Arc;

/// One sample of a source `trun`, where its bytes are.
struct Sample {
    duration: u32,
    size: u32,
    flags: u32,
    cto: u32,
    offset: u64,
}

/// Per-track defaults of the init `moov`'s `trex`es, by track id.
fn trex(index: &Index) -> Result<Vec<(u32, Defaults)>, Error> {
    crate::mp4::tables::frag::trex_defaults(&index.moov)
}

/// The `traf`s of fragment `f`, parsed once for all its tracks.
fn trafs<'i>(index: &'i Index, f: usize, trex: &[(u32, Defaults)]) -> Result<Vec<Traf<'i>>, Error> {
    let frags = index
        .fragments
        .as_ref()
        .ok_or(Error::NotMp4("not fragmented"))?;
    let frag = frags.list.get(f).ok_or(Error::NotMp4("no such fragment"))?;
    let moof_bytes = frags.moofs.get(frag.moof.clone()).unwrap_or(&[]);
    let moof = children(moof_bytes, 0)
        .next()
        .ok_or(Error::NotMp4("empty moof"))??;
    // Sorted by id (see `trex`): a film of many tracks costs no scan per traf.
    let defaults = |id: u32| {
        trex.binary_search_by_key(&id, |t| t.0)
            .map_or_else(|_| Defaults::default(), |i| trex[i].1)
    };
    read_trafs(&moof, frag.offset, defaults)
}

fn too_many(most: u64) -> Error {
    Error::Unsupported(format!(
        "a segment would hold more than {most} samples (--max-segment-samples)"
    ))
}

/// Track `id`'s samples in fragment `f` appended to `samples`, where their
/// bytes are; fails on a hostile count or offset.
fn samples(
    index: &Index,
    f: usize,
    id: u32,
    trex: &[(u32, Defaults)],
    samples: &mut Vec<Sample>,
) -> Result<(), Error> {
    for t in trafs(index, f, trex)? {
        if t.tfhd.track_id != id {
            continue;
        }
        for (run, mut at) in t.runs {
            // Checked before the walk: a trun of defaults costs no bytes. The
            // plan held each segment to --max-segment-samples; this is the
            // bound no setting lifts.
            if samples.len() as u64 + u64::from(run.count) > MAX_SEGMENT_SAMPLES_LIMIT {
                return Err(too_many(MAX_SEGMENT_SAMPLES_LIMIT));
            }
            for k in 0..run.count {
                let s = run.sample(k, &t.defaults);
                let end = at
                    .checked_add(u64::from(s.size))
                    .filter(|&e| e <= index.file_size)
                    .ok_or(Error::Invalid {
                        fourcc: *b"trun",
                        reason: "a sample lies past the end of the file",
                    })?;
                samples.push(Sample {
                    duration: s.duration,
                    size: s.size,
                    flags: s.flags,
                    cto: s.cto,
                    offset: at,
                });
                at = end;
            }
        }
    }
    Ok(())
}

/// A track's figures over one segment's fragments, summed as they are read.
#[derive(Clone, Copy, Default)]
struct Sums {
    /// Decode time of the segment's first sample, from the first `tfdt`.
    time: Option<u64>,
    duration: u64,
    bytes: u64,
    samples: u64,
    /// The sample flags of the segment's first sample.
    first_flags: Option<u32>,
}

/// `sample_is_non_sync_sample` of sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// The segment plan of a fragmented film: whole fragments, from the one
/// holding `start` to the one holding `end`.
pub(super) fn presentation(
    index: &Index,
    window: &Window,
    settings: &Settings,
) -> Result<Presentation, Error> {
    let frags = index
        .fragments
        .as_ref()
        .ok_or(Error::NotMp4("not fragmented"))?;
    let list = &frags.list;
    let seconds = |f: &crate::mp4::fragmented::Fragment| frags.seconds(f.start);
    let (start, end) = crate::mp4::plan::bounds(window, index.duration())?;
    let first = list.iter().rposition(|f| seconds(f) <= start).unwrap_or(0);
    let last = list
        .iter()
        .position(|f| seconds(f) >= end)
        .unwrap_or(list.len());
    if first >= last {
        return Err(Error::EmptyRange { start, end });
    }
    let t0 = list.get(first).map_or(0.0, seconds);
    let until = list
        .get(last - 1)
        .map_or(0.0, |f| frags.seconds(f.start.saturating_add(f.duration)));
    let duration = (until - t0).max(0.0);
    let target = settings.segment_duration.max(0.1);
    let keys: Vec<(u64, f64)> = (first + 1..last)
        .filter_map(|i| list.get(i).map(|f| (i as u64, seconds(f) - t0)))
        .collect();
    let cuts = super::pick(first as u64, &keys, target, duration);
    let mts = f64::from(index.movie.timescale.max(1));

    let trex = trex(index)?;
    let traks: Vec<_> = index.traks.iter().collect();
    let packaged: Vec<_> = (window.tracks.keep(&traks, true)?.into_iter())
        .filter_map(|i| traks.get(i).copied())
        .collect();
    let position: std::collections::HashMap<u32, usize> = (packaged.iter().enumerate())
        .map(|(i, t)| (t.id, i))
        .collect();
    // Each moof is parsed once, for all tracks: sums[track][segment].
    let mut sums = vec![vec![Sums::default(); cuts.len()]; packaged.len()];
    for (k, &(f0, _)) in cuts.iter().enumerate() {
        let f1 = cuts.get(k + 1).map_or(last as u64, |c| c.0);
        for f in f0..f1 {
            for t in trafs(index, f as usize, &trex)? {
                let Some(&i) = position.get(&t.tfhd.track_id) else {
                    continue;
                };
                let s = &mut sums[i][k];
                if s.time.is_none() {
                    s.time = t.tfdt.map(|t| t.saturating_add(s.duration));
                }
                for (run, _) in &t.runs {
                    if s.first_flags.is_none() && run.count > 0 {
                        s.first_flags = Some(run.sample(0, &t.defaults).flags);
                    }
                    let (duration, bytes) = run.totals(&t.defaults);
                    s.duration = s.duration.saturating_add(duration);
                    s.bytes = s.bytes.saturating_add(bytes);
                    s.samples = s.samples.saturating_add(u64::from(run.count));
                }
                if s.samples > settings.max_segment_samples {
                    return Err(too_many(settings.max_segment_samples));
                }
            }
        }
    }

    let mut renditions = Vec::new();
    for (info, sums) in packaged.into_iter().zip(sums) {
        let stsd = super::write::stsd(index, info)?;
        let description = super::codecs::describe(&super::codecs::first_entry(stsd.body)?)?;
        let mut segments: Vec<Segment> = Vec::with_capacity(cuts.len());
        let mut base = None;
        // Where a run of segments without this track's samples began: no
        // segment may be empty (a `trun` of no samples), so those fragments
        // join the track's segment after them, or, at the end, the one
        // before (see `super::presentation`).
        let mut pending = None;
        let mut sync = true;
        for (k, (&(f0, _), s)) in cuts.iter().zip(sums).enumerate() {
            let f1 = cuts.get(k + 1).map_or(last as u64, |c| c.0);
            if s.samples == 0 {
                match segments.last_mut() {
                    Some(prev) => prev.end = f1,
                    None => {
                        pending.get_or_insert(f0);
                    }
                }
                continue;
            }
            sync &= s.first_flags.is_some_and(|f| f & NON_SYNC == 0);
            let first = pending.take().unwrap_or(f0);
            let (total, bytes) = (s.duration, s.bytes);
            let time = s.time.unwrap_or(0);
            let base = *base.get_or_insert(time);
            // Each track's own times: a fragment's audio need not span
            // exactly its video.
            let ts = f64::from(info.timescale.max(1));
            let shown_at = if segments.is_empty() {
                0.0
            } else {
                time.saturating_sub(base) as f64 / ts
            };
            segments.push(Segment {
                first,
                end: f1,
                time: time.saturating_sub(base),
                duration: total,
                samples: s.samples,
                shown_at,
                shown_for: total as f64 / ts,
                bytes,
                // Segments are written with composition offsets.
                sent: head_len(s.samples, true).saturating_add(bytes),
                marks: Default::default(),
            });
        }
        // A track with no sample in the window is not packaged.
        if segments.is_empty() {
            continue;
        }
        // Cuts are at fragments, which need not start with a sync sample:
        // a SAP is claimed only where every segment's first sample is one
        // (its type as `super::start_sap` says, the codec alone: the
        // fragments' sample groups are not read).
        let sap = sync.then_some(match &info.codec {
            b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => super::HEVC_IRAP_SAP,
            _ => 1,
        });
        let (peak, average) = super::bandwidth(&segments);
        let frame_rate = info
            .is_video()
            .then(|| super::frame_rate(&segments, info.timescale))
            .flatten();
        renditions.push(Rendition {
            id: info.id,
            kind: if info.is_video() {
                Kind::Video
            } else {
                Kind::Audio
            },
            description,
            language: info.language_tag(),
            timescale: info.timescale,
            peak_bandwidth: peak,
            average_bandwidth: average,
            frame_rate,
            sap,
            segments,
            track: usize::MAX,
            info: *info,
            edits: super::source_edits(info),
            default: false,
        });
    }
    if renditions.is_empty() {
        return Err(Error::Unsupported(
            "no video or audio track to package".into(),
        ));
    }
    let mut texts = super::texts(index, window);
    super::choose_defaults(&mut renditions, &mut texts, settings.default_language);
    Ok(Presentation {
        duration,
        renditions,
        movie_duration: (duration * mts).round() as u64,
        start: t0,
        texts,
    })
}

/// Media segment `n` of rendition `r`: the track's samples of fragments
/// `[seg.first, seg.end)`.
pub(super) fn segment(
    index: &Arc<Index>,
    r: &Rendition,
    seg: &Segment,
    n: u32,
) -> Result<Layout, Error> {
    let trex = trex(index)?;
    let mut all = Vec::new();
    for f in seg.first..seg.end {
        samples(index, f as usize, r.id, &trex, &mut all)?;
    }
    let payload = (all.iter()).fold(0u64, |n, s| n.saturating_add(u64::from(s.size)));
    let v = head(n, r.id, seg.time, all.len() as u64, true, payload, |v| {
        for s in &all {
            put_u32(v, s.duration);
            put_u32(v, s.size);
            put_u32(v, s.flags);
            put_u32(v, s.cto);
        }
    })?;
    let mut layout = Layout::with_index(index.clone());
    layout.set_own(v.len());
    let len = v.len() as u64;
    layout.push(Stored::Bytes(bytes::Bytes::from(v)), len);
    for s in &all {
        let len = u64::from(s.size);
        layout.push(
            Stored::File {
                offset: s.offset,
                len,
            },
            len,
        );
    }
    Ok(layout)
}
