//! Dolby's boxes in sample entries, as manifests need them: Dolby Vision's
//! configuration record (`dvcC`, `dvvC`, `dvwC`) and the AC-3 and E-AC-3
//! specific boxes (`dac3`, `dec3`), whose channel layout and JOC (Dolby
//! Atmos) extension the sample entry's own fields do not give.

use super::vui::Bits;
use crate::mp4::boxes::FourCC;

/// A `DOVIDecoderConfigurationRecord` (Dolby, "Dolby Vision Streams Within
/// the ISO Base Media File Format"): `dvcC` for profiles up to 7, `dvvC`
/// for 8 to 10, `dvwC` past 10, alike in syntax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct DolbyVision {
    pub profile: u8,
    pub level: u8,
    /// `dv_bl_signal_compatibility_id`: what a player that ignores the
    /// Dolby Vision metadata can show (0 none, 1 HDR10, 2 SDR, 4 HLG, 6
    /// Blu-ray HDR10).
    pub compatibility: u8,
}

/// The record in a `dvcC`, `dvvC` or `dvwC` body; `None` when cut short.
pub(super) fn dovi(body: &[u8]) -> Option<DolbyVision> {
    // dv_version_major, _minor; then profile (7), level (6), rpu, el and
    // bl flags; then the compatibility id (4).
    let b = body.get(..5)?;
    Some(DolbyVision {
        profile: b[2] >> 1,
        level: ((b[2] & 1) << 5) | (b[3] >> 3),
        compatibility: b[4] >> 4,
    })
}

/// What a manifest says of a Dolby Vision track.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Signalling {
    /// The Dolby Vision string, where it replaces the base layer's in
    /// `CODECS` (no base layer a player could show alone).
    pub codecs: Option<String>,
    /// The Dolby Vision string and its compatibility brand, besides a base
    /// layer `CODECS` describes.
    pub supplemental: Option<(String, &'static str)>,
    pub video_range: Option<&'static str>,
}

/// The Dolby Vision sample type of a base layer's (or Dolby Vision's own)
/// sample entry: `dvh1` for `hvc1`, `dvhe` for `hev1`, `dav1` for `av01`,
/// `dva1` for `avc1` and `dvav` for `avc3`.
fn sample_type(entry: &FourCC) -> Option<&'static str> {
    Some(match entry {
        b"hvc1" | b"dvh1" => "dvh1",
        b"hev1" | b"dvhe" => "dvhe",
        b"av01" | b"dav1" => "dav1",
        b"avc1" | b"dva1" => "dva1",
        b"avc3" | b"dvav" => "dvav",
        _ => return None,
    })
}

/// How a track with a Dolby Vision record in sample entry `entry` is
/// announced, `transfer` being the H.273 code its colour states (HLG base
/// layers say 18, or 14 with HLG in an SEI).
///
/// Apple's HLS authoring specification (appendixes, "The
/// SUPPLEMENTAL-CODECS attribute"): a cross-compatible stream (profiles
/// 8.1, 8.2, 8.4, 9.2, 10.1, 10.4) has its base layer in `CODECS` and
/// `dvh1.PP.LL/<brand>` in `SUPPLEMENTAL-CODECS`, the brand and
/// `VIDEO-RANGE` agreeing (db1p PQ, db2g SDR, db4h HLG); a stream without
/// a compatible base layer (profile 5, 10.0) has the Dolby Vision string in
/// `CODECS`, PQ. The brands are those of the ISOBMFF specification v2.4
/// (mp4ra.org), db4g where an HLG base layer says transfer 14. A Dolby
/// Vision sample entry (`dvh1`, `dav1`...) is itself only announced as
/// Dolby Vision: a player must read that entry to play it.
pub(super) fn signalling(entry: &FourCC, dv: DolbyVision, transfer: Option<u8>) -> Signalling {
    let range = match dv.compatibility {
        0 | 1 | 6 => Some("PQ"),
        2 => Some("SDR"),
        4 => Some("HLG"),
        _ => None,
    };
    let Some(kind) = sample_type(entry) else {
        return Signalling {
            codecs: None,
            supplemental: None,
            video_range: None,
        };
    };
    let codecs = format!("{kind}.{:02}.{:02}", dv.profile, dv.level);
    let own_entry = matches!(entry, b"dvh1" | b"dvhe" | b"dav1" | b"dva1" | b"dvav");
    if dv.compatibility == 0 || own_entry {
        return Signalling {
            codecs: Some(codecs),
            supplemental: None,
            video_range: range,
        };
    }
    let brand = match dv.compatibility {
        1 => Some("db1p"),
        2 => Some("db2g"),
        4 if transfer == Some(14) => Some("db4g"),
        4 => Some("db4h"),
        // 6 (profile 7, Blu-ray) has no brand, and its enhancement layer
        // no player of streams decodes: the HDR10 base layer alone.
        _ => None,
    };
    Signalling {
        codecs: None,
        supplemental: brand
            .filter(|_| matches!(dv.profile, 8..=10))
            .map(|b| (codecs, b)),
        video_range: range,
    }
}

