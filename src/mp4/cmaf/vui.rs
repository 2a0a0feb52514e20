//! The colour a video's own sequence parameter set states, for films whose
//! sample entry has no `nclx` `colr` box: the VUI of the first SPS of an
//! `avcC` (ITU-T H.264 7.3.2.1.1, E.1.1) or an `hvcC` (ITU-T H.265
//! 7.3.2.2.1, E.2.1). Every count is bounded and any defect ends the parse
//! with `None`, which describes the track as SDR: never an error.

use super::codecs::Colour;

/// An MSB-first bit reader (ITU-T H.264 7.2 `u(n)`, `ue(v)`, `se(v)`).
pub(super) struct Bits<'a> {
    data: &'a [u8],
    /// The next bit, counted from the first byte's most significant bit.
    at: usize,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Bits { data, at: 0 }
    }

    /// Bits not read yet.
    pub(super) fn left(&self) -> usize {
        self.data.len().saturating_mul(8).saturating_sub(self.at)
    }

    pub(super) fn flag(&mut self) -> Option<bool> {
        let byte = self.data.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(bit == 1)
    }

    /// `u(n)`, `n` at most 32.
    pub(super) fn u(&mut self, n: u32) -> Option<u32> {
        if n > 32 || self.left() < n as usize {
            return None;
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.flag()?);
        }
        u32::try_from(v).ok()
    }

    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        if self.left() < n {
            return None;
        }
        self.at += n;
        Some(())
    }

    /// `ue(v)`: at most 31 leading zeros, so every value fits 32 bits.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = u64::from(self.u(zeros)?);
        u32::try_from((1u64 << zeros) - 1 + rest).ok()
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    fn ues(&mut self, n: usize) -> Option<()> {
        for _ in 0..n {
            self.ue()?;
        }
        Some(())
    }
}

/// A NAL unit's payload with its emulation prevention bytes (the 3 of
/// `00 00 03`) removed.
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let v = b.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_be_bytes([v[0], v[1]])))
}

/// The colour of the first SPS of an `avcC` body.
pub(super) fn avc(avcc: &[u8]) -> Option<Colour> {
    // 5 bytes of fields, then the count of SPS and the first one's length.
    if avcc.get(5)? & 0x1f == 0 {
        return None;
    }
    let len = be16(avcc, 6)?;
    let nal = avcc.get(8..8usize.checked_add(len)?)?;
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    avc_sps(&rbsp(nal))
}

/// The colour of the first SPS (NAL unit type 33) of an `hvcC` body.
pub(super) fn hevc(hvcc: &[u8]) -> Option<Colour> {
    // 22 bytes of fields, then numOfArrays and the arrays of NAL units.
    let arrays = *hvcc.get(22)?;
    let mut at = 23usize;
    for _ in 0..arrays {
        let kind = hvcc.get(at)? & 0x3f;
        let count = be16(hvcc, at.checked_add(1)?)?;
        at = at.checked_add(3)?;
        for _ in 0..count {
            let len = be16(hvcc, at)?;
            let start = at.checked_add(2)?;
            let nal = hvcc.get(start..start.checked_add(len)?)?;
            if kind == 33 && (nal.first()? >> 1) & 0x3f == 33 {
                return hevc_sps(&rbsp(nal));
            }
            at = start.checked_add(len)?;
        }
    }
    None
}

/// `vui_parameters()` up to the colour description, alike in both codecs.
fn vui_colour(b: &mut Bits<'_>) -> Option<Colour> {
    if b.flag()? && b.u(8)? == 255 {
        b.skip(32)?; // sar_width, sar_height
    }
    if b.flag()? {
        b.skip(1)?; // overscan_appropriate_flag
    }
    if !b.flag()? {
        return None; // no video_signal_type
    }
    b.skip(3)?; // video_format
    let full_range = b.flag()?;
    if !b.flag()? {
        return None; // no colour_description
    }
    let mut code = || u8::try_from(b.u(8)?).ok();
    Some(Colour {
        primaries: code()?,
        transfer: code()?,
        matrix: code()?,
        full_range,
    })
}

