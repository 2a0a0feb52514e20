//! Fragmented MP4 (`moof` + `mdat` pairs), index side: the list of fragments
//! with their times on the reference track, and every `moof`'s bytes, kept so
//! that a window's fragments go out with their `tfhd` base offsets and
//! `tfdt` decode times rewritten while the media stays in the file.

use super::boxes::{RawBox, TopBox, children};
use super::tables::frag;
use super::trak::TrakInfo;
use super::{Error, ReadAt};
use bytes::Bytes;
use std::ops::Range;

/// The fragments of a file, timed on its reference track.
#[derive(Debug)]
pub(crate) struct Fragments {
    pub list: Vec<Fragment>,
    /// Every `moof`, in file order.
    pub moofs: Bytes,
    /// Fields rewritten when fragments move, per fragment in `Fragment::patches`.
    pub patches: Vec<Patch>,
    /// The reference track: the first video track, else the first track.
    pub reference: TrakInfo,
    /// Where each track's presentation ends, in its own timescale.
    ends: Vec<(u32, u64)>,
    traks: Vec<TrakInfo>,
}

#[derive(Debug)]
pub(crate) struct Fragment {
    /// The `moof` in the file, and its bytes in `Fragments::moofs`.
    pub offset: u64,
    pub moof: Range<usize>,
    /// The end of the media boxes that follow the `moof`.
    pub end: u64,
    /// Bytes of all fragments before this one.
    pub before: u64,
    /// Decode time and duration on the reference track (media timescale).
    pub start: u64,
    pub duration: u64,
    pub patches: Range<usize>,
}

impl Fragment {
    pub fn len(&self) -> u64 {
        self.end - self.offset
    }
}

/// A field of a `moof` that moves with it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patch {
    /// Position in the `moof`.
    pub at: usize,
    pub kind: PatchKind,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum PatchKind {
    /// An absolute `tfhd` base_data_offset.
    BaseDataOffset(u64),
    /// A `tfdt` decode time of a track.
    DecodeTime { track: u32, time: u64, wide: bool },
}

/// Per-track defaults the init `moov` gives fragments.
fn trex_defaults(moov: &[u8]) -> Result<Vec<(u32, u32)>, Error> {
    let mut out = Vec::new();
    let Some(root) = children(moov, 0).next().transpose()? else {
        return Ok(out);
    };
    for b in root.children() {
        let b = b?;
        if &b.fourcc == b"mvex" {
            for c in b.children() {
                let c = c?;
                if &c.fourcc == b"trex" {
                    out.push(frag::read_trex(c.body)?);
                }
            }
        }
    }
    Ok(out)
}

/// What one `traf` says: its track, decode time and duration, and patches.
struct Traf {
    track: u32,
    decode_time: Option<u64>,
    duration: u64,
}

fn read_traf(
    traf: &RawBox<'_>,
    defaults: &[(u32, u32)],
    patches: &mut Vec<Patch>,
) -> Result<Traf, Error> {
    let mut t = Traf {
        track: 0,
        decode_time: None,
        duration: 0,
    };
    let mut default = frag::Defaults::default();
    for b in traf.children() {
        let b = b?;
        match &b.fourcc {
            b"tfhd" => {
                let h = frag::read_tfhd(b.body)?;
                t.track = h.track_id;
                // Sorted by id: a film of many tracks costs no scan per traf.
                let trex = (defaults.binary_search_by_key(&h.track_id, |d| d.0))
                    .map_or(0, |i| defaults[i].1);
                default = frag::Defaults {
                    duration: trex,
                    ..Default::default()
                }
                .with(&h);
                if let Some((at, value)) = h.base_data_offset {
                    patches.push(Patch {
                        at: b.body_start() + at,
                        kind: PatchKind::BaseDataOffset(value),
                    });
                }
            }
            b"tfdt" => {
                let d = frag::read_tfdt(b.body)?;
                t.decode_time = Some(d.time);
                patches.push(Patch {
                    at: b.body_start() + d.field.at,
                    kind: PatchKind::DecodeTime {
                        track: t.track,
                        time: d.time,
                        wide: d.field.wide,
                    },
                });
            }
            b"trun" => {
                t.duration = t
                    .duration
                    .saturating_add(frag::read_trun(b.body)?.totals(&default).0);
            }
            _ => {}
        }
    }
    Ok(t)
}

