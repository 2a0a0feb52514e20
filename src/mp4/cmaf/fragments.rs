//! Packaging a fragmented film: segments are runs of its own fragments
//! (cut at the fragment nearest each multiple of the target duration), and
//! a media segment is re-fragmented from its `trun`s: one `trun` of the
//! track's samples, their bytes as file spans.

use super::write::head;
use super::{Kind, MAX_SEGMENT_SAMPLES, Presentation, Rendition, Segment, Settings};
use crate::mp4::boxes::{Reader, children};
use crate::mp4::index::Index;
use crate::mp4::layout::{Layout, Stored};
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

/// Per-track defaults of the init `moov`'s `trex`: duration, size, flags.
fn trex(index: &Index, id: u32) -> Result<(u32, u32, u32), Error> {
    let root = children(&index.moov, 0)
        .next()
        .ok_or(Error::NotMp4("empty moov"))??;
    for b in root.children() {
        let b = b?;
        if &b.fourcc != b"mvex" {
            continue;
        }
        for c in b.children() {
            let c = c?;
            if &c.fourcc == b"trex" {
                let mut r = Reader::new(c.body, *b"trex");
                r.full_box()?;
                if r.u32()? == id {
                    r.skip(4)?;
                    return Ok((r.u32()?, r.u32()?, r.u32()?));
                }
            }
        }
    }
    Ok((0, 0, 0))
}

