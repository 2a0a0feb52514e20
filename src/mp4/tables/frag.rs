//! The atoms of movie fragments: `trex` and `mehd` in the `moov`'s `mvex`,
//! and `tfhd`, `tfdt`, `trun` in each `moof`'s `traf`.

use super::mvhd::Field;
use crate::mp4::Error;
use crate::mp4::boxes::Reader;

/// `trex`: a track's default sample duration in fragments.
pub fn read_trex(body: &[u8]) -> Result<(u32, u32), Error> {
    let mut r = Reader::new(body, *b"trex");
    r.full_box()?;
    let id = r.u32()?;
    r.skip(4)?;
    Ok((id, r.u32()?))
}

/// `mehd`: where the fragmented movie's duration lies.
pub fn read_mehd(body: &[u8]) -> Result<Field, Error> {
    let mut r = Reader::new(body, *b"mehd");
    let (version, _) = r.full_box()?;
    let wide = version == 1;
    r.skip(if wide { 8 } else { 4 })?;
    Ok(Field { at: 4, wide })
}

/// `tfhd` flags (ISO/IEC 14496-12, 8.8.7.1).
const BASE_DATA_OFFSET: u32 = 0x01;
const SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const DEFAULT_DURATION: u32 = 0x08;
const DEFAULT_SIZE: u32 = 0x10;
const DEFAULT_FLAGS: u32 = 0x20;
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// `tfhd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tfhd {
    pub track_id: u32,
    /// An absolute `base_data_offset`: its position in the body, and value.
    pub base_data_offset: Option<(usize, u64)>,
    pub default_duration: Option<u32>,
    pub default_size: Option<u32>,
    pub default_flags: Option<u32>,
    /// Without a `base_data_offset`: the base is the `moof`, not the end of
    /// the previous `traf`'s data.
    pub default_base_is_moof: bool,
}

pub fn read_tfhd(body: &[u8]) -> Result<Tfhd, Error> {
    let mut r = Reader::new(body, *b"tfhd");
    let (_, flags) = r.full_box()?;
    let track_id = r.u32()?;
    let base_data_offset = if flags & BASE_DATA_OFFSET != 0 {
        Some((8, r.u64()?))
    } else {
        None
    };
    if flags & SAMPLE_DESCRIPTION_INDEX != 0 {
        r.skip(4)?;
    }
    let mut field = |bit: u32| -> Result<Option<u32>, Error> {
        Ok(if flags & bit != 0 {
            Some(r.u32()?)
        } else {
            None
        })
    };
    let default_duration = field(DEFAULT_DURATION)?;
    let default_size = field(DEFAULT_SIZE)?;
    let default_flags = field(DEFAULT_FLAGS)?;
    Ok(Tfhd {
        track_id,
        base_data_offset,
        default_duration,
        default_size,
        default_flags,
        default_base_is_moof: flags & DEFAULT_BASE_IS_MOOF != 0,
    })
}

/// What a `trun`'s samples fall back on where it has no field of its own:
/// the `tfhd`'s defaults, else the `trex`'s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

impl Defaults {
    /// These defaults, overridden by what `tfhd` sets.
    pub fn with(self, h: &Tfhd) -> Defaults {
        Defaults {
            duration: h.default_duration.unwrap_or(self.duration),
            size: h.default_size.unwrap_or(self.size),
            flags: h.default_flags.unwrap_or(self.flags),
        }
    }
}

/// One sample of a `trun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrunSample {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    /// The composition offset as stored (signed in a version 1 `trun`).
    pub cto: u32,
}

/// `trun` flags.
const DATA_OFFSET: u32 = 0x01;
const FIRST_SAMPLE_FLAGS: u32 = 0x04;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_CTO: u32 = 0x800;

/// A `trun`, checked: its per-sample fields fit its body. A `trun` without
/// per-sample fields claims `count` samples for free, so whoever walks its
/// samples bounds the walk ([`Trun::totals`] does not walk them).
#[derive(Clone, Copy, Debug)]
pub struct Trun<'a> {
    flags: u32,
    pub count: u32,
    pub data_offset: Option<i32>,
    first_flags: Option<u32>,
    entries: &'a [u8],
}

