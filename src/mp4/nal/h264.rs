//! H.264 sequence and picture parameter sets (7.3.2.1.1, 7.3.2.2) and the
//! slice header (7.3.3–7.3.3.3, 7.3.4), read as far as the length of a
//! slice header depends on them.

use super::bits::{Bits, Invalid, Result};
use super::{Parsed, Table};

/// `pic_order_cnt_type` and what the slice header reads for it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Poc {
    /// 0: `pic_order_cnt_lsb` of this many bits.
    Lsb(u32),
    /// 1: `delta_pic_order_cnt[]`, unless `delta_pic_order_always_zero_flag`.
    Deltas { always_zero: bool },
    /// 2: nothing.
    Frame,
}

#[derive(Debug)]
pub(crate) struct Sps {
    /// 0 for 4:0:0 or separate colour planes: no chroma weights.
    chroma_array_type: u32,
    separate_colour_plane: bool,
    log2_max_frame_num: u32,
    poc: Poc,
    frame_mbs_only: bool,
}

#[derive(Debug)]
pub(crate) struct Pps {
    sps_id: u32,
    entropy_coding_mode: bool,
    bottom_field_pic_order_in_frame_present: bool,
    num_ref_idx_default_active_minus1: [u32; 2],
    weighted_pred: bool,
    weighted_bipred_idc: u32,
    deblocking_filter_control_present: bool,
    redundant_pic_cnt_present: bool,
}

