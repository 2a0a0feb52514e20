//! H.264 parameter sets and slices x264 does not write: POC type 1,
//! separate colour planes, SP slices, explicit B weights, FMO, MVC.

use super::super::{Codec, SliceHeaders, is_slice};
use super::{W, escape, measures, slice};

pub(super) fn avc_sps(
    w: &mut W,
    profile: u8,
    chroma_444: bool,
    poc_type: u32,
    frame_mbs_only: bool,
) {
    w.u(8, 0x67).u(8, profile.into()).u(16, 0x001e).ue(0);
    if profile >= 100 {
        w.ue(if chroma_444 { 3 } else { 1 });
        if chroma_444 {
            w.f(true); // separate_colour_plane_flag
        }
        w.ue(0).ue(0).f(false).f(true); // depths, bypass, seq_scaling_matrix_present
        for i in 0..if chroma_444 { 12 } else { 8 } {
            // list 0 ends at once (delta -8: next scale 0); list 6 is read whole.
            match i {
                0 => w.f(true).se(-8),
                6 => w.f(true).u(64, u64::MAX),
                _ => w.f(false),
            };
        }
    }
    w.ue(12); // log2_max_frame_num_minus4: 16 bits
    w.ue(poc_type);
    match poc_type {
        0 => w.ue(12),
        1 => w.f(false).se(-2).se(3).ue(2).se(1).se(-1),
        _ => w,
    };
    w.ue(4).f(false).ue(10).ue(8).f(frame_mbs_only);
    if !frame_mbs_only {
        w.f(true);
    }
    w.f(true).f(false).f(false).align();
}

/// A PPS: CABAC or not, bottom field POC, weighted_pred, weighted_bipred_idc.
pub(super) fn avc_pps(w: &mut W, cabac: bool, bipred: u64, redundant: bool) {
    w.u(8, 0x68).ue(0).ue(0).f(cabac).f(true).ue(0).ue(2).ue(1);
    w.f(true)
        .u(2, bipred)
        .se(0)
        .se(0)
        .se(-2)
        .f(true)
        .f(false)
        .f(redundant);
    w.f(true).f(false).se(0).align(); // transform_8x8 extension, not read
}

pub(super) fn avc_headers(sps: &W, pps: &W) -> SliceHeaders {
    let mut h = SliceHeaders::new(Codec::Avc, &[]);
    assert!(h.parameter_set(&escape(&sps.bytes())));
    assert!(h.parameter_set(&escape(&pps.bytes())));
    h
}

#[test]
fn h264_poc_type_1_fields_modifications_and_marking() {
    let (mut sps, mut pps) = (W::default(), W::default());
    avc_sps(&mut sps, 77, false, 1, false);
    avc_pps(&mut pps, false, 0, true);
    let h = avc_headers(&sps, &pps);
    let mut w = W::default();
    w.u(8, 0x41).ue(0).ue(5).ue(0).u(16, 0); // P, frame_num 0
    w.f(false).se(32).se(1).ue(1); // frame, POC deltas (00 00 02: escaped), redundant_pic_cnt
    w.f(true).ue(3); // override: 4 references
    w.f(true).ue(0).ue(5).ue(2).ue(1).ue(3); // modifications
    w.ue(0)
        .ue(1)
        .f(true)
        .se(2)
        .se(-1)
        .f(true)
        .se(1)
        .se(0)
        .se(-1)
        .se(2); // weights
    for _ in 0..3 {
        w.f(false).f(false);
    }
    w.f(true).ue(1).ue(3).ue(3).ue(0).ue(6).ue(2).ue(1).ue(0); // adaptive marking
    w.se(-3).ue(0).se(1).se(-1); // qp, deblocking
    let (nal, size) = slice(&w, &[0, 0, 1, 0x88]);
    assert!(nal.windows(3).any(|x| x == [0, 0, 3]), "{nal:02x?}");
    measures(&h, &nal, size);
    assert_eq!(
        size,
        w.0.len().div_ceil(8) + 1,
        "one emulation prevention byte"
    );
}

