//! The slice header lengths that encryption leaves clear (src/mp4/nal),
//! measured against ffmpeg's `trace_headers` bitstream filter, which prints
//! every syntax element of every NAL unit with its bit position: for each
//! slice of films x264 and x265 encode with the tools that change a slice
//! header, the header ends where ffmpeg's last slice header element (the
//! CABAC alignment bits, HEVC's `byte_alignment()`) ends.
//!
//! The module is compiled in from its source: the library keeps it
//! `pub(crate)`, and it needs nothing of the crate.

mod common;
#[path = "../src/mp4/nal/mod.rs"]
mod nal;

use nal::{Codec, SliceHeaders, is_slice};
use std::path::Path;
use std::process::Command;

/// A test source with fades, so that x264 and x265 weight references.
const SOURCE: &str = "testsrc2=size=352x288:rate=25:duration=2,fade=in:0:12,fade=out:38:12";

/// One slice header as ffmpeg traced it.
struct Traced {
    nal_type: u32,
    /// The bit after its last element, in the RBSP (no emulation
    /// prevention bytes), NAL unit header included.
    end: usize,
    lines: Vec<String>,
}

/// The slice headers of `film`'s samples in order, from `trace_headers`.
fn trace(film: &Path) -> Vec<Traced> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(film)
        .args(["-map", "0:v:0", "-c", "copy", "-bsf:v", "trace_headers"])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    let mut slices: Vec<Traced> = Vec::new();
    let (mut in_samples, mut in_slice) = (false, false);
    for line in text.lines() {
        let Some((_, line)) = line.split_once("[trace_headers @ ") else {
            continue;
        };
        let Some((_, line)) = line.split_once("] ") else {
            continue;
        };
        if !line.starts_with(|c: char| c.is_ascii_digit()) {
            // A title: "Packet: ...", "Slice Header", "Picture Parameter Set", ...
            in_samples |= line.starts_with("Packet:");
            in_slice = in_samples && (line == "Slice Header" || line == "Slice Segment Header");
            if in_slice {
                slices.push(Traced {
                    nal_type: u32::MAX,
                    end: 0,
                    lines: Vec::new(),
                });
            }
            continue;
        }
        let Some(slice) = slices.last_mut().filter(|_| in_slice) else {
            continue;
        };
        // "<bit position> <name> <bits> = <value>"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [position, name, bits, "=", value] = fields[..] else {
            panic!("unexpected trace line {line:?}");
        };
        let position: usize = position.parse().unwrap();
        slice.end = slice.end.max(position + bits.len());
        if name == "nal_unit_type" {
            slice.nal_type = value.parse().unwrap();
        }
        slice.lines.push(line.to_string());
    }
    slices
}

/// Bytes of `nal` as stored that hold its first `rbsp` bytes, the way
/// ffmpeg unescapes (h2645_parse.c): a `03` after two zeros is dropped.
fn stored_len(nal: &[u8], rbsp: usize) -> usize {
    let (mut taken, mut zeros) = (0, 0);
    for (i, &b) in nal.iter().enumerate() {
        if taken == rbsp {
            return i;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        taken += 1;
    }
    assert_eq!(
        taken, rbsp,
        "the NAL unit is shorter than its traced header"
    );
    nal.len()
}

/// The sample entry's fourcc and configuration record body (`avcC`,
/// `hvcC`) of the film's only track.
fn sample_entry(file: &[u8]) -> ([u8; 4], Vec<u8>) {
    fn children(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= b.len() {
            let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            let (head, size) = if size == 1 {
                (
                    16,
                    u64::from_be_bytes(b[at + 8..at + 16].try_into().unwrap()) as usize,
                )
            } else {
                (8, size)
            };
            out.push((
                b[at + 4..at + 8].try_into().unwrap(),
                &b[at + head..at + size],
            ));
            at += size;
        }
        out
    }
    let child = |b: &'_ [u8], name: &[u8; 4]| -> Vec<u8> {
        let found = children(b).into_iter().find(|(n, _)| n == name);
        found
            .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(name)))
            .1
            .to_vec()
    };
    let mut b = file.to_vec();
    for name in [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"] {
        b = child(&b, name);
    }
    // stsd: version, flags, count; then the entry, 78 bytes before its boxes.
    let entry = &children(&b[8..])[0];
    let config = children(&entry.1[78..])
        .into_iter()
        .find(|(n, _)| n == b"avcC" || n == b"hvcC")
        .expect("avcC or hvcC");
    (entry.0, config.1.to_vec())
}

