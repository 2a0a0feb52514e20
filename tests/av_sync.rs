//! Audio and video stay in step when `start` falls inside a video frame.
//!
//! A 29.97 fps film with B-frames (so the source video carries an edit list
//! hiding the 2-frame reorder delay) and AAC audio (whose edit list hides
//! the encoder priming) is cut at starts that fall between frame times. The
//! clip must shift both streams by the same amount, start on a key frame,
//! decode clean and present its first frame between that key frame and
//! `start`.
//!
//! How the shift is measured. Samples are copied byte for byte, so every
//! output packet has the same MD5 as the source packet it came from
//! (`ffprobe -show_data_hash md5`). For a packet found once in the source,
//! `source pts_time - output pts_time` is the shift the clip applies to that
//! stream. ffprobe's mov demuxer reports `pts_time` AFTER applying the edit
//! list (`ffprobe -ignore_editlist 1` gives the raw media times), so these
//! are presentation times on both sides: the measured shift is what a player
//! sees, whatever mix of edit lists and rewritten timestamps the engine
//! uses. The test checks that ffprobe really applies edit lists (the
//! source's first video packet presents at 0 but has a raw time of two
//! frames) before trusting the numbers. Packets before the edit (flag `D`)
//! keep their pts (negative), which still follows the same shift.

mod common;

use common::{cut, decode_errors, require_tool};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One frame at 29.97 fps: 1001/30000 s.
const FRAME: f64 = 1001.0 / 30000.0;
/// Starts between frame times (checked below; 12.345 is 0.6 ms before frame
/// 370, so frame 369 is the one on screen), plus 10.01, which is exactly
/// frame 300 (300 × 1001/30000), as a control.
const STARTS: [f64; 6] = [10.01, 10.02, 12.345, 17.9876, 25.02, 29.5];
/// Largest allowed difference between the video and audio shifts.
const SYNC: f64 = 0.005;