/// An AC-3 or E-AC-3 stream's channels, as its specific box states them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct DolbyAudio {
    pub channels: u16,
    /// The `chanmap` bits of ETSI TS 102 366 Annex E (L first, LFE last):
    /// the value of DASH's `tag:dolby.com,2014:dash:
    /// audio_channel_configuration:2011` (DASH-IF IOP, "Enhanced AC-3").
    pub layout: u16,
    /// E-AC-3 with JOC (Dolby Atmos): `complexity_index_type_a`.
    pub joc: Option<u8>,
}

const L: u16 = 0x8000;
const C: u16 = 0x4000;
const R: u16 = 0x2000;
const LS: u16 = 0x1000;
const RS: u16 = 0x0800;
const CS: u16 = 0x0100;
const LFE2: u16 = 0x0002;
const LFE: u16 = 0x0001;
/// The `chanmap` bits that stand for a pair of channels.
const PAIRS: u16 = 0x0400 | 0x0200 | 0x0040 | 0x0020 | 0x0010 | 0x0004;

/// The layout of `acmod` (1+1, 1/0, 2/0, 3/0, 2/1, 3/1, 2/2, 3/2; the
/// single surround is Cs), the LFE, and a dependent substream's `chan_loc`
/// (`dec3`: bit 0 Lc/Rc, 1 Lrs/Rrs, 2 Cs, 3 Ts, 4 Lsd/Rsd, 5 Lw/Rw, 6
/// Vhl/Vhr, 7 Vhc, 8 LFE2: `chanmap`'s bits 5 to 12 reversed, and 14).
fn layout(acmod: u32, lfeon: bool, chan_loc: u32) -> u16 {
    let mut m = match acmod {
        1 => C,
        3 => L | C | R,
        4 => L | R | CS,
        5 => L | C | R | CS,
        6 => L | R | LS | RS,
        7 => L | C | R | LS | RS,
        _ => L | R,
    };
    for k in 0..8 {
        if chan_loc & (1 << k) != 0 {
            m |= 0x0400 >> k;
        }
    }
    if chan_loc & 0x100 != 0 {
        m |= LFE2;
    }
    if lfeon {
        m |= LFE;
    }
    m
}

fn channels(layout: u16) -> u16 {
    // Each pair bit is two channels: count it twice.
    let ones = layout.count_ones() + (layout & PAIRS).count_ones();
    u16::try_from(ones).unwrap_or(u16::MAX)
}

/// A `dac3` body (ETSI TS 102 366 F.4): fscod, bsid, bsmod, acmod, lfeon.
pub(super) fn dac3(body: &[u8]) -> Option<DolbyAudio> {
    let b = &mut Bits::new(body);
    b.skip(2 + 5 + 3)?;
    let acmod = b.u(3)?;
    let lfeon = b.flag()?;
    let layout = layout(acmod, lfeon, 0);
    Some(DolbyAudio {
        channels: channels(layout),
        layout,
        joc: None,
    })
}

