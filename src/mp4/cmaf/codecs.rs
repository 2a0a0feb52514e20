//! What a track's sample description says to a player: the RFC 6381
//! `CODECS` string (from `avcC`, `hvcC`, `av1C`, `vpcC`, `esds`), the
//! picture size, its dynamic range (from `colr`, else the SPS's VUI), Dolby
//! Vision over a base layer, and the audio format and channels (with
//! `dac3`/`dec3`'s layout and JOC). A codec the packager cannot describe is
//! refused here, once, with its name.

use super::{dolby, vui};
use crate::mp4::Error;
use crate::mp4::boxes::{FourCC, RawBox, Reader, children};
use crate::mp4::error::fourcc_str;
use std::fmt::Write;

/// A track's sample description, as manifests need it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Description {
    pub codecs: String,
    pub width: u32,
    pub height: u32,
    pub sample_rate: u32,
    pub channels: u16,
    /// The pixel aspect ratio a `pasp` box gives, when not square.
    pub sar: Option<(u32, u32)>,
    /// HLS `VIDEO-RANGE` for a high dynamic range transfer (`PQ`, `HLG`);
    /// `None` for SDR, which is what its absence means (`SDR` only where
    /// Dolby Vision's brand wants the cross-check).
    pub video_range: Option<&'static str>,
    /// Dolby Vision over the base layer `codecs` describes: its codec
    /// string and compatibility brand (HLS `SUPPLEMENTAL-CODECS`, DASH
    /// `scte214:supplementalCodecs` and `supplementalProfiles`).
    pub supplemental: Option<(String, &'static str)>,
    /// AC-3 and E-AC-3: the channel layout `dac3`/`dec3` state (DASH's
    /// Dolby `AudioChannelConfiguration`, 16 bits, L first).
    pub dolby_layout: Option<u16>,
    /// E-AC-3 with JOC (Dolby Atmos): its `complexity_index_type_a`.
    pub joc: Option<u8>,
}

/// A `colr` box of type `nclx` (or `vpcC`'s fields, or a VUI's): ITU-T
/// H.273 codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Colour {
    pub primaries: u8,
    pub transfer: u8,
    pub matrix: u8,
    pub full_range: bool,
}

impl Description {
    /// The picture as it is shown: its width stretched by the pixel aspect.
    pub fn displayed(&self) -> (u32, u32) {
        match self.sar {
            Some((h, v)) if v > 0 => {
                let w = (u64::from(self.width) * u64::from(h) + u64::from(v) / 2) / u64::from(v);
                (u32::try_from(w).unwrap_or(u32::MAX), self.height)
            }
            _ => (self.width, self.height),
        }
    }
}

impl Colour {
    fn video_range(&self) -> Option<&'static str> {
        match self.transfer {
            16 => Some("PQ"),
            18 => Some("HLG"),
            _ => None,
        }
    }
}

/// The colour an `nclx` `colr` box gives (`None` for ICC profiles).
fn colr(body: &[u8]) -> Option<Colour> {
    let b = body.get(..11)?;
    if &b[..4] != b"nclx" {
        return None;
    }
    // The codes are 16 bits wide; every defined one fits in 8.
    let code = |hi: u8, lo: u8| u8::try_from(u16::from_be_bytes([hi, lo])).ok();
    Some(Colour {
        primaries: code(b[4], b[5])?,
        transfer: code(b[6], b[7])?,
        matrix: code(b[8], b[9])?,
        full_range: b[10] & 0x80 != 0,
    })
}

fn unsupported(codec: &FourCC, why: &str) -> Error {
    Error::Unsupported(format!(
        "codec '{}' is not packaged for HLS/DASH ({why}); serve the film progressively",
        fourcc_str(codec)
    ))
}

/// The first sample entry of a `stsd` body.
pub(crate) fn first_entry(stsd: &[u8]) -> Result<RawBox<'_>, Error> {
    let mut r = Reader::new(stsd, *b"stsd");
    let (_, _) = r.full_box()?;
    let count = r.u32()?;
    if count == 0 {
        return Err(Error::Invalid {
            fourcc: *b"stsd",
            reason: "no sample entry",
        });
    }
    children(stsd.get(8..).unwrap_or(&[]), 8)
        .next()
        .ok_or(Error::Invalid {
            fourcc: *b"stsd",
            reason: "no sample entry",
        })?
}

