//! HEVC sequence and picture parameter sets (H.265 7.3.2.2, 7.3.2.3, with
//! the VUI and HRD of E.2) and the slice segment header (7.3.6–7.3.8), read
//! as far as the length of a slice segment header depends on them. Only
//! the base layer (`nuh_layer_id` 0) is read; SPS and PPS extensions other
//! than the range extension (multilayer, 3D, SCC) make their slices `None`.

use super::bits::{Bits, Invalid, Result};
use super::hevc_syntax::{
    Rps, profile_tier_level, scaling_list_data, st_ref_pic_set, vui_parameters,
};
use super::{Parsed, Table};

#[derive(Debug)]
pub(crate) struct Sps {
    /// 0 for 4:0:0 or separate colour planes: no chroma weights, no chroma SAO.
    chroma_array_type: u32,
    separate_colour_plane: bool,
    log2_max_poc_lsb: u32,
    /// Ceil(Log2(PicSizeInCtbsY)): bits of `slice_segment_address`.
    address_bits: u32,
    sample_adaptive_offset: bool,
    short_term: Vec<Rps>,
    /// `used_by_curr_pic_lt_sps_flag`s, when `long_term_ref_pics_present_flag`.
    long_term: Option<Vec<bool>>,
    temporal_mvp: bool,
}

#[derive(Debug)]
pub(crate) struct Pps {
    sps_id: u32,
    dependent_slice_segments: bool,
    output_flag_present: bool,
    num_extra_slice_header_bits: u32,
    cabac_init_present: bool,
    num_ref_idx_default_active_minus1: [u32; 2],
    slice_chroma_qp_offsets_present: bool,
    weighted_pred: bool,
    weighted_bipred: bool,
    entry_points: bool,
    loop_filter_across_slices: bool,
    deblocking_filter_override_enabled: bool,
    deblocking_filter_disabled: bool,
    lists_modification_present: bool,
    slice_segment_header_extension_present: bool,
    chroma_qp_offset_list: bool,
}

/// Ceil(Log2(n)), n ≥ 1.
fn ceil_log2(n: u64) -> u32 {
    64 - n.saturating_sub(1).leading_zeros()
}

/// The 2-byte NAL unit header, type `nal_type`, of the base layer.
fn header(r: &mut Bits, nal_type: u32) -> Result<()> {
    let h = r.u(16)?;
    if h & 0x8000 != 0 || h >> 9 & 0x3f != nal_type || h >> 3 & 0x3f != 0 {
        return Err(Invalid);
    }
    Ok(())
}

/// A whole SPS NAL unit; `None` when even its id cannot be read, or when
/// it belongs to another layer.
pub(super) fn sps(nal: &[u8]) -> Option<Parsed<Sps>> {
    let mut r = Bits::new(nal);
    header(&mut r, 33).ok()?;
    r.skip(4).ok()?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.u(3).ok()?;
    r.skip(1).ok()?; // sps_temporal_id_nesting_flag
    profile_tier_level(&mut r, max_sub_layers_minus1).ok()?;
    let id = r.ue_max(15).ok()?;
    Some(Parsed {
        id,
        set: sps_rest(&mut r, max_sub_layers_minus1).ok(),
    })
}

