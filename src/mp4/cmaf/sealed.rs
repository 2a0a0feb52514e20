//! Protected media segments: the clear segment's samples read, encrypted
//! in memory, and sent after a `moof` that carries their IVs and
//! subsamples. Encrypted bytes cannot go out as file spans, so a sealed
//! segment is held whole; [`MAX_SEALED_BYTES`] bounds it.

use super::write::{self, rendition, stsd};
use super::{Kind, Presentation};
use crate::mp4::boxes::children;
use crate::mp4::cenc::{self, Aux, Protection, Scheme, Subsample, Subsamples};
use crate::mp4::index::Index;
use crate::mp4::layout::{Layout, Stored};
use crate::mp4::nal::Codec;
use crate::mp4::{Error, ReadAt};
use bytes::Bytes;
use std::sync::Arc;

/// Largest media segment that is encrypted (its sample bytes): beyond it
/// the film needs shorter segments.
pub const MAX_SEALED_BYTES: u64 = 64 << 20;

/// The init segment of track `id` under `protection`.
pub fn init(
    index: &Arc<Index>,
    p: &Presentation,
    id: u32,
    protection: &Protection,
) -> Result<Layout, Error> {
    write::init_with(index, p, id, Some(protection))
}

/// Media segment `n` of track `id`, encrypted; `src` is the film.
pub fn segment(
    index: &Arc<Index>,
    p: &Presentation,
    n: u32,
    id: u32,
    protection: &Protection,
    src: &dyn ReadAt,
) -> Result<Layout, Error> {
    let clear = super::segment(index, p, n, id)?;
    if clear.len() > MAX_SEALED_BYTES {
        return Err(Error::Unsupported(format!(
            "segment {n} of track {id} holds {} MB, more than the {} MB a segment may \
             have to be encrypted; set a shorter --segment-duration",
            clear.len() >> 20,
            MAX_SEALED_BYTES >> 20
        )));
    }
    if protection.scheme == Scheme::Aes128 {
        return whole(&clear, protection, n, src);
    }
    if index.fragments.is_some() {
        return Err(Error::Unsupported(
            "encrypting a fragmented film's segments is not supported; serve it clear \
             or give it a moov with its samples (ffmpeg -movflags +faststart)"
                .into(),
        ));
    }
    let r = rendition(p, id)?;
    let seg = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|k| r.segments.get(k))
        .ok_or_else(|| Error::Missing(format!("track {id} has no segment {n}")))?;
    let data = samples(&clear, seg.bytes, src)?;
    let mut data = data;
    if data.len() as u64 != seg.bytes {
        return Err(Error::Invalid {
            fourcc: *b"stsz",
            reason: "sample sizes differ from the segment's bytes",
        });
    }
    let t = index
        .tracks
        .get(r.track)
        .ok_or(Error::Missing(format!("track {id}")))?;
    let mut maker = match r.kind {
        Kind::Video => Some(video(index, r, protection.scheme)?),
        Kind::Audio => None,
    };
    let constant = protection.constant_iv();
    let mut subsamples: Vec<Vec<Subsample>> = Vec::new();
    let mut ivs: Vec<Option<[u8; 8]>> = Vec::new();
    let mut at = 0usize;
    for s in seg.first..seg.end {
        let size = usize::try_from(write::size(t, s)).unwrap_or(usize::MAX);
        let sample = data
            .get_mut(at..at.saturating_add(size))
            .ok_or(Error::Invalid {
                fourcc: *b"stsz",
                reason: "a sample runs past its segment",
            })?;
        at += size;
        let subs = match maker.as_mut() {
            Some(m) => m.of(sample)?,
            None => Vec::new(),
        };
        let (iv, iv16) = match protection.scheme {
            Scheme::Cenc => {
                let iv = cenc::sample_iv(&protection.key, &protection.salt, id, s);
                let mut iv16 = [0u8; 16];
                iv16[..8].copy_from_slice(&iv);
                (Some(iv), iv16)
            }
            _ => (None, constant),
        };
        cenc::encrypt_sample(protection.scheme, &protection.key, &iv16, sample, &subs);
        subsamples.push(subs);
        ivs.push(iv);
    }
    let aux: Vec<Aux<'_>> = (ivs.iter().zip(&subsamples))
        .map(|(iv, subsamples)| Aux {
            iv: *iv,
            subsamples,
        })
        .collect();
    let layout = write::segment_with(index, r, seg, n, |v, moof| cenc::write_aux(v, moof, &aux))?;
    let head = layout.slices(0..layout.head_len());
    let mut out = Vec::with_capacity(data.len() + 4096);
    for s in head {
        if let crate::mp4::Slice::Bytes(b) = s {
            out.extend_from_slice(&b);
        }
    }
    out.extend_from_slice(&data);
    Ok(held(out))
}