/// Describes the sample entry `entry` (a box of the `stsd`).
pub(crate) fn describe(entry: &RawBox<'_>) -> Result<Description, Error> {
    let codec = entry.fourcc;
    match &codec {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" | b"vp09" => visual(entry),
        // Dolby Vision's own sample entries of HEVC and AV1.
        b"dvh1" | b"dvhe" | b"dav1" => visual(entry),
        b"mp4a" | b".mp3" | b"ac-3" | b"ec-3" | b"Opus" | b"fLaC" => audio(entry),
        _ => Err(unsupported(
            &codec,
            "H.264, HEVC, AV1, VP9, Dolby Vision, AAC, MP3, AC-3, E-AC-3, Opus, FLAC are",
        )),
    }
}

/// The child boxes of a sample entry, after its fixed fields.
fn entry_children<'a>(
    entry: &RawBox<'a>,
    fixed: usize,
) -> impl Iterator<Item = Result<RawBox<'a>, Error>> {
    let base = entry.body_start() + fixed;
    children(entry.body.get(fixed..).unwrap_or(&[]), base)
}

fn visual(entry: &RawBox<'_>) -> Result<Description, Error> {
    let mut r = Reader::new(entry.body, entry.fourcc);
    r.skip(8 + 16)?;
    let width = r.bytes(2)?;
    let height = r.bytes(2)?;
    let width = u32::from(u16::from_be_bytes([width[0], width[1]]));
    let height = u32::from(u16::from_be_bytes([height[0], height[1]]));
    // VisualSampleEntry's fixed fields are 78 bytes.
    let mut colour = None;
    let mut config = None;
    let mut sar = None;
    let mut dv = None;
    for child in entry_children(entry, 78) {
        let child = child?;
        match &child.fourcc {
            b"avcC" | b"hvcC" | b"av1C" | b"vpcC" => config = Some(child),
            b"colr" => colour = colour.or(colr(child.body)),
            b"pasp" => sar = pasp(child.body),
            b"dvcC" | b"dvvC" | b"dvwC" => dv = dv.or(dolby::dovi(child.body)),
            _ => {}
        }
    }
    let config =
        config.ok_or_else(|| unsupported(&entry.fourcc, "no avcC, hvcC, av1C or vpcC box"))?;
    // A Dolby Vision entry's base layer is described as its codec's own.
    let base = match &entry.fourcc {
        b"dvh1" => *b"hvc1",
        b"dvhe" => *b"hev1",
        b"dav1" => *b"av01",
        other => *other,
    };
    if base != entry.fourcc && dv.is_none() {
        return Err(unsupported(&entry.fourcc, "no dvcC, dvvC or dvwC box"));
    }
    // Without a colr (or with one that leaves the transfer unspecified,
    // as ffmpeg's write_colr does), the SPS's VUI says it.
    let known = colour.filter(|c: &Colour| c.transfer != 2);
    let (codecs, colour) = match (&base, &config.fourcc) {
        (b"avc1" | b"avc3", b"avcC") => (
            avc(&base, config.body)?,
            known.or_else(|| vui::avc(config.body)).or(colour),
        ),
        (b"hvc1" | b"hev1", b"hvcC") => (
            hevc(&base, config.body)?,
            known.or_else(|| vui::hevc(config.body)).or(colour),
        ),
        (b"av01", b"av1C") => (av1(config.body, colour)?, colour),
        (b"vp09", b"vpcC") => {
            let (codecs, own) = vp9(config.body)?;
            (codecs, colour.or(Some(own)))
        }
        _ => {
            return Err(unsupported(
                &entry.fourcc,
                "its configuration box is another codec's",
            ));
        }
    };
    let mut d = Description {
        codecs,
        width,
        height,
        video_range: colour.and_then(|c| c.video_range()),
        sar,
        ..Description::default()
    };
    if let Some(dv) = dv {
        let s = dolby::signalling(&entry.fourcc, dv, colour.map(|c| c.transfer));
        d.codecs = s.codecs.unwrap_or(d.codecs);
        d.supplemental = s.supplemental;
        d.video_range = s.video_range.or(d.video_range);
    }
    Ok(d)
}

