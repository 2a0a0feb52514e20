//! Plan → [`Layout`]: the new `moov` and what follows it.
//!
//! Sizes first, offsets last, as in nginx's mp4 module: the `moov` is laid
//! out with each table's length known (its entries are produced later, on
//! demand), its length then fixes where the media lands, and the chunk-offset
//! tables read that map when they are sent. A track whose offsets outgrow
//! `stco` is promoted to `co64` and the `moov` laid out again. Every box the
//! engine does not rewrite is copied byte for byte, as a slice of the
//! index's `moov`.

use super::boxes::{children, write_header};
mod moov;

use super::builder::Builder;
use super::index::{Index, Track};
use super::layout::{Clip, Layout, Stored};
use super::plan::{FragmentPlan, Plan, TrackPlan};
use super::tables::{cmov, elst, frag, stco};
use super::{Error, Style};
use bytes::Bytes;
use moov::{Spec, TrackOut, moov};
use std::ops::Range;
use std::sync::Arc;

/// Chunks whose byte ranges lie closer than this share one source span (a
/// gap this small costs less to send than another span); farther apart, they
/// get their own, so the output carries at most this much of what no table
/// refers to between two kept chunks.
const SPAN_GAP: u64 = 4 << 10;

/// The output chunk offsets and source media range of samples `[a, b)`.
fn track_out(index: &Index, i: usize, plan: TrackPlan, wide: bool) -> Result<TrackOut, Error> {
    let t = &index.tracks[i];
    let (a, b) = (plan.a, plan.b);
    let crop = t.stsc.crop(a, b).ok_or(Error::Invalid {
        fourcc: *b"stsc",
        reason: "no chunk holds the window's samples",
    })?;
    let first = t.stsc.chunks_at(a).next().ok_or(Error::Invalid {
        fourcc: *b"stsc",
        reason: "no chunk holds the window's samples",
    })?;
    let offsets = stco::Crop {
        c0: crop.c0,
        n: crop.chunks,
        first_delta: t.sizes.sum(first.first_sample, a),
        wide,
    };
    // One range per chunk the window keeps, so a sparse track (subtitles,
    // chapters, timecode) whose chunks lie far apart never carries the film
    // between them; neighbours merge here or in `mdat_ranges`.
    let mut media: Vec<Range<u64>> = Vec::new();
    let mut sample = a;
    for (k, c) in t.stsc.chunks_at(a).enumerate() {
        if sample >= b {
            break;
        }
        let s1 = c
            .first_sample
            .saturating_add(u64::from(c.samples))
            .min(b)
            .max(sample);
        let at = offsets.source(&t.chunk_offsets, k as u64);
        let end = at.saturating_add(t.sizes.sum(sample, s1));
        sample = s1;
        if end == at {
            continue;
        }
        match media.last_mut() {
            Some(last) if at >= last.start && at <= last.end.saturating_add(SPAN_GAP) => {
                last.end = last.end.max(end);
            }
            _ => media.push(at..end),
        }
    }
    Ok(TrackOut {
        track: i,
        plan: Some(plan),
        offsets,
        media,
    })
}

/// The largest source chunk offset of a track's output chunks.
fn max_source(t: &Track, c: &stco::Crop) -> u64 {
    if t.chunks_in_order || c.n == 0 {
        return c.source(&t.chunk_offsets, c.n.saturating_sub(1));
    }
    (0..c.n)
        .map(|i| c.source(&t.chunk_offsets, i))
        .max()
        .unwrap_or(0)
}

/// The `moov` for `spec`, plain or (with `style`) compressed, and the map
/// its chunk offsets read; `map_for(len)` is the map when the `moov` (and
/// whatever pads it) takes `len` bytes.
fn moov_for<'i>(
    index: &'i Arc<Index>,
    spec: &mut Spec,
    map_for: impl Fn(u64) -> stco::Map,
    style: &Style,
) -> Result<(Builder<'i>, stco::Map), Error> {
    let (plain, map) = settle(index, spec, &map_for)?;
    if !style.compress_moov {
        return Ok((plain, map));
    }
    match compress(index, spec, &map_for, plain.len)? {
        Some(done) => Ok(done),
        None => {
            log::debug!("the compressed moov does not settle; sent plain");
            Ok((plain, map))
        }
    }
}

