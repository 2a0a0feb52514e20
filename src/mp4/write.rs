//! Plan → new `moov` bytes + [`Layout`].
//!
//! Sizes first, offsets last: the moov is written with placeholder chunk
//! offsets, then its length fixes where the media lands and the offsets are
//! patched in. A track whose offsets outgrow `stco` is promoted to `co64` and
//! the moov written again. Every box the engine does not rewrite is copied
//! byte for byte.

use super::boxes::{RawBox, begin_box, children, end_box, write_header};
use super::index::{Index, Track, duration_field};
use super::plan::{Plan, TrackPlan};
use super::tables::{elst, runs, stco, stsc, stss, stsz};
use super::{Error, Layout, Part};
use bytes::Bytes;

/// Per-sample tables the engine cannot trim: dropped from windowed output.
const UNTRIMMABLE: [&[u8; 4]; 7] = [
    b"subs", b"saiz", b"saio", b"stps", b"padb", b"stdp", b"stsh",
];

/// A run of output samples that sits in one source chunk.
#[derive(Clone, Copy, Debug)]
struct OutChunk {
    /// Source offset of its first sample.
    offset: u64,
    len: u64,
    samples: u32,
    sample_description_index: u32,
}

/// What to do with one indexed track.
enum TrackOut<'p> {
    /// Copy everything but the chunk offsets (fast-start of a whole file).
    Keep,
    /// Crop to a plan.
    Crop(&'p TrackPlan, Vec<OutChunk>),
}

struct Spec<'p> {
    /// Indexed by `Index::tracks`; `None` drops the track.
    tracks: Vec<Option<TrackOut<'p>>>,
    movie_duration: Option<u64>,
    /// Keep `trak`s the index skipped (no samples).
    keep_empty: bool,
}

/// Where a `stco`/`co64` placeholder sits in the new moov.
struct Slot {
    track: usize,
    at: usize,
    wide: bool,
}

/// Tracks whose byte ranges lie closer than this share one source span;
/// farther apart (a `tmcd` sample at the head of `mdat`), they get their own,
/// so the output never carries the film between them.
const SPAN_GAP: u64 = 1 << 20;

/// A source byte span copied into the output `mdat`.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    end: u64,
    /// Offset of the span within the `mdat` payload.
    at: u64,
}

/// Groups per-track byte ranges into spans, in file order.
fn spans(mut ranges: Vec<(u64, u64)>) -> Vec<Span> {
    ranges.sort_unstable();
    let mut out: Vec<Span> = Vec::new();
    for (start, end) in ranges {
        match out.last_mut() {
            Some(s) if start <= s.end.saturating_add(SPAN_GAP) => s.end = s.end.max(end),
            _ => out.push(Span { start, end, at: 0 }),
        }
    }
    let mut at = 0;
    for s in &mut out {
        s.at = at;
        at += s.end - s.start;
    }
    out
}

/// Writes the output for a windowed plan.
pub(crate) fn window(index: &Index, plan: &Plan) -> Result<Layout, Error> {
    let mut tracks: Vec<Option<TrackOut<'_>>> = index.tracks.iter().map(|_| None).collect();
    let mut ranges = Vec::new();
    for tp in &plan.tracks {
        let chunks = out_chunks(index, &index.tracks[tp.track], tp.a, tp.b)?;
        let lo = chunks.iter().map(|c| c.offset).min();
        let hi = chunks.iter().map(|c| c.offset + c.len).max();
        if let (Some(lo), Some(hi)) = (lo, hi) {
            ranges.push((lo, hi));
        }
        if let Some(slot) = tracks.get_mut(tp.track) {
            *slot = Some(TrackOut::Crop(tp, chunks));
        }
    }
    let spans = spans(ranges);
    let spec = Spec {
        tracks,
        movie_duration: Some(plan.movie_duration),
        keep_empty: false,
    };
    let payload: u64 = spans.iter().map(|s| s.end - s.start).sum();
    let mdat_header = if payload + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    let ftyp = index.ftyp_bytes.as_deref().unwrap_or(&[]);
    let moov = write_with_offsets(index, &spec, |moov_len, _track, src| {
        let data = (ftyp.len() + moov_len) as u64 + mdat_header;
        // Every chunk lies in a span: spans are built from the chunks.
        let span = spans
            .iter()
            .find(|s| s.start <= src && src <= s.end)
            .copied()
            .unwrap_or(Span {
                start: src,
                end: src,
                at: 0,
            });
        data + span.at + (src - span.start)
    })?;
    let mut header = Vec::with_capacity(ftyp.len() + moov.len() + 16);
    header.extend_from_slice(ftyp);
    header.extend_from_slice(&moov);
    write_header(&mut header, b"mdat", payload + mdat_header);
    let mut layout = Layout::new();
    layout.push(Part::Mem(Bytes::from(header)));
    for s in &spans {
        layout.push(Part::File {
            offset: s.start,
            len: s.end - s.start,
        });
    }
    Ok(layout)
}