pub fn read_trun(body: &[u8]) -> Result<Trun<'_>, Error> {
    let mut r = Reader::new(body, *b"trun");
    let (_, flags) = r.full_box()?;
    let count = r.u32()?;
    let data_offset = if flags & DATA_OFFSET != 0 {
        Some(r.u32()? as i32)
    } else {
        None
    };
    let first_flags = if flags & FIRST_SAMPLE_FLAGS != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    let t = Trun {
        flags,
        count,
        data_offset,
        first_flags,
        entries: &[],
    };
    let need = (count as usize).checked_mul(t.stride());
    let entries = need.and_then(|n| r.bytes(n).ok()).ok_or(Error::Invalid {
        fourcc: *b"trun",
        reason: "sample count exceeds the box size",
    })?;
    Ok(Trun { entries, ..t })
}

impl Trun<'_> {
    /// Bytes per sample entry.
    fn stride(&self) -> usize {
        [SAMPLE_DURATION, SAMPLE_SIZE, SAMPLE_FLAGS, SAMPLE_CTO]
            .iter()
            .filter(|&&f| self.flags & f != 0)
            .count()
            * 4
    }

    /// Sample `k` (< `count`).
    pub fn sample(&self, k: u32, d: &Defaults) -> TrunSample {
        let stride = self.stride();
        let mut at = (k as usize).saturating_mul(stride);
        let mut field = |bit: u32, default: u32| {
            if self.flags & bit == 0 {
                return default;
            }
            let v = self
                .entries
                .get(at..at + 4)
                .map_or(default, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            at += 4;
            v
        };
        let duration = field(SAMPLE_DURATION, d.duration);
        let size = field(SAMPLE_SIZE, d.size);
        let flags = match (k, self.first_flags) {
            (0, Some(f)) => {
                field(SAMPLE_FLAGS, f);
                f
            }
            _ => field(SAMPLE_FLAGS, d.flags),
        };
        let cto = field(SAMPLE_CTO, 0);
        TrunSample {
            duration,
            size,
            flags,
            cto,
        }
    }

    /// Total duration and bytes of its samples: arithmetic where they take
    /// the defaults, a walk of the entries (bounded by its bytes) otherwise.
    pub fn totals(&self, d: &Defaults) -> (u64, u64) {
        let n = u64::from(self.count);
        let per = |bit: u32, default: u32| -> Option<u64> {
            (self.flags & bit == 0).then(|| n.saturating_mul(u64::from(default)))
        };
        match (per(SAMPLE_DURATION, d.duration), per(SAMPLE_SIZE, d.size)) {
            (Some(duration), Some(size)) => (duration, size),
            (duration, size) => {
                let (mut dur, mut bytes) = (0u64, 0u64);
                for k in 0..self.count {
                    let s = self.sample(k, d);
                    dur = dur.saturating_add(u64::from(s.duration));
                    bytes = bytes.saturating_add(u64::from(s.size));
                }
                (duration.unwrap_or(dur), size.unwrap_or(bytes))
            }
        }
    }
}

/// Per-track defaults of a `moov`'s `trex`es (`moov` the whole box), by
/// track id, sorted.
pub fn trex_defaults(moov: &[u8]) -> Result<Vec<(u32, Defaults)>, Error> {
    let root = crate::mp4::boxes::children(moov, 0)
        .next()
        .ok_or(Error::NotMp4("empty moov"))??;
    let mut out = Vec::new();
    for b in root.children() {
        let b = b?;
        if &b.fourcc != b"mvex" {
            continue;
        }
        for c in b.children() {
            let c = c?;
            if &c.fourcc == b"trex" {
                let mut r = crate::mp4::boxes::Reader::new(c.body, *b"trex");
                r.full_box()?;
                let id = r.u32()?;
                r.skip(4)?;
                let (duration, size, flags) = (r.u32()?, r.u32()?, r.u32()?);
                out.push((
                    id,
                    Defaults {
                        duration,
                        size,
                        flags,
                    },
                ));
            }
        }
    }
    out.sort_unstable_by_key(|t| t.0);
    Ok(out)
}

