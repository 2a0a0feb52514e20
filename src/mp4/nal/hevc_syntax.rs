//! HEVC syntax structures of more than one parameter set or header:
//! st_ref_pic_set (H.265 7.3.7) of the SPS and the slice header, and those
//! read only to get past them: profile_tier_level (7.3.3),
//! scaling_list_data (7.3.4), the VUI with its HRD parameters (E.2.1,
//! E.2.2), which stand between an SPS's fields and its extension flags.

use super::bits::{Bits, Invalid, Result};

/// One short-term reference picture set (7.4.8): the POC deltas of the
/// pictures before and after the current one, with `used_by_curr_pic`.
#[derive(Debug, Default)]
pub(super) struct Rps {
    negative: Vec<(i32, bool)>,
    positive: Vec<(i32, bool)>,
}

impl Rps {
    pub(super) fn used(&self) -> u32 {
        let n = self
            .negative
            .iter()
            .chain(&self.positive)
            .filter(|d| d.1)
            .count();
        n as u32 // at most 32 entries
    }
}

/// `st_ref_pic_set(stRpsIdx)` (7.3.7) after the sets `before` it, with the
/// derivation of its deltas (7-61, 7-62) that a later set may predict from.
/// `in_slice`: the set of a slice header, `stRpsIdx` equal to
/// `num_short_term_ref_pic_sets`.
pub(super) fn st_ref_pic_set(r: &mut Bits, before: &[Rps], in_slice: bool) -> Result<Rps> {
    let mut rps = Rps::default();
    if !before.is_empty() && r.flag()? {
        // inter_ref_pic_set_prediction_flag
        let back = if in_slice {
            r.ue_max(63)? as usize + 1
        } else {
            1
        };
        let reference = before.len().checked_sub(back).ok_or(Invalid)?;
        let reference = &before[reference];
        let negative = r.flag()?; // delta_rps_sign
        let magnitude = r.ue_max((1 << 15) - 1)? as i32 + 1;
        let delta_rps = if negative { -magnitude } else { magnitude };
        // used_by_curr_pic_flag and use_delta_flag of each reference picture
        // (negative ones, positive ones), then of the reference set's own picture.
        let count = reference.negative.len() + reference.positive.len();
        let mut flags = Vec::with_capacity(count + 1);
        for _ in 0..=count {
            let used = r.flag()?;
            flags.push((used, used || r.flag()?));
        }
        let n = reference.negative.len();
        let shift = |list: &[(i32, bool)], flags: &[(bool, bool)]| {
            list.iter()
                .zip(flags)
                .map(|(&(poc, _), &(used, use_delta))| {
                    Ok((poc.checked_add(delta_rps).ok_or(Invalid)?, used, use_delta))
                })
                .collect::<Result<Vec<_>>>()
        };
        let s0 = shift(&reference.negative, &flags[..n])?;
        let s1 = shift(&reference.positive, &flags[n..count])?;
        let own = (delta_rps, flags[count].0, flags[count].1);
        // (7-61), (7-62): each delta lands on the side of the current
        // picture its shifted POC falls; a shift to 0 is no reference.
        for &(poc, used, use_delta) in s1.iter().rev().chain([&own]).chain(&s0) {
            if poc < 0 && use_delta {
                rps.negative.push((poc, used));
            }
        }
        for &(poc, used, use_delta) in s0.iter().rev().chain([&own]).chain(&s1) {
            if poc > 0 && use_delta {
                rps.positive.push((poc, used));
            }
        }
    } else {
        let negative = r.ue_max(16)?;
        let positive = r.ue_max(16)?;
        let mut poc = 0i32;
        for _ in 0..negative {
            poc -= r.ue_max((1 << 15) - 1)? as i32 + 1; // delta_poc_s0_minus1
            rps.negative.push((poc, r.flag()?));
        }
        poc = 0;
        for _ in 0..positive {
            poc += r.ue_max((1 << 15) - 1)? as i32 + 1; // delta_poc_s1_minus1
            rps.positive.push((poc, r.flag()?));
        }
    }
    // A DPB holds at most 16 pictures (A.4.2); the bound keeps chains of
    // predicted sets from growing.
    if rps.negative.len() + rps.positive.len() > 16 {
        return Err(Invalid);
    }
    Ok(rps)
}