/// The whole file: its own bytes when the moov comes first, else fast-start
/// (moov moved to the front, chunk offsets shifted).
pub(crate) fn whole(index: &Index) -> Result<Layout, Error> {
    let moov = index.moov_box;
    let moov_first = index
        .top
        .iter()
        .filter(|b| &b.fourcc == b"mdat")
        .all(|m| m.offset > moov.offset);
    let mut layout = Layout::new();
    if moov_first {
        layout.push(Part::File {
            offset: 0,
            len: index.file_size,
        });
        return Ok(layout);
    }
    let ftyp_end = index.ftyp.map_or(0, |f| f.end());
    let spec = Spec {
        tracks: index.tracks.iter().map(|_| Some(TrackOut::Keep)).collect(),
        movie_duration: None,
        keep_empty: true,
    };
    let new_moov = write_with_offsets(index, &spec, |moov_len, _track, src| {
        let new_len = moov_len as u64;
        if src >= moov.end() {
            src - moov.size + new_len
        } else if src >= ftyp_end {
            src + new_len
        } else {
            src
        }
    })?;
    let mut header = Vec::with_capacity(ftyp_end as usize + new_moov.len());
    header.extend_from_slice(index.ftyp_bytes.as_deref().unwrap_or(&[]));
    header.extend_from_slice(&new_moov);
    layout.push(Part::Mem(Bytes::from(header)));
    layout.push(Part::File {
        offset: ftyp_end,
        len: moov.offset - ftyp_end,
    });
    layout.push(Part::File {
        offset: moov.end(),
        len: index.file_size - moov.end(),
    });
    Ok(layout)
}

/// Writes the moov, maps every source chunk offset through `map(moov_len,
/// track, offset)` and patches them in, promoting tracks to `co64` as needed.
fn write_with_offsets(
    index: &Index,
    spec: &Spec<'_>,
    map: impl Fn(usize, usize, u64) -> u64,
) -> Result<Vec<u8>, Error> {
    let mut wide = vec![false; index.tracks.len()];
    // Each pass promotes at least one track, so this ends.
    loop {
        let (mut moov, slots) = write_moov(index, spec, &wide)?;
        let moov_len = moov.len();
        let mut promoted = false;
        for slot in &slots {
            let track = &index.tracks[slot.track];
            let offsets: Vec<u64> = match &spec.tracks[slot.track] {
                Some(TrackOut::Crop(_, chunks)) => chunks
                    .iter()
                    .map(|c| map(moov_len, slot.track, c.offset))
                    .collect(),
                _ => track
                    .chunk_offsets
                    .iter()
                    .map(|&o| map(moov_len, slot.track, o))
                    .collect(),
            };
            if !stco::patch(&mut moov, slot.at, &offsets, slot.wide) {
                wide[slot.track] = true;
                promoted = true;
            }
        }
        if !promoted {
            return Ok(moov);
        }
    }
}

fn write_moov(
    index: &Index,
    spec: &Spec<'_>,
    wide: &[bool],
) -> Result<(Vec<u8>, Vec<Slot>), Error> {
    let src = &index.moov[..];
    let hl = index.moov_box.header_len as usize;
    let mut out = Vec::with_capacity(src.len());
    let mut slots = Vec::new();
    let at = begin_box(&mut out, b"moov");
    for child in children(src.get(hl..).unwrap_or(&[]), hl) {
        let child = child?;
        match &child.fourcc {
            b"mvhd" => copy_with_duration(&mut out, &child, spec.movie_duration),
            b"trak" => {
                let found = index
                    .tracks
                    .iter()
                    .position(|t| t.trak.start == child.start);
                match found {
                    None if spec.keep_empty => out.extend_from_slice(child.bytes),
                    None => log::debug!("dropping a trak without samples"),
                    Some(i) => {
                        if let Some(t) = &spec.tracks[i] {
                            let mut w = TrakWriter {
                                track: &index.tracks[i],
                                index: i,
                                out: &mut out,
                                slots: &mut slots,
                                wide: wide.get(i).copied().unwrap_or(false),
                            };
                            w.trak(&child, t)?;
                        }
                    }
                }
            }
            _ => out.extend_from_slice(child.bytes),
        }
    }
    end_box(&mut out, at);
    Ok((out, slots))
}