/// Encodes a film with `args`, measures every slice both ways, asserts
/// they agree. `in_band`: the film's sample entry is `avc3`/`hev1` and its
/// samples carry the parameter sets; the parser is then given none of the
/// record's, so every length it finds comes from in-band sets.
fn film(name: &str, args: &[&str], in_band: bool) {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.mp4"));
    let st = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            SOURCE,
        ])
        .args(args)
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg encoded {name}");
    let (fourcc, config) = sample_entry(&std::fs::read(&path).unwrap());
    let codec = match &fourcc {
        b"avc1" | b"avc3" => Codec::Avc,
        b"hvc1" | b"hev1" => Codec::Hevc,
        other => panic!("{name}: sample entry {other:?}"),
    };
    assert_eq!(in_band, matches!(&fourcc, b"avc3" | b"hev1"), "{name}");
    let length_size = 1 + usize::from(config[if codec == Codec::Avc { 4 } else { 21 }] & 3);
    let mut headers = SliceHeaders::new(codec, if in_band { &[] } else { &config });

    // The samples, back to back: each a run of length-prefixed NAL units.
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&path)
        .args(["-map", "0:v:0", "-c", "copy", "-f", "data", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg copied {name}'s samples");
    let traced = trace(&path);
    let mut traced = traced.iter();
    let (mut slices, mut escaped, mut in_band_sets) = (0, 0, 0);
    let mut mismatches = Vec::new();
    let mut rest = &out.stdout[..];
    while !rest.is_empty() {
        let len = rest[..length_size]
            .iter()
            .fold(0, |n, &b| n << 8 | usize::from(b));
        let nal = &rest[length_size..length_size + len];
        rest = &rest[length_size + len..];
        in_band_sets += usize::from(headers.parameter_set(nal));
        if !is_slice(codec, nal[0]) {
            continue;
        }
        let t = traced
            .next()
            .unwrap_or_else(|| panic!("{name}: slice {slices} not traced"));
        let nal_type = u32::from(if codec == Codec::Avc {
            nal[0] & 0x1f
        } else {
            nal[0] >> 1
        });
        assert_eq!(
            t.nal_type, nal_type,
            "{name}: slice {slices} is not the one traced"
        );
        let want = stored_len(nal, t.end.div_ceil(8));
        escaped += usize::from(want > t.end.div_ceil(8));
        let got = headers.header_size(nal);
        if got != Some(want) {
            mismatches.push(format!(
                "slice {slices} (type {nal_type}): ffmpeg {want} bytes, parser {got:?}\n\
                 first bytes {:02x?}\n{}",
                &nal[..nal.len().min(48)],
                t.lines.join("\n")
            ));
        }
        slices += 1;
    }
    assert!(
        traced.next().is_none(),
        "{name}: ffmpeg traced more slices than the samples hold"
    );
    println!(
        "{name}: {slices} slices measured, {} mismatches, {escaped} with emulation \
         prevention in the header, {in_band_sets} in-band parameter sets",
        mismatches.len()
    );
    assert!(slices >= 50, "{name}: only {slices} slices");
    if in_band {
        assert!(in_band_sets > 0, "{name}: no parameter set in the samples");
    }
    assert!(
        mismatches.is_empty(),
        "{name}: {} of {slices} slices mismatch; the first:\n{}",
        mismatches.len(),
        mismatches[0]
    );
}

const X264: [&str; 4] = ["-c:v", "libx264", "-pix_fmt", "yuv420p"];

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_cabac_b_pyramid_weights_8x8_refs() {
    let x = "ref=4:bframes=3:b-pyramid=normal:weightp=2:weightb=1:8x8dct=1:keyint=25";
    film(
        "avc_cabac",
        &[&X264[..], &["-x264-params", x]].concat(),
        false,
    );
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_cavlc() {
    let x = "cabac=0:ref=3:bframes=2:weightp=2:keyint=25";
    film(
        "avc_cavlc",
        &[&X264[..], &["-x264-params", x]].concat(),
        false,
    );
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_four_slices() {
    film(
        "avc_slices",
        &[&X264[..], &["-x264-params", "slices=4"]].concat(),
        false,
    );
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_interlaced_cabac_and_cavlc() {
    let ilace = ["-flags", "+ildct+ilme", "-x264-params"];
    film(
        "avc_mbaff",
        &[&X264[..], &ilace, &["interlaced=1"]].concat(),
        false,
    );
    film(
        "avc_mbaff_cavlc",
        &[&X264[..], &ilace, &["interlaced=1:cabac=0"]].concat(),
        false,
    );
}

/// High 4:2:2 10-bit with the JVT scaling lists; Debian's libx264 has
/// every bit depth.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_high_422_10_bit_scaling_lists() {
    let args = [
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv422p10le",
        "-x264-params",
        "cqm=jvt",
    ];
    film("avc_422_10", &args, false);
}

/// 4:0:0 (no chroma weights) and lossless 4:4:4 (High 4:4:4 Predictive).
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_gray_and_lossless_444() {
    let gray = [
        "-c:v",
        "libx264",
        "-pix_fmt",
        "gray",
        "-x264-params",
        "weightp=2",
    ];
    film("avc_gray", &gray, false);
    film(
        "avc_444_lossless",
        &["-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0"],
        false,
    );
}

/// Baseline (POC type 2, no B slices) as `avc3` with the parameter sets in
/// the samples at each of 5 IDR pictures.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x264_baseline_avc3_in_band() {
    let args = ["-profile:v", "baseline", "-tag:v", "avc3", "-x264-params"];
    let x = "repeat-headers=1:keyint=10";
    film("avc3_baseline", &[&X264[..], &args, &[x]].concat(), true);
}

/// ffmpeg's default HEVC sample entry is `hev1`: `hvc1` has the sets in
/// the record only.
const X265: [&str; 5] = ["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params"];

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x265_default() {
    film(
        "hevc_default",
        &[&X265[..], &["log-level=error"]].concat(),
        false,
    );
}

/// Two slices per picture (x265 wants WPP with them), explicit weights for
/// P and B, a B pyramid, open GOPs (CRA), default scaling lists, lossless
/// and transform-skip blocks, deblocking offsets.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x265_slices_weights_open_gop_tools() {
    let x = "log-level=error:slices=2:weightp=1:weightb=1:bframes=4:b-pyramid=1:ref=4:\
             keyint=24:open-gop=1:scaling-list=default:deblock=-1,1:cu-lossless=1:tskip=1:\
             signhide=0:constrained-intra=1:ctu=16";
    film("hevc_slices", &[&X265[..], &[x]].concat(), false);
}

/// `hev1` with the parameter sets in the samples, a temporal sub-layer
/// (profile_tier_level and ordering info per sub-layer) and HRD in the VUI.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x265_hev1_in_band_sub_layers_hrd() {
    let x = "log-level=error:repeat-headers=1:hrd=1:vbv-bufsize=600:vbv-maxrate=600:\
             temporal-layers=1:keyint=20";
    film(
        "hev1_layers",
        &["-c:v", "libx265", "-tag:v", "hev1", "-x265-params", x],
        true,
    );
}

/// 4:2:2 10-bit, and 4:0:0 with weights (no chroma weights or chroma SAO).
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn x265_422_10_bit_and_gray() {
    let x = "log-level=error:weightp=1:weightb=1";
    let ten = ["-pix_fmt", "yuv422p10le"];
    film("hevc_422_10", &[&ten[..], &X265, &[x]].concat(), false);
    film(
        "hevc_gray",
        &[&["-pix_fmt", "gray"][..], &X265, &[x]].concat(),
        false,
    );
}
