//! The new `moov`: every box copied byte for byte but the ones a window
//! changes (durations, edit lists, the sample tables, the chunk offsets).

use super::super::Error;
use super::super::boxes::{RawBox, children};
use super::super::builder::Builder;
use super::super::index::Track;
use super::super::layout::{Stored, Table, Which};
use super::super::plan::TrackPlan;
use super::super::tables::{elst, mdhd, runs, stco, stss, stsz, tkhd};
use std::ops::Range;

/// Per-sample tables the engine cannot trim: dropped from windowed output.
const UNTRIMMABLE: [&[u8; 4]; 7] = [
    b"subs", b"saiz", b"saio", b"stps", b"padb", b"stdp", b"stsh",
];

/// How the chunk offsets of one track are written.
#[derive(Clone, Debug)]
pub(super) struct TrackOut {
    pub(super) track: usize,
    /// `None`: copy every table but the chunk offsets (fast-start).
    pub(super) plan: Option<TrackPlan>,
    pub(super) offsets: stco::Crop,
    /// The source ranges of the track's kept chunks, merged where close.
    pub(super) media: Vec<Range<u64>>,
}

/// What the `moov` writer does with the film's tracks.
pub(super) struct Spec {
    /// In `Index::tracks` order; tracks not here are dropped (windows) or
    /// copied (fast-start, traks without samples).
    pub(super) tracks: Vec<TrackOut>,
    pub(super) movie_duration: Option<u64>,
    /// Copy `trak`s the index has no samples for.
    pub(super) keep_empty: bool,
}

/// Writes the `moov` for `spec`.
pub(super) fn moov(b: &mut Builder<'_>, spec: &Spec) -> Result<(), Error> {
    let index = b.index;
    let root = children(&index.moov, 0)
        .next()
        .ok_or(Error::NotMp4("empty moov"))??;
    let o = b.open(b"moov");
    // Tracks come in moov order in both lists: walk them together.
    let mut next = 0;
    let mut outs = spec.tracks.iter().peekable();
    for child in root.children() {
        let child = child?;
        match &child.fourcc {
            b"mvhd" => match spec.movie_duration {
                Some(d) => b.copy_with(&child, index.movie.duration_field, d),
                None => b.copy(&child),
            },
            b"trak" => {
                let found = index
                    .tracks
                    .get(next)
                    .filter(|t| t.info.start == child.start)
                    .is_some();
                if !found {
                    if spec.keep_empty {
                        b.copy(&child);
                    }
                    continue;
                }
                let i = next;
                next += 1;
                match outs.next_if(|t| t.track == i) {
                    Some(out) => trak(b, &child, &index.tracks[i], out)?,
                    None if spec.keep_empty => b.copy(&child),
                    None => {}
                }
            }
            _ => b.copy(&child),
        }
    }
    b.close(o)
}

fn trak(b: &mut Builder<'_>, trak: &RawBox<'_>, t: &Track, out: &TrackOut) -> Result<(), Error> {
    let o = b.open(b"trak");
    for child in trak.children() {
        let child = child?;
        match (&child.fourcc, &out.plan) {
            (b"tkhd", Some(p)) => {
                let h = tkhd::read(child.body)?;
                b.copy_with(&child, h.duration_field, p.track_duration);
                if let Some(edits) = &p.edits {
                    b.write(|v| elst::write_edts(v, edits));
                }
            }
            (b"edts", Some(_)) => {}
            (b"mdia", _) => container(b, &child, t, out)?,
            _ => b.copy(&child),
        }
    }
    b.close(o)
}

/// `mdia` and `minf`: rebuilt around their rewritten children.
fn container(b: &mut Builder<'_>, bx: &RawBox<'_>, t: &Track, out: &TrackOut) -> Result<(), Error> {
    let o = b.open(&bx.fourcc);
    for child in bx.children() {
        let child = child?;
        match (&child.fourcc, &out.plan) {
            (b"mdhd", Some(p)) => {
                let h = mdhd::read(child.body)?;
                b.copy_with(&child, h.duration_field, p.media_duration);
            }
            (b"minf", _) => container(b, &child, t, out)?,
            (b"stbl", _) => stbl(b, &child, t, out)?,
            _ => b.copy(&child),
        }
    }
    b.close(o)
}

