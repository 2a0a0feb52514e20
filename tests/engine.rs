//! The engine's acceptance on real encodes: every fixture × every kind of
//! window decodes clean, has the requested duration, starts on a key frame
//! with audio in step, parses with mp4parse, and keeps untouched boxes.

mod common;

use common::{cut, decode_errors, media, probe_duration, probe_streams, require_tool};
use mp4_fcgi::mp4::{self, Index, Limits, Window};
use std::path::Path;
use std::sync::Arc;

const FILES: [&str; 6] = [
    "a.mp4",
    "a_faststart.mp4",
    "hevc.mp4",
    "two_audio.mp4",
    "audio.m4a",
    "audio_stz2.m4a",
];
const DURATION: f64 = 20.0;
/// One video frame at 25 fps, plus a little slack for rounding.
const FRAME: f64 = 0.041;

/// (cut arguments, expected duration)
fn windows() -> Vec<(Vec<String>, f64)> {
    let w = |args: &[&str], d: f64| (args.iter().map(|s| s.to_string()).collect(), d);
    vec![
        w(&["--start", "7.3"], DURATION - 7.3),
        w(&["--end", "12"], 12.0),
        w(&["--start", "5.5", "--end", "12"], 6.5),
        w(&["--start", "0"], DURATION),
        w(&["--start", "19.9"], 0.1),
        w(&["--start", "6"], DURATION - 6.0),
        w(&["--start", "7.3", "--end", "15"], 7.7),
    ]
}

/// Top-level and nested boxes: (path, bytes).
fn boxes(data: &[u8], prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    const CONTAINERS: [&str; 7] = ["moov", "trak", "mdia", "minf", "stbl", "edts", "dinf"];
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        let size = if size == 0 { data.len() - pos } else { size };
        if size < 8 || pos + size > data.len() {
            break;
        }
        let path = format!("{prefix}/{kind}");
        if CONTAINERS.contains(&kind.as_str()) {
            boxes(&data[pos + 8..pos + size], &path, out);
        } else if kind != "mdat" {
            out.push((path, data[pos..pos + size].to_vec()));
        }
        pos += size;
    }
}

/// Boxes the engine never rewrites must come through byte for byte.
fn assert_untouched_boxes_kept(src: &Path, out: &Path, flash: bool) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    boxes(&std::fs::read(src).unwrap(), "", &mut a);
    boxes(&std::fs::read(out).unwrap(), "", &mut b);
    for kept in [
        "stsd", "hdlr", "udta", "meta", "sgpd", "smhd", "vmhd", "dref", "ftyp",
    ] {
        let pick = |v: &Vec<(String, Vec<u8>)>| -> Vec<Vec<u8>> {
            v.iter()
                .filter(|(p, _)| p.ends_with(&format!("/{kept}")))
                .map(|(_, b)| b.clone())
                .collect()
        };
        let (src_boxes, out_boxes) = (pick(&a), pick(&b));
        for ob in &out_boxes {
            assert!(
                src_boxes.contains(ob),
                "{}: '{kept}' changed",
                out.display()
            );
        }
        if !flash {
            assert_eq!(
                src_boxes.len(),
                out_boxes.len(),
                "{}: '{kept}' lost",
                out.display()
            );
        }
    }
}

