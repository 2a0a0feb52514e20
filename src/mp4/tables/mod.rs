//! One decoder and one encoder per rewritten sample table, named after its box.

pub mod elst;
pub mod runs;
pub mod stco;
pub mod stsc;
pub mod stss;
pub mod stsz;

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