/// Profiles whose SPS carries `chroma_format_idc` and the fields after it.
const CHROMA_PROFILES: [u32; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// A NAL unit header byte of type `nal_type`, forbidden bit clear.
fn header(r: &mut Bits, nal_type: u32) -> Result<u32> {
    let b = r.u(8)?;
    if b & 0x80 != 0 || b & 0x1f != nal_type {
        return Err(Invalid);
    }
    Ok(b)
}

/// A whole SPS NAL unit; `None` when even its id cannot be read.
pub(super) fn sps(nal: &[u8]) -> Option<Parsed<Sps>> {
    let mut r = Bits::new(nal);
    header(&mut r, 7).ok()?;
    let profile_idc = r.u(8).ok()?;
    r.skip(16).ok()?; // constraint flags, level_idc
    let id = r.ue_max(31).ok()?;
    Some(Parsed {
        id,
        set: sps_rest(&mut r, profile_idc).ok(),
    })
}

fn sps_rest(r: &mut Bits, profile_idc: u32) -> Result<Sps> {
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if CHROMA_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue_max(3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag
            for i in 0..if chroma_format_idc == 3 { 12 } else { 8 } {
                if r.flag()? {
                    scaling_list(r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num = r.ue_max(12)? + 4;
    let poc = match r.ue_max(2)? {
        0 => Poc::Lsb(r.ue_max(12)? + 4),
        1 => {
            let always_zero = r.flag()?;
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue_max(255)? {
                r.se()?; // offset_for_ref_frame[i]
            }
            Poc::Deltas { always_zero }
        }
        _ => Poc::Frame,
    };
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    r.ue()?; // pic_width_in_mbs_minus1
    r.ue()?; // pic_height_in_map_units_minus1
    let frame_mbs_only = r.flag()?;
    Ok(Sps {
        chroma_array_type: if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        },
        separate_colour_plane,
        log2_max_frame_num,
        poc,
        frame_mbs_only,
    })
}

/// `scaling_list()` (7.3.2.1.1.1): deltas until one makes the next scale 0.
fn scaling_list(r: &mut Bits, size: usize) -> Result<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(Invalid);
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// A whole PPS NAL unit; `None` when even its id cannot be read.
pub(super) fn pps(nal: &[u8]) -> Option<Parsed<Pps>> {
    let mut r = Bits::new(nal);
    header(&mut r, 8).ok()?;
    let id = r.ue_max(255).ok()?;
    Some(Parsed {
        id,
        set: pps_rest(&mut r).ok(),
    })
}

/// The PPS up to `redundant_pic_cnt_present_flag`: what follows
/// (`transform_8x8_mode_flag`, scaling lists) is not read by slice headers.
fn pps_rest(r: &mut Bits) -> Result<Pps> {
    let sps_id = r.ue_max(31)?;
    let entropy_coding_mode = r.flag()?;
    let bottom_field_pic_order_in_frame_present = r.flag()?;
    if r.ue_max(7)? > 0 {
        // Slice groups (FMO, Baseline and Extended profiles only): their
        // slices end in `slice_group_change_cycle`, left unread.
        return Err(Invalid);
    }
    let l0 = r.ue_max(31)?;
    let l1 = r.ue_max(31)?;
    let weighted_pred = r.flag()?;
    let weighted_bipred_idc = r.u(2)?;
    r.se()?; // pic_init_qp_minus26
    r.se()?; // pic_init_qs_minus26
    r.se()?; // chroma_qp_index_offset
    let deblocking_filter_control_present = r.flag()?;
    r.skip(1)?; // constrained_intra_pred_flag
    let redundant_pic_cnt_present = r.flag()?;
    Ok(Pps {
        sps_id,
        entropy_coding_mode,
        bottom_field_pic_order_in_frame_present,
        num_ref_idx_default_active_minus1: [l0, l1],
        weighted_pred,
        weighted_bipred_idc,
        deblocking_filter_control_present,
        redundant_pic_cnt_present,
    })
}

/// `slice_type % 5` (Table 7-6).
#[derive(Clone, Copy, PartialEq)]
enum SliceType {
    P,
    B,
    I,
    Sp,
    Si,
}

/// NAL unit header and slice header of a type 1 or 5 slice, in bytes.
pub(super) fn header_size(nal: &[u8], spss: &Table<Sps>, ppss: &Table<Pps>) -> Result<usize> {
    let mut r = Bits::new(nal);
    let first = r.u(8)?;
    let nal_type = first & 0x1f;
    if first & 0x80 != 0 || !matches!(nal_type, 1 | 5) {
        return Err(Invalid);
    }
    let idr = nal_type == 5;
    let nal_ref_idc = first >> 5 & 3;
    r.ue()?; // first_mb_in_slice
    let slice_type = match r.ue_max(9)? % 5 {
        0 => SliceType::P,
        1 => SliceType::B,
        2 => SliceType::I,
        3 => SliceType::Sp,
        _ => SliceType::Si,
    };
    let pps = ppss.get(r.ue_max(255)?).ok_or(Invalid)?;
    let sps = spss.get(pps.sps_id).ok_or(Invalid)?;
    if sps.separate_colour_plane {
        r.skip(2)?; // colour_plane_id
    }
    r.skip(sps.log2_max_frame_num)?; // frame_num
    let mut field_pic = false;
    if !sps.frame_mbs_only {
        field_pic = r.flag()?;
        if field_pic {
            r.skip(1)?; // bottom_field_flag
        }
    }
    if idr {
        r.ue()?; // idr_pic_id
    }
    let bottom_delta = pps.bottom_field_pic_order_in_frame_present && !field_pic;
    match sps.poc {
        Poc::Lsb(bits) => {
            r.skip(bits)?; // pic_order_cnt_lsb
            if bottom_delta {
                r.se()?; // delta_pic_order_cnt_bottom
            }
        }
        Poc::Deltas { always_zero: false } => {
            r.se()?; // delta_pic_order_cnt[0]
            if bottom_delta {
                r.se()?; // delta_pic_order_cnt[1]
            }
        }
        Poc::Deltas { always_zero: true } | Poc::Frame => {}
    }
    if pps.redundant_pic_cnt_present {
        r.ue()?; // redundant_pic_cnt
    }
    let b = slice_type == SliceType::B;
    if b {
        r.skip(1)?; // direct_spatial_mv_pred_flag
    }
    let [mut l0, mut l1] = pps.num_ref_idx_default_active_minus1;
    let predicted = !matches!(slice_type, SliceType::I | SliceType::Si);
    if predicted {
        if r.flag()? {
            // num_ref_idx_active_override_flag
            l0 = r.ue_max(31)?;
            if b {
                l1 = r.ue_max(31)?;
            }
        }
        ref_pic_list_modification(&mut r, l0)?;
        if b {
            ref_pic_list_modification(&mut r, l1)?;
        }
    }
    let p = matches!(slice_type, SliceType::P | SliceType::Sp);
    if (pps.weighted_pred && p) || (pps.weighted_bipred_idc == 1 && b) {
        pred_weight_table(&mut r, sps.chroma_array_type, l0, b.then_some(l1))?;
    }
    if nal_ref_idc != 0 {
        dec_ref_pic_marking(&mut r, idr)?;
    }
    if pps.entropy_coding_mode && predicted {
        r.ue_max(2)?; // cabac_init_idc
    }
    r.se()?; // slice_qp_delta
    if matches!(slice_type, SliceType::Sp | SliceType::Si) {
        if slice_type == SliceType::Sp {
            r.skip(1)?; // sp_for_switch_flag
        }
        r.se()?; // slice_qs_delta
    }
    if pps.deblocking_filter_control_present && r.ue_max(2)? != 1 {
        r.se()?; // slice_alpha_c0_offset_div2
        r.se()?; // slice_beta_offset_div2
    }
    if pps.entropy_coding_mode {
        // slice_data() starts with cabac_alignment_one_bit up to a byte.
        while !r.aligned() {
            if !r.flag()? {
                return Err(Invalid);
            }
        }
    }
    Ok(r.bytes_read())
}

/// `ref_pic_list_modification()` for one list (7.3.3.1): at most
/// `num_ref_idx_lX_active_minus1 + 1` modifications, then idc 3.
fn ref_pic_list_modification(r: &mut Bits, num_ref_idx_minus1: u32) -> Result<()> {
    if !r.flag()? {
        return Ok(());
    }
    for _ in 0..=num_ref_idx_minus1 + 1 {
        // modification_of_pic_nums_idc: 0, 1 abs_diff_pic_num_minus1,
        // 2 long_term_pic_num, 3 the end (4 and 5 are MVC's).
        if r.ue_max(3)? == 3 {
            return Ok(());
        }
        r.ue()?;
    }
    Err(Invalid)
}

/// `pred_weight_table()` (7.3.3.2); `l1` for B slices.
fn pred_weight_table(r: &mut Bits, chroma_array_type: u32, l0: u32, l1: Option<u32>) -> Result<()> {
    r.ue_max(7)?; // luma_log2_weight_denom
    if chroma_array_type != 0 {
        r.ue_max(7)?; // chroma_log2_weight_denom
    }
    for n in std::iter::once(l0).chain(l1) {
        for _ in 0..=n {
            if r.flag()? {
                r.se()?; // luma_weight_lX[i]
                r.se()?; // luma_offset_lX[i]
            }
            if chroma_array_type != 0 && r.flag()? {
                for _ in 0..4 {
                    r.se()?; // chroma_weight_lX[i][j], chroma_offset_lX[i][j]
                }
            }
        }
    }
    Ok(())
}

/// `dec_ref_pic_marking()` (7.3.3.3).
fn dec_ref_pic_marking(r: &mut Bits, idr: bool) -> Result<()> {
    if idr {
        return r.skip(2); // no_output_of_prior_pics_flag, long_term_reference_flag
    }
    if !r.flag()? {
        // adaptive_ref_pic_marking_mode_flag
        return Ok(());
    }
    // Each operation is read from the input, so the loop ends with it.
    loop {
        let mmco = r.ue_max(6)?;
        if mmco == 0 {
            return Ok(());
        }
        if matches!(mmco, 1 | 3) {
            r.ue()?; // difference_of_pic_nums_minus1
        }
        if mmco == 2 {
            r.ue()?; // long_term_pic_num
        }
        if matches!(mmco, 3 | 6) {
            r.ue()?; // long_term_frame_idx
        }
        if mmco == 4 {
            r.ue()?; // max_long_term_frame_idx_plus1
        }
    }
}