/// Track `id`'s samples in fragment `f`, and its first `tfdt` if any.
/// `samples` gets them in order; fails on a hostile count or offset.
fn samples(
    index: &Index,
    f: usize,
    id: u32,
    defaults: (u32, u32, u32),
    samples: &mut Vec<Sample>,
) -> Result<Option<u64>, Error> {
    let frags = index
        .fragments
        .as_ref()
        .ok_or(Error::NotMp4("not fragmented"))?;
    let frag = frags.list.get(f).ok_or(Error::NotMp4("no such fragment"))?;
    let moof_bytes = frags.moofs.get(frag.moof.clone()).unwrap_or(&[]);
    let moof = children(moof_bytes, 0)
        .next()
        .ok_or(Error::NotMp4("empty moof"))??;
    let mut time = None;
    for traf in moof.children() {
        let traf = traf?;
        if &traf.fourcc != b"traf" {
            continue;
        }
        let (mut base, mut dur, mut size, mut flags) =
            (frag.offset, defaults.0, defaults.1, defaults.2);
        let mut mine = false;
        let mut next = None::<u64>;
        for b in traf.children() {
            let b = b?;
            match &b.fourcc {
                b"tfhd" => {
                    let mut r = Reader::new(b.body, *b"tfhd");
                    let (_, fl) = r.full_box()?;
                    mine = r.u32()? == id;
                    if fl & 0x01 != 0 {
                        base = r.u64()?;
                    }
                    if fl & 0x02 != 0 {
                        r.skip(4)?;
                    }
                    if fl & 0x08 != 0 {
                        dur = r.u32()?;
                    }
                    if fl & 0x10 != 0 {
                        size = r.u32()?;
                    }
                    if fl & 0x20 != 0 {
                        flags = r.u32()?;
                    }
                }
                b"tfdt" if mine => {
                    let mut r = Reader::new(b.body, *b"tfdt");
                    let (v, _) = r.full_box()?;
                    let t = if v == 1 {
                        r.u64()?
                    } else {
                        u64::from(r.u32()?)
                    };
                    time.get_or_insert(t);
                }
                b"trun" if mine => {
                    let mut r = Reader::new(b.body, *b"trun");
                    let (_, fl) = r.full_box()?;
                    let n = r.u32()?;
                    let mut at = match (fl & 0x01 != 0, next) {
                        (true, _) => {
                            let off = i64::from(r.u32()? as i32);
                            base.checked_add_signed(off).ok_or(Error::Invalid {
                                fourcc: *b"trun",
                                reason: "data offset before the file",
                            })?
                        }
                        (false, Some(n)) => n,
                        (false, None) => base,
                    };
                    let first_flags = if fl & 0x04 != 0 { Some(r.u32()?) } else { None };
                    let fields = [0x100u32, 0x200, 0x400, 0x800]
                        .iter()
                        .filter(|&&x| fl & x != 0)
                        .count();
                    if (n as usize).saturating_mul(fields * 4) > r.remaining() {
                        return Err(Error::Invalid {
                            fourcc: *b"trun",
                            reason: "sample count exceeds the box size",
                        });
                    }
                    for k in 0..n {
                        let d = if fl & 0x100 != 0 { r.u32()? } else { dur };
                        let s = if fl & 0x200 != 0 { r.u32()? } else { size };
                        let mut g = if fl & 0x400 != 0 { r.u32()? } else { flags };
                        if k == 0
                            && let Some(f0) = first_flags
                        {
                            g = f0;
                        }
                        let c = if fl & 0x800 != 0 { r.u32()? } else { 0 };
                        let end = at
                            .checked_add(u64::from(s))
                            .filter(|&e| e <= index.file_size);
                        let end = end.ok_or(Error::Invalid {
                            fourcc: *b"trun",
                            reason: "a sample lies past the end of the file",
                        })?;
                        if samples.len() as u64 >= MAX_SEGMENT_SAMPLES {
                            return Err(Error::Unsupported(format!(
                                "a segment would hold more than {MAX_SEGMENT_SAMPLES} samples"
                            )));
                        }
                        samples.push(Sample {
                            duration: d,
                            size: s,
                            flags: g,
                            cto: c,
                            offset: at,
                        });
                        at = end;
                    }
                    next = Some(at);
                }
                _ => {}
            }
        }
    }
    Ok(time)
}

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

    let mut renditions = Vec::new();
    for info in index.traks.iter().filter(|t| t.is_video() || t.is_audio()) {
        let stsd = super::write::stsd(index, info)?;
        let description = super::codecs::describe(&super::codecs::first_entry(stsd.body)?)?;
        let defaults = trex(index, info.id)?;
        let mut segments = Vec::with_capacity(cuts.len());
        let mut base = None;
        let mut buf = Vec::new();
        for (k, &(f0, _)) in cuts.iter().enumerate() {
            let f1 = cuts.get(k + 1).map_or(last as u64, |c| c.0);
            let (mut time, mut total, mut bytes) = (None, 0u64, 0u64);
            for f in f0..f1 {
                buf.clear();
                let t = samples(index, f as usize, info.id, defaults, &mut buf)?;
                if time.is_none() {
                    time = t.map(|t| t.saturating_add(total));
                }
                total += buf.iter().map(|s| u64::from(s.duration)).sum::<u64>();
                bytes += buf.iter().map(|s| u64::from(s.size)).sum::<u64>();
            }
            let time = time.unwrap_or(0);
            let base = *base.get_or_insert(time);
            // Each track's own times: a fragment's audio need not span
            // exactly its video.
            let ts = f64::from(info.timescale.max(1));
            let shown_at = if k == 0 {
                0.0
            } else {
                time.saturating_sub(base) as f64 / ts
            };
            segments.push(Segment {
                first: f0,
                end: f1,
                time: time.saturating_sub(base),
                duration: total,
                shown_at,
                shown_for: total as f64 / ts,
                bytes,
                marks: Default::default(),
            });
        }
        let (peak, average) = super::bandwidth(&segments, target);
        renditions.push(Rendition {
            id: info.id,
            kind: if info.is_video() {
                Kind::Video
            } else {
                Kind::Audio
            },
            description,
            language: info
                .language
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
            timescale: info.timescale,
            peak_bandwidth: peak,
            average_bandwidth: average,
            segments,
            track: usize::MAX,
            info: *info,
            edits: super::source_edits(info),
        });
    }
    if renditions.is_empty() {
        return Err(Error::Unsupported(
            "no video or audio track to package".into(),
        ));
    }
    Ok(Presentation {
        duration,
        renditions,
        movie_duration: (duration * mts).round() as u64,
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
    let defaults = trex(index, r.id)?;
    let mut all = Vec::new();
    for f in seg.first..seg.end {
        samples(index, f as usize, r.id, defaults, &mut all)?;
    }
    let payload: u64 = all.iter().map(|s| u64::from(s.size)).sum();
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
