//! HEVC parameter sets and slices x265 does not write: predicted
//! short-term sets, long-term pictures, list modification, tiles, dependent
//! slice segments, header extensions, and the extensions refused.

use super::super::{Codec, SliceHeaders, is_slice};
use super::{W, escape, measures, slice};

/// An HEVC SPS with sub-layers, scaling lists, PCM, predicted short-term
/// sets, long-term pictures, a VUI with HRD and the range extension.
pub(super) fn hevc_sps(w: &mut W, extensions: u64) {
    w.u(16, 0x4201).u(4, 0).u(3, 1).f(true); // vps 0, 2 sub-layers
    w.u(96, 0).f(true).f(true).u(14, 0).u(88, 0).u(8, 0); // profile_tier_level
    w.ue(0).ue(1).ue(64).ue(64).f(false).ue(0).ue(0).ue(4); // 64x64, 8-bit POC lsb
    w.f(true).ue(4).ue(2).ue(0).ue(4).ue(2).ue(0); // ordering info, 2 sub-layers
    w.ue(0).ue(1).ue(0).ue(3).ue(1).ue(1); // 16x16 CTBs: 16 of them
    w.f(true).f(true); // scaling_list_data
    for size_id in 0..4 {
        for m in (0..6).step_by(if size_id == 3 { 3 } else { 1 }) {
            if m == 1 {
                w.f(true);
                if size_id > 1 {
                    w.se(3);
                }
                for _ in 0..[16, 64, 64, 64][size_id] {
                    w.se(-1);
                }
            } else {
                w.f(false).ue(0);
            }
        }
    }
    w.f(true).f(true).f(true).u(8, 0x77).ue(0).ue(1).f(false); // amp, SAO, PCM
    w.ue(3);
    // Set 0: -1 used, -3 not, +2 used.
    w.ue(2).ue(1).ue(0).f(true).ue(1).f(false).ue(1).f(true);
    // Set 1, from set 0 with deltaRps -1: {-1 used, -2 used, +1 unused}.
    w.f(true)
        .f(true)
        .ue(0)
        .f(true)
        .f(false)
        .f(false)
        .f(false)
        .f(true)
        .f(true);
    // Set 2: nothing used.
    w.f(false).ue(1).ue(0).ue(0).f(false);
    w.f(true).ue(2).u(8, 7).f(true).u(8, 9).f(false); // long-term pictures
    w.f(true).f(true).f(true); // temporal MVP, strong intra smoothing, VUI:
    w.f(true)
        .u(8, 255)
        .u(32, 0x0001_0001)
        .f(false)
        .f(true)
        .u(4, 5)
        .f(true)
        .u(24, 0x01_01_01);
    w.f(true)
        .ue(0)
        .ue(0)
        .u(3, 0)
        .f(true)
        .ue(0)
        .ue(0)
        .ue(2)
        .ue(2);
    w.f(true).u(64, 0x0000_03e8_0000_5dc0).f(true).ue(0).f(true); // timing, HRD:
    w.f(true)
        .f(true)
        .f(true)
        .u(19, 0)
        .u(8, 0x55)
        .u(4, 0)
        .u(15, 0);
    for _ in 0..2 {
        w.f(false).f(false).f(false).ue(1); // not fixed, not low delay, 2 CPBs
        for _ in 0..4 {
            w.ue(1000).ue(2000).ue(3).ue(4).f(true);
        }
    }
    w.f(true).u(3, 0).ue(0).ue(2).ue(1).ue(15).ue(15); // bitstream restriction
    w.f(true).u(8, extensions).align();
}

/// An HEVC PPS with every slice header switch on, tiles and WPP, and the
/// range extension's chroma QP offset list.
pub(super) fn hevc_pps(w: &mut W) {
    w.u(16, 0x4401)
        .ue(0)
        .ue(0)
        .f(true)
        .f(true)
        .u(3, 2)
        .f(false)
        .f(true);
    w.ue(1)
        .ue(0)
        .se(-1)
        .f(false)
        .f(true)
        .f(true)
        .ue(1)
        .se(0)
        .se(0);
    w.f(true).f(true).f(true).f(false).f(true).f(true); // chroma QP, weights, tiles, WPP
    w.ue(1).ue(1).f(false).ue(0).ue(1).f(true).f(true); // 2x2 tiles, across slices
    w.f(true).f(true).f(false).se(1).se(-1).f(false); // deblocking override
    w.f(true).ue(0).f(true); // lists_modification, merge level, header extension
    w.f(true)
        .u(8, 0x80)
        .ue(1)
        .f(false)
        .f(true)
        .ue(0)
        .ue(1)
        .se(1)
        .se(2)
        .se(3)
        .se(4);
    w.ue(0).ue(0).align();
}

