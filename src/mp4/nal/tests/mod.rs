//! Crafted parameter sets and slices for the syntax x264 and x265 never
//! write (tests/slice_headers.rs measures their films against ffmpeg), and
//! hostile input.

mod h264;
mod hevc;

use super::bits::{Bits, Invalid};
use super::{Codec, SliceHeaders};
use h264::{avc_headers, avc_pps, avc_sps};
use hevc::{hevc_headers, hevc_pps, hevc_sps};

/// Writes RBSP bits; `nal` escapes them as a NAL unit stores them.
#[derive(Default)]
pub(super) struct W(Vec<bool>);

impl W {
    pub(super) fn u(&mut self, n: u32, v: u64) -> &mut Self {
        for i in (0..n).rev() {
            self.0.push(i < 64 && v >> i & 1 == 1);
        }
        self
    }
    pub(super) fn f(&mut self, b: bool) -> &mut Self {
        self.u(1, u64::from(b))
    }
    pub(super) fn ue(&mut self, v: u32) -> &mut Self {
        let v = u64::from(v) + 1;
        let n = 64 - v.leading_zeros();
        self.u(n - 1, 0).u(n, v)
    }
    pub(super) fn se(&mut self, v: i32) -> &mut Self {
        let v = i64::from(v);
        self.ue(if v > 0 { 2 * v - 1 } else { -2 * v } as u32)
    }
    /// rbsp_trailing_bits(), or byte_alignment(): a one, zeros to a byte.
    pub(super) fn align(&mut self) -> &mut Self {
        self.f(true);
        while !self.0.len().is_multiple_of(8) {
            self.f(false);
        }
        self
    }
    pub(super) fn bytes(&self) -> Vec<u8> {
        self.0
            .chunks(8)
            .map(|c| (0..8).fold(0, |b, i| b << 1 | u8::from(c.get(i) == Some(&true))))
            .collect()
    }
}

/// Inserts emulation prevention bytes (7.4.1).
pub(super) fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for &b in rbsp {
        if b <= 3 && out.len() >= 2 && out[out.len() - 2..] == [0, 0] {
            out.push(3);
        }
        out.push(b);
    }
    out
}

/// A slice NAL unit: `header` (its bits end where the header ends), then
/// bytes of slice data; and the header size it should measure.
pub(super) fn slice(header: &W, data_bits: &[u8]) -> (Vec<u8>, usize) {
    let mut w = W(header.0.clone());
    let header_bytes = w.bytes();
    for &b in data_bits {
        w.u(8, u64::from(b));
    }
    (escape(&w.bytes()), escape(&header_bytes).len())
}

/// Every prefix of `nal` shorter than its header measures nothing; every
/// longer one measures the header.
pub(super) fn measures(h: &SliceHeaders, nal: &[u8], size: usize) {
    assert_eq!(h.header_size(nal), Some(size), "{nal:02x?}");
    for len in 0..nal.len() {
        let want = (len >= size).then_some(size);
        assert_eq!(
            h.header_size(&nal[..len]),
            want,
            "prefix {len} of {nal:02x?}"
        );
    }
}

#[test]
fn bits_skip_emulation_prevention_and_count_stored_bytes() {
    let mut r = Bits::new(&[0, 0, 3, 1, 0, 0, 3]);
    assert_eq!(r.u(16), Ok(0));
    assert_eq!(r.bytes_read(), 2);
    assert_eq!(r.u(1), Ok(0));
    assert_eq!(r.bytes_read(), 4, "the 03 before the byte read counts");
    assert_eq!(r.u(7), Ok(1));
    assert_eq!(r.u(16), Ok(0));
    assert_eq!(r.flag(), Err(Invalid), "a final 03 is not data");
    let mut w = W::default();
    for v in [0, 1, 2, 7, 255, 65_534, u32::MAX - 1] {
        w.ue(v);
    }
    for v in [0, 1, -1, 5, -77, i32::MAX, -i32::MAX] {
        w.se(v);
    }
    let bytes = escape(&w.bytes());
    let mut r = Bits::new(&bytes);
    for v in [0, 1, 2, 7, 255, 65_534, u32::MAX - 1] {
        assert_eq!(r.ue(), Ok(v));
    }
    for v in [0, 1, -1, 5, -77, i32::MAX, -i32::MAX] {
        assert_eq!(r.se(), Ok(v));
    }
    // 32 leading zeros do not fit 32 bits, however many bits follow.
    assert_eq!(
        Bits::new(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]).ue(),
        Err(Invalid)
    );
    assert_eq!(Bits::new(&[0, 1]).ue(), Err(Invalid), "truncated");
    assert_eq!(Bits::new(&[]).u(1), Err(Invalid));
}

#[test]
fn more_rbsp_data_stops_at_the_stop_bit() {
    let mut r = Bits::new(&[0b1010_0000, 0, 0]);
    assert!(r.more_rbsp_data());
    r.u(2).unwrap();
    assert!(!r.more_rbsp_data(), "only the stop bit is left");
    // cabac_zero_words (00 00 stored as 00 00 03) after the stop bit.
    let mut r = Bits::new(&[0x12, 0x80, 0, 0, 3, 0, 0, 3]);
    r.u(8).unwrap();
    assert!(!r.more_rbsp_data());
    assert!(!Bits::new(&[0, 0]).more_rbsp_data());
}

/// A tiny generator for hostile bytes, seeded per test.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (*seed >> 56) as u8
        })
        .collect()
}

#[test]
fn hostile_units_measure_nothing_and_never_panic() {
    let (mut sps, mut pps) = (W::default(), W::default());
    avc_sps(&mut sps, 100, false, 0, false);
    avc_pps(&mut pps, true, 2, true);
    let mut avc = avc_headers(&sps, &pps);
    let (mut hs, mut hp) = (W::default(), W::default());
    hevc_sps(&mut hs, 0x80);
    hevc_pps(&mut hp);
    let mut hevc = hevc_headers(&hs, &hp);
    for h in [&avc, &hevc] {
        for nal in [
            &[][..],
            &[0x65],
            &[0x26, 0x01],
            &[0x65, 0, 0, 0, 0, 1, 0xff],
            &[0xff; 9],
        ] {
            assert_eq!(h.header_size(nal), None, "{nal:02x?}");
        }
    }
    let mut seed = 7;
    for len in 0..400 {
        let mut nal = noise(&mut seed, len % 40);
        for (h, first) in [(&mut avc, [0x65, 0x41]), (&mut hevc, [0x26, 0x01])] {
            nal.splice(..nal.len().min(2), first);
            if let Some(n) = h.header_size(&nal) {
                assert!(n <= nal.len());
            }
            h.parameter_set(&nal);
        }
    }
    for (codec, first) in [(Codec::Avc, [0x67, 0x68]), (Codec::Hevc, [0x42, 0x44])] {
        let mut h = SliceHeaders::new(codec, &noise(&mut seed, 90));
        for len in 0..300 {
            let mut nal = noise(&mut seed, len);
            nal.splice(..nal.len().min(1), [first[len % 2]]);
            if codec == Codec::Hevc && nal.len() > 1 {
                nal[1] = 1;
            }
            h.parameter_set(&nal);
        }
    }
}