/// A `pasp` box's pixel aspect ratio, reduced; `None` when square or void.
fn pasp(body: &[u8]) -> Option<(u32, u32)> {
    let b = body.get(..8)?;
    let h = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let v = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if h == 0 || v == 0 || h == v {
        return None;
    }
    let (mut a, mut c) = (h, v);
    while c != 0 {
        (a, c) = (c, a % c);
    }
    Some((h / a, v / a))
}

/// `av01.P.LLT.DD` (AV1 in ISOBMFF, "Codecs Parameter String"): profile,
/// level, tier and bit depth from `av1C`; with the colour a `colr` box
/// gives, the optional fields too (monochrome, chroma subsampling and
/// sample position, primaries, transfer, matrix, full range).
fn av1(body: &[u8], colour: Option<Colour>) -> Result<String, Error> {
    let b = body.get(..4).ok_or(Error::Invalid {
        fourcc: *b"av1C",
        reason: "box is shorter than its fields",
    })?;
    if b[0] != 0x81 {
        return Err(unsupported(b"av01", "an av1C of another version"));
    }
    let profile = b[1] >> 5;
    let level = b[1] & 0x1f;
    let tier = if b[2] & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (b[2] & 0x40 != 0, b[2] & 0x20 != 0) {
        (false, _) => 8,
        (true, true) if profile == 2 => 12,
        (true, _) => 10,
    };
    let mut s = format!("av01.{profile}.{level:02}{tier}.{depth:02}");
    if let Some(c) = colour {
        let mono = (b[2] >> 4) & 1;
        let (x, y, position) = ((b[2] >> 3) & 1, (b[2] >> 2) & 1, b[2] & 3);
        let _ = write!(
            s,
            ".{mono}.{x}{y}{position}.{:02}.{:02}.{:02}.{}",
            c.primaries,
            c.transfer,
            c.matrix,
            u8::from(c.full_range)
        );
    }
    Ok(s)
}

/// `vp09.PP.LL.DD.CC.cp.tc.mc.FF` (VP9 in ISOBMFF, §"Codecs Parameter
/// String") from a version-1 `vpcC`, and the colour it states.
fn vp9(body: &[u8]) -> Result<(String, Colour), Error> {
    let b = body.get(..12).ok_or(Error::Invalid {
        fourcc: *b"vpcC",
        reason: "box is shorter than its fields",
    })?;
    if b[0] != 1 {
        return Err(unsupported(b"vp09", "a vpcC of another version than 1"));
    }
    let (profile, level) = (b[4], b[5]);
    let depth = b[6] >> 4;
    let chroma = (b[6] >> 1) & 7;
    let colour = Colour {
        primaries: b[7],
        transfer: b[8],
        matrix: b[9],
        full_range: b[6] & 1 != 0,
    };
    let codecs = format!(
        "vp09.{profile:02}.{level:02}.{depth:02}.{chroma:02}.{:02}.{:02}.{:02}.{:02}",
        colour.primaries,
        colour.transfer,
        colour.matrix,
        u8::from(colour.full_range)
    );
    Ok((codecs, colour))
}

/// `avc1.PPCCLL`: profile, constraint flags, level (RFC 6381 §3.3).
fn avc(fourcc: &FourCC, body: &[u8]) -> Result<String, Error> {
    let b = body.get(1..4).ok_or(Error::Invalid {
        fourcc: *b"avcC",
        reason: "box is shorter than its fields",
    })?;
    Ok(format!(
        "{}.{:02X}{:02X}{:02X}",
        fourcc_str(fourcc),
        b[0],
        b[1],
        b[2]
    ))
}

