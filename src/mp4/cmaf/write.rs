//! CMAF init and media segments of one track.
//!
//! The init segment is `ftyp` + a `moov` whose track has no samples, its
//! `stsd` copied byte for byte and an `mvex`; the edit list carries the
//! source's (or the window's) timeline. A media segment is `moof` (`mfhd`,
//! `traf`: `tfhd` with default-base-is-moof, `tfdt`, `trun`) + `mdat`, whose
//! payload is spans of the source file.

use super::{Kind, Presentation, Rendition, Segment};
use crate::mp4::boxes::{RawBox, children};
use crate::mp4::builder::Builder;
use crate::mp4::cenc::{self, Protection};
use crate::mp4::index::{Index, Track};
use crate::mp4::layout::{Layout, Stored};
use crate::mp4::tables::{elst, mdhd, put_full, put_u32, put_u64, stco, tkhd};
use crate::mp4::trak::TrakInfo;
use crate::mp4::{Error, boxes};
use std::sync::Arc;

/// `sample_depends_on` = 2: a sync sample.
const SYNC: u32 = 0x0200_0000;
/// `sample_depends_on` = 1 and `sample_is_non_sync_sample`.
const NON_SYNC: u32 = 0x0101_0000;

const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x1;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_COMPOSITION: u32 = 0x800;

/// Where [`head`] writes the `moof`'s size, the `traf`'s (after `mfhd`'s
/// 16 bytes) and the `trun`'s data offset (after `tfhd` 16 and `tfdt` 20,
/// the `trun`'s header, version, flags and sample count).
const MOOF_SIZE_AT: usize = 0;
const TRAF_SIZE_AT: usize = 8 + 16;
const DATA_OFFSET_AT: usize = TRAF_SIZE_AT + 8 + 16 + 20 + 16;

fn missing(fourcc: [u8; 4]) -> Error {
    Error::Invalid {
        fourcc,
        reason: "required box is missing",
    }
}

/// The `trak` box of a track, within the index's `moov`.
pub(super) fn trak<'a>(index: &'a Index, info: &TrakInfo) -> Result<RawBox<'a>, Error> {
    let from = index.moov.get(info.start..).unwrap_or(&[]);
    children(from, info.start).next().ok_or(missing(*b"trak"))?
}

pub(super) fn child<'a>(parent: &RawBox<'a>, fourcc: &[u8; 4]) -> Result<RawBox<'a>, Error> {
    for c in parent.children() {
        let c = c?;
        if &c.fourcc == fourcc {
            return Ok(c);
        }
    }
    Err(missing(*fourcc))
}

/// The `stsd` of a track.
pub(crate) fn stsd<'a>(index: &'a Index, info: &TrakInfo) -> Result<RawBox<'a>, Error> {
    let mdia = child(&trak(index, info)?, b"mdia")?;
    let stbl = child(&child(&mdia, b"minf")?, b"stbl")?;
    child(&stbl, b"stsd")
}

/// The NAL unit types of an HEVC track's 'sync' sample group description
/// (ISO/IEC 14496-15: one byte per entry, its low 6 bits the type), in
/// entry order; `None` when it has none or it cannot be read.
pub(super) fn sync_nal_types(index: &Index, info: &TrakInfo) -> Option<Vec<u8>> {
    let mdia = child(&trak(index, info).ok()?, b"mdia").ok()?;
    let stbl = child(&child(&mdia, b"minf").ok()?, b"stbl").ok()?;
    let sgpd = stbl
        .children()
        .filter_map(Result::ok)
        .find(|c| &c.fourcc == b"sgpd" && c.body.get(4..8) == Some(b"sync"))?;
    sync_entries(sgpd.body)
}

/// The entries of a 'sync' `sgpd` body, each its NAL unit type.
fn sync_entries(body: &[u8]) -> Option<Vec<u8>> {
    let mut r = boxes::Reader::new(body, *b"sgpd");
    let (version, _) = r.full_box().ok()?;
    r.skip(4).ok()?;
    let default_length = if version == 1 { r.u32().ok()? } else { 1 };
    if version >= 2 {
        r.skip(4).ok()?;
    }
    let count = r.u32().ok()?;
    let mut types = Vec::new();
    for _ in 0..count {
        let length = if version == 1 && default_length == 0 {
            r.u32().ok()?
        } else {
            default_length
        };
        let entry = r.bytes(usize::try_from(length).ok()?).ok()?;
        types.push(entry.first()? & 0x3f);
    }
    Some(types)
}

pub(super) fn rendition(p: &Presentation, id: u32) -> Result<&Rendition, Error> {
    p.rendition(id)
        .ok_or_else(|| Error::Missing(format!("the film has no video or audio track {id}")))
}