#[test]
fn h264_high_444_planes_scaling_lists_sp_and_explicit_bipred() {
    let (mut sps, mut pps) = (W::default(), W::default());
    avc_sps(&mut sps, 244, true, 0, true);
    avc_pps(&mut pps, true, 1, false);
    let h = avc_headers(&sps, &pps);
    // An SP slice: colour_plane_id, weights without chroma (ChromaArrayType
    // 0), sp_for_switch_flag and slice_qs_delta; CABAC alignment after.
    let mut w = W::default();
    w.u(8, 0x65)
        .ue(0)
        .ue(3)
        .ue(0)
        .u(2, 2)
        .u(16, 5)
        .ue(7)
        .u(16, 9);
    w.se(0).f(false).f(false); // bottom delta, no override, no modification
    w.ue(3).f(true).se(1).se(2).f(false).f(false); // 3 references
    w.f(false)
        .f(true)
        .ue(1)
        .se(4)
        .f(true)
        .se(-1)
        .ue(0)
        .se(1)
        .se(2);
    while !w.0.len().is_multiple_of(8) {
        w.f(true); // cabac_alignment_one_bit
    }
    let (nal, size) = slice(&w, &[0x12, 0x34]);
    measures(&h, &nal, size);
    // A B slice with explicit weights (weighted_bipred_idc 1) for both lists.
    let mut w = W::default();
    w.u(8, 0x21)
        .ue(0)
        .ue(1)
        .ue(0)
        .u(2, 0)
        .u(16, 6)
        .u(16, 2)
        .se(-1);
    w.f(true).f(true).ue(0).ue(1).f(false).f(false); // direct, override 1 and 2
    w.ue(2).f(true).se(0).se(0).f(true).se(1).se(1).f(false);
    w.f(false).ue(2).se(3).ue(0).se(0).se(0);
    assert!(
        !w.0.len().is_multiple_of(8),
        "the header ends in alignment bits"
    );
    while !w.0.len().is_multiple_of(8) {
        w.f(true);
    }
    let (nal, size) = slice(&w, &[0xff]);
    measures(&h, &nal, size);
    // Alignment bits that are not ones: this is no header of these sets.
    let mut bad = nal.clone();
    bad[size - 1] &= 0xfe;
    assert_eq!(h.header_size(&bad), None);
}

#[test]
fn h264_what_is_not_measured() {
    let (mut sps, mut pps) = (W::default(), W::default());
    avc_sps(&mut sps, 66, false, 2, true);
    avc_pps(&mut pps, false, 0, false);
    let mut h = avc_headers(&sps, &pps);
    let mut w = W::default();
    w.u(8, 0x65)
        .ue(0)
        .ue(7)
        .ue(0)
        .u(16, 0)
        .ue(0)
        .f(false)
        .f(false)
        .se(0)
        .ue(1);
    let (idr, size) = slice(&w, &[0xaa]);
    measures(&h, &idr, size);
    // Not slices: partition A (2), MVC (20), SPS.
    for first in [0x42, 0x74, 0x67] {
        let mut other = idr.clone();
        other[0] = first;
        assert!(!is_slice(Codec::Avc, first));
        assert_eq!(h.header_size(&other), None);
    }
    // A slice of an unknown PPS.
    let mut w = W::default();
    w.u(8, 0x65)
        .ue(0)
        .ue(7)
        .ue(9)
        .u(16, 0)
        .ue(0)
        .f(false)
        .f(false)
        .se(0)
        .ue(1);
    assert_eq!(h.header_size(&slice(&w, &[]).0), None);
    // Slice groups (FMO): the PPS is taken, its slices are not measured.
    let mut fmo = W::default();
    fmo.u(8, 0x68)
        .ue(0)
        .ue(0)
        .f(false)
        .f(false)
        .ue(1)
        .ue(6)
        .align();
    assert!(h.parameter_set(&fmo.bytes()));
    assert_eq!(h.header_size(&idr), None);
    // A set of the same id replaces the old one; a damaged one leaves none.
    let mut pps = W::default();
    avc_pps(&mut pps, false, 0, false);
    assert!(h.parameter_set(&pps.bytes()));
    assert_eq!(h.header_size(&idr), Some(size));
    let damaged = &sps.bytes()[..6];
    assert!(h.parameter_set(damaged));
    assert_eq!(h.header_size(&idr), None);
}

#[test]
fn avcc_gives_its_parameter_sets_and_a_cut_one_those_before_the_cut() {
    let (mut sps, mut pps) = (W::default(), W::default());
    avc_sps(&mut sps, 100, false, 0, false);
    avc_pps(&mut pps, true, 2, true);
    let mut avcc = vec![1, 100, 0, 30, 0xff, 0xe1];
    for (i, nal) in [sps.bytes(), pps.bytes()].into_iter().enumerate() {
        if i == 1 {
            avcc.push(1);
        }
        avcc.extend((nal.len() as u16).to_be_bytes());
        avcc.extend(nal);
    }
    avcc.extend([0xfd, 0xf8, 0xf8, 0]); // the high profiles' fields
    // An IDR bottom field: no bottom POC delta; CABAC alignment after.
    let mut w = W::default();
    w.u(8, 0x65)
        .ue(0)
        .ue(7)
        .ue(0)
        .u(16, 0)
        .f(true)
        .f(true)
        .ue(3)
        .u(16, 1);
    w.ue(0).f(false).f(false).se(-2).ue(1);
    while !w.0.len().is_multiple_of(8) {
        w.f(true);
    }
    let (idr, size) = slice(&w, &[0x80, 0x3f]);
    measures(&SliceHeaders::new(Codec::Avc, &avcc), &idr, size);
    for len in 0..avcc.len() {
        let whole = len >= avcc.len() - 4;
        let h = SliceHeaders::new(Codec::Avc, &avcc[..len]);
        assert_eq!(h.header_size(&idr), whole.then_some(size), "cut at {len}");
    }
}