/// `profile_tier_level(1, maxNumSubLayersMinus1)` (7.3.3).
pub(super) fn profile_tier_level(r: &mut Bits, max_sub_layers_minus1: u32) -> Result<()> {
    r.skip(96)?; // general profile, tier, flags and level
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.flag()?, r.flag()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// `scaling_list_data()` (7.3.4).
pub(super) fn scaling_list_data(r: &mut Bits) -> Result<()> {
    for size_id in 0..4u32 {
        for _ in (0..6).step_by(if size_id == 3 { 3 } else { 1 }) {
            if !r.flag()? {
                r.ue_max(5)?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            if size_id > 1 {
                r.se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..(16u32 << (2 * size_id)).min(64) {
                r.se()?; // scaling_list_delta_coef
            }
        }
    }
    Ok(())
}

/// `vui_parameters()` (E.2.1), read only to reach the SPS extension flags.
pub(super) fn vui_parameters(r: &mut Bits, max_sub_layers_minus1: u32) -> Result<()> {
    if r.flag()? && r.u(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height
    }
    if r.flag()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.flag()? {
        // video_signal_type_present_flag
        r.skip(4)?;
        if r.flag()? {
            r.skip(24)?; // colour_primaries, transfer, matrix_coeffs
        }
    }
    if r.flag()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    r.skip(3)?; // neutral_chroma_indication, field_seq, frame_field_info_present
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // def_disp_win_{left,right,top,bottom}_offset
        }
    }
    if r.flag()? {
        // vui_timing_info_present_flag
        r.skip(64)?;
        if r.flag()? {
            r.ue()?; // vui_num_ticks_poc_diff_one_minus1
        }
        if r.flag()? {
            hrd_parameters(r, max_sub_layers_minus1)?;
        }
    }
    if r.flag()? {
        // bitstream_restriction_flag
        r.skip(3)?;
        for _ in 0..5 {
            r.ue()?;
        }
    }
    Ok(())
}

/// `hrd_parameters(1, maxNumSubLayersMinus1)` (E.2.2).
fn hrd_parameters(r: &mut Bits, max_sub_layers_minus1: u32) -> Result<()> {
    let nal = r.flag()?;
    let vcl = r.flag()?;
    let mut sub_pic = false;
    if nal || vcl {
        sub_pic = r.flag()?;
        if sub_pic {
            r.skip(19)?; // tick_divisor_minus2 .. dpb_output_delay_du_length_minus1
        }
        r.skip(8)?; // bit_rate_scale, cpb_size_scale
        if sub_pic {
            r.skip(4)?; // cpb_size_du_scale
        }
        r.skip(15)?; // three delay lengths
    }
    for _ in 0..=max_sub_layers_minus1 {
        let fixed_general = r.flag()?;
        let fixed_within_cvs = fixed_general || r.flag()?;
        let mut low_delay = false;
        if fixed_within_cvs {
            r.ue()?; // elemental_duration_in_tc_minus1
        } else {
            low_delay = r.flag()?;
        }
        let cpb_cnt = if low_delay { 0 } else { r.ue_max(31)? };
        for _ in 0..u32::from(nal) + u32::from(vcl) {
            // sub_layer_hrd_parameters()
            for _ in 0..=cpb_cnt {
                r.ue()?; // bit_rate_value_minus1
                r.ue()?; // cpb_size_value_minus1
                if sub_pic {
                    r.ue()?; // cpb_size_du_value_minus1
                    r.ue()?; // bit_rate_du_value_minus1
                }
                r.skip(1)?; // cbr_flag
            }
        }
    }
    Ok(())
}
