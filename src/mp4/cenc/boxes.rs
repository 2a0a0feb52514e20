//! The boxes of common encryption: a protected sample entry (`encv`/`enca`
//! with `sinf`: `frma`, `schm`, `schi`/`tenc`), `pssh`, and a fragment's
//! sample auxiliary information (`saiz`, `saio`, `senc`).

use super::cipher::{CRYPT_BLOCKS, SKIP_BLOCKS};
use super::{COMMON_SYSTEM, Protection, Scheme, Subsample};
use crate::mp4::Error;
use crate::mp4::boxes::{self, children};
use crate::mp4::tables::{put_full, put_u32};

/// `senc` flag: the entries carry subsamples.
const SENC_SUBSAMPLES: u32 = 0x2;

fn unsupported(reason: &str) -> Error {
    Error::Unsupported(format!("cannot encrypt this track: {reason}"))
}

/// The `stsd` box of a protected track, from the clear one's body: every
/// sample entry renamed `encv` (video) or `enca` (audio), its original
/// format kept in an `sinf` appended to it.
pub fn stsd(body: &[u8], p: &Protection, video: bool) -> Result<Vec<u8>, Error> {
    let head = body.get(..8).ok_or(Error::Invalid {
        fourcc: *b"stsd",
        reason: "shorter than its header",
    })?;
    let mut v = Vec::with_capacity(body.len() + 128);
    let stsd = boxes::begin_box(&mut v, b"stsd");
    v.extend_from_slice(head);
    for entry in children(&body[8..], 0) {
        let entry = entry?;
        if entry.bytes.len() != entry.body.len() + 8 {
            return Err(unsupported("a sample entry with a 64-bit size"));
        }
        let at = boxes::begin_box(&mut v, if video { b"encv" } else { b"enca" });
        v.extend_from_slice(entry.body);
        sinf(&mut v, entry.fourcc, p, video);
        boxes::end_box(&mut v, at);
    }
    boxes::end_box(&mut v, stsd);
    Ok(v)
}

fn sinf(v: &mut Vec<u8>, original: [u8; 4], p: &Protection, video: bool) {
    let sinf = boxes::begin_box(v, b"sinf");
    let frma = boxes::begin_box(v, b"frma");
    v.extend_from_slice(&original);
    boxes::end_box(v, frma);
    let schm = boxes::begin_box(v, b"schm");
    put_full(v, 0, 0);
    v.extend_from_slice(&p.scheme.fourcc());
    put_u32(v, 0x0001_0000);
    boxes::end_box(v, schm);
    let schi = boxes::begin_box(v, b"schi");
    let tenc = boxes::begin_box(v, b"tenc");
    match p.scheme {
        Scheme::Cbcs => {
            put_full(v, 1, 0);
            v.push(0);
            // Audio: no pattern (whole blocks), as CMAF has it.
            let pattern = if video {
                ((CRYPT_BLOCKS as u8) << 4) | SKIP_BLOCKS as u8
            } else {
                0
            };
            v.extend_from_slice(&[pattern, 1, 0]);
            v.extend_from_slice(&p.kid);
            v.push(16);
            v.extend_from_slice(&p.constant_iv());
        }
        _ => {
            put_full(v, 0, 0);
            v.extend_from_slice(&[0, 0, 1, 8]);
            v.extend_from_slice(&p.kid);
        }
    }
    boxes::end_box(v, tenc);
    boxes::end_box(v, schi);
    boxes::end_box(v, sinf);
}

/// The `pssh` boxes of an init segment: the common system's (its key id,
/// what Clear Key and EME's "cenc" init data read), then each configured
/// system's with its own data.
pub fn pssh(p: &Protection) -> Vec<u8> {
    pssh_boxes(p).into_iter().flat_map(|(_, b)| b).collect()
}

/// Each system's `pssh` box, with its system id, in [`pssh`]'s order.
pub fn pssh_boxes(p: &Protection) -> Vec<([u8; 16], Vec<u8>)> {
    let mut out = Vec::new();
    let mut v = Vec::new();
    let at = boxes::begin_box(&mut v, b"pssh");
    put_full(&mut v, 1, 0);
    v.extend_from_slice(&COMMON_SYSTEM);
    put_u32(&mut v, 1);
    v.extend_from_slice(&p.kid);
    put_u32(&mut v, 0);
    boxes::end_box(&mut v, at);
    out.push((COMMON_SYSTEM, v));
    for s in p.systems.iter().filter(|s| s.id != COMMON_SYSTEM) {
        let Ok(len) = u32::try_from(s.data.len()) else {
            continue;
        };
        let mut v = Vec::new();
        let at = boxes::begin_box(&mut v, b"pssh");
        put_full(&mut v, 0, 0);
        v.extend_from_slice(&s.id);
        put_u32(&mut v, len);
        v.extend_from_slice(&s.data);
        boxes::end_box(&mut v, at);
        out.push((s.id, v));
    }
    out
}

/// What one sample carries in `senc`.
pub(crate) struct Aux<'a> {
    /// `cenc`: the sample's IV; `cbcs` has none (the constant IV).
    pub iv: Option<[u8; 8]>,
    /// Empty: the whole sample is protected.
    pub subsamples: &'a [Subsample],
}

fn entry_len(a: &Aux<'_>, with_subsamples: bool) -> usize {
    let iv = if a.iv.is_some() { 8 } else { 0 };
    iv + if with_subsamples {
        2 + 6 * a.subsamples.len()
    } else {
        0
    }
}