/// `hvc1.[A-C]<profile>.<compat>.<L|H><level>[.<constraints>]` (ISO/IEC 14496-15 E.3).
fn hevc(fourcc: &FourCC, body: &[u8]) -> Result<String, Error> {
    let b = body.get(..13).ok_or(Error::Invalid {
        fourcc: *b"hvcC",
        reason: "box is shorter than its fields",
    })?;
    let space = ["", "A", "B", "C"][usize::from(b[1] >> 6)];
    let tier = if b[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = b[1] & 0x1f;
    let compat = u32::from_be_bytes([b[2], b[3], b[4], b[5]]).reverse_bits();
    let mut s = format!(
        "{}.{space}{profile}.{compat:X}.{tier}{}",
        fourcc_str(fourcc),
        b[12]
    );
    let constraints = &b[6..12];
    let kept = constraints
        .iter()
        .rposition(|&c| c != 0)
        .map_or(0, |i| i + 1);
    for c in &constraints[..kept] {
        let _ = write!(s, ".{c:X}");
    }
    Ok(s)
}

fn audio(entry: &RawBox<'_>) -> Result<Description, Error> {
    let mut r = Reader::new(entry.body, entry.fourcc);
    r.skip(8)?;
    let version = {
        let v = r.bytes(2)?;
        u16::from_be_bytes([v[0], v[1]])
    };
    r.skip(6)?;
    let channels = {
        let c = r.bytes(2)?;
        u16::from_be_bytes([c[0], c[1]])
    };
    r.skip(6)?;
    let sample_rate = r.u32()? >> 16;
    // AudioSampleEntry is 28 bytes; QuickTime versions 1 and 2 add 16 and 36.
    let fixed = match version {
        0 => 28,
        1 => 44,
        2 => 64,
        _ => {
            return Err(unsupported(
                &entry.fourcc,
                "unknown sound description version",
            ));
        }
    };
    let child = |fourcc: &FourCC| {
        entry_children(entry, fixed)
            .filter_map(Result::ok)
            .find(|c| &c.fourcc == fourcc)
    };
    let codecs = match &entry.fourcc {
        b"mp4a" => {
            let esds = child(b"esds").ok_or_else(|| unsupported(b"mp4a", "no esds box"))?;
            esds_codecs(esds.body)?
        }
        b".mp3" => "mp4a.6B".to_string(),
        b"ac-3" => "ac-3".to_string(),
        b"ec-3" => "ec-3".to_string(),
        b"Opus" => "opus".to_string(),
        _ => "flac".to_string(),
    };
    // The specific box states the channels the stream decodes to; the
    // entry's channelcount is no more than a hint for AC-3 and E-AC-3.
    let dolby = match &entry.fourcc {
        b"ac-3" => child(b"dac3").and_then(|b| dolby::dac3(b.body)),
        b"ec-3" => child(b"dec3").and_then(|b| dolby::dec3(b.body)),
        _ => None,
    };
    Ok(Description {
        codecs,
        sample_rate,
        channels: dolby.map_or(channels, |a| a.channels),
        dolby_layout: dolby.map(|a| a.layout),
        joc: dolby.and_then(|a| a.joc),
        ..Description::default()
    })
}

/// An MPEG-4 descriptor: its tag and body.
fn descriptor<'a>(r: &mut Reader<'a>) -> Result<(u8, Reader<'a>), Error> {
    let tag = r.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, Reader::new(r.bytes(len)?, *b"esds")))
}