/// Lays out the `moov` as `moov{cmov{dcom zlib, cmvd}}` plus a `free` box,
/// so that the chunk offsets inside the compressed bytes point where the
/// media lands. The offsets change the compressed size, so the size is
/// guessed with some slack, and the slack filled with `free`.
fn compress<'i>(
    index: &'i Arc<Index>,
    spec: &Spec,
    map_for: &impl Fn(u64) -> stco::Map,
    plain_len: u64,
) -> Result<Option<(Builder<'i>, stco::Map)>, Error> {
    // The first round places the media as if the moov stayed plain, only
    // to learn about how long it compresses; later rounds place it after a
    // moov of `room` bytes and pad what the compressed one leaves over.
    let mut room: Option<u64> = None;
    for _ in 0..4 {
        let map = map_for(room.unwrap_or(plain_len));
        let mut b = Builder::new(index);
        moov(&mut b, spec)?;
        let layout = b.finish(index.clone(), map.clone());
        let mut plain = Vec::with_capacity(usize::try_from(layout.len()).unwrap_or(0));
        // The moov holds no file span: nothing is read.
        layout
            .copy_to(0..layout.len(), &Vec::new(), &mut plain)
            .map_err(Error::Io)?;
        let z = cmov::deflate(&plain)?;
        let len = cmov::moov_len(z.len());
        if let Some(r) = room
            && let Some(pad @ (0 | 8..)) = r.checked_sub(len)
        {
            let mut out = Builder::new(index);
            let moov_at = out.open(b"moov");
            let cmov_at = out.open(b"cmov");
            out.write(|v| cmov::write_heads(v, plain.len(), z.len()));
            let zlen = z.len() as u64;
            out.stored(Stored::Bytes(Bytes::from(z)), zlen);
            out.close(cmov_at)?;
            out.close(moov_at)?;
            if pad > 0 {
                out.write(|v| write_header(v, b"free", pad));
                out.bytes(&vec![0u8; (pad - 8) as usize]);
            }
            return Ok(Some((out, map)));
        }
        room = Some(len + 64 + len / 256);
    }
    Ok(None)
}

/// Lays out the `moov` until every track's offsets fit its table: each
/// round promotes at least one track to `co64`, so this ends.
fn settle<'i>(
    index: &'i Index,
    spec: &mut Spec,
    map_for: &impl Fn(u64) -> stco::Map,
) -> Result<(Builder<'i>, stco::Map), Error> {
    loop {
        let mut b = Builder::new(index);
        moov(&mut b, spec)?;
        let map = map_for(b.len);
        let mut promoted = false;
        for out in &mut spec.tracks {
            let t = &index.tracks[out.track];
            if !out.offsets.wide && map.apply(max_source(t, &out.offsets)) > u64::from(u32::MAX) {
                out.offsets.wide = true;
                promoted = true;
            }
        }
        if !promoted {
            return Ok((b, map));
        }
    }
}

/// Groups per-track byte ranges into the source ranges the mdat copies, in
/// file order: (start, end, offset in the mdat payload).
fn mdat_ranges(mut ranges: Vec<Range<u64>>) -> Vec<(u64, u64, u64)> {
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for r in ranges {
        let end = r.end.max(r.start);
        match out.last_mut() {
            Some(s) if r.start <= s.1.saturating_add(SPAN_GAP) => s.1 = s.1.max(end),
            _ => out.push((r.start, end, 0)),
        }
    }
    let mut at = 0u64;
    for s in &mut out {
        s.2 = at;
        at = at.saturating_add(s.1 - s.0);
    }
    out
}

/// The tracks kept, for [`Clip`].
fn kept(index: &Index, tracks: impl Iterator<Item = usize>) -> Vec<(u32, String, String)> {
    tracks
        .filter_map(|i| index.tracks.get(i))
        .map(|t| {
            (
                t.info.id,
                super::error::fourcc_str(&t.info.handler),
                super::error::fourcc_str(&t.info.codec),
            )
        })
        .collect()
}