/// The sample bytes of a clear segment, in order: its file spans. Spans
/// that lie close together (an interleaved film's) are read as one range,
/// one request to a store rather than a hundred.
fn samples(clear: &Layout, bytes: u64, src: &dyn ReadAt) -> Result<Vec<u8>, Error> {
    let spans: Vec<(u64, u64)> = clear
        .slices(0..clear.len())
        .filter_map(|s| match s {
            crate::mp4::Slice::File { offset, len } => Some((offset, len)),
            _ => None,
        })
        .collect();
    let huge = || Error::Unsupported("a segment too large to encrypt".into());
    let mut data = Vec::with_capacity(usize::try_from(bytes).map_err(|_| huge())?);
    let lo = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let hi = spans
        .iter()
        .map(|s| s.0.saturating_add(s.1))
        .max()
        .unwrap_or(0);
    let dense = hi - lo <= bytes.saturating_mul(2).saturating_add(1 << 20);
    if dense && hi > lo {
        let mut range = vec![0u8; usize::try_from(hi - lo).map_err(|_| huge())?];
        src.read_exact_at(&mut range, lo)?;
        for (offset, len) in spans {
            let at = usize::try_from(offset - lo).map_err(|_| huge())?;
            let n = usize::try_from(len).map_err(|_| huge())?;
            data.extend_from_slice(range.get(at..at + n).ok_or_else(huge)?);
        }
        return Ok(data);
    }
    for (offset, len) in spans {
        let at = data.len();
        data.resize(at + usize::try_from(len).map_err(|_| huge())?, 0);
        src.read_exact_at(&mut data[at..], offset)?;
    }
    Ok(data)
}

/// HLS AES-128: the clear segment, read whole and encrypted as one.
fn whole(
    clear: &Layout,
    protection: &Protection,
    n: u32,
    src: &dyn ReadAt,
) -> Result<Layout, Error> {
    let mut plain = Vec::with_capacity(usize::try_from(clear.len()).unwrap_or(0));
    clear.copy_to(0..clear.len(), src, &mut plain)?;
    let iv = cenc::sequence_iv(u64::from(n));
    Ok(held(cenc::whole_segment(&protection.key, &iv, &plain)))
}

fn held(v: Vec<u8>) -> Layout {
    let len = v.len() as u64;
    let mut l = Layout::new();
    l.set_own(v.len());
    l.push(Stored::Bytes(Bytes::from(v)), len);
    l
}

/// The subsample maker of a video rendition, from its sample entry.
fn video(index: &Index, r: &super::Rendition, scheme: Scheme) -> Result<Subsamples, Error> {
    let stsd = stsd(index, &r.info)?;
    let entry = children(stsd.body.get(8..).unwrap_or(&[]), 0)
        .next()
        .ok_or(Error::Invalid {
            fourcc: *b"stsd",
            reason: "no sample entry",
        })??;
    let codec = match &entry.fourcc {
        b"avc1" | b"avc3" => Codec::Avc,
        b"hvc1" | b"hev1" => Codec::Hevc,
        other => {
            return Err(Error::Unsupported(format!(
                "encrypting '{}' video is not supported (H.264 and HEVC are)",
                crate::mp4::error::fourcc_str(other)
            )));
        }
    };
    // Visual sample entries: 78 bytes of fields, then their boxes.
    let config = children(entry.body.get(78..).unwrap_or(&[]), 0)
        .filter_map(Result::ok)
        .find(|c| matches!(&c.fourcc, b"avcC" | b"hvcC"))
        .ok_or(Error::Invalid {
            fourcc: entry.fourcc,
            reason: "no avcC or hvcC",
        })?;
    Subsamples::new(codec, config.body, scheme)
}