fn sps_rest(r: &mut Bits, max_sub_layers_minus1: u32) -> Result<Sps> {
    let chroma_format_idc = r.ue_max(3)?;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
    // Past 65536 no level (A.4.1) allows a side; it keeps PicSizeInCtbsY small.
    let width = r.ue_max(1 << 16)?;
    let height = r.ue_max(1 << 16)?;
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // conf_win_{left,right,top,bottom}_offset
        }
    }
    r.ue()?; // bit_depth_luma_minus8
    r.ue()?; // bit_depth_chroma_minus8
    let log2_max_poc_lsb = r.ue_max(12)? + 4;
    let all_sub_layers = r.flag()?; // sps_sub_layer_ordering_info_present_flag
    for _ in if all_sub_layers {
        0
    } else {
        max_sub_layers_minus1
    }..=max_sub_layers_minus1
    {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    let min_cb_log2 = r.ue_max(3)? + 3;
    let ctb_log2 = min_cb_log2 + r.ue_max(3)?;
    if ctb_log2 > 6 || width == 0 || height == 0 {
        return Err(Invalid);
    }
    let ctbs = |side: u32| u64::from(side).div_ceil(1 << ctb_log2);
    let address_bits = ceil_log2(ctbs(width) * ctbs(height));
    for _ in 0..4 {
        // log2_min_luma_transform_block_size_minus2, log2_diff_max_min_luma_
        // transform_block_size, max_transform_hierarchy_depth_inter, _intra
        r.ue()?;
    }
    if r.flag()? && r.flag()? {
        // scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        scaling_list_data(r)?;
    }
    r.skip(1)?; // amp_enabled_flag
    let sample_adaptive_offset = r.flag()?;
    if r.flag()? {
        // pcm_enabled_flag
        r.skip(8)?; // pcm_sample_bit_depth_luma_minus1, _chroma_minus1
        r.ue()?; // log2_min_pcm_luma_coding_block_size_minus3
        r.ue()?; // log2_diff_max_min_pcm_luma_coding_block_size
        r.skip(1)?; // pcm_loop_filter_disabled_flag
    }
    let mut short_term = Vec::new();
    for _ in 0..r.ue_max(64)? {
        let rps = st_ref_pic_set(r, &short_term, false)?;
        short_term.push(rps);
    }
    let mut long_term = None;
    if r.flag()? {
        let mut used = Vec::new();
        for _ in 0..r.ue_max(32)? {
            r.skip(log2_max_poc_lsb)?; // lt_ref_pic_poc_lsb_sps[i]
            used.push(r.flag()?);
        }
        long_term = Some(used);
    }
    let temporal_mvp = r.flag()?;
    r.skip(1)?; // strong_intra_smoothing_enabled_flag
    if r.flag()? {
        vui_parameters(r, max_sub_layers_minus1)?;
    }
    // Of the extensions only the range extension may be on: the others
    // change the slice header (SCC's use_integer_mv_flag, for one).
    if r.flag()? && r.u(8)? & 0x7f != 0 {
        return Err(Invalid);
    }
    Ok(Sps {
        chroma_array_type: if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        },
        separate_colour_plane,
        log2_max_poc_lsb,
        address_bits,
        sample_adaptive_offset,
        short_term,
        long_term,
        temporal_mvp,
    })
}

/// A whole PPS NAL unit; `None` when even its id cannot be read, or when
/// it belongs to another layer.
pub(super) fn pps(nal: &[u8]) -> Option<Parsed<Pps>> {
    let mut r = Bits::new(nal);
    header(&mut r, 34).ok()?;
    let id = r.ue_max(63).ok()?;
    Some(Parsed {
        id,
        set: pps_rest(&mut r).ok(),
    })
}

fn pps_rest(r: &mut Bits) -> Result<Pps> {
    let sps_id = r.ue_max(15)?;
    let dependent_slice_segments = r.flag()?;
    let output_flag_present = r.flag()?;
    let num_extra_slice_header_bits = r.u(3)?;
    r.skip(1)?; // sign_data_hiding_enabled_flag
    let cabac_init_present = r.flag()?;
    let l0 = r.ue_max(14)?;
    let l1 = r.ue_max(14)?;
    r.se()?; // init_qp_minus26
    r.skip(1)?; // constrained_intra_pred_flag
    let transform_skip = r.flag()?;
    if r.flag()? {
        r.ue()?; // cu_qp_delta_enabled_flag: diff_cu_qp_delta_depth
    }
    r.se()?; // pps_cb_qp_offset
    r.se()?; // pps_cr_qp_offset
    let slice_chroma_qp_offsets_present = r.flag()?;
    let weighted_pred = r.flag()?;
    let weighted_bipred = r.flag()?;
    r.skip(1)?; // transquant_bypass_enabled_flag
    let tiles = r.flag()?;
    let entropy_coding_sync = r.flag()?;
    if tiles {
        let columns = r.ue_max(255)?;
        let rows = r.ue_max(255)?;
        if !r.flag()? {
            // not uniform_spacing_flag: column_width_minus1[], row_height_minus1[]
            for _ in 0..columns + rows {
                r.ue()?;
            }
        }
        r.skip(1)?; // loop_filter_across_tiles_enabled_flag
    }
    let loop_filter_across_slices = r.flag()?;
    let (mut deblocking_filter_override_enabled, mut deblocking_filter_disabled) = (false, false);
    if r.flag()? {
        // deblocking_filter_control_present_flag
        deblocking_filter_override_enabled = r.flag()?;
        deblocking_filter_disabled = r.flag()?;
        if !deblocking_filter_disabled {
            r.se()?; // pps_beta_offset_div2
            r.se()?; // pps_tc_offset_div2
        }
    }
    if r.flag()? {
        scaling_list_data(r)?; // pps_scaling_list_data_present_flag
    }
    let lists_modification_present = r.flag()?;
    r.ue()?; // log2_parallel_merge_level_minus2
    let slice_segment_header_extension_present = r.flag()?;
    let mut chroma_qp_offset_list = false;
    if r.flag()? {
        // pps_extension_present_flag: range, multilayer, 3D, SCC, 4 bits
        let extensions = r.u(8)?;
        if extensions & 0x7f != 0 {
            // SCC's pps_slice_act_qp_offsets_present_flag and current
            // picture referencing change the slice header; the rest unknown.
            return Err(Invalid);
        }
        if extensions & 0x80 != 0 {
            // pps_range_extension()
            if transform_skip {
                r.ue()?; // log2_max_transform_skip_block_size_minus2
            }
            r.skip(1)?; // cross_component_prediction_enabled_flag
            chroma_qp_offset_list = r.flag()?;
            if chroma_qp_offset_list {
                r.ue()?; // diff_cu_chroma_qp_offset_depth
                for _ in 0..=r.ue_max(5)? {
                    r.se()?; // cb_qp_offset_list[i]
                    r.se()?; // cr_qp_offset_list[i]
                }
            }
        }
    }
    Ok(Pps {
        sps_id,
        dependent_slice_segments,
        output_flag_present,
        num_extra_slice_header_bits,
        cabac_init_present,
        num_ref_idx_default_active_minus1: [l0, l1],
        slice_chroma_qp_offsets_present,
        weighted_pred,
        weighted_bipred,
        entry_points: tiles || entropy_coding_sync,
        loop_filter_across_slices,
        deblocking_filter_override_enabled,
        deblocking_filter_disabled,
        lists_modification_present,
        slice_segment_header_extension_present,
        chroma_qp_offset_list,
    })
}