/// Writes the output for a windowed plan.
pub(crate) fn window(index: &Arc<Index>, plan: Plan, style: &Style) -> Result<Layout, Error> {
    let clip = Clip {
        key_frame: plan.key_frame,
        from: plan.from,
        duration: plan.movie_duration as f64 / f64::from(index.movie.timescale),
        tracks: kept(index, plan.tracks.iter().map(|t| t.track)),
    };
    let mut tracks = Vec::new();
    for tp in plan.tracks {
        tracks.push(track_out(index, tp.track, tp, false)?);
    }
    let spans = mdat_ranges(
        tracks
            .iter()
            .flat_map(|t| t.media.iter().cloned())
            .collect(),
    );
    let payload: u64 = spans.iter().map(|s| s.1 - s.0).sum();
    let mdat_header: u64 = if payload + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    let ftyp = index.ftyp_bytes.clone().unwrap_or_default();
    let mut spec = Spec {
        tracks,
        movie_duration: Some(plan.movie_duration),
        keep_empty: false,
    };
    let map_for = |moov_len| {
        let data = ftyp.len() as u64 + moov_len + mdat_header;
        stco::Map(
            spans
                .iter()
                .map(|&(start, end, at)| stco::Move {
                    src: start,
                    len: end - start,
                    out: data + at,
                })
                .collect(),
        )
    };
    let (b, map) = moov_for(index, &mut spec, map_for, style)?;
    let mut out = Builder::new(index);
    out.bytes(&ftyp);
    out.append(b);
    out.write(|v| write_header(v, b"mdat", payload + mdat_header));
    for &(start, end, _) in &spans {
        out.stored(
            Stored::File {
                offset: start,
                len: end - start,
            },
            end - start,
        );
    }
    let mut layout = out.finish(index.clone(), map);
    layout.clip = clip;
    Ok(layout)
}

/// The whole file: its own bytes when the `moov` comes first (and is not
/// compressed), else fast-start (the `moov` moved to the front, chunk
/// offsets moved with the media).
pub(crate) fn whole(index: &Arc<Index>, style: &Style) -> Result<Layout, Error> {
    let mut layout = whole_layout(index, style)?;
    layout.clip = Clip {
        key_frame: 0.0,
        from: 0.0,
        duration: index.duration(),
        tracks: kept(index, 0..index.tracks.len()),
    };
    if index.fragments.is_some() {
        layout.clip.tracks = fragment_tracks(index);
    }
    Ok(layout)
}

fn fragment_tracks(index: &Index) -> Vec<(u32, String, String)> {
    index
        .traks
        .iter()
        .map(|t| {
            (
                t.id,
                super::error::fourcc_str(&t.handler),
                super::error::fourcc_str(&t.codec),
            )
        })
        .collect()
}

fn whole_layout(index: &Arc<Index>, style: &Style) -> Result<Layout, Error> {
    let moov = index.moov_box;
    let moov_first = index
        .top
        .iter()
        .filter(|b| &b.fourcc == b"mdat")
        .all(|m| m.offset > moov.offset);
    // The file as it is, unless its moov must change: moved to the front,
    // inflated, or compressed.
    if moov_first && !index.compressed && !style.compress_moov || index.fragments.is_some() {
        let mut layout = Layout::with_index(index.clone());
        layout.push(
            Stored::File {
                offset: 0,
                len: index.file_size,
            },
            index.file_size,
        );
        return Ok(layout);
    }
    let ftyp = index.ftyp_bytes.clone().unwrap_or_default();
    let ftyp_end = index.ftyp.map_or(0, |f| f.end());
    let mut tracks = Vec::new();
    for (i, t) in index.tracks.iter().enumerate() {
        tracks.push(TrackOut {
            track: i,
            plan: None,
            offsets: stco::Crop {
                c0: 0,
                n: t.chunk_offsets.len() as u64,
                first_delta: 0,
                wide: false,
            },
            media: Vec::new(),
        });
    }
    let mut spec = Spec {
        tracks,
        movie_duration: None,
        keep_empty: true,
    };
    let before = moov.offset - ftyp_end;
    let map_for = |moov_len| {
        let start = ftyp.len() as u64 + moov_len;
        stco::Map(vec![
            stco::Move {
                src: ftyp_end,
                len: before,
                out: start,
            },
            stco::Move {
                src: moov.end(),
                len: index.file_size - moov.end(),
                out: start + before,
            },
        ])
    };
    let (b, map) = moov_for(index, &mut spec, map_for, style)?;
    let mut out = Builder::new(index);
    out.bytes(&ftyp);
    out.append(b);
    out.stored(
        Stored::File {
            offset: ftyp_end,
            len: before,
        },
        before,
    );
    let after = index.file_size - moov.end();
    out.stored(
        Stored::File {
            offset: moov.end(),
            len: after,
        },
        after,
    );
    Ok(out.finish(index.clone(), stco::Map(map.0)))
}