/// The init segment of track `id`.
pub fn init(index: &Arc<Index>, p: &Presentation, id: u32) -> Result<Layout, Error> {
    init_with(index, p, id, None)
}

/// The init segment of track `id`, its sample entries protected (and its
/// `pssh` boxes written) when `protection` encrypts samples.
pub(super) fn init_with(
    index: &Arc<Index>,
    p: &Presentation,
    id: u32,
    protection: Option<&Protection>,
) -> Result<Layout, Error> {
    let r = rendition(p, id)?;
    let protection = protection.filter(|x| x.scheme.in_samples());
    let sealed = |stsd: &RawBox<'_>| -> Result<Option<Vec<u8>>, Error> {
        protection
            .map(|x| cenc::stsd(stsd.body, x, r.kind == Kind::Video))
            .transpose()
    };
    let mut b = Builder::new(index);
    b.write(|v| {
        let o = boxes::begin_box(v, b"ftyp");
        v.extend_from_slice(b"iso6");
        put_u32(v, 0);
        for brand in [b"iso6", b"cmfc", b"iso5", b"dash", b"mp41"] {
            v.extend_from_slice(brand);
        }
        boxes::end_box(v, o);
    });
    let root = children(&index.moov, 0)
        .next()
        .ok_or(Error::NotMp4("empty moov"))??;
    let moov = b.open(b"moov");
    let mvhd = child(&root, b"mvhd")?;
    b.copy_with(&mvhd, index.movie.duration_field, 0);
    let tr = trak(index, &r.info)?;
    let o = b.open(b"trak");
    for c in tr.children() {
        let c = c?;
        match &c.fourcc {
            b"tkhd" => {
                let h = tkhd::read(c.body)?;
                b.copy_with(&c, h.duration_field, 0);
                if !r.edits.is_empty() {
                    b.write(|v| elst::write_edts(v, &r.edits));
                }
            }
            b"mdia" => mdia(&mut b, &c, &sealed)?,
            b"edts" => {}
            _ => b.copy(&c),
        }
    }
    b.close(o)?;
    b.write(|v| {
        let mvex = boxes::begin_box(v, b"mvex");
        let mehd = boxes::begin_box(v, b"mehd");
        put_full(v, 1, 0);
        put_u64(v, p.movie_duration);
        boxes::end_box(v, mehd);
        let trex = boxes::begin_box(v, b"trex");
        put_full(v, 0, 0);
        for x in [id, 1, 0, 0, 0] {
            put_u32(v, x);
        }
        boxes::end_box(v, trex);
        boxes::end_box(v, mvex);
        if let Some(x) = protection {
            v.extend_from_slice(&cenc::pssh(x));
        }
    });
    b.close(moov)?;
    Ok(b.finish(index.clone(), stco::Map::default()))
}

/// What a protected track's `stsd` becomes (`None`: copied as it is).
type Sealed<'f> = dyn Fn(&RawBox<'_>) -> Result<Option<Vec<u8>>, Error> + 'f;

/// `mdia` and `minf` with their durations zeroed and an `stbl` of no samples.
fn mdia(b: &mut Builder<'_>, bx: &RawBox<'_>, sealed: &Sealed<'_>) -> Result<(), Error> {
    let o = b.open(&bx.fourcc);
    for c in bx.children() {
        let c = c?;
        match &c.fourcc {
            b"mdhd" => {
                let h = mdhd::read(c.body)?;
                b.copy_with(&c, h.duration_field, 0);
            }
            b"minf" => mdia(b, &c, sealed)?,
            b"stbl" => {
                let s = b.open(b"stbl");
                let stsd = child(&c, b"stsd")?;
                match sealed(&stsd)? {
                    Some(v) => b.write(|out| out.extend_from_slice(&v)),
                    None => b.copy(&stsd),
                }
                b.write(|v| {
                    for fourcc in [b"stts", b"stsc", b"stco"] {
                        let at = boxes::begin_box(v, fourcc);
                        put_full(v, 0, 0);
                        put_u32(v, 0);
                        boxes::end_box(v, at);
                    }
                    let at = boxes::begin_box(v, b"stsz");
                    put_full(v, 0, 0);
                    put_u32(v, 0);
                    put_u32(v, 0);
                    boxes::end_box(v, at);
                });
                b.close(s)?;
            }
            _ => b.copy(&c),
        }
    }
    b.close(o)
}

/// Media segment `n` (1-based) of rendition `r` of a film whose samples
/// are in its `moov`'s tables.
pub(super) fn segment(
    index: &Arc<Index>,
    r: &Rendition,
    seg: &Segment,
    n: u32,
) -> Result<Layout, Error> {
    segment_with(index, r, seg, n, |_, _| Ok(()))
}