const B: u32 = 0;
const P: u32 = 1;
const IDR_W_RADL: u32 = 19;
const IDR_N_LP: u32 = 20;

/// NAL unit header and slice segment header through `byte_alignment()`, in
/// bytes.
pub(super) fn header_size(nal: &[u8], spss: &Table<Sps>, ppss: &Table<Pps>) -> Result<usize> {
    let mut r = Bits::new(nal);
    let h = r.u(16)?;
    let nal_type = h >> 9 & 0x3f;
    if h & 0x8000 != 0 || h >> 3 & 0x3f != 0 || !matches!(nal_type, 0..=9 | 16..=21) {
        return Err(Invalid);
    }
    let first_slice_segment_in_pic = r.flag()?;
    if (16..=23).contains(&nal_type) {
        r.skip(1)?; // no_output_of_prior_pics_flag
    }
    let pps = ppss.get(r.ue_max(63)?).ok_or(Invalid)?;
    let sps = spss.get(pps.sps_id).ok_or(Invalid)?;
    let mut dependent = false;
    if !first_slice_segment_in_pic {
        if pps.dependent_slice_segments {
            dependent = r.flag()?;
        }
        r.skip(sps.address_bits)?; // slice_segment_address
    }
    if !dependent {
        slice_fields(&mut r, nal_type, sps, pps)?;
    }
    if pps.entry_points {
        let offsets = r.ue()?; // num_entry_point_offsets
        if offsets > 0 {
            let bits = r.ue_max(31)? + 1; // offset_len_minus1
            for _ in 0..offsets {
                r.skip(bits)?; // entry_point_offset_minus1[i]
            }
        }
    }
    if pps.slice_segment_header_extension_present {
        let bytes = r.ue_max(256)?;
        r.skip(bytes * 8)?; // slice_segment_header_extension_data_byte[]
    }
    // byte_alignment(): a one bit, zero bits to the boundary.
    if !r.flag()? {
        return Err(Invalid);
    }
    while !r.aligned() {
        if r.flag()? {
            return Err(Invalid);
        }
    }
    Ok(r.bytes_read())
}