/// Sum of the sample sizes an `stsz` or `stz2` box declares.
fn declared_bytes(kind: &str, b: &[u8]) -> u64 {
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as u64;
    let count = be(16) as usize;
    if kind == "stsz" {
        let fixed = be(12);
        if fixed != 0 {
            return fixed * count as u64;
        }
        return (0..count).map(|i| be(20 + 4 * i)).sum();
    }
    let field = b[15] as usize;
    (0..count)
        .map(|i| match field {
            4 => u64::from((b[20 + i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf),
            8 => u64::from(b[20 + i]),
            _ => u64::from(u16::from_be_bytes([b[20 + 2 * i], b[21 + 2 * i]])),
        })
        .sum()
}

/// Bytes of `mdat` that no sample table refers to: what an answer carries
/// beyond its samples (coalesced gaps between kept chunks).
fn slack(out: &Path) -> u64 {
    let data = std::fs::read(out).unwrap();
    let mut tables = Vec::new();
    boxes(&data, "", &mut tables);
    let samples: u64 = (tables.iter())
        .filter_map(|(p, b)| {
            p.rsplit('/')
                .next()
                .filter(|k| *k == "stsz" || *k == "stz2")
                .map(|k| declared_bytes(k, b))
        })
        .sum();
    let (mut pos, mut payload) = (0usize, 0u64);
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let (size, head) = match size {
            1 => (
                u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
                16,
            ),
            0 => ((data.len() - pos) as u64, 8),
            n => (n, 8),
        };
        if &data[pos + 4..pos + 8] == b"mdat" {
            payload += size - head;
        }
        pos += size as usize;
    }
    payload.saturating_sub(samples)
}

/// What an answer may carry beyond its samples (4 KiB gaps, a few of them).
const SLACK: u64 = 64 << 10;

fn check_output(src: &Path, out: &Path, expect: f64, label: &str) {
    assert_eq!(decode_errors(out), "", "{label}: must decode clean");
    let extra = slack(out);
    assert!(
        extra <= SLACK,
        "{label}: {extra} bytes of mdat hold no sample"
    );
    let d = probe_duration(out);
    assert!(
        (d - expect).abs() <= FRAME,
        "{label}: duration {d}, want {expect}"
    );
    let streams = probe_streams(out);
    let video = streams.iter().find(|s| s.codec_type == "video");
    if video.is_some() {
        assert!(
            common::first_video_packet_is_key(out),
            "{label}: first video packet not a key frame"
        );
    }
    let starts: Vec<f64> = streams.iter().map(|s| s.start_time).collect();
    let spread = starts.iter().cloned().fold(f64::MIN, f64::max)
        - starts.iter().cloned().fold(f64::MAX, f64::min);
    // One AAC frame at 44.1 kHz is 23.2 ms.
    assert!(spread <= 0.024, "{label}: streams start apart: {starts:?}");
    let mut f = std::fs::File::open(out).unwrap();
    mp4parse::read_mp4(&mut f).unwrap_or_else(|e| panic!("{label}: mp4parse: {e:?}"));
    assert_untouched_boxes_kept(src, out, false);
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe)),
    ignore = "needs ffmpeg, ffprobe: apt-get install -y ffmpeg"
)]
fn every_fixture_and_window_decodes_clean_with_the_right_duration() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    for file in FILES {
        for (i, (args, expect)) in windows().into_iter().enumerate() {
            let src = media(file);
            let out = dir.path().join(format!("{i}-{file}"));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cut(&src, &out, &args).unwrap();
            check_output(&src, &out, expect, &format!("{file} {args:?}"));
        }
    }
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe)),
    ignore = "needs ffmpeg, ffprobe: apt-get install -y ffmpeg"
)]
fn flash_keeps_one_video_and_one_audio_track_without_edit_lists() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flash.mp4");
    cut(
        &media("two_audio.mp4"),
        &out,
        &["--start", "5.5", "--end", "12", "--client", "flash"],
    )
    .unwrap();
    let kinds: Vec<String> = probe_streams(&out)
        .into_iter()
        .map(|s| s.codec_type)
        .collect();
    assert_eq!(kinds, ["video", "audio"]);
    let mut b = Vec::new();
    boxes(&std::fs::read(&out).unwrap(), "", &mut b);
    assert!(
        !b.iter().any(|(p, _)| p.contains("/edts/")),
        "no edit lists for flash"
    );
    assert_eq!(decode_errors(&out), "");
    assert_untouched_boxes_kept(&media("two_audio.mp4"), &out, true);
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn no_window_serves_original_or_fast_start_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("whole.mp4");
    cut(&media("a_faststart.mp4"), &out, &[]).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(media("a_faststart.mp4")).unwrap()
    );
    cut(&media("a.mp4"), &out, &[]).unwrap();
    let data = std::fs::read(&out).unwrap();
    assert_eq!(
        data.len() as u64,
        std::fs::metadata(media("a.mp4")).unwrap().len()
    );
    let moov = data.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = data.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "moov moved to the front");
    require_tool("ffmpeg");
    assert_eq!(decode_errors(&out), "");
    cut(&media("frag.mp4"), &out, &[]).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(media("frag.mp4")).unwrap()
    );
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe)),
    ignore = "needs ffmpeg, ffprobe: apt-get install -y ffmpeg"
)]
fn fragmented_windows_present_from_zero_like_the_whole_file() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let src = media("frag.mp4");
    let whole = probe_streams(&src);
    let dir = tempfile::tempdir().unwrap();
    // Fragments hold 2 s (one GOP): a window is served from the fragment
    // holding its start, and presents from where the whole film does.
    for (start, end) in [("7.3", "15"), ("0.5", "4"), ("10", "20"), ("18.1", "19")] {
        let out = dir.path().join(format!("frag-{start}.mp4"));
        cut(&src, &out, &["--start", start, "--end", end]).unwrap();
        assert_eq!(decode_errors(&out), "", "{start}");
        assert!(common::first_video_packet_is_key(&out), "{start}");
        let (s, e): (f64, f64) = (start.parse().unwrap(), end.parse().unwrap());
        for (clip, orig) in probe_streams(&out).iter().zip(&whole) {
            assert_eq!(clip.codec_type, orig.codec_type);
            assert!(
                (clip.start_time - orig.start_time).abs() <= FRAME,
                "{start}: {} starts at {}, the whole film's at {}",
                clip.codec_type,
                clip.start_time,
                orig.start_time
            );
        }
        // Whole fragments: at least the window, at most a fragment more at each end.
        let d = probe_duration(&out);
        assert!(
            d >= e - s - FRAME && d <= e - s + 4.0 + FRAME,
            "{start}: lasts {d}"
        );
        assert!(std::fs::metadata(&out).unwrap().len() < std::fs::metadata(&src).unwrap().len());
    }
}