/// [`segment`], with more boxes that `tail` appends to the `traf` (given
/// where the `moof` began).
pub(super) fn segment_with(
    index: &Arc<Index>,
    r: &Rendition,
    seg: &Segment,
    n: u32,
    tail: impl FnOnce(&mut Vec<u8>, usize) -> Result<(), Error>,
) -> Result<Layout, Error> {
    let id = r.id;
    let t = &index.tracks[r.track];
    let count = seg.end - seg.first;
    let composition = t.ctts.is_some();
    let mut stts = t.stts.cursor_at(seg.marks.0);
    let mut ctts = t.ctts.as_ref().map(|c| c.cursor_at(seg.marks.1));
    let sync = t.stss.as_deref();
    let mut next_sync = sync.map(|s| s.partition_point(|&x| u64::from(x) <= seg.first));
    let v = head(n, id, seg.time, count, composition, seg.bytes, |v| {
        for s in seg.first..seg.end {
            put_u32(v, stts.value(s));
            put_u32(v, size(t, s));
            let is_sync = match (sync, next_sync.as_mut()) {
                (Some(list), Some(i)) => {
                    let hit = list.get(*i).is_some_and(|&x| u64::from(x) == s + 1);
                    if hit {
                        *i += 1;
                    }
                    hit
                }
                _ => true,
            };
            put_u32(v, if is_sync { SYNC } else { NON_SYNC });
            if let Some(c) = ctts.as_mut() {
                put_u32(v, c.value(s));
            }
        }
    })?;
    let v = with_tail(v, tail)?;

    let mut layout = Layout::with_index(index.clone());
    layout.set_own(v.len());
    let head = bytes::Bytes::from(v);
    let head_len = head.len() as u64;
    layout.push(Stored::Bytes(head), head_len);
    let chunks = t.stsc.chunks_at(seg.first);
    let mut s = seg.first;
    for c in chunks {
        if s >= seg.end {
            break;
        }
        let chunk_end = c.first_sample.saturating_add(u64::from(c.samples));
        let upto = chunk_end.min(seg.end);
        let base = usize::try_from(c.index)
            .ok()
            .and_then(|i| t.chunk_offsets.get(i))
            .copied()
            .ok_or(Error::Invalid {
                fourcc: *b"stco",
                reason: "fewer chunk offsets than stsc uses",
            })?;
        // The index checked every chunk lies in the file.
        let offset = base + t.sizes.sum(c.first_sample, s);
        let len = t.sizes.sum(s, upto);
        layout.push(Stored::File { offset, len }, len);
        s = upto;
    }
    if s < seg.end {
        return Err(Error::Invalid {
            fourcc: *b"stsc",
            reason: "chunks hold fewer samples than stsz lists",
        });
    }
    layout.shrink();
    Ok(layout)
}

/// Bytes of the `moof` and `mdat` header [`head`] writes for `count`
/// samples, without writing them: what a segment sends besides its sample
/// bytes. `moof` 8 + `mfhd` 16 + `traf` 8 + `tfhd` 16 + `tfdt` 20 + `trun`
/// 20 and 12 per sample (16 with composition offsets) + `mdat` header 8.
pub(super) fn head_len(count: u64, composition: bool) -> u64 {
    const FIXED: u64 = 8 + 16 + 8 + 16 + 20 + 20 + 8;
    let entry = 12 + if composition { 4 } else { 0 };
    FIXED.saturating_add(count.saturating_mul(entry))
}