/// Copies a `mvhd`/`tkhd`/`mdhd`, replacing its duration when one is given.
fn copy_with_duration(out: &mut Vec<u8>, b: &RawBox<'_>, duration: Option<u64>) {
    let at = out.len();
    out.extend_from_slice(b.bytes);
    let Some(d) = duration else { return };
    let body = at + (b.bytes.len() - b.body.len());
    let Some(&version) = out.get(body) else {
        return;
    };
    let (off, is64) = duration_field(&b.fourcc, version);
    let p = body + off;
    if is64 {
        if let Some(dst) = out.get_mut(p..p + 8) {
            dst.copy_from_slice(&d.to_be_bytes());
        }
    } else if let Some(dst) = out.get_mut(p..p + 4) {
        dst.copy_from_slice(&u32::try_from(d).unwrap_or(u32::MAX).to_be_bytes());
    }
}

struct TrakWriter<'a> {
    track: &'a Track,
    index: usize,
    out: &'a mut Vec<u8>,
    slots: &'a mut Vec<Slot>,
    wide: bool,
}

/// The body of a box and the position in the source moov where it starts.
fn body_base(b: &RawBox<'_>) -> usize {
    b.start + (b.bytes.len() - b.body.len())
}

impl TrakWriter<'_> {
    fn trak(&mut self, trak: &RawBox<'_>, how: &TrackOut<'_>) -> Result<(), Error> {
        let plan = match how {
            TrackOut::Crop(p, _) => Some(*p),
            TrackOut::Keep => None,
        };
        let at = begin_box(self.out, b"trak");
        for child in children(trak.body, body_base(trak)) {
            let child = child?;
            match (&child.fourcc, plan) {
                (b"tkhd", Some(p)) => {
                    copy_with_duration(self.out, &child, Some(p.track_duration));
                    if let Some(edits) = &p.edits {
                        elst::write_edts(self.out, edits);
                    }
                }
                (b"edts", Some(_)) => {}
                (b"mdia", _) => self.container(&child, how)?,
                _ => self.out.extend_from_slice(child.bytes),
            }
        }
        end_box(self.out, at);
        Ok(())
    }

    /// `mdia` and `minf`: rebuilt around their rewritten children.
    fn container(&mut self, b: &RawBox<'_>, how: &TrackOut<'_>) -> Result<(), Error> {
        let at = begin_box(self.out, &b.fourcc);
        for child in children(b.body, body_base(b)) {
            let child = child?;
            match (&child.fourcc, how) {
                (b"mdhd", TrackOut::Crop(p, _)) => {
                    copy_with_duration(self.out, &child, Some(p.media_duration))
                }
                (b"minf", _) => self.container(&child, how)?,
                (b"stbl", _) => self.stbl(&child, how)?,
                _ => self.out.extend_from_slice(child.bytes),
            }
        }
        end_box(self.out, at);
        Ok(())
    }

    fn stbl(&mut self, stbl: &RawBox<'_>, how: &TrackOut<'_>) -> Result<(), Error> {
        let at = begin_box(self.out, b"stbl");
        for child in children(stbl.body, body_base(stbl)) {
            let child = child?;
            let fourcc = child.fourcc;
            if &fourcc == b"stco" || &fourcc == b"co64" {
                let (n, wide) = match how {
                    TrackOut::Crop(_, chunks) => (chunks.len(), self.wide),
                    TrackOut::Keep => (
                        self.track.chunk_offsets.len(),
                        self.wide || &fourcc == b"co64",
                    ),
                };
                let at = stco::write_placeholder(self.out, n, wide);
                self.slots.push(Slot {
                    track: self.index,
                    at,
                    wide,
                });
                continue;
            }
            let TrackOut::Crop(p, chunks) = how else {
                self.out.extend_from_slice(child.bytes);
                continue;
            };
            let (a, b) = (p.a, p.b);
            let t = self.track;
            match &fourcc {
                b"stts" => runs::write(self.out, b"stts", 0, &t.stts.crop(a, b)),
                b"ctts" => {
                    let version = child.body.first().copied().unwrap_or(0);
                    let ctts = t.ctts.as_ref().map(|c| c.crop(a, b)).unwrap_or_default();
                    runs::write(self.out, b"ctts", version, &ctts);
                }
                b"stss" => stss::write_crop(self.out, t.stss.as_deref().unwrap_or(&[]), a, b),
                b"stsc" => stsc::write(
                    self.out,
                    chunks
                        .iter()
                        .map(|c| (c.samples, c.sample_description_index)),
                ),
                b"stsz" | b"stz2" => stsz::write_crop(self.out, &t.sizes, a, b),
                b"sdtp" => self.sdtp(&child, a, b),
                b"sbgp" => match runs::Sbgp::read(child.body) {
                    Ok(s) => s.write_crop(self.out, a, b),
                    Err(e) => log::debug!("track {}: sbgp dropped: {e}", t.id),
                },
                f if UNTRIMMABLE.contains(&f) => log::debug!(
                    "track {}: per-sample box '{}' cannot be trimmed, dropped",
                    t.id,
                    super::error::fourcc_str(f)
                ),
                _ => self.out.extend_from_slice(child.bytes),
            }
        }
        end_box(self.out, at);
        Ok(())
    }

    /// `sdtp`: one byte per sample after version and flags.
    fn sdtp(&mut self, b: &RawBox<'_>, a: u64, end: u64) {
        let (Ok(a), Ok(end)) = (usize::try_from(a), usize::try_from(end)) else {
            return;
        };
        match (b.body.get(..4), b.body.get(4 + a..4 + end)) {
            (Some(head), Some(samples)) => {
                let at = begin_box(self.out, b"sdtp");
                self.out.extend_from_slice(head);
                self.out.extend_from_slice(samples);
                end_box(self.out, at);
            }
            _ => log::debug!(
                "track {}: sdtp shorter than the sample count, dropped",
                self.track.id
            ),
        }
    }
}