/// The fields of an independent slice segment header, from `slice_type`
/// through `slice_loop_filter_across_slices_enabled_flag`.
fn slice_fields(r: &mut Bits, nal_type: u32, sps: &Sps, pps: &Pps) -> Result<()> {
    r.skip(pps.num_extra_slice_header_bits)?; // slice_reserved_flag[]
    let slice_type = r.ue_max(2)?;
    if pps.output_flag_present {
        r.skip(1)?; // pic_output_flag
    }
    if sps.separate_colour_plane {
        r.skip(2)?; // colour_plane_id
    }
    let mut pictures = 0; // NumPicTotalCurr (7-55)
    let mut temporal_mvp = false;
    if nal_type != IDR_W_RADL && nal_type != IDR_N_LP {
        r.skip(sps.log2_max_poc_lsb)?; // slice_pic_order_cnt_lsb
        let sets = &sps.short_term;
        if !r.flag()? {
            // short_term_ref_pic_set_sps_flag
            pictures += st_ref_pic_set(r, sets, true)?.used();
        } else {
            let bits = ceil_log2(sets.len() as u64);
            let idx = r.u(bits)? as usize; // short_term_ref_pic_set_idx
            pictures += sets.get(idx).ok_or(Invalid)?.used();
        }
        if let Some(used_sps) = &sps.long_term {
            let in_sps = if used_sps.is_empty() {
                0
            } else {
                r.ue_max(used_sps.len() as u32)? // num_long_term_sps
            };
            let in_slice = r.ue_max(32)?; // num_long_term_pics
            for i in 0..in_sps + in_slice {
                let used = if i < in_sps {
                    let bits = ceil_log2(used_sps.len() as u64);
                    let idx = r.u(bits)? as usize; // lt_idx_sps[i]
                    *used_sps.get(idx).ok_or(Invalid)?
                } else {
                    r.skip(sps.log2_max_poc_lsb)?; // poc_lsb_lt[i]
                    r.flag()? // used_by_curr_pic_lt_flag[i]
                };
                pictures += u32::from(used);
                if r.flag()? {
                    r.ue()?; // delta_poc_msb_present_flag: delta_poc_msb_cycle_lt
                }
            }
        }
        if sps.temporal_mvp {
            temporal_mvp = r.flag()?;
        }
    }
    let (mut sao_luma, mut sao_chroma) = (false, false);
    if sps.sample_adaptive_offset {
        sao_luma = r.flag()?;
        if sps.chroma_array_type != 0 {
            sao_chroma = r.flag()?;
        }
    }
    if slice_type == P || slice_type == B {
        let [mut l0, mut l1] = pps.num_ref_idx_default_active_minus1;
        if r.flag()? {
            // num_ref_idx_active_override_flag
            l0 = r.ue_max(14)?;
            if slice_type == B {
                l1 = r.ue_max(14)?;
            }
        }
        if pps.lists_modification_present && pictures > 1 {
            // ref_pic_lists_modification() (7.3.6.2): list_entry_lX[i]
            let bits = ceil_log2(u64::from(pictures));
            for n in std::iter::once(l0).chain((slice_type == B).then_some(l1)) {
                if r.flag()? {
                    r.skip((n + 1) * bits)?;
                }
            }
        }
        if slice_type == B {
            r.skip(1)?; // mvd_l1_zero_flag
        }
        if pps.cabac_init_present {
            r.skip(1)?; // cabac_init_flag
        }
        if temporal_mvp {
            let from_l0 = slice_type == P || r.flag()?; // collocated_from_l0_flag
            if (from_l0 && l0 > 0) || (!from_l0 && l1 > 0) {
                r.ue()?; // collocated_ref_idx
            }
        }
        if (pps.weighted_pred && slice_type == P) || (pps.weighted_bipred && slice_type == B) {
            let l1 = (slice_type == B).then_some(l1);
            pred_weight_table(r, sps.chroma_array_type, l0, l1)?;
        }
        r.ue_max(4)?; // five_minus_max_num_merge_cand
    }
    r.se()?; // slice_qp_delta
    if pps.slice_chroma_qp_offsets_present {
        r.se()?; // slice_cb_qp_offset
        r.se()?; // slice_cr_qp_offset
    }
    if pps.chroma_qp_offset_list {
        r.skip(1)?; // cu_chroma_qp_offset_enabled_flag
    }
    let mut deblocking_disabled = pps.deblocking_filter_disabled;
    if pps.deblocking_filter_override_enabled && r.flag()? {
        // deblocking_filter_override_flag
        deblocking_disabled = r.flag()?;
        if !deblocking_disabled {
            r.se()?; // slice_beta_offset_div2
            r.se()?; // slice_tc_offset_div2
        }
    }
    if pps.loop_filter_across_slices && (sao_luma || sao_chroma || !deblocking_disabled) {
        r.skip(1)?; // slice_loop_filter_across_slices_enabled_flag
    }
    Ok(())
}

/// `pred_weight_table()` (7.3.6.3); `l1` for B slices. Every reference is
/// another picture here (no current-picture referencing, one layer), so
/// every weight flag is present.
fn pred_weight_table(r: &mut Bits, chroma_array_type: u32, l0: u32, l1: Option<u32>) -> Result<()> {
    r.ue_max(7)?; // luma_log2_weight_denom
    if chroma_array_type != 0 {
        r.se()?; // delta_chroma_log2_weight_denom
    }
    for n in std::iter::once(l0).chain(l1) {
        let mut luma = [false; 15];
        let mut chroma = [false; 15];
        for flag in luma.iter_mut().take(n as usize + 1) {
            *flag = r.flag()?; // luma_weight_lX_flag[i]
        }
        if chroma_array_type != 0 {
            for flag in chroma.iter_mut().take(n as usize + 1) {
                *flag = r.flag()?; // chroma_weight_lX_flag[i]
            }
        }
        for (luma, chroma) in luma.into_iter().zip(chroma).take(n as usize + 1) {
            if luma {
                r.se()?; // delta_luma_weight_lX[i]
                r.se()?; // luma_offset_lX[i]
            }
            if chroma {
                for _ in 0..4 {
                    r.se()?; // delta_chroma_weight_lX[i][j], delta_chroma_offset_lX[i][j]
                }
            }
        }
    }
    Ok(())
}