/// H.264 `seq_parameter_set_data()` (7.3.2.1.1) up to its VUI.
fn avc_sps(rbsp: &[u8]) -> Option<Colour> {
    let b = &mut Bits::new(rbsp);
    b.skip(8)?; // NAL unit header
    let profile = b.u(8)?;
    b.skip(16)?; // constraint flags, level_idc
    b.ue()?; // seq_parameter_set_id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format_idc = b.ue()?;
        if chroma_format_idc == 3 {
            b.skip(1)?; // separate_colour_plane_flag
        }
        b.ues(2)?; // bit depths
        b.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if b.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.flag()? {
                    avc_scaling_list(b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => b.ues(1)?, // log2_max_pic_order_cnt_lsb_minus4
        1 => {
            b.skip(1)?;
            b.se()?;
            b.se()?;
            let cycle = b.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    b.ue()?; // max_num_ref_frames
    b.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    b.ues(2)?; // picture width and height
    if !b.flag()? {
        b.skip(1)?; // mb_adaptive_frame_field_flag
    }
    b.skip(1)?; // direct_8x8_inference_flag
    if b.flag()? {
        b.ues(4)?; // frame cropping offsets
    }
    if !b.flag()? {
        return None; // no VUI
    }
    vui_colour(b)
}

/// H.264 `scaling_list()` (7.3.2.1.1.1): its deltas, read and dropped.
fn avc_scaling_list(b: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// H.265 `seq_parameter_set_rbsp()` (7.3.2.2.1) up to its VUI.
fn hevc_sps(rbsp: &[u8]) -> Option<Colour> {
    let b = &mut Bits::new(rbsp);
    b.skip(16)?; // NAL unit header
    b.skip(4)?; // sps_video_parameter_set_id
    let sub_layers = b.u(3)?; // sps_max_sub_layers_minus1
    b.skip(1)?; // sps_temporal_id_nesting_flag
    profile_tier_level(b, sub_layers)?;
    b.ue()?; // sps_seq_parameter_set_id
    if b.ue()? == 3 {
        b.skip(1)?; // separate_colour_plane_flag
    }
    b.ues(2)?; // picture width and height
    if b.flag()? {
        b.ues(4)?; // conformance window offsets
    }
    b.ues(2)?; // bit depths
    let poc_lsb_bits = b.ue()?.checked_add(4)?;
    if poc_lsb_bits > 16 {
        return None;
    }
    let orderings = if b.flag()? { sub_layers + 1 } else { 1 };
    b.ues(3 * orderings as usize)?;
    b.ues(6)?; // coding and transform block sizes, hierarchy depths
    if b.flag()? && b.flag()? {
        hevc_scaling_list_data(b)?;
    }
    b.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if b.flag()? {
        b.skip(8)?; // PCM sample bit depths
        b.ues(2)?;
        b.skip(1)?; // pcm_loop_filter_disabled_flag
    }
    let sets = b.ue()?;
    if sets > 64 {
        return None;
    }
    let mut deltas: Vec<u32> = Vec::with_capacity(sets as usize);
    for i in 0..sets {
        let n = st_ref_pic_set(b, i, deltas.last().copied())?;
        deltas.push(n);
    }
    if b.flag()? {
        let long_term = b.ue()?;
        if long_term > 32 {
            return None;
        }
        for _ in 0..long_term {
            b.skip(poc_lsb_bits as usize + 1)?; // lt_ref_pic_poc_lsb_sps, used flag
        }
    }
    b.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !b.flag()? {
        return None; // no VUI
    }
    vui_colour(b)
}

/// `profile_tier_level(1, sps_max_sub_layers_minus1)` (7.3.3).
fn profile_tier_level(b: &mut Bits<'_>, sub_layers: u32) -> Option<()> {
    // The general profile space to the constraint flags (88 bits), level.
    b.skip(88 + 8)?;
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(sub_layers as usize) {
        *p = (b.flag()?, b.flag()?);
    }
    if sub_layers > 0 {
        b.skip(2 * (8 - sub_layers as usize))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(sub_layers as usize) {
        if profile {
            b.skip(88)?;
        }
        if level {
            b.skip(8)?;
        }
    }
    Some(())
}

/// H.265 `scaling_list_data()` (7.3.4), read and dropped.
fn hevc_scaling_list_data(b: &mut Bits<'_>) -> Option<()> {
    for size_id in 0..4usize {
        let matrices = if size_id == 3 { 2 } else { 6 };
        for _ in 0..matrices {
            if !b.flag()? {
                b.ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            if size_id > 1 {
                b.se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..(1usize << (4 + 2 * size_id)).min(64) {
                b.se()?;
            }
        }
    }
    Some(())
}

/// `st_ref_pic_set(idx)` (7.3.7) of the SPS: its NumDeltaPocs, given the
/// previous set's (the only one an SPS set may be predicted from).
fn st_ref_pic_set(b: &mut Bits<'_>, idx: u32, previous: Option<u32>) -> Option<u32> {
    if idx != 0 && b.flag()? {
        b.skip(1)?; // delta_rps_sign
        b.ue()?; // abs_delta_rps_minus1
        let mut n = 0u32;
        for _ in 0..=previous? {
            let used = b.flag()?;
            // use_delta_flag is 1 when absent (7.4.8).
            if used || b.flag()? {
                n += 1;
            }
        }
        return (n <= 32).then_some(n);
    }
    let negative = b.ue()?;
    let positive = b.ue()?;
    if negative > 16 || positive > 16 {
        return None;
    }
    for _ in 0..negative + positive {
        b.ue()?; // delta_poc_sN_minus1
        b.skip(1)?; // used_by_curr_pic_sN_flag
    }
    Some(negative + positive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Writes what `Bits` reads, to build the branches encoders seldom take.
    #[derive(Default)]
    struct Writer {
        bits: Vec<bool>,
    }

    impl Writer {
        fn u(&mut self, n: u32, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(i < 64 && (v >> i) & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u64) -> &mut Self {
            let n = 64 - (v + 1).leading_zeros();
            self.u(n - 1, 0).u(n, v + 1)
        }
        fn ues(&mut self, vs: &[u64]) -> &mut Self {
            vs.iter().for_each(|&v| _ = self.ue(v));
            self
        }
        fn se(&mut self, v: i64) -> &mut Self {
            self.ue(if v > 0 {
                2 * v as u64 - 1
            } else {
                v.unsigned_abs() * 2
            })
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = vec![0u8; self.bits.len().div_ceil(8)];
            for (i, &bit) in self.bits.iter().enumerate() {
                out[i / 8] |= u8::from(bit) << (7 - i % 8);
            }
            out
        }
    }

    /// A VUI: sar 255 (explicit), overscan info, BT.2020 with `transfer`.
    fn vui(w: &mut Writer, transfer: u64) {
        w.u(1, 1).u(8, 255).u(32, 0x0001_0001).u(2, 0b10);
        w.u(4, 0b1101)
            .u(2, 0b01)
            .u(24, 0x09_00_09 | (transfer << 8));
    }

    fn hvcc(sps: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 22];
        b.extend_from_slice(&[1, 0x80 | 33, 0, 1]); // one array of one SPS
        b.extend_from_slice(&u16::try_from(sps.len()).unwrap().to_be_bytes());
        [b, sps.to_vec()].concat()
    }

    fn avcc(sps: &[u8]) -> Vec<u8> {
        let mut b = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        b.extend_from_slice(&u16::try_from(sps.len()).unwrap().to_be_bytes());
        [b, sps.to_vec()].concat()
    }

    #[test]
    fn real_parameter_sets_say_their_transfer() {
        // x265 (ffmpeg -x265-params transfer=...), with emulation prevention
        // bytes: PQ; HLG; PQ with temporal-layers=1 (a sub-layer).
        let pq = "42010102200000030090000003000003003ca00a080f1365959a4932bc05a84880482000000300200000030321";
        let hlg = "42010102200000030090000003000003003ca00a080f1365959a4932bc05a84890482000000300200000030321";
        let layered = "42010202200000030090000003000003003c0000a00a080f13659598acd24995e02d424402410000030001000003001908";
        let c = hevc(&hvcc(&hex(pq))).unwrap();
        let codes = (c.primaries, c.transfer, c.matrix, c.full_range);
        assert_eq!(codes, (9, 16, 9, false));
        assert_eq!(hevc(&hvcc(&hex(hlg))).unwrap().transfer, 18);
        assert_eq!(hevc(&hvcc(&hex(layered))).unwrap().transfer, 16);
        // x264: High 10 with HLG, High with PQ, High 4:4:4 (chroma 3) with PQ.
        let high10_hlg = "676e000da6cd94141fb016a12241280000030008000003019078a14cb0";
        let high_pq = "6764000dacd94141fb016a122012800000030080000019078a14cb";
        let high444_pq = "67f4000d919b28283f602d4244025000000300100000030320f1429960";
        for (sps, transfer) in [(high10_hlg, 18), (high_pq, 16), (high444_pq, 16)] {
            assert_eq!(avc(&avcc(&hex(sps))).unwrap().transfer, transfer, "{sps}");
        }
        // A PPS where the SPS should be, an empty or cut record: no colour.
        assert_eq!(avc(&avcc(&hex("68ebe3cb22c0"))), None);
        assert_eq!(avc(&[1, 0x64, 0, 0x0d, 0xff, 0xe0]), None);
        let cut = hex(pq);
        assert_eq!(hevc(&hvcc(&cut[..20])), None);
        assert_eq!(hevc(&hvcc(&cut)[..30]), None);
    }

    /// An SPS with two sub-layers, scaling list data, PCM, three reference
    /// sets (the third predicted from the second), long-term pictures and,
    /// if `transfer` is given, a VUI that states it.
    fn hevc_sps_with_everything(transfer: Option<u64>) -> Vec<u8> {
        let mut w = Writer::default();
        w.u(16, 0x4201).u(4, 0).u(3, 2).u(1, 1); // two sub-layers
        // The general profile_tier_level; sub-layer 0 with profile and
        // level, 1 with level; reserved_zero_2bits for 2..8; their fields.
        w.u(32, 0x2220_0000).u(64, 0x9000_0000_0000_5d00);
        w.u(2, 0b11).u(2, 0b01).u(12, 0);
        w.u(24, 0x02_20_00)
            .u(64, 0x00f0_0000_0000_005a)
            .u(16, 0x5a5d);
        w.ues(&[0, 1, 320, 240]).u(1, 1).ues(&[0, 1, 0, 1]); // window
        w.ues(&[2, 2, 2]).u(1, 1); // bit depths, 6-bit POC LSB, orderings
        w.ues(&[4, 0, 0, 4, 0, 0, 4, 0, 0]).ues(&[0, 2, 0, 3, 1, 1]);
        w.u(2, 0b11); // scaling lists enabled, with data
        for size_id in 0..4 {
            for m in 0..if size_id == 3 { 2 } else { 6 } {
                if m % 2 == 0 {
                    w.u(1, 0).ue(0);
                    continue;
                }
                w.u(1, 1);
                if size_id > 1 {
                    w.se(8);
                }
                for k in 0..(1 << (4 + 2 * size_id)).min(64) {
                    w.se(if k % 3 == 0 { -1 } else { 2 });
                }
            }
        }
        w.u(3, 0b111).u(8, 0x77).ues(&[0, 1]).u(1, 0); // PCM
        w.ues(&[3, 2, 1, 0]).u(1, 1).ue(1).u(1, 1).ue(0).u(1, 0);
        w.u(1, 0).ues(&[1, 0, 0]).u(1, 1);
        w.u(2, 0b11).ue(0).u(3, 0b101); // predicted: 1 + 1 entries
        w.u(1, 1).ue(2).u(7, 0b0001011).u(7, 0b0010010).u(2, 0b11); // long-term
        match transfer {
            Some(t) => vui(w.u(1, 1), t),
            None => _ = w.u(1, 0),
        }
        w.bytes()
    }

    #[test]
    fn hevc_sub_layers_scaling_lists_and_reference_sets_are_walked() {
        let c = hevc(&hvcc(&hevc_sps_with_everything(Some(18)))).unwrap();
        assert_eq!((c.primaries, c.transfer, c.matrix), (9, 18, 9));
        assert_eq!(hevc(&hvcc(&hevc_sps_with_everything(None))), None);
        // Cut short in its VUI: no colour.
        let sps = hevc_sps_with_everything(Some(16));
        assert!(hevc(&hvcc(&sps)).is_some());
        assert_eq!(hevc(&hvcc(&sps[..sps.len() - 8])), None);
    }

    /// A High 4:4:4 SPS with `chroma_format_idc` `chroma`, scaling lists (8,
    /// or 12 for 4:4:4), pic_order_cnt_type 1, cropping and a PQ VUI.
    fn avc_sps_with_everything(chroma: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.u(8, 0x67).u(8, 244).u(16, 0x001f).ues(&[0, chroma]);
        if chroma == 3 {
            w.u(1, 0);
        }
        w.ues(&[0, 0]).u(2, 0b01); // scaling matrix
        for i in 0..if chroma == 3 { 12 } else { 8 } {
            w.u(1, u64::from(i % 3 != 0));
            for k in 0..if i % 3 == 0 {
                0
            } else if i < 6 {
                16
            } else {
                64
            } {
                w.se(if k == 5 { -8 } else { 1 });
            }
        }
        w.ues(&[0, 1]).u(1, 0).se(-2).se(3).ue(2).se(1).se(-1); // poc type 1
        w.ue(4).u(1, 0).ues(&[19, 14]).u(3, 0b011);
        w.u(1, 1).ues(&[0, 0, 0, 4]).u(1, 1); // cropping, VUI
        vui(&mut w, 16);
        w.bytes()
    }

    #[test]
    fn avc_scaling_matrices_and_poc_type_1_are_walked() {
        for chroma in [1, 3] {
            let sps = avc_sps_with_everything(chroma);
            assert_eq!(avc(&avcc(&sps)).unwrap().transfer, 16);
        }
        // An unknown pic_order_cnt_type stops the walk.
        let mut v = Writer::default();
        v.u(8, 0x67).u(8, 66).u(16, 0x001f).ues(&[0, 0, 3]);
        assert_eq!(avc(&avcc(&v.bytes())), None);
    }

    /// Checks that `read` reads exactly `w`'s bits: an 8-bit marker follows.
    fn reads_exactly(w: &mut Writer, read: impl Fn(&mut Bits<'_>) -> Option<()>) {
        let bytes = w.u(8, 0xa5).bytes();
        let mut b = Bits::new(&bytes);
        read(&mut b).unwrap();
        assert_eq!(b.u(8), Some(0xa5));
    }

    #[test]
    fn each_structure_reads_exactly_its_bits() {
        // profile_tier_level: 96 bits, then per sub-layer two flags, the
        // reserved bits up to 8, and the fields the flags announce.
        let w = &mut Writer::default();
        w.u(96, 0).u(2, 0b11).u(2, 0b01).u(12, 0).u(88, 0).u(16, 0);
        reads_exactly(w, |b| profile_tier_level(b, 2));
        reads_exactly(Writer::default().u(96, 0).u(16, 0), |b| {
            profile_tier_level(b, 7)
        });
        reads_exactly(Writer::default().u(96, 0), |b| profile_tier_level(b, 0));
        // st_ref_pic_set: explicit (2 + 1 pictures), then predicted from a
        // set of 2: 3 entries, of which 2 used or kept.
        let w = &mut Writer::default();
        w.ues(&[2, 1, 0]).u(1, 1).ue(1).u(1, 1).ue(0).u(1, 0);
        reads_exactly(w, |b| (st_ref_pic_set(b, 0, None)? == 3).then_some(()));
        let w = &mut Writer::default();
        w.u(2, 0b10).ue(3).u(5, 0b00101);
        reads_exactly(w, |b| (st_ref_pic_set(b, 1, Some(2))? == 2).then_some(()));
        // H.264 scaling_list: a delta that makes nextScale 0 ends the deltas.
        reads_exactly(Writer::default().se(1).se(-9), |b| avc_scaling_list(b, 16));
    }

    #[test]
    fn bits_are_bounded() {
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 3]), [0, 0, 1, 0, 0, 0, 3]);
        // 32 leading zeros are more than any ue(v) the syntax uses.
        assert_eq!(Bits::new(&[0u8; 8]).ue(), None);
        let mut b = Bits::new(&[0b0001_1110, 0xff]);
        assert_eq!((b.ue(), b.left()), (Some(14), 9));
        assert_eq!(b.u(10), None);
        assert_eq!((b.u(9), b.flag()), (Some(0xff), None));
    }
}