/// The runs of one `traf`, where their data lies by the standard's rules.
#[derive(Clone, Debug)]
pub struct Traf<'a> {
    pub tfhd: Tfhd,
    pub tfdt: Option<u64>,
    pub defaults: Defaults,
    /// Where its data begins, by the rules above.
    pub base: u64,
    /// Each `trun` and the file offset of its first sample's data.
    pub runs: Vec<(Trun<'a>, u64)>,
    /// Where its data ends: the base of a next `traf` without one of its own.
    pub end: u64,
}

/// The `traf`s of a `moof` at `moof_offset` in the file, parsed once for
/// all tracks. A `traf` without `base_data_offset` starts at the `moof`
/// when it is the first or says `default-base-is-moof`, else where the
/// previous `traf`'s data ended; a `trun` without `data_offset` follows the
/// previous `trun` of its `traf` (ISO/IEC 14496-12, 8.8.7.1 and 8.8.8.1).
pub fn read_trafs<'a>(
    moof: &crate::mp4::boxes::RawBox<'a>,
    moof_offset: u64,
    trex: impl Fn(u32) -> Defaults,
) -> Result<Vec<Traf<'a>>, Error> {
    let bad = |reason| Error::Invalid {
        fourcc: *b"trun",
        reason,
    };
    let mut out: Vec<Traf<'a>> = Vec::new();
    for traf in moof.children() {
        let traf = traf?;
        if &traf.fourcc != b"traf" {
            continue;
        }
        let mut t: Option<Traf<'a>> = None;
        for b in traf.children() {
            let b = b?;
            match &b.fourcc {
                b"tfhd" => {
                    let tfhd = read_tfhd(b.body)?;
                    let base = match tfhd.base_data_offset {
                        Some((_, v)) => v,
                        None if tfhd.default_base_is_moof => moof_offset,
                        None => out.last().map_or(moof_offset, |p| p.end),
                    };
                    t = Some(Traf {
                        defaults: trex(tfhd.track_id).with(&tfhd),
                        tfhd,
                        tfdt: None,
                        base,
                        runs: Vec::new(),
                        end: base,
                    });
                }
                b"tfdt" => {
                    if let Some(t) = t.as_mut() {
                        t.tfdt.get_or_insert(read_tfdt(b.body)?.time);
                    }
                }
                b"trun" => {
                    let t = t.as_mut().ok_or(bad("a trun before its tfhd"))?;
                    let run = read_trun(b.body)?;
                    // Without an offset, a run follows the one before it
                    // (the first starts at the base, where `end` stands).
                    let at = match run.data_offset {
                        Some(off) => t
                            .base
                            .checked_add_signed(i64::from(off))
                            .ok_or(bad("data offset before the file"))?,
                        None => t.end,
                    };
                    let (_, bytes) = run.totals(&t.defaults);
                    t.end = at.checked_add(bytes).ok_or(bad("data past 2^64"))?;
                    t.runs.push((run, at));
                }
                _ => {}
            }
        }
        out.extend(t);
    }
    Ok(out)
}

/// `tfdt`: the decode time of a fragment's first sample, and its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tfdt {
    pub time: u64,
    pub field: Field,
}