/// `mp4a.40.<audio object type>` for AAC, `mp4a.6B`/`mp4a.69` for MP3.
fn esds_codecs(body: &[u8]) -> Result<String, Error> {
    let bad = |reason| Error::Invalid {
        fourcc: *b"esds",
        reason,
    };
    let mut r = Reader::new(body, *b"esds");
    r.full_box()?;
    let (tag, mut es) = descriptor(&mut r)?;
    if tag != 0x03 {
        return Err(bad("no ES_Descriptor"));
    }
    es.skip(2)?;
    let flags = es.u8()?;
    if flags & 0x80 != 0 {
        es.skip(2)?;
    }
    if flags & 0x40 != 0 {
        let n = es.u8()?;
        es.skip(usize::from(n))?;
    }
    if flags & 0x20 != 0 {
        es.skip(2)?;
    }
    let (tag, mut dc) = descriptor(&mut es)?;
    if tag != 0x04 {
        return Err(bad("no DecoderConfigDescriptor"));
    }
    let oti = dc.u8()?;
    dc.skip(12)?;
    match oti {
        0x40 | 0x66..=0x68 => {
            let mut aot = 2;
            if let Ok((0x05, mut asc)) = descriptor(&mut dc) {
                let b0 = asc.u8()?;
                aot = b0 >> 3;
                if aot == 31 {
                    let b1 = asc.u8()?;
                    aot = 32 + (((b0 & 0x07) << 3) | (b1 >> 5));
                }
            }
            if oti != 0x40 {
                // MPEG-2 AAC profiles map onto MPEG-4 object types 1..3.
                aot = oti - 0x65;
            }
            Ok(format!("mp4a.40.{aot}"))
        }
        0x69 | 0x6b => Ok(format!("mp4a.{oti:02X}")),
        _ => Err(unsupported(b"mp4a", &format!("object type 0x{oti:02x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_and_hevc_strings() {
        assert_eq!(avc(b"avc1", &[1, 0x64, 0x00, 0x1f]).unwrap(), "avc1.64001F");
        // Main profile, compatibility 0x60000000, level 93, progressive-source flag.
        let h = [1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        assert_eq!(hevc(b"hvc1", &h).unwrap(), "hvc1.1.6.L93.90");
        assert!(avc(b"avc1", &[1]).is_err());
    }

    #[test]
    fn av1_and_vp9_strings() {
        // Main profile, level 4.0 (8), Main tier, 8 bits, 4:2:0 (x, y).
        let av1c = [0x81, 0x08, 0x0c, 0x00];
        assert_eq!(av1(&av1c, None).unwrap(), "av01.0.08M.08");
        // High tier, 10 bits, BT.2020 with PQ: the optional fields follow.
        let hdr = Colour {
            primaries: 9,
            transfer: 16,
            matrix: 9,
            full_range: false,
        };
        let av1c = [0x81, 0x0d, 0xcc, 0x00];
        assert_eq!(
            av1(&av1c, Some(hdr)).unwrap(),
            "av01.0.13H.10.0.110.09.16.09.0"
        );
        assert_eq!(hdr.video_range(), Some("PQ"));
        assert!(av1(&[0x81, 0], None).is_err());
        assert!(av1(&[0x01, 0, 0, 0], None).is_err());
        // vpcC version 1: profile 0, level 3.1, 8 bits, 4:2:0 colocated (1), BT.709.
        let vpcc = [1, 0, 0, 0, 0, 31, 0x82, 1, 1, 1, 0, 0];
        let (codecs, colour) = vp9(&vpcc).unwrap();
        assert_eq!(codecs, "vp09.00.31.08.01.01.01.01.00");
        assert_eq!(colour.video_range(), None);
        assert!(vp9(&[0, 0, 0, 0, 0, 31, 0x82, 1, 1, 1, 0, 0]).is_err());
        // colr: nclx with HLG, and an ICC profile (no codes).
        let nclx = [b'n', b'c', b'l', b'x', 0, 9, 0, 18, 0, 9, 0x80];
        let c = colr(&nclx).unwrap();
        assert_eq!(
            (c.transfer, c.full_range, c.video_range()),
            (18, true, Some("HLG"))
        );
        assert_eq!(colr(b"prof\0\0\0\0\0\0\0"), None);
        // Anamorphic PAL: 720x576 with 64:45 pixels shows as 1024x576.
        let sar = pasp(&[0, 0, 0, 128, 0, 0, 0, 90]);
        assert_eq!(sar, Some((64, 45)));
        let d = Description {
            width: 720,
            height: 576,
            sar,
            ..Description::default()
        };
        assert_eq!(d.displayed(), (1024, 576));
        assert_eq!(pasp(&[0, 0, 0, 1, 0, 0, 0, 1]), None);
        assert_eq!(pasp(&[0, 0, 0, 1, 0, 0, 0, 0]), None);
    }

    #[test]
    fn esds_aac_lc_and_he() {
        // ES_Descriptor { ES_ID, flags, DecoderConfig { 0x40, ..., DecSpecificInfo { 0x12 0x10 } } }
        let mut body = vec![0, 0, 0, 0, 0x03, 22, 0, 1, 0, 0x04, 17, 0x40, 0x15];
        body.extend_from_slice(&[0; 11]);
        body.extend_from_slice(&[0x05, 2, 0x12, 0x10]);
        assert_eq!(esds_codecs(&body).unwrap(), "mp4a.40.2");
        let n = body.len();
        body[n - 2] = 0x2a; // object type 5 (SBR)
        assert_eq!(esds_codecs(&body).unwrap(), "mp4a.40.5");
        assert!(esds_codecs(&body[..10]).is_err());
    }
}
