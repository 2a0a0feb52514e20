//! Chunk offsets: `stco` (32-bit) and `co64` (64-bit).

use super::{put_full, put_u32};
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

/// Where a range of the source lands in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    pub src: u64,
    pub len: u64,
    pub out: u64,
}

/// Source ranges and where they land, sorted by source offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Map(pub Vec<Move>);

impl Map {
    /// Where source offset `src` lands (the planner made sure every chunk
    /// lies in a move; anything else keeps its offset).
    pub fn apply(&self, src: u64) -> u64 {
        let i = self.0.partition_point(|m| m.src <= src);
        match i.checked_sub(1).and_then(|i| self.0.get(i)) {
            Some(m) if src - m.src <= m.len => m.out + (src - m.src),
            _ => src,
        }
    }
}

/// The chunk offsets of `n` output chunks: source chunks `c0..c0 + n`, the
/// first moved on by `first_delta` bytes (the samples cut off before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crop {
    pub c0: u64,
    pub n: u64,
    pub first_delta: u64,
    pub wide: bool,
}

impl Crop {
    pub fn len(&self) -> u64 {
        self.n * if self.wide { 8 } else { 4 }
    }

    /// The source offset of output chunk `i`.
    pub fn source(&self, offsets: &[u64], i: u64) -> u64 {
        let o = usize::try_from(self.c0 + i)
            .ok()
            .and_then(|k| offsets.get(k))
            .copied()
            .unwrap_or(0);
        if i == 0 {
            o.saturating_add(self.first_delta)
        } else {
            o
        }
    }

    pub fn write_head(&self, out: &mut Vec<u8>) {
        put_u32(out, u32::try_from(16 + self.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(if self.wide { b"co64" } else { b"stco" });
        put_full(out, 0, 0);
        put_u32(out, self.n as u32);
    }

    /// Fills bytes `[from, ..)` of the entries.
    pub fn fill(&self, offsets: &[u64], map: &Map, from: u64, out: &mut [u8]) {
        let size = if self.wide { 8 } else { 4 };
        super::fill_entries(from, out, size, |i, b| {
            let o = map.apply(self.source(offsets, i));
            if self.wide {
                b.copy_from_slice(&o.to_be_bytes());
            } else {
                // The planner chose stco only where every offset fits.
                b.copy_from_slice(&u32::try_from(o).unwrap_or(u32::MAX).to_be_bytes());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_and_entries() {
        let map = Map(vec![
            Move {
                src: 100,
                len: 50,
                out: 1000,
            },
            Move {
                src: 500,
                len: 10,
                out: 1050,
            },
        ]);
        assert_eq!(map.apply(120), 1020);
        assert_eq!(map.apply(505), 1055);
        let offsets = [100, 130, 500];
        let c = Crop {
            c0: 0,
            n: 3,
            first_delta: 7,
            wide: false,
        };
        let mut out = vec![0u8; c.len() as usize];
        c.fill(&offsets, &map, 0, &mut out);
        let got: Vec<u32> = out
            .chunks(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got, [1007, 1030, 1050]);
    }
}