/// The fixture, made once per target dir (about 1.5 s with ffmpeg).
fn film() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("av_sync-2997-bf2-v1.mp4");
    if path.is_file() {
        return path;
    }
    let tmp = dir.join(format!("av_sync-{}.tmp.mp4", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=30000/1001:duration=30")
        .args(["-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000:duration=30")
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2"])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])
        .args(["-movflags", "+faststart", "-shortest"])
        .arg(&tmp)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).unwrap();
    path
}

#[derive(Debug, Clone)]
struct Packet {
    stream: u64,
    pts: Option<f64>,
    key: bool,
    hash: String,
}

struct Probe {
    /// stream index → codec_type
    kinds: HashMap<u64, String>,
    /// stream index → start_time
    starts: HashMap<u64, f64>,
    packets: Vec<Packet>,
}

impl Probe {
    fn stream(&self, kind: &str) -> u64 {
        *self
            .kinds
            .iter()
            .find(|(_, k)| *k == kind)
            .unwrap_or_else(|| panic!("no {kind} stream"))
            .0
    }
    fn packets_of(&self, stream: u64) -> impl Iterator<Item = &Packet> {
        self.packets.iter().filter(move |p| p.stream == stream)
    }
}

fn num(v: &serde_json::Value) -> Option<f64> {
    v.as_str()?.parse().ok()
}

fn probe(path: &Path, extra: &[&str]) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args(["-show_data_hash", "md5", "-show_entries"])
        .arg("packet=stream_index,pts_time,flags,data_hash:stream=index,codec_type,start_time")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {}", path.display());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let mut kinds = HashMap::new();
    let mut starts = HashMap::new();
    for s in j["streams"].as_array().expect("streams") {
        let i = s["index"].as_u64().unwrap();
        kinds.insert(i, s["codec_type"].as_str().unwrap_or("").to_string());
        starts.insert(i, num(&s["start_time"]).unwrap_or(f64::NAN));
    }
    let packets = j["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| Packet {
            stream: p["stream_index"].as_u64().unwrap(),
            pts: num(&p["pts_time"]),
            key: p["flags"].as_str().unwrap_or("").starts_with('K'),
            hash: p["data_hash"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    Probe {
        kinds,
        starts,
        packets,
    }
}

/// Source pts of packets whose bytes occur once in `stream` of the source.
fn unique_hashes(src: &Probe, stream: u64) -> HashMap<String, Option<f64>> {
    let mut seen: HashMap<String, (usize, Option<f64>)> = HashMap::new();
    for p in src.packets_of(stream) {
        let e = seen.entry(p.hash.clone()).or_insert((0, p.pts));
        e.0 += 1;
    }
    seen.into_iter()
        .filter(|(_, (n, _))| *n == 1)
        .map(|(h, (_, pts))| (h, pts))
        .collect()
}

/// The shift the clip applies to one stream: (min, max, matched packets).
/// Every output packet must be a source packet (same bytes).
fn shift(
    src: &Probe,
    out: &Probe,
    kind: &str,
    label: &str,
    errors: &mut Vec<String>,
) -> Option<f64> {
    let (ss, os) = (src.stream(kind), out.stream(kind));
    let all: std::collections::HashSet<&str> =
        src.packets_of(ss).map(|p| p.hash.as_str()).collect();
    let unique = unique_hashes(src, ss);
    let mut offs = Vec::new();
    let mut total = 0;
    for p in out.packets_of(os) {
        total += 1;
        if !all.contains(p.hash.as_str()) {
            errors.push(format!(
                "{label}: {kind} packet at {:?} is not a source packet",
                p.pts
            ));
            return None;
        }
        if let (Some(Some(sp)), Some(op)) = (unique.get(&p.hash), p.pts) {
            offs.push(sp - op);
        }
    }
    if total == 0 || offs.len() * 2 < total {
        errors.push(format!(
            "{label}: {kind}: only {} of {total} packets matched",
            offs.len()
        ));
        return None;
    }
    let min = offs.iter().cloned().fold(f64::MAX, f64::min);
    let max = offs.iter().cloned().fold(f64::MIN, f64::max);
    if max - min > 0.001 {
        errors.push(format!(
            "{label}: {kind} packets are shifted unevenly: {min:.6} .. {max:.6}"
        ));
        return None;
    }
    Some((min + max) / 2.0)
}

#[test]
#[cfg_attr(
    not(all(has_ffmpeg, has_ffprobe)),
    ignore = "needs ffmpeg, ffprobe: apt-get install -y ffmpeg"
)]
fn audio_and_video_shift_together_when_start_falls_inside_a_frame() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let src_path = film();
    let src = probe(&src_path, &[]);
    let (sv, sa) = (src.stream("video"), src.stream("audio"));

    // Premises: B-frames (pts out of decode order), an edit list that
    // ffprobe applies (raw time of the first video packet is 2 frames).
    let vpts: Vec<f64> = src.packets_of(sv).filter_map(|p| p.pts).collect();
    assert!(
        vpts.windows(2).any(|w| w[1] < w[0]),
        "the fixture has no B-frames"
    );
    let raw = probe(&src_path, &["-ignore_editlist", "1"]);
    let first_raw = raw
        .packets_of(raw.stream("video"))
        .next()
        .unwrap()
        .pts
        .unwrap();
    let first = src.packets_of(sv).next().unwrap().pts.unwrap();
    assert!(
        first.abs() < 0.001 && (first_raw - 2.0 * FRAME).abs() < 0.001,
        "ffprobe does not apply edit lists as expected: {first} vs raw {first_raw}"
    );
    assert!(src.packets_of(sa).count() > 1000);

    let dir = tempfile::tempdir().unwrap();
    let mut errors = Vec::new();
    let mut report = Vec::new();
    for s in STARTS {
        let frames = s / FRAME;
        if s != 10.01 {
            assert!(
                (frames - frames.round()).abs() > 0.01,
                "{s} is not between frame times"
            );
        }
        let label = format!("start {s}");
        let out_path = dir.path().join(format!("{s}.mp4"));
        if let Err(e) = cut(&src_path, &out_path, &["--start", &s.to_string()]) {
            errors.push(format!("{label}: cut failed: {e}"));
            continue;
        }
        let out = probe(&out_path, &[]);
        let decode = decode_errors(&out_path);
        if !decode.is_empty() {
            errors.push(format!("{label}: decode errors: {decode}"));
        }
        let v = shift(&src, &out, "video", &label, &mut errors);
        let a = shift(&src, &out, "audio", &label, &mut errors);
        report.push(format!("{s}: video {v:?} audio {a:?}"));
        if let (Some(v), Some(a)) = (v, a)
            && (v - a).abs() > SYNC
        {
            errors.push(format!(
                "{label}: video shifted by {v:.6} s, audio by {a:.6} s ({:.1} ms apart)",
                (v - a).abs() * 1000.0
            ));
        }
        // The key frame at or before start (by presentation time).
        let key = src
            .packets_of(sv)
            .filter(|p| p.key && p.pts.is_some_and(|t| t <= s + 1e-6))
            .last()
            .expect("a key frame before start");
        let key_time = key.pts.unwrap();
        let ov = out.stream("video");
        match out.packets_of(ov).next() {
            Some(p) if p.key && p.hash == key.hash => {}
            Some(p) => errors.push(format!(
                "{label}: first video packet (key: {}) is not the source key frame at {key_time}",
                p.key
            )),
            None => errors.push(format!("{label}: no video packets")),
        }
        // First presented frame, in source time: the stream's start_time
        // (after the edit list) plus the video shift.
        if let Some(v) = v {
            let shown = out.starts[&ov] + v;
            if !(key_time - 0.001..=s + 0.001).contains(&shown) {
                errors.push(format!(
                    "{label}: first presented frame is source {shown:.6} s, \
                     outside [key frame {key_time:.6}, start {s}]"
                ));
            }
        }
    }
    eprintln!("shifts measured:\n{}", report.join("\n"));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
