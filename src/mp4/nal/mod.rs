//! Where the slice header of an H.264 or HEVC slice NAL unit ends, for
//! subsample encryption: ISO/IEC 23001-7 ('cenc', 'cbcs') with CMAF's rule
//! that the protected bytes start at the first byte of video data after
//! the slice header. The parsers read only what a slice header's length
//! depends on (H.264 7.3.2–7.3.4, H.265 7.3.2–7.3.7).
//!
//! A length is the NAL unit header plus the slice header, in bytes of the
//! NAL unit as stored (emulation prevention bytes within it counted):
//! - H.264 CABAC: the slice header, then `cabac_alignment_one_bit`s up to
//!   the byte boundary where `slice_data()` starts.
//! - H.264 CAVLC: `slice_data()` starts mid-byte; the length rounds up, so
//!   the byte it shares with the header stays clear with it.
//! - HEVC: `slice_segment_header()` through its `byte_alignment()`.
//!
//! An emulation prevention byte right after the header is left to the
//! protected part. `None` from [`SliceHeaders::header_size`] (not a slice,
//! an unknown parameter set, syntax this does not read, a damaged header)
//! means the caller leaves the whole NAL unit clear, which is always valid.
// Nothing in the crate calls this until src/mp4/cenc (issue 22) drops its
// stand-in for it; then this allow goes.

mod bits;
mod h264;
mod hevc;
mod hevc_syntax;
#[cfg(test)]
mod tests;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// `avc1`, `avc3`: an `avcC` record.
    Avc,
    /// `hvc1`, `hev1`: an `hvcC` record.
    Hevc,
}

/// A NAL unit whose first header byte is `nal_header` is a coded slice
/// (segment): H.264 types 1 and 5 (partitions 2–4 and the MVC and 3D types
/// 20, 21 are not read); HEVC types 0–9 and 16–21 (10–15 and 22–31 are
/// reserved).
pub(crate) fn is_slice(codec: Codec, nal_header: u8) -> bool {
    match codec {
        Codec::Avc => matches!(nal_header & 0x1f, 1 | 5),
        Codec::Hevc => matches!(nal_header >> 1 & 0x3f, 0..=9 | 16..=21),
    }
}

/// Parameter sets by id. Ids are bounded by the standard, so is the table:
/// a new set replaces the one of its id.
pub(crate) struct Table<T> {
    slots: Vec<Option<T>>,
}

impl<T> Table<T> {
    fn new(ids: usize) -> Self {
        Table {
            slots: (0..ids).map(|_| None).collect(),
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.slots.get(usize::try_from(id).ok()?)?.as_ref()
    }

    /// `set` is `None` when the set of that id did not parse: a slice that
    /// names it then gets no length rather than one from a stale set.
    fn put(&mut self, parsed: Parsed<T>) {
        if let Some(slot) = self.slots.get_mut(parsed.id as usize) {
            *slot = parsed.set;
        }
    }
}

/// A parameter set NAL unit whose id could be read.
pub(crate) struct Parsed<T> {
    pub(crate) id: u32,
    pub(crate) set: Option<T>,
}

enum Sets {
    Avc {
        sps: Table<h264::Sps>,
        pps: Table<h264::Pps>,
    },
    Hevc {
        sps: Table<hevc::Sps>,
        pps: Table<hevc::Pps>,
    },
}

/// The parameter sets of one track, and the slice header lengths they give.
pub(crate) struct SliceHeaders {
    sets: Sets,
}

impl SliceHeaders {
    /// From the body of the sample entry's `avcC` or `hvcC` (ISO/IEC
    /// 14496-15 5.3.3.1, 8.3.3.1). A record cut short gives the sets before
    /// the cut; `avc3` and `hev1` may carry none and send them in samples.
    pub(crate) fn new(codec: Codec, config: &[u8]) -> Self {
        let sets = match codec {
            // H.264 7.4.2.1.1, 7.4.2.2: 32 SPS ids, 256 PPS ids.
            Codec::Avc => Sets::Avc {
                sps: Table::new(32),
                pps: Table::new(256),
            },
            // H.265 7.4.3.2.1, 7.4.3.3.1: 16 SPS ids, 64 PPS ids.
            Codec::Hevc => Sets::Hevc {
                sps: Table::new(16),
                pps: Table::new(64),
            },
        };
        let mut headers = SliceHeaders { sets };
        let mut units = Vec::new();
        match codec {
            Codec::Avc => avcc_units(config, &mut units),
            Codec::Hevc => hvcc_units(config, &mut units),
        }
        for nal in units {
            headers.parameter_set(nal);
        }
        headers
    }

    /// Takes an SPS or PPS met in a sample (in-band, `avc3`, `hev1`); any
    /// other NAL unit is ignored. Returns whether `nal` was one.
    pub(crate) fn parameter_set(&mut self, nal: &[u8]) -> bool {
        let Some(&first) = nal.first() else {
            return false;
        };
        match &mut self.sets {
            Sets::Avc { sps, pps } => match first & 0x1f {
                7 => h264::sps(nal).map(|p| sps.put(p)).is_some(),
                8 => h264::pps(nal).map(|p| pps.put(p)).is_some(),
                _ => false,
            },
            Sets::Hevc { sps, pps } => match first >> 1 & 0x3f {
                33 => hevc::sps(nal).map(|p| sps.put(p)).is_some(),
                34 => hevc::pps(nal).map(|p| pps.put(p)).is_some(),
                _ => false,
            },
        }
    }

    /// The bytes of `nal` (a whole NAL unit, without its length field) that
    /// stay clear: NAL unit header and slice header. `None`: not a slice,
    /// or one this cannot measure; the caller then leaves it all clear.
    pub(crate) fn header_size(&self, nal: &[u8]) -> Option<usize> {
        let size = match &self.sets {
            Sets::Avc { sps, pps } => h264::header_size(nal, sps, pps),
            Sets::Hevc { sps, pps } => hevc::header_size(nal, sps, pps),
        };
        size.ok().filter(|&n| n <= nal.len())
    }
}

/// Reads `count` NAL units, each after a 16-bit length, from `at` on.
fn units_at<'a>(b: &'a [u8], at: &mut usize, count: usize, out: &mut Vec<&'a [u8]>) -> Option<()> {
    for _ in 0..count {
        let len = b.get(*at..*at + 2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        out.push(b.get(*at + 2..*at + 2 + len)?);
        *at += 2 + len;
    }
    Some(())
}

/// `AVCDecoderConfigurationRecord`: the SPS array after byte 5, then the
/// PPS array (the high profiles' fields after it hold no SPS or PPS).
fn avcc_units<'a>(b: &'a [u8], out: &mut Vec<&'a [u8]>) {
    let _ = (|| {
        let mut at = 6;
        units_at(b, &mut at, usize::from(b.get(5)? & 0x1f), out)?;
        let count = usize::from(*b.get(at)?);
        at += 1;
        units_at(b, &mut at, count, out)
    })();
}

/// `HEVCDecoderConfigurationRecord`: 22 bytes of fields, then arrays of
/// NAL units (VPS, SPS, PPS, SEI), each NAL unit carrying its own type.
fn hvcc_units<'a>(b: &'a [u8], out: &mut Vec<&'a [u8]>) {
    let _ = (|| {
        let arrays = *b.get(22)?;
        let mut at = 23;
        for _ in 0..arrays {
            let n = b.get(at + 1..at + 3)?;
            let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
            at += 3;
            units_at(b, &mut at, n, out)?;
        }
        Some(())
    })();
}
