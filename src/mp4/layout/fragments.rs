//! A run of fragments in a layout: where a position falls (a generated
//! `moof`, its media in the file, or small fragments read together), and
//! the fields rewritten when fragments move (`tfhd` base offsets, `tfdt`).

use super::{Layout, Rebase, SMALL_FRAGMENT, Slice, Stored};
use crate::mp4::fragmented::{Fragment, Fragments, PatchKind};
use crate::mp4::index::Index;

impl Layout {
    /// The piece at `rel` bytes into a run of fragments: small contiguous
    /// fragments are read together, a large one is its generated `moof`
    /// and then its media from the file.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fragment_slice(
        &self,
        first: usize,
        last: usize,
        rel: u64,
        left: u64,
        max_mem: u64,
        max_file: u64,
        at: u64,
    ) -> Option<Slice> {
        let frags = self.index.as_ref()?.fragments.as_ref()?;
        let list = frags.list.get(first..=last)?;
        let base = list.first()?.before;
        let k = list
            .partition_point(|f| f.before - base <= rel)
            .checked_sub(1)?;
        let f = list.get(k)?;
        let in_frag = rel - (f.before - base);
        if f.len() <= SMALL_FRAGMENT {
            // This fragment and the next ones while they follow it in the
            // file, are small, and fit one piece.
            let mut len = f.len() - in_frag;
            let mut prev = f;
            for g in list.get(k + 1..).unwrap_or(&[]) {
                if g.offset != prev.end || g.len() > SMALL_FRAGMENT || len + g.len() > max_mem {
                    break;
                }
                len += g.len();
                prev = g;
            }
            return Some(Slice::Patched {
                offset: f.offset + in_frag,
                len: len.min(left).min(max_mem) as usize,
                at,
            });
        }
        let moof = f.moof.len() as u64;
        let left = left.min(f.len() - in_frag);
        Some(if in_frag < moof {
            Slice::Generated {
                at,
                len: left.min(moof - in_frag).min(max_mem) as usize,
            }
        } else {
            Slice::File {
                offset: f.offset + in_frag,
                len: left.min(max_file),
            }
        })
    }

    /// Rewrites, in `buf` (the source's bytes of a [`Slice::Patched`] at
    /// output position `at`), the fields that moved.
    pub fn patch(&self, at: u64, buf: &mut [u8]) {
        let i = self.locate(at);
        let (
            Some(Stored::Fragments {
                first,
                last,
                rebase,
            }),
            Some(&start),
            Some(index),
        ) = (
            self.stored.get(i),
            self.starts.get(i),
            self.index.as_deref(),
        )
        else {
            return;
        };
        let Some(frags) = index.fragments.as_ref() else {
            return;
        };
        let Some(list) = frags.list.get(*first..=*last) else {
            return;
        };
        let Some(base) = list.first().map(|f| f.before) else {
            return;
        };
        let rel = at - start;
        let mut k = list
            .partition_point(|f| f.before - base <= rel)
            .saturating_sub(1);
        // Every fragment that overlaps the buffer: its own part of it.
        while let Some(f) = list.get(k) {
            let f_at = f.before - base;
            if f_at >= rel + buf.len() as u64 {
                break;
            }
            let from = usize::try_from(f_at.saturating_sub(rel)).unwrap_or(usize::MAX);
            let skip = rel.saturating_sub(f_at);
            let to = usize::try_from((f_at + f.len()).saturating_sub(rel))
                .map_or(buf.len(), |t| t.min(buf.len()));
            if let Some(part) = buf.get_mut(from..to) {
                patch_fragment(frags, f, start + f_at, rebase, skip, part);
            }
            k += 1;
        }
    }
}

/// Copies the `moof` bytes at `rel` bytes into fragments `first..=last`.
pub(super) fn copy_moof(index: &Index, first: usize, last: usize, rel: u64, out: &mut [u8]) {
    let Some(list) = index
        .fragments
        .as_ref()
        .and_then(|f| Some((f, f.list.get(first..=last)?)))
    else {
        return;
    };
    let (frags, list) = list;
    let Some(base) = list.first().map(|f| f.before) else {
        return;
    };
    let Some(f) = list
        .partition_point(|f| f.before - base <= rel)
        .checked_sub(1)
        .and_then(|k| list.get(k))
    else {
        return;
    };
    let in_moof = usize::try_from(rel - (f.before - base)).unwrap_or(usize::MAX);
    let from = f.moof.start.saturating_add(in_moof);
    if let Some(src) = frags.moofs.get(from..from.saturating_add(out.len())) {
        out.copy_from_slice(src);
    }
}

/// Rewrites the moved fields of fragment `f` (now at output `moved_to`) in
/// `part`, which holds the fragment's bytes from `skip` on.
fn patch_fragment(
    frags: &Fragments,
    f: &Fragment,
    moved_to: u64,
    rebase: &[Rebase],
    skip: u64,
    part: &mut [u8],
) {
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    for p in frags.patches.get(f.patches.clone()).unwrap_or(&[]) {
        let mut field = [0u8; 8];
        let width = match p.kind {
            PatchKind::BaseDataOffset(v) => {
                let v = i128::from(v) + i128::from(moved_to) - i128::from(f.offset);
                field = u64::try_from(v).unwrap_or(0).to_be_bytes();
                8
            }
            PatchKind::DecodeTime { track, time, wide } => {
                let base = rebase
                    .iter()
                    .find(|r| r.track == track)
                    .map_or(0, |r| r.base);
                let t = time.saturating_sub(base);
                if wide {
                    field = t.to_be_bytes();
                    8
                } else {
                    field[..4].copy_from_slice(&u32::try_from(t).unwrap_or(u32::MAX).to_be_bytes());
                    4
                }
            }
        };
        // The part of the field that falls in `part`.
        for (i, b) in field[..width].iter().enumerate() {
            if let Some(dst) = (p.at + i).checked_sub(skip).and_then(|at| part.get_mut(at)) {
                *dst = *b;
            }
        }
    }
}
