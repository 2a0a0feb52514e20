//! Sync sample box (`stss`): 1-based numbers of the key frames.

use super::{put_full, put_u32};
use crate::mp4::Error;
use crate::mp4::boxes::{Reader, begin_box, end_box};

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

/// Writes the `stss` for samples `[a, b)` (0-based), renumbered from 1.
pub fn write_crop(out: &mut Vec<u8>, sync: &[u32], a: u64, b: u64) {
    let lo = sync.partition_point(|&s| u64::from(s) <= a);
    let hi = sync.partition_point(|&s| u64::from(s) <= b);
    let at = begin_box(out, b"stss");
    put_full(out, 0, 0);
    let kept = sync.get(lo..hi).unwrap_or(&[]);
    put_u32(out, kept.len() as u32);
    for &s in kept {
        // s > a, and a < 2^32 because sample counts are u32.
        put_u32(out, (u64::from(s) - a) as u32);
    }
    end_box(out, at);
}