/// A `dec3` body (ETSI TS 102 366 F.6): the first independent substream's
/// layout with its dependent substreams' channels, and the JOC extension
/// (`flag_ec3_extension_type_a`, `complexity_index_type_a`) after the
/// substreams, where the box has it.
pub(super) fn dec3(body: &[u8]) -> Option<DolbyAudio> {
    let b = &mut Bits::new(body);
    b.skip(13)?; // data_rate
    let substreams = b.u(3)? + 1;
    let mut first = None;
    for _ in 0..substreams {
        b.skip(2 + 5 + 1 + 1 + 3)?; // fscod, bsid, reserved, asvc, bsmod
        let acmod = b.u(3)?;
        let lfeon = b.flag()?;
        b.skip(3)?;
        let chan_loc = if b.u(4)? > 0 {
            b.u(9)?
        } else {
            b.u(1).map(|_| 0)?
        };
        first.get_or_insert(layout(acmod, lfeon, chan_loc));
    }
    let layout = first?;
    let mut joc = None;
    if b.left() >= 16 {
        b.skip(7)?;
        if b.flag()? {
            joc = u8::try_from(b.u(8)?).ok().filter(|&i| i > 0);
        }
    }
    Some(DolbyAudio {
        channels: channels(layout),
        layout,
        joc,
    })
}

#[cfg(test)]
mod tests {
    use super::super::codecs::{Description, describe};
    use super::*;
    use crate::mp4::Error;

