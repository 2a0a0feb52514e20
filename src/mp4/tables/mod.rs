//! One module per atom the engine reads or rewrites, named after its box.
//! Sample tables decode once into the index and produce their cropped
//! entries on demand, byte range by byte range, as the output is sent.

pub mod cmov;
pub mod elst;
pub mod frag;
pub mod hdlr;
pub mod mdhd;
pub mod mvhd;
pub mod runs;
pub mod stco;
pub mod stsc;
pub mod stss;
pub mod stsz;
pub mod tkhd;

pub use runs::Runs;

/// Appends a full box header's version and flags.
pub fn put_full(out: &mut Vec<u8>, version: u8, flags: u32) {
    out.extend_from_slice(&((u32::from(version) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Fills `out` with bytes `[from, from + out.len())` of a table of
/// `entry_size`-byte entries, where `entry(i, buf)` encodes entry `i`.
pub(crate) fn fill_entries(
    from: u64,
    out: &mut [u8],
    entry_size: usize,
    mut entry: impl FnMut(u64, &mut [u8]),
) {
    let es = entry_size as u64;
    let mut i = from / es;
    let mut skip = (from % es) as usize;
    let mut buf = [0u8; 16];
    let mut pos = 0;
    while pos < out.len() {
        let e = &mut buf[..entry_size];
        entry(i, e);
        let n = (entry_size - skip).min(out.len() - pos);
        out[pos..pos + n].copy_from_slice(&e[skip..skip + n]);
        pos += n;
        skip = 0;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fill_entries_any_window() {
        // Entries of 3 bytes: [i, i, i].
        let whole: Vec<u8> = (0u8..10).flat_map(|i| [i, i, i]).collect();
        for from in 0..whole.len() {
            for len in 0..whole.len() - from {
                let mut out = vec![0xff; len];
                super::fill_entries(from as u64, &mut out, 3, |i, b| b.fill(i as u8));
                assert_eq!(out, whole[from..from + len]);
            }
        }
    }
}