pub(super) fn hevc_headers(sps: &W, pps: &W) -> SliceHeaders {
    // An hvcC with arrays of a VPS (not read), the SPS and the PPS.
    let mut config = vec![0u8; 22];
    config.push(3);
    for (nal_type, nal) in [
        (32, vec![0x40, 0x01, 0xff]),
        (33, sps.bytes()),
        (34, pps.bytes()),
    ] {
        let nal = escape(&nal);
        config.extend([0x80 | nal_type, 0, 1]);
        config.extend((nal.len() as u16).to_be_bytes());
        config.extend(nal);
    }
    SliceHeaders::new(Codec::Hevc, &config)
}

/// A B slice segment of TRAIL_R: a predicted short-term set in the header,
/// long-term pictures, list modification, weights, entry points and a
/// header extension.
fn hevc_slice() -> W {
    let mut w = W::default();
    w.u(16, 0x0201)
        .f(false)
        .ue(0)
        .f(false)
        .u(4, 5)
        .u(2, 3)
        .ue(0)
        .f(true)
        .u(8, 42);
    // From set 1 (delta_idx_minus1 1), deltaRps +1: -1 moves to 0 and is
    // dropped though used; -2 → -1 used, +1 → +2 not, own +1 used.
    w.f(false).f(true).ue(1).f(false).ue(0);
    w.f(true).f(true).f(false).f(true).f(true);
    w.ue(1)
        .ue(1)
        .f(false)
        .f(false)
        .u(8, 3)
        .f(true)
        .f(true)
        .ue(2); // long-term: 2 used
    w.f(true).f(true).f(false); // temporal MVP, SAO luma, not chroma
    // NumPicTotalCurr 4: list entries of 2 bits.
    w.f(true).ue(1).ue(1).f(true).u(4, 0b0110).f(false);
    w.f(false).f(true).f(false).ue(1); // mvd_l1_zero, cabac_init, from l1
    w.ue(6).se(-1); // weights
    for _ in 0..2 {
        w.f(true)
            .f(false)
            .f(false)
            .f(true)
            .se(1)
            .se(-2)
            .se(1)
            .se(1)
            .se(2)
            .se(3);
    }
    w.ue(2)
        .se(-4)
        .se(1)
        .se(-1)
        .f(true)
        .f(true)
        .f(false)
        .se(2)
        .se(-2)
        .f(true);
    w.ue(2)
        .ue(9)
        .u(10, 700)
        .u(10, 3)
        .ue(2)
        .u(16, 0xbeef)
        .align();
    w
}

#[test]
fn hevc_predicted_sets_long_term_lists_weights_entry_points() {
    let (mut sps, mut pps) = (W::default(), W::default());
    hevc_sps(&mut sps, 0x80);
    hevc_pps(&mut pps);
    let h = hevc_headers(&sps, &pps);
    let (nal, size) = slice(&hevc_slice(), &[0, 0, 0, 1]);
    measures(&h, &nal, size);
    // A dependent slice segment: address, entry points, extension only.
    let mut w = W::default();
    w.u(16, 0x0201)
        .f(false)
        .ue(0)
        .f(true)
        .u(4, 9)
        .ue(1)
        .ue(0)
        .u(1, 1)
        .ue(0);
    let (dependent, size) = slice(w.align(), &[0x55]);
    measures(&h, &dependent, size);
    // Types 10-15 and 22-31 are reserved, not slices.
    for nal_type in [10, 15, 22, 31, 32, 39] {
        let mut other = nal.clone();
        other[0] = nal_type << 1;
        assert!(!is_slice(Codec::Hevc, other[0]));
        assert_eq!(h.header_size(&other), None);
    }
    // Another layer's slice.
    let mut layer = nal.clone();
    layer[1] |= 1 << 3;
    assert_eq!(h.header_size(&layer), None);
}

#[test]
fn hevc_extensions_that_change_slice_headers_are_refused() {
    let mut pps = W::default();
    hevc_pps(&mut pps);
    let (nal, _) = slice(&hevc_slice(), &[1]);
    for scc_or_multilayer in [0x10, 0x40, 0x81] {
        let mut sps = W::default();
        hevc_sps(&mut sps, scc_or_multilayer);
        assert_eq!(hevc_headers(&sps, &pps).header_size(&nal), None);
    }
}