/// The output chunks of samples `[a, b)`, with their source byte ranges.
fn out_chunks(index: &Index, t: &Track, a: u64, b: u64) -> Result<Vec<OutChunk>, Error> {
    let mut v = Vec::new();
    let mut covered = 0u64;
    for c in stsc::Chunks::at(&t.stsc, t.chunk_offsets.len() as u64, a) {
        if c.first_sample >= b {
            break;
        }
        let s0 = c.first_sample.max(a);
        let s1 = (c.first_sample + u64::from(c.samples)).min(b);
        if s0 >= s1 {
            continue;
        }
        let base = usize::try_from(c.index)
            .ok()
            .and_then(|i| t.chunk_offsets.get(i))
            .copied()
            .ok_or(Error::Invalid {
                fourcc: *b"stco",
                reason: "fewer chunk offsets than stsc uses",
            })?;
        let offset = base.saturating_add(t.sizes.sum(c.first_sample, s0));
        let len = t.sizes.sum(s0, s1);
        if offset.saturating_add(len) > index.file_size {
            return Err(Error::Truncated {
                fourcc: *b"mdat",
                offset,
            });
        }
        covered += s1 - s0;
        v.push(OutChunk {
            offset,
            len,
            // s1 - s0 <= samples_per_chunk, a u32.
            samples: (s1 - s0) as u32,
            sample_description_index: c.sample_description_index,
        });
    }
    if covered != b - a {
        return Err(Error::Invalid {
            fourcc: *b"stsc",
            reason: "chunks hold fewer samples than stsz lists",
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_ranges_get_their_own_span() {
        // An interleaved pair, and one sample 1 GiB earlier (a tmcd track).
        let v = spans(vec![
            (5 << 30, (5 << 30) + 900),
            ((5 << 30) + 100, (5 << 30) + 1000),
            (4 << 30, (4 << 30) + 4),
        ]);
        let got: Vec<_> = v.iter().map(|s| (s.start, s.end, s.at)).collect();
        assert_eq!(
            got,
            vec![(4 << 30, (4 << 30) + 4, 0), (5 << 30, (5 << 30) + 1000, 4)]
        );
        // Gaps under SPAN_GAP are carried rather than split.
        assert_eq!(
            spans(vec![(0, 10), (10 + SPAN_GAP, 20 + SPAN_GAP)]).len(),
            1
        );
    }
}