#[test]
fn stz2_stays_stz2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stz2.m4a");
    cut(
        &media("audio_stz2.m4a"),
        &out,
        &["--start", "3", "--end", "9"],
    )
    .unwrap();
    let data = std::fs::read(&out).unwrap();
    assert!(data.windows(4).any(|w| w == b"stz2"));
    assert!(!data.windows(4).any(|w| w == b"stsz"));
}

#[test]
fn errors_are_typed_and_readable() {
    let file = std::fs::File::open(media("a.mp4")).unwrap();
    let index = Arc::new(Index::build(&file, &Limits::default()).unwrap());
    let w = |s, e| Window {
        start: s,
        end: e,
        flash: false,
        tracks: Default::default(),
    };
    let past = mp4::plan(&index, &w(Some(25.0), None), &Default::default()).unwrap_err();
    assert!(past.to_string().contains("past the end"), "{past}");
    let empty = mp4::plan(&index, &w(Some(5.0), Some(5.0)), &Default::default()).unwrap_err();
    assert!(empty.to_string().contains("not after start"), "{empty}");
    let err = cut(
        &media("a.mp4"),
        Path::new("/nonexistent/dir/out.mp4"),
        &["--start", "1"],
    )
    .unwrap_err();
    assert!(err.contains("/nonexistent/dir/out.mp4"), "{err}");
    let err = cut(Path::new("Cargo.toml"), Path::new("/tmp/x.mp4"), &[]).unwrap_err();
    assert!(err.contains("not an MP4"), "{err}");
}

#[test]
fn info_describes_tracks() {
    let out = std::process::Command::new(common::BIN)
        .args(["info"])
        .arg(media("two_audio.mp4"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("track 1: vide avc1 timescale 12800"),
        "{text}"
    );
    assert_eq!(text.matches("soun mp4a").count(), 2, "{text}");
    assert!(text.contains("fragmented: no"));
    let out = std::process::Command::new(common::BIN)
        .args(["info"])
        .arg(media("frag.mp4"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("fragmented: yes (10 fragments)")
    );
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe)),
    ignore = "needs ffmpeg, ffprobe: apt-get install -y ffmpeg"
)]
fn a_sparse_subtitle_track_adds_only_its_samples() {
    // ffmpeg writes a subtitle track's last sample at the end of the mdat:
    // a window must not carry the film between its chunks and that one.
    require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("s.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:03,000\nHello\n\n2\n00:00:18,000 --> 00:00:19,000\nWorld\n",
    )
    .unwrap();
    let film = dir.path().join("subs.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(media("a.mp4"))
        .arg("-i")
        .arg(&srt)
        .args(["-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text"])
        .arg(&film)
        .status()
        .unwrap();
    assert!(made.success());
    for args in [
        &["--end", "5"][..],
        &["--start", "5", "--end", "12"],
        &["--start", "2", "--end", "4"],
    ] {
        let (plain, subs) = (dir.path().join("plain.mp4"), dir.path().join("out.mp4"));
        cut(&media("a.mp4"), &plain, args).unwrap();
        cut(&film, &subs, args).unwrap();
        let (p, s) = (
            std::fs::metadata(&plain).unwrap().len(),
            std::fs::metadata(&subs).unwrap().len(),
        );
        // The subtitle track's samples and tables are a few hundred bytes.
        assert!(
            s <= p + p / 50 + 2048,
            "{args:?}: {s} bytes with subtitles, {p} without"
        );
        assert!(
            slack(&subs) <= SLACK,
            "{args:?}: {} bytes hold no sample",
            slack(&subs)
        );
        assert_eq!(decode_errors(&subs), "", "{args:?}");
    }
}