    /// A 24-byte record: version 1.0, then the fields.
    fn record(profile: u8, level: u8, compatibility: u8) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        b[0] = 1;
        b[2] = (profile << 1) | (level >> 5);
        b[3] = ((level & 0x1f) << 3) | 0b101; // rpu and bl present
        b[4] = compatibility << 4;
        b
    }

    #[test]
    fn dolby_vision_records_and_what_manifests_say() {
        let dv = dovi(&record(8, 7, 1)).unwrap();
        assert_eq!((dv.profile, dv.level, dv.compatibility), (8, 7, 1));
        assert_eq!(dovi(&record(10, 33, 4)).unwrap().level, 33);
        assert_eq!(dovi(&[1, 0, 0x10, 0x38]), None);
        let s = |entry: &FourCC, p, l, c, t| signalling(entry, dovi(&record(p, l, c)).unwrap(), t);
        // 8.1 in hvc1: the HEVC base layer, Dolby Vision supplemental, PQ.
        let x = s(b"hvc1", 8, 7, 1, Some(16));
        assert_eq!(x.codecs, None);
        assert_eq!(x.supplemental, Some(("dvh1.08.07".into(), "db1p")));
        assert_eq!(x.video_range, Some("PQ"));
        // 8.4 with HLG (18, or 14 and an SEI), 8.2 SDR, 10.1 in av01, 9.2 in avc3.
        assert_eq!(
            s(b"hev1", 8, 4, 4, Some(18)).supplemental,
            Some(("dvhe.08.04".into(), "db4h"))
        );
        assert_eq!(
            s(b"hvc1", 8, 4, 4, Some(14)).supplemental,
            Some(("dvh1.08.04".into(), "db4g"))
        );
        assert_eq!(s(b"hvc1", 8, 4, 4, None).video_range, Some("HLG"));
        let sdr = s(b"hvc1", 8, 1, 2, None);
        assert_eq!(
            (sdr.supplemental.unwrap().1, sdr.video_range),
            ("db2g", Some("SDR"))
        );
        assert_eq!(
            s(b"av01", 10, 9, 1, None).supplemental,
            Some(("dav1.10.09".into(), "db1p"))
        );
        assert_eq!(
            s(b"avc3", 9, 5, 2, None).supplemental,
            Some(("dvav.09.05".into(), "db2g"))
        );
        // Profile 5 (no compatible base layer), or a Dolby Vision sample
        // entry: the Dolby Vision string is the codec.
        let p5 = s(b"dvh1", 5, 6, 0, None);
        assert_eq!(
            (p5.codecs.as_deref(), p5.supplemental, p5.video_range),
            (Some("dvh1.05.06"), None, Some("PQ"))
        );
        assert_eq!(
            s(b"hvc1", 5, 1, 0, None).codecs.as_deref(),
            Some("dvh1.05.01")
        );
        assert_eq!(
            s(b"dvhe", 8, 3, 1, None).codecs.as_deref(),
            Some("dvhe.08.03")
        );
        // Profile 7 (Blu-ray, compatibility 6): the HDR10 base layer alone.
        let p7 = s(b"hvc1", 7, 6, 6, Some(16));
        assert_eq!(
            (p7.codecs, p7.supplemental, p7.video_range),
            (None, None, Some("PQ"))
        );
        // A reserved compatibility says nothing; nor does another codec.
        assert_eq!(
            s(b"hvc1", 8, 6, 3, None),
            Signalling {
                codecs: None,
                supplemental: None,
                video_range: None
            }
        );
        assert_eq!(s(b"vp09", 8, 6, 1, None).codecs, None);
    }

    /// Packs `(bits, value)` fields into bytes, MSB first.
    fn pack(fields: &[(u32, u32)]) -> Vec<u8> {
        let bits: Vec<bool> = (fields.iter())
            .flat_map(|&(n, v)| (0..n).rev().map(move |i| (v >> i) & 1 == 1))
            .collect();
        let mut out = vec![0u8; bits.len().div_ceil(8)];
        for (i, &bit) in bits.iter().enumerate() {
            out[i / 8] |= u8::from(bit) << (7 - i % 8);
        }
        out
    }

    /// A `dec3` body of one independent substream.
    fn dec3_body(acmod: u32, lfeon: u32, chan_loc: Option<u32>, joc: Option<u32>) -> Vec<u8> {
        let mut f = vec![
            (13, 640),
            (3, 0),
            (2, 0),
            (5, 16),
            (1, 0),
            (1, 0),
            (3, 0),
            (3, acmod),
            (1, lfeon),
            (3, 0),
        ];
        match chan_loc {
            Some(loc) => f.extend([(4, 1), (9, loc)]),
            None => f.extend([(4, 0), (1, 0)]),
        }
        if let Some(index) = joc {
            f.extend([(7, 0), (1, 1), (8, index)]);
        }
        pack(&f)
    }

    #[test]
    fn ac3_and_eac3_layouts_and_joc() {
        // 5.1: L C R Ls Rs LFE, the F801 of DASH-IF's examples.
        let a = dec3(&dec3_body(7, 1, None, None)).unwrap();
        assert_eq!((a.channels, a.layout, a.joc), (6, 0xF801, None));
        // 7.1: a dependent substream adds Lrs/Rrs (chan_loc bit 1).
        let a = dec3(&dec3_body(7, 1, Some(0b10), None)).unwrap();
        assert_eq!((a.channels, a.layout), (8, 0xFA01));
        // Atmos: the 5.1 bed, JOC with complexity index 16.
        let a = dec3(&dec3_body(7, 1, None, Some(16))).unwrap();
        assert_eq!((a.channels, a.joc), (6, Some(16)));
        // The extension's flag unset, or no room for it: no JOC.
        let mut plain = dec3_body(7, 1, None, Some(16));
        plain[5] = 0;
        assert_eq!(dec3(&plain).unwrap().joc, None);
        assert_eq!(dec3(&[0x14, 0]), None);
        // dac3: stereo, 2/1 (L R Cs), mono with LFE.
        let dac3_body = |acmod, lfeon| {
            pack(&[
                (2, 0),
                (5, 8),
                (3, 0),
                (3, acmod),
                (1, lfeon),
                (5, 10),
                (5, 0),
            ])
        };
        assert_eq!(dac3(&dac3_body(2, 0)).unwrap().layout, 0xA000);
        let a = dac3(&dac3_body(4, 0)).unwrap();
        assert_eq!((a.channels, a.layout), (3, 0xA100));
        assert_eq!(dac3(&dac3_body(1, 1)).unwrap().channels, 2);
        assert_eq!(dac3(&[0x10]), None);
    }

    fn bx(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(body.len() + 8).unwrap().to_be_bytes();
        [&size[..], fourcc, body].concat()
    }

    /// Describes sample entry `fourcc`: `fixed` bytes, then `children`.
    fn entry(fourcc: &[u8; 4], fixed: Vec<u8>, children: &[Vec<u8>]) -> Result<Description, Error> {
        let bytes = bx(fourcc, &[fixed, children.concat()].concat());
        describe(&crate::mp4::boxes::children(&bytes, 0).next().unwrap()?)
    }

    #[test]
    fn the_sps_and_dolby_boxes_complete_the_description() {
        // hvcC: Main 10, level 60, one array holding x265's PQ SPS.
        let sps = "42010102200000030090000003000003003ca00a080f1365959a4932bc05a84880482000000300200000030321";
        let sps: Vec<u8> = (0..sps.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&sps[i..i + 2], 16).unwrap())
            .collect();
        let mut hvcc = vec![1, 0x02, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60];
        hvcc.extend_from_slice(&[0xf0, 0, 0xfc, 0xfd, 0xfa, 0xfa, 0, 0, 0x0f, 1, 0xa1, 0, 1]);
        hvcc.extend_from_slice(&[0, u8::try_from(sps.len()).unwrap()]);
        hvcc.extend_from_slice(&sps);
        let hvcc = bx(b"hvcC", &hvcc);
        let nclx = |transfer: u8| {
            bx(
                b"colr",
                &[b'n', b'c', b'l', b'x', 0, 9, 0, transfer, 0, 9, 0],
            )
        };
        let dovi = |fourcc, profile: u8, compatibility: u8| {
            let mut b = vec![0u8; 24];
            (b[0], b[2], b[3], b[4]) = (1, profile << 1, (1 << 3) | 0b101, compatibility << 4);
            bx(fourcc, &b)
        };
        let video = || {
            let mut f = vec![0u8; 78];
            f[24..28].copy_from_slice(&[1, 64, 0, 240]);
            f
        };
        // No colr, or one of unspecified codes: the VUI's PQ. A colr
        // stating a transfer is believed.
        for colr in [vec![], nclx(2)] {
            let d = entry(b"hvc1", video(), &[hvcc.clone(), colr]).unwrap();
            assert_eq!(
                (d.codecs.as_str(), d.video_range),
                ("hvc1.2.4.L60.90", Some("PQ"))
            );
        }
        assert_eq!(
            entry(b"hvc1", video(), &[hvcc.clone(), nclx(1)])
                .unwrap()
                .video_range,
            None
        );
        // Dolby Vision 8.1 over it; profile 5 in its own entry; an own
        // entry without the record is refused.
        let d = entry(b"hvc1", video(), &[hvcc.clone(), dovi(b"dvvC", 8, 1)]).unwrap();
        assert_eq!(d.codecs, "hvc1.2.4.L60.90");
        assert_eq!(
            (d.supplemental, d.video_range),
            (Some(("dvh1.08.01".into(), "db1p")), Some("PQ"))
        );
        let d = entry(b"dvh1", video(), &[hvcc.clone(), dovi(b"dvcC", 5, 0)]).unwrap();
        assert_eq!(
            (d.codecs.as_str(), d.supplemental, d.video_range),
            ("dvh1.05.01", None, Some("PQ"))
        );
        assert!(entry(b"dvh1", video(), &[hvcc]).is_err());
        // E-AC-3 5.1 with JOC: dec3 tells what channelcount (2) does not.
        let mut audio = vec![0u8; 28];
        (audio[17], audio[24]) = (2, 0xbb);
        let dec3 = bx(b"dec3", &[0x0e, 0, 0x20, 0x0f, 0, 0x01, 16]);
        let d = entry(b"ec-3", audio.clone(), &[dec3]).unwrap();
        assert_eq!(
            (d.codecs.as_str(), d.channels, d.dolby_layout, d.joc),
            ("ec-3", 6, Some(0xF801), Some(16))
        );
        // AC-3 stereo; without its box, the entry's count.
        let d = entry(b"ac-3", audio.clone(), &[bx(b"dac3", &[0x10, 0x11, 0x40])]).unwrap();
        assert_eq!((d.channels, d.dolby_layout, d.joc), (2, Some(0xA000), None));
        assert_eq!(entry(b"ac-3", audio, &[]).unwrap().dolby_layout, None);
    }
}