pub fn read_tfdt(body: &[u8]) -> Result<Tfdt, Error> {
    let mut r = Reader::new(body, *b"tfdt");
    let (version, _) = r.full_box()?;
    let wide = version == 1;
    let time = if wide { r.u64()? } else { u64::from(r.u32()?) };
    Ok(Tfdt {
        time,
        field: Field { at: 4, wide },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfhd_fields_follow_the_flags() {
        let mut b = vec![0, 0, 0, 0x09];
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&77u64.to_be_bytes());
        b.extend_from_slice(&1024u32.to_be_bytes());
        let t = read_tfhd(&b).unwrap();
        assert_eq!(t.track_id, 3);
        assert_eq!(t.base_data_offset, Some((8, 77)));
        assert_eq!(t.default_duration, Some(1024));
        assert!(read_tfhd(&b[..10]).is_err());
    }

    fn bx(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32 + 8).to_be_bytes().to_vec();
        v.extend_from_slice(fourcc);
        v.extend_from_slice(body);
        v
    }

    fn words(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn trafs_of(moof: &[u8], at: u64) -> Vec<Traf<'_>> {
        let m = crate::mp4::boxes::children(moof, 0)
            .next()
            .unwrap()
            .unwrap();
        read_trafs(&m, at, |_| Defaults {
            duration: 1000,
            size: 7,
            flags: 0,
        })
        .unwrap()
    }

    #[test]
    fn a_traf_without_a_base_follows_the_previous_trafs_data() {
        // Track 1: 3 samples of 100 bytes at data offset 200 from the moof;
        // track 2: no base, no default-base-is-moof, no data offset: its data
        // begins where track 1's ended (14496-12 8.8.7.1).
        let t1 = bx(
            b"traf",
            &[
                bx(b"tfhd", &words(&[0x10, 1, 100])),
                bx(b"trun", &words(&[0x01, 3, 200])),
            ]
            .concat(),
        );
        let t2 = bx(
            b"traf",
            &[
                bx(b"tfhd", &words(&[0, 2])),
                bx(b"trun", &words(&[0x200, 2, 50, 60])),
                // A second run follows the first.
                bx(b"trun", &words(&[0, 4])),
            ]
            .concat(),
        );
        let moof = bx(b"moof", &[t1, t2.clone()].concat());
        let t = trafs_of(&moof, 5000);
        assert_eq!(t[0].runs[0].1, 5200);
        assert_eq!(t[0].end, 5500);
        assert_eq!(t[1].base, 5500);
        assert_eq!(
            (t[1].runs[0].1, t[1].runs[1].1, t[1].end),
            (5500, 5610, 5638)
        );
        // With default-base-is-moof, the base is the moof again.
        let t2 = bx(
            b"traf",
            &[
                bx(b"tfhd", &words(&[0x02_0000, 2])),
                bx(b"trun", &words(&[0, 1])),
            ]
            .concat(),
        );
        let moof = bx(
            b"moof",
            &[bx(b"traf", &bx(b"tfhd", &words(&[0, 1]))), t2].concat(),
        );
        assert_eq!(trafs_of(&moof, 5000)[1].runs[0].1, 5000);
    }

    #[test]
    fn a_trun_of_defaults_totals_without_a_walk() {
        // 2^32 - 1 samples in 8 bytes: summed, never walked.
        let body = words(&[0, u32::MAX]);
        let run = read_trun(&body).unwrap();
        let d = Defaults {
            duration: 3,
            size: 5,
            flags: 0,
        };
        let at = std::time::Instant::now();
        assert_eq!(
            run.totals(&d),
            (u64::from(u32::MAX) * 3, u64::from(u32::MAX) * 5)
        );
        assert!(at.elapsed() < std::time::Duration::from_millis(50));
        // Per-sample fields must fit the box.
        assert!(read_trun(&words(&[0x100, 1000, 1])).is_err());
        let body = words(&[0x304, 2, 9, 10, 11, 20, 21]);
        let run = read_trun(&body).unwrap();
        assert_eq!(run.sample(0, &d).flags, 9, "first-sample-flags");
        assert_eq!(
            (run.sample(1, &d).duration, run.sample(1, &d).size),
            (20, 21)
        );
        assert_eq!(run.totals(&d), (30, 32));
    }

    #[test]
    fn trun_durations() {
        // Two samples with explicit durations and sizes.
        let mut b = vec![0, 0, 0x03, 0];
        b.extend_from_slice(&2u32.to_be_bytes());
        for (d, s) in [(512u32, 10u32), (1024, 20)] {
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&s.to_be_bytes());
        }
        let d = Defaults::default();
        assert_eq!(read_trun(&b).unwrap().totals(&d), (1536, 30));
        let mut lying = b.clone();
        lying[7] = 200;
        assert!(read_trun(&lying).is_err());
        let defaults = [0, 0, 0, 0, 0, 0, 0, 5];
        let d = Defaults { duration: 100, ..d };
        assert_eq!(read_trun(&defaults).unwrap().totals(&d).0, 500);
    }
}
