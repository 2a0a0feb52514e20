//! Chunk offsets: `stco` (32-bit) and `co64` (64-bit).

use super::{put_full, put_u32, put_u64};
use crate::mp4::Error;
use crate::mp4::boxes::Reader;

pub fn read(body: &[u8], wide: bool) -> Result<Vec<u64>, Error> {
    let fourcc = if wide { *b"co64" } else { *b"stco" };
    let mut r = Reader::new(body, fourcc);
    r.full_box()?;
    let n = r.count(if wide { 8 } else { 4 })?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(if wide { r.u64()? } else { u64::from(r.u32()?) });
    }
    Ok(v)
}

/// Writes `stco` (or `co64` when `wide`) with `n` zeroed entries and returns
/// where the entries start, so [`patch`] can fill them once the offsets are known.
pub fn write_placeholder(out: &mut Vec<u8>, n: usize, wide: bool) -> usize {
    let entry = if wide { 8 } else { 4 };
    put_u32(out, (16 + n * entry) as u32);
    out.extend_from_slice(if wide { b"co64" } else { b"stco" });
    put_full(out, 0, 0);
    put_u32(out, n as u32);
    let at = out.len();
    out.resize(at + n * entry, 0);
    at
}

/// Fills entries written by [`write_placeholder`]. Returns false when an
/// offset does not fit a 32-bit `stco` (the caller then promotes to `co64`).
pub fn patch(out: &mut [u8], at: usize, offsets: &[u64], wide: bool) -> bool {
    let entry = if wide { 8 } else { 4 };
    for (i, &o) in offsets.iter().enumerate() {
        let p = at + i * entry;
        if wide {
            let mut tmp = Vec::with_capacity(8);
            put_u64(&mut tmp, o);
            out[p..p + 8].copy_from_slice(&tmp);
        } else {
            let Ok(o) = u32::try_from(o) else {
                return false;
            };
            out[p..p + 4].copy_from_slice(&o.to_be_bytes());
        }
    }
    true
}