/// A fragmented window: `ftyp`, the `moov` with the clip's duration (and an
/// edit hiding what a track has before the cut), then the fragments, their
/// `moof`s moved and rebased.
pub(crate) fn fragments(index: &Arc<Index>, plan: &FragmentPlan) -> Result<Layout, Error> {
    let mut b = Builder::new(index);
    if let Some(f) = &index.ftyp_bytes {
        b.bytes(f);
    }
    let root = children(&index.moov, 0)
        .next()
        .ok_or(Error::NotMp4("empty moov"))??;
    let o = b.open(b"moov");
    for child in root.children() {
        let child = child?;
        match &child.fourcc {
            b"mvhd" => b.copy_with(&child, index.movie.duration_field, plan.movie_duration),
            b"mvex" => {
                let m = b.open(b"mvex");
                for c in child.children() {
                    let c = c?;
                    if &c.fourcc == b"mehd" {
                        b.copy_with(&c, frag::read_mehd(c.body)?, plan.movie_duration);
                    } else {
                        b.copy(&c);
                    }
                }
                b.close(m)?;
            }
            b"trak" => {
                let info = index.traks.iter().find(|t| t.start == child.start);
                let hide = info.and_then(|t| plan.hide.iter().find(|h| h.0 == t.id));
                match (info, hide) {
                    (Some(t), Some(&(_, hide))) => {
                        let o = b.open(b"trak");
                        for c in child.children() {
                            let c = c?;
                            match &c.fourcc {
                                b"edts" => {}
                                b"tkhd" => {
                                    b.copy(&c);
                                    let edit = t.edit;
                                    let mut edits = Vec::new();
                                    if edit.empty > 0 {
                                        edits.push(elst::Edit {
                                            segment_duration: edit.empty,
                                            media_time: -1,
                                            media_rate: elst::RATE_1,
                                        });
                                    }
                                    edits.push(elst::Edit {
                                        segment_duration: plan.movie_duration,
                                        media_time: edit.media_time.saturating_add(
                                            i64::try_from(hide).unwrap_or(i64::MAX),
                                        ),
                                        media_rate: elst::RATE_1,
                                    });
                                    b.write(|v| elst::write_edts(v, &edits));
                                }
                                _ => b.copy(&c),
                            }
                        }
                        b.close(o)?;
                    }
                    _ => b.copy(&child),
                }
            }
            _ => b.copy(&child),
        }
    }
    b.close(o)?;
    let frags = index
        .fragments
        .as_ref()
        .ok_or(Error::NotMp4("not fragmented"))?;
    let list = frags.list.get(plan.first..=plan.last).unwrap_or(&[]);
    let len = list.iter().map(|f| f.len()).sum();
    b.stored(
        Stored::Fragments {
            first: plan.first,
            last: plan.last,
            rebase: plan.rebase.clone(),
        },
        len,
    );
    let mut layout = b.finish(index.clone(), stco::Map::default());
    layout.clip = Clip {
        key_frame: plan.from,
        from: plan.from,
        duration: plan.movie_duration as f64 / f64::from(index.movie.timescale),
        tracks: fragment_tracks(index),
    };
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_ranges_get_their_own_span() {
        // An interleaved pair, and one sample 1 GiB earlier (a tmcd track).
        let v = mdat_ranges(vec![
            (5 << 30)..(5 << 30) + 900,
            (5 << 30) + 100..(5 << 30) + 1000,
            (4 << 30)..(4 << 30) + 4,
        ]);
        assert_eq!(
            v,
            vec![(4 << 30, (4 << 30) + 4, 0), (5 << 30, (5 << 30) + 1000, 4)]
        );
        // Gaps under SPAN_GAP are carried rather than split.
        assert_eq!(
            mdat_ranges(vec![0..10, 10 + SPAN_GAP..20 + SPAN_GAP]).len(),
            1
        );
    }
}