/// Bytes [`write_aux`] adds to a `traf` for `samples`.
#[cfg(test)]
fn aux_len(samples: &[Aux<'_>]) -> usize {
    let with = samples.iter().any(|a| !a.subsamples.is_empty());
    if !with && samples.iter().all(|a| a.iv.is_none()) {
        return 0;
    }
    let sizes = if uniform(samples, with).is_some() {
        0
    } else {
        samples.len()
    };
    let saiz = 12 + 1 + 4 + sizes;
    let saio = 12 + 4 + 4;
    let senc = 12 + 4 + samples.iter().map(|a| entry_len(a, with)).sum::<usize>();
    saiz + saio + senc
}

fn uniform(samples: &[Aux<'_>], with: bool) -> Option<u8> {
    let first = samples.first().map_or(0, |a| entry_len(a, with));
    let same = samples.iter().all(|a| entry_len(a, with) == first);
    // 0 would say "sizes follow".
    if same && first > 0 {
        u8::try_from(first).ok()
    } else {
        None
    }
}

/// Appends `saiz`, `saio` and `senc` to a `traf` being written into `v`,
/// whose `moof` began at `moof`: `saio` points at the first entry of
/// `senc`, counted from the `moof` (the `tfhd` says default-base-is-moof).
pub(crate) fn write_aux(v: &mut Vec<u8>, moof: usize, samples: &[Aux<'_>]) -> Result<(), Error> {
    let with = samples.iter().any(|a| !a.subsamples.is_empty());
    // `cbcs` audio: no IVs (the constant one) and no subsamples, so no
    // auxiliary information; `tenc` says it all (CMAF 8.2.2.2).
    if !with && samples.iter().all(|a| a.iv.is_none()) {
        return Ok(());
    }
    let count = u32::try_from(samples.len()).map_err(|_| unsupported("too many samples"))?;
    let saiz = boxes::begin_box(v, b"saiz");
    put_full(v, 0, 0);
    match uniform(samples, with) {
        Some(n) => {
            v.push(n);
            put_u32(v, count);
        }
        None => {
            v.push(0);
            put_u32(v, count);
            for a in samples {
                let n = u8::try_from(entry_len(a, with))
                    .map_err(|_| unsupported("a sample of more than 40 subsamples"))?;
                v.push(n);
            }
        }
    }
    boxes::end_box(v, saiz);
    let saio = boxes::begin_box(v, b"saio");
    put_full(v, 0, 0);
    put_u32(v, 1);
    // saio (20 bytes) then senc's header (16) precede the first entry.
    let first = v.len() + 4 + 16 - moof;
    put_u32(
        v,
        u32::try_from(first).map_err(|_| unsupported("a moof of 4 GiB"))?,
    );
    boxes::end_box(v, saio);
    let senc = boxes::begin_box(v, b"senc");
    put_full(v, 0, if with { SENC_SUBSAMPLES } else { 0 });
    put_u32(v, count);
    for a in samples {
        if let Some(iv) = a.iv {
            v.extend_from_slice(&iv);
        }
        if with {
            let n = u16::try_from(a.subsamples.len())
                .map_err(|_| unsupported("a sample of 65536 subsamples"))?;
            v.extend_from_slice(&n.to_be_bytes());
            for s in a.subsamples {
                v.extend_from_slice(&s.clear.to_be_bytes());
                put_u32(v, s.protected);
            }
        }
    }
    boxes::end_box(v, senc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection(scheme: Scheme) -> Protection {
        Protection {
            scheme,
            kid: [0x11; 16],
            key: [0x22; 16],
            salt: *b"saltsalt",
            systems: vec![],
        }
    }

    #[test]
    fn aux_len_is_what_write_aux_writes() {
        let subs = [
            Subsample {
                clear: 5,
                protected: 32,
            },
            Subsample {
                clear: 7,
                protected: 0,
            },
        ];
        let one = &subs[..1];
        for samples in [
            vec![Aux {
                iv: Some([1; 8]),
                subsamples: &[],
            }],
            vec![
                Aux {
                    iv: Some([1; 8]),
                    subsamples: &subs,
                },
                Aux {
                    iv: Some([2; 8]),
                    subsamples: one,
                },
            ],
            vec![Aux {
                iv: None,
                subsamples: &subs,
            }],
            vec![],
        ] {
            let mut v = vec![0; 40];
            write_aux(&mut v, 8, &samples).unwrap();
            assert_eq!(v.len() - 40, aux_len(&samples));
            if samples.is_empty() {
                continue;
            }
            // saio's offset names the byte after senc's sample count.
            let senc = v.windows(4).position(|w| w == b"senc").unwrap() - 4;
            let saio_at = v.windows(4).position(|w| w == b"saio").unwrap() - 4;
            let got = u32::from_be_bytes(v[saio_at + 16..saio_at + 20].try_into().unwrap());
            assert_eq!(got as usize, senc + 16 - 8);
        }
    }

    #[test]
    fn protected_entries_keep_their_format_in_sinf() {
        // stsd: version/flags, one entry 'avc1' with a 4-byte body.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 1];
        body.extend_from_slice(&[0, 0, 0, 12, b'a', b'v', b'c', b'1', 1, 2, 3, 4]);
        for scheme in [Scheme::Cenc, Scheme::Cbcs] {
            let out = stsd(&body, &protection(scheme), true).unwrap();
            assert_eq!(&out[4..8], b"stsd");
            assert_eq!(
                u32::from_be_bytes(out[..4].try_into().unwrap()) as usize,
                out.len()
            );
            assert_eq!(&out[20..24], b"encv");
            assert_eq!(&out[24..28], &[1, 2, 3, 4]);
            let frma = out.windows(4).position(|w| w == b"frma").unwrap();
            assert_eq!(&out[frma + 4..frma + 8], b"avc1");
            let tenc = out.windows(4).position(|w| w == b"tenc").unwrap();
            let version = out[tenc + 4];
            assert_eq!(version, u8::from(scheme == Scheme::Cbcs));
        }
    }
}
