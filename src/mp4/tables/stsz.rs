//! Sample sizes: `stsz` (32-bit or one fixed size) and compact `stz2`.

use super::{put_full, put_u32};
use crate::mp4::Error;
use crate::mp4::boxes::Reader;

#[derive(Clone, Debug, PartialEq)]
pub struct Sizes {
    /// Non-zero: every sample has this size and `table` is empty.
    pub fixed: u32,
    pub count: u32,
    pub table: Vec<u32>,
    /// 0 for `stsz`; 4, 8 or 16 for `stz2`.
    pub field_size: u8,
}

impl Sizes {
    /// Sum of sizes of samples `[a, b)`.
    pub fn sum(&self, a: u64, b: u64) -> u64 {
        if self.fixed != 0 {
            return u64::from(self.fixed).saturating_mul(b.saturating_sub(a));
        }
        let a = usize::try_from(a)
            .unwrap_or(usize::MAX)
            .min(self.table.len());
        let b = usize::try_from(b)
            .unwrap_or(usize::MAX)
            .min(self.table.len());
        self.table
            .get(a..b.max(a))
            .map_or(0, |s| s.iter().map(|&x| u64::from(x)).sum())
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * 4
    }
}

pub fn read_stsz(body: &[u8]) -> Result<Sizes, Error> {
    let mut r = Reader::new(body, *b"stsz");
    r.full_box()?;
    let fixed = r.u32()?;
    if fixed != 0 {
        let count = r.u32()?;
        return Ok(Sizes {
            fixed,
            count,
            table: Vec::new(),
            field_size: 0,
        });
    }
    let n = r.count(4)?;
    let mut table = Vec::with_capacity(n);
    for _ in 0..n {
        table.push(r.u32()?);
    }
    Ok(Sizes {
        fixed: 0,
        count: n as u32,
        table,
        field_size: 0,
    })
}

pub fn read_stz2(body: &[u8]) -> Result<Sizes, Error> {
    let mut r = Reader::new(body, *b"stz2");
    r.full_box()?;
    r.skip(3)?;
    let field_size = r.u8()?;
    let count = r.u32()?;
    let bits = match field_size {
        4 | 8 | 16 => u64::from(field_size),
        _ => {
            return Err(Error::Invalid {
                fourcc: *b"stz2",
                reason: "field_size must be 4, 8 or 16",
            });
        }
    };
    let need = (u64::from(count) * bits).div_ceil(8);
    if need > r.remaining() as u64 {
        return Err(Error::Invalid {
            fourcc: *b"stz2",
            reason: "entry count exceeds the box size",
        });
    }
    let data = r.bytes(need as usize)?;
    let mut table = Vec::with_capacity(count as usize);
    match field_size {
        4 => {
            for i in 0..count as usize {
                let b = data[i / 2];
                table.push(u32::from(if i % 2 == 0 { b >> 4 } else { b & 0x0f }));
            }
        }
        8 => table.extend(data.iter().map(|&b| u32::from(b))),
        _ => table.extend(
            data.chunks_exact(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))),
        ),
    }
    Ok(Sizes {
        fixed: 0,
        count,
        table,
        field_size,
    })
}

/// Bytes of the entries for `n` samples in the source's form.
pub fn entries_len(s: &Sizes, n: u64) -> u64 {
    match s.field_size {
        0 if s.fixed != 0 => 0,
        0 => 4 * n,
        4 => n.div_ceil(2),
        8 => n,
        _ => 2 * n,
    }
}

/// Writes the head of the `stsz`/`stz2` for `n` samples; its entries follow.
pub fn write_head(out: &mut Vec<u8>, s: &Sizes, n: u64) {
    let total = 20 + entries_len(s, n);
    put_u32(out, u32::try_from(total).unwrap_or(u32::MAX));
    if s.field_size == 0 {
        out.extend_from_slice(b"stsz");
        put_full(out, 0, 0);
        put_u32(out, s.fixed);
    } else {
        out.extend_from_slice(b"stz2");
        put_full(out, 0, 0);
        out.extend_from_slice(&[0, 0, 0, s.field_size]);
    }
    // n <= the source count, a u32.
    put_u32(out, n as u32);
}

/// Fills bytes `[from, ..)` of the entries for samples `[first, first + n)`.
pub fn fill(s: &Sizes, first: u64, n: u64, from: u64, out: &mut [u8]) {
    let size = |i: u64| -> u32 {
        if i >= n {
            return 0;
        }
        usize::try_from(first + i)
            .ok()
            .and_then(|k| s.table.get(k))
            .copied()
            .unwrap_or(0)
    };
    match s.field_size {
        0 => super::fill_entries(from, out, 4, |i, b| {
            b.copy_from_slice(&size(i).to_be_bytes())
        }),
        4 => super::fill_entries(from, out, 1, |j, b| {
            b[0] = ((size(2 * j) & 0x0f) << 4) as u8 | (size(2 * j + 1) & 0x0f) as u8;
        }),
        8 => super::fill_entries(from, out, 1, |i, b| b[0] = size(i) as u8),
        _ => super::fill_entries(from, out, 2, |i, b| {
            b.copy_from_slice(&(size(i) as u16).to_be_bytes())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::boxes::children;

    fn roundtrip(s: &Sizes, a: u64, b: u64) -> Sizes {
        let mut out = Vec::new();
        write_head(&mut out, s, b - a);
        let at = out.len();
        out.resize(at + entries_len(s, b - a) as usize, 0);
        fill(s, a, b - a, 0, &mut out[at..]);
        let bx = children(&out, 0).next().unwrap().unwrap();
        match &bx.fourcc {
            b"stsz" => read_stsz(bx.body).unwrap(),
            _ => read_stz2(bx.body).unwrap(),
        }
    }

    #[test]
    fn stz2_forms_roundtrip() {
        for fs in [4u8, 8, 16] {
            let max = (1u32 << fs) - 1;
            let table: Vec<u32> = (0..11).map(|i| (i * 7 + 1) % max).collect();
            let s = Sizes {
                fixed: 0,
                count: 11,
                table: table.clone(),
                field_size: fs,
            };
            let r = roundtrip(&s, 3, 10);
            assert_eq!(r.field_size, fs);
            assert_eq!(r.table, table[3..10].to_vec());
        }
    }

    #[test]
    fn stsz_fixed_and_table() {
        let f = Sizes {
            fixed: 7,
            count: 100,
            table: vec![],
            field_size: 0,
        };
        let r = roundtrip(&f, 10, 20);
        assert_eq!((r.fixed, r.count), (7, 10));
        assert_eq!(f.sum(10, 20), 70);
        let t = Sizes {
            fixed: 0,
            count: 4,
            table: vec![1, 2, 3, 4],
            field_size: 0,
        };
        assert_eq!(roundtrip(&t, 1, 3).table, vec![2, 3]);
        assert_eq!(t.sum(1, 4), 9);
        assert_eq!(t.sum(3, 100), 4);
    }

    #[test]
    fn stz2_rejects_bad_field_and_short_body() {
        assert!(read_stz2(&[0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0]).is_err());
        assert!(read_stz2(&[0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 9, 0, 1]).is_err());
    }
}