/// A media segment's `moof` (one `traf`, one `trun` of `count` samples
/// whose entries `entries` writes: duration, size, flags, and the
/// composition offset if `composition`) and the `mdat` header for
/// `payload` sample bytes that follow it.
pub(super) fn head(
    n: u32,
    id: u32,
    time: u64,
    count: u64,
    composition: bool,
    payload: u64,
    entries: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>, Error> {
    let count32 = u32::try_from(count)
        .map_err(|_| Error::Unsupported("a segment holds too many samples".into()))?;
    let entry = 12 + if composition { 4 } else { 0 };
    // Bounded: count by --max-segment-samples (at most
    // MAX_SEGMENT_SAMPLES_LIMIT), entry by 16.
    let mut v = Vec::with_capacity(128 + count as usize * entry);
    let moof = boxes::begin_box(&mut v, b"moof");
    let mfhd = boxes::begin_box(&mut v, b"mfhd");
    put_full(&mut v, 0, 0);
    put_u32(&mut v, n);
    boxes::end_box(&mut v, mfhd);
    let traf = boxes::begin_box(&mut v, b"traf");
    let tfhd = boxes::begin_box(&mut v, b"tfhd");
    put_full(&mut v, 0, TFHD_DEFAULT_BASE_IS_MOOF);
    put_u32(&mut v, id);
    boxes::end_box(&mut v, tfhd);
    let tfdt = boxes::begin_box(&mut v, b"tfdt");
    put_full(&mut v, 1, 0);
    put_u64(&mut v, time);
    boxes::end_box(&mut v, tfdt);
    let trun = boxes::begin_box(&mut v, b"trun");
    let flags = TRUN_DATA_OFFSET
        | TRUN_DURATION
        | TRUN_SIZE
        | TRUN_FLAGS
        | if composition { TRUN_COMPOSITION } else { 0 };
    // Version 1: composition offsets are signed, as muxers write them.
    put_full(&mut v, u8::from(composition), flags);
    put_u32(&mut v, count32);
    // Set once the moof's length is known.
    let data_offset_at = v.len();
    put_u32(&mut v, 0);
    let before = v.len();
    entries(&mut v);
    if v.len() - before != count as usize * entry {
        return Err(Error::Invalid {
            fourcc: *b"trun",
            reason: "samples differ from what the plan counted",
        });
    }
    boxes::end_box(&mut v, trun);
    boxes::end_box(&mut v, traf);
    boxes::end_box(&mut v, moof);
    let data_offset = u32::try_from(v.len() + 8)
        .map_err(|_| Error::Unsupported("a segment's moof exceeds 4 GiB".into()))?;
    v[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    let mdat_len = u32::try_from(8 + payload)
        .map_err(|_| Error::Unsupported("a segment's mdat exceeds 4 GiB".into()))?;
    put_u32(&mut v, mdat_len);
    v.extend_from_slice(b"mdat");
    Ok(v)
}

/// Adds boxes to the `traf` of a head [`head`] wrote: they go before the
/// `mdat` header, and the sizes of `moof` and `traf` and the `trun`'s
/// data offset grow by their length.
fn with_tail(
    mut v: Vec<u8>,
    tail: impl FnOnce(&mut Vec<u8>, usize) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let mdat = v.split_off(v.len().saturating_sub(8));
    let before = v.len();
    tail(&mut v, 0)?;
    let grown = v.len() - before;
    if grown > 0 {
        let grow = |v: &mut Vec<u8>, at: usize| -> Result<(), Error> {
            let field = v.get(at..at + 4).ok_or(missing(*b"moof"))?;
            let old = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
            let new = u32::try_from(grown)
                .ok()
                .and_then(|g| old.checked_add(g))
                .ok_or(Error::Unsupported("a segment's moof exceeds 4 GiB".into()))?;
            v[at..at + 4].copy_from_slice(&new.to_be_bytes());
            Ok(())
        };
        grow(&mut v, MOOF_SIZE_AT)?;
        grow(&mut v, TRAF_SIZE_AT)?;
        grow(&mut v, DATA_OFFSET_AT)?;
    }
    v.extend_from_slice(&mdat);
    Ok(v)
}

pub(super) fn size(t: &Track, s: u64) -> u32 {
    if t.sizes.fixed != 0 {
        return t.sizes.fixed;
    }
    usize::try_from(s)
        .ok()
        .and_then(|i| t.sizes.table.get(i))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_sample_group_entries() {
        // Version 1, 'sync', default length 1, 3 entries: IDR_N_LP, CRA, IDR_W_RADL.
        let body = [
            1,
            0,
            0,
            0,
            b's',
            b'y',
            b'n',
            b'c',
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            3,
            20,
            21,
            0x40 | 19,
        ];
        assert_eq!(sync_entries(&body), Some(vec![20, 21, 19]));
        // Version 1 with per-entry lengths.
        let body = [
            1, 0, 0, 0, b's', b'y', b'n', b'c', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 20, 0, 0, 0, 2,
            19, 0,
        ];
        assert_eq!(sync_entries(&body), Some(vec![20, 19]));
        // Version 2, and one claiming more entries than it holds.
        let body = [
            2, 0, 0, 0, b's', b'y', b'n', b'c', 0, 0, 0, 1, 0, 0, 0, 1, 19,
        ];
        assert_eq!(sync_entries(&body), Some(vec![19]));
        let body = [0, 0, 0, 0, b's', b'y', b'n', b'c', 0, 0, 0, 9, 20];
        assert_eq!(sync_entries(&body), None);
    }

    #[test]
    fn head_len_is_what_head_writes() {
        for composition in [false, true] {
            for count in [0u64, 1, 2, 7, 300] {
                let entry = 12 + if composition { 4 } else { 0 };
                let v = head(3, 1, 1 << 40, count, composition, 12_345, |v| {
                    v.resize(v.len() + count as usize * entry, 0)
                })
                .unwrap();
                assert_eq!(head_len(count, composition), v.len() as u64);
            }
        }
    }
}
