//! Sync sample box (`stss`): 1-based numbers of the key frames.

use super::{put_full, put_u32};
use crate::mp4::Error;
use crate::mp4::boxes::Reader;
use std::ops::Range;

pub fn read(body: &[u8]) -> Result<Vec<u32>, Error> {
    let mut r = Reader::new(body, *b"stss");
    r.full_box()?;
    let n = r.count(4)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.u32()?);
    }
    // Look-ups binary-search the table, so it must be ordered.
    if !v.is_sorted() {
        v.sort_unstable();
    }
    Ok(v)
}

/// The entries kept for samples `[a, b)` (0-based): indices into `sync`.
pub fn crop(sync: &[u32], a: u64, b: u64) -> Range<usize> {
    let lo = sync.partition_point(|&s| u64::from(s) <= a);
    let hi = sync.partition_point(|&s| u64::from(s) <= b);
    lo..hi.max(lo)
}

/// Writes the head of the `stss` whose entries (`kept`) follow.
pub fn write_head(out: &mut Vec<u8>, kept: &Range<usize>) {
    let n = kept.len() as u64;
    put_u32(out, u32::try_from(16 + 4 * n).unwrap_or(u32::MAX));
    out.extend_from_slice(b"stss");
    put_full(out, 0, 0);
    put_u32(out, n as u32);
}

/// Fills bytes `[from, ..)` of the kept entries, renumbered from sample `a`.
pub fn fill(sync: &[u32], kept: &Range<usize>, a: u64, from: u64, out: &mut [u8]) {
    super::fill_entries(from, out, 4, |i, b| {
        let s = usize::try_from(i)
            .ok()
            .and_then(|i| sync.get(kept.start + i))
            .copied()
            .unwrap_or(0);
        // s > a, and a < 2^32 because sample counts are u32.
        b.copy_from_slice(&((u64::from(s).saturating_sub(a)) as u32).to_be_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_and_renumbers() {
        let sync = [1, 51, 101, 151];
        let kept = crop(&sync, 50, 120);
        assert_eq!(kept, 1..3);
        let mut out = [0u8; 8];
        fill(&sync, &kept, 50, 0, &mut out);
        assert_eq!(out, [0, 0, 0, 1, 0, 0, 0, 51]);
        assert_eq!(crop(&sync, 200, 300), 4..4);
    }
}