fn stbl(b: &mut Builder<'_>, stbl: &RawBox<'_>, t: &Track, out: &TrackOut) -> Result<(), Error> {
    let o = b.open(b"stbl");
    let i = out.track;
    let mut sbgp = 0;
    for child in stbl.children() {
        let child = child?;
        let fourcc = child.fourcc;
        if &fourcc == b"stco" || &fourcc == b"co64" {
            b.write(|v| out.offsets.write_head(v));
            b.table(i, Table::Offsets(out.offsets.clone()), out.offsets.len());
            continue;
        }
        let Some(p) = &out.plan else {
            b.copy(&child);
            continue;
        };
        let (a, end) = (p.a, p.b);
        match &fourcc {
            b"stts" => {
                let crop = t.stts.crop(a, end);
                b.write(|v| runs::write_head(v, b"stts", 0, &crop));
                b.table(i, Table::Runs(Which::Stts, crop), crop.len());
            }
            b"ctts" => {
                let version = child.body.first().copied().unwrap_or(0);
                let crop = t.ctts.as_ref().map(|c| c.crop(a, end)).unwrap_or_default();
                b.write(|v| runs::write_head(v, b"ctts", version, &crop));
                b.table(i, Table::Runs(Which::Ctts, crop), crop.len());
            }
            b"stss" => {
                let sync = t.stss.as_deref().unwrap_or(&[]);
                let kept = stss::crop(sync, a, end);
                b.write(|v| stss::write_head(v, &kept));
                let len = 4 * kept.len() as u64;
                b.table(i, Table::Sync { kept, a }, len);
            }
            b"stsc" => {
                let crop = t.stsc.crop(a, end).ok_or(Error::Invalid {
                    fourcc: *b"stsc",
                    reason: "no chunk holds the window's samples",
                })?;
                b.write(|v| crop.write_head(v));
                let len = 12 * crop.entries();
                b.table(i, Table::Chunks(crop), len);
            }
            b"stsz" | b"stz2" => {
                let n = end - a;
                b.write(|v| stsz::write_head(v, &t.sizes, n));
                b.table(
                    i,
                    Table::Sizes { first: a, n },
                    stsz::entries_len(&t.sizes, n),
                );
            }
            b"sdtp" => sdtp(b, &child, a, end, t),
            b"sbgp" => {
                let k = sbgp;
                sbgp += 1;
                match t.sbgp.get(k).and_then(Option::as_ref) {
                    Some(s) => {
                        let crop = s.runs.crop(a, end);
                        b.write(|v| s.write_head(v, &crop));
                        b.table(i, Table::Runs(Which::Sbgp(k), crop), crop.len());
                    }
                    None => log::debug!("track {}: unreadable sbgp dropped", t.info.id),
                }
            }
            f if UNTRIMMABLE.contains(&f) => log::debug!(
                "track {}: per-sample box '{}' cannot be trimmed, dropped",
                t.info.id,
                super::super::error::fourcc_str(f)
            ),
            _ => b.copy(&child),
        }
    }
    b.close(o)
}

/// `sdtp`: one byte per sample after version and flags; a slice of the source.
fn sdtp(b: &mut Builder<'_>, bx: &RawBox<'_>, a: u64, end: u64, t: &Track) {
    let (Ok(a), Ok(end)) = (usize::try_from(a), usize::try_from(end)) else {
        return;
    };
    let body = bx.body_start();
    if bx.body.len() < 4 + end {
        log::debug!(
            "track {}: sdtp shorter than the sample count, dropped",
            t.info.id
        );
        return;
    }
    let size = 8 + 4 + (end - a);
    b.write(|v| {
        v.extend_from_slice(&(size as u32).to_be_bytes());
        v.extend_from_slice(b"sdtp");
        v.extend_from_slice(&bx.body[..4]);
    });
    let slice = b.index.moov.slice(body + 4 + a..body + 4 + end);
    let len = slice.len() as u64;
    b.stored(Stored::Bytes(slice), len);
}