/// Lists the fragments, or `None` for a file without `moof`. The `moof`s
/// together may take at most `max_moof` bytes.
pub(crate) fn scan(
    top: &[TopBox],
    moov: &[u8],
    traks: &[TrakInfo],
    src: &dyn ReadAt,
    max_moof: u64,
) -> Result<Option<Fragments>, Error> {
    if !top.iter().any(|b| &b.fourcc == b"moof") {
        return Ok(None);
    }
    let reference = *traks
        .iter()
        .find(|t| t.is_video())
        .or(traks.first())
        .ok_or(Error::Invalid {
            fourcc: *b"moov",
            reason: "fragmented file without tracks",
        })?;
    let mut defaults = trex_defaults(moov)?;
    defaults.sort_unstable_by_key(|d| d.0);
    let mut list: Vec<Fragment> = Vec::new();
    let mut moofs = Vec::new();
    let mut patches = Vec::new();
    let mut ends: Vec<(u32, u64)> = traks.iter().map(|t| (t.id, 0)).collect();
    ends.sort_unstable_by_key(|e| e.0);
    let mut next_time = 0u64;
    let mut before = 0u64;
    for (i, b) in top.iter().enumerate() {
        if &b.fourcc != b"moof" {
            continue;
        }
        if moofs.len() as u64 + b.size > max_moof {
            return Err(Error::Unsupported(format!(
                "the moof boxes total more than {max_moof} bytes"
            )));
        }
        let at = moofs.len();
        // Bounded by max_moof just above.
        moofs.resize(at + b.size as usize, 0);
        src.read_exact_at(&mut moofs[at..], b.offset)?;
        let first_patch = patches.len();
        let mut timing = None;
        let moof = children(&moofs[at..], 0)
            .next()
            .transpose()?
            .ok_or(Error::NotMp4("empty moof"))?;
        for traf in moof.children() {
            let traf = traf?;
            if &traf.fourcc != b"traf" {
                continue;
            }
            let t = read_traf(&traf, &defaults, &mut patches)?;
            if let Ok(i) = ends.binary_search_by_key(&t.track, |e| e.0) {
                let e = &mut ends[i];
                let start = t.decode_time.unwrap_or(e.1);
                e.1 = start.saturating_add(t.duration);
            }
            if t.track == reference.id && timing.is_none() {
                timing = Some((t.decode_time.unwrap_or(next_time), t.duration));
            }
        }
        let end = fragment_end(top, i);
        let (start, duration) = timing.unwrap_or((next_time, 0));
        next_time = start.saturating_add(duration);
        list.push(Fragment {
            offset: b.offset,
            moof: at..moofs.len(),
            end,
            before,
            start,
            duration,
            patches: first_patch..patches.len(),
        });
        before += end - b.offset;
    }
    Ok(Some(Fragments {
        list,
        moofs: Bytes::from(moofs),
        patches,
        reference,
        ends,
        traks: traks.to_vec(),
    }))
}

impl Fragments {
    /// Seconds of presentation at reference decode time `t`.
    pub fn seconds(&self, t: u64) -> f64 {
        (t as f64 - self.reference.edit.media_time as f64) / f64::from(self.reference.timescale)
    }

    pub fn duration(&self) -> f64 {
        self.list
            .iter()
            .map(|f| self.seconds(f.start.saturating_add(f.duration)))
            .fold(0.0, f64::max)
    }

    /// A track's duration in seconds, from its fragments.
    pub fn track_duration(&self, id: u32) -> f64 {
        let Some(t) = self.traks.iter().find(|t| t.id == id) else {
            return 0.0;
        };
        let end = self.ends.iter().find(|e| e.0 == id).map_or(0, |e| e.1);
        (end as f64 - t.edit.media_time as f64).max(0.0) / f64::from(t.timescale)
    }

    pub fn heap_bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Fragment>()
            + self.moofs.len()
            + self.patches.capacity() * std::mem::size_of::<Patch>()
    }
}

/// Where fragment `i` (a `moof` in `top`) ends: after the media boxes that follow it.
fn fragment_end(top: &[TopBox], i: usize) -> u64 {
    let mut end = top[i].end();
    for b in top.iter().skip(i + 1) {
        match &b.fourcc {
            b"mdat" | b"free" | b"skip" | b"prft" | b"emsg" => end = b.end(),
            _ => break,
        }
    }
    end
}
