//! The manifests' rules (RFC 8216 for HLS, ISO/IEC 23009-1 for DASH)
//! checked against the segments the packager really writes: BANDWIDTH and
//! AVERAGE-BANDWIDTH count whole segments over runs of half to one and a
//! half target durations, every EXTINF rounds to at most TARGETDURATION, no
//! segment is empty, HEVC key frames are not claimed to be SAP type 1.

mod common;

use mp4_fcgi::manifest::{self, Part, TrackId};
use mp4_fcgi::mp4::cmaf::{self, Presentation, Settings};
use mp4_fcgi::mp4::{Index, Limits, Window};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const SIX: Settings = Settings::fixed(6.0);

fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/media")
        .join(name)
}

fn plan(path: &Path) -> (Arc<Index>, Presentation) {
    let bytes = std::fs::read(path).unwrap();
    let index = Arc::new(Index::build(&bytes, &Limits::default()).unwrap());
    let p = cmaf::presentation(&index, &Window::default(), &SIX).unwrap();
    (index, p)
}

fn one(p: &Presentation) -> [Part<'_>; 1] {
    [Part::of(p)]
}

/// `(EXTINF seconds, TARGETDURATION)` of a media playlist.
fn extinfs(text: &str) -> (Vec<f64>, u64) {
    let target = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .unwrap()
        .parse()
        .unwrap();
    let durations = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse().unwrap())
        .collect();
    (durations, target)
}

/// Checks one film's manifests against the bytes of its segments.
fn rules(index: &Arc<Index>, p: &Presentation, name: &str) {
    for r in &p.renditions {
        let track = TrackId { file: 0, id: r.id };
        let text = manifest::playlist(p, track, "", None).unwrap();
        let (durations, target) = extinfs(&text);
        assert_eq!(durations.len(), r.segments.len(), "{name}: {text}");
        for d in &durations {
            assert!(d.round() as u64 <= target, "{name} {d} > {target}");
        }
        let sizes: Vec<u64> = (1..=r.segments.len() as u32)
            .map(|n| cmaf::segment(index, p, n, r.id).unwrap().len())
            .collect();
        for (k, (s, &len)) in r.segments.iter().zip(&sizes).enumerate() {
            assert!(
                s.bytes > 0,
                "{name} track {} segment {}: empty",
                r.id,
                k + 1
            );
            assert!(len > s.bytes, "{name}: a segment is more than its samples");
        }
        // RFC 8216 4.3.4.2: any run of segments from 0.5 to 1.5 times the
        // target duration, whole segments counted.
        let t = target as f64;
        let mut peak = 0.0f64;
        for i in 0..durations.len() {
            let (mut secs, mut bytes) = (0.0, 0u64);
            for j in i..durations.len() {
                secs += durations[j];
                bytes += sizes[j];
                if secs > 1.5 * t {
                    break;
                }
                if secs >= 0.5 * t {
                    peak = peak.max(bytes as f64 * 8.0 / secs);
                }
            }
        }
        let total: u64 = sizes.iter().sum();
        let secs: f64 = durations.iter().sum();
        let average = total as f64 * 8.0 / secs;
        assert!(
            r.peak_bandwidth as f64 >= peak.floor(),
            "{name} track {}: BANDWIDTH {} < {peak}",
            r.id,
            r.peak_bandwidth
        );
        assert!(
            r.average_bandwidth as f64 >= average.floor() - 1.0,
            "{name} track {}: AVERAGE-BANDWIDTH {} < {average}",
            r.id,
            r.average_bandwidth
        );
        // Not more than rounding above the whole segments' rate.
        assert!(
            (r.average_bandwidth as f64) <= average * 1.01 + 1.0,
            "{name} track {}: AVERAGE-BANDWIDTH {} > {average}",
            r.id,
            r.average_bandwidth
        );
    }
    let mpd = manifest::mpd(&one(p), "");
    let longest = (p.renditions.iter())
        .flat_map(|r| r.segments.iter().map(|s| s.shown_for))
        .fold(0.0, f64::max);
    let min_buffer: f64 = {
        let v = mpd.split("minBufferTime=\"PT").nth(1).unwrap();
        v[..v.find('S').unwrap()].parse().unwrap()
    };
    assert!(min_buffer >= longest, "{name}: {mpd}");
    let master = manifest::master(&one(p), "");
    assert!(!master.contains("CHANNELS=\"0\""), "{name}: {master}");
}

#[test]
fn the_fixtures_keep_the_manifest_rules() {
    for name in [
        "a.mp4",
        "hevc.mp4",
        "two_audio.mp4",
        "frag.mp4",
        "audio.m4a",
        "audio_stz2.m4a",
    ] {
        let (index, p) = plan(&media(name));
        rules(&index, &p, name);
    }
}

/// The video adaptation set's `startWithSAP`, if it has one.
fn video_sap(mpd: &str) -> Option<String> {
    let line = mpd
        .lines()
        .find(|l| l.contains("contentType=\"video\""))
        .unwrap();
    let v = line.split("startWithSAP=\"").nth(1)?;
    Some(v[..v.find('"').unwrap()].to_string())
}

#[test]
fn open_gop_hevc_key_frames_are_not_sap_type_1() {
    // x265's default open GOP: its key frames after the first are CRA
    // pictures, and the file does not say otherwise (no 'sync' sample group).
    let (_, p) = plan(&media("hevc.mp4"));
    let mpd = manifest::mpd(&one(&p), "");
    assert_ne!(video_sap(&mpd).as_deref(), Some("1"), "{mpd}");
    let (_, p) = plan(&media("a.mp4"));
    let mpd = manifest::mpd(&one(&p), "");
    assert_eq!(video_sap(&mpd).as_deref(), Some("1"), "{mpd}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("manifest-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A 14 s film whose audio stops after 4 s.
fn short_audio(name: &str, movflags: &[&str]) -> PathBuf {
    let out = scratch(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=25:duration=14",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=4",
        ])
        .args([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args([
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
        ])
        .args(movflags)
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    out
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn audio_that_ends_early_has_no_empty_segment() {
    for (name, flags) in [
        ("progressive.mp4", &[][..]),
        (
            "fragmented.mp4",
            &["-movflags", "frag_keyframe+empty_moov"][..],
        ),
    ] {
        let path = short_audio(name, flags);
        let (index, p) = plan(&path);
        let video = p.renditions.iter().find(|r| r.id == 1).unwrap();
        let audio = p.renditions.iter().find(|r| r.id == 2).unwrap();
        assert!(video.segments.len() >= 2, "{name}: {:?}", video.segments);
        assert!(
            audio.segments.len() < video.segments.len(),
            "{name}: {:?}",
            audio.segments
        );
        rules(&index, &p, name);
        let mpd = manifest::mpd(&one(&p), "");
        assert!(mpd.contains("<S t=\"0\""), "{mpd}");
    }
    let _ = std::fs::remove_dir_all(scratch("x").parent().unwrap());
}

/// A film with a steady 4 s GOP at the default target (6 s): its segments
/// are even, 4 s each, not 8 s and 4 s in turn; an operator's explicit
/// target (no fitting) still cuts at the key frame nearest each 6 s.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_steady_gop_makes_even_segments_unless_the_target_is_set() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    common::encode(dir.path(), "gop4.mp4", "320x180", "300k", 100);
    let bytes = std::fs::read(dir.path().join("gop4.mp4")).unwrap();
    let index = Index::build(&bytes, &Limits::default()).unwrap();
    let video = |settings: &Settings| -> Vec<f64> {
        let p = cmaf::presentation(&index, &Window::default(), settings).unwrap();
        let r = (p.renditions.iter())
            .find(|r| r.kind == cmaf::Kind::Video)
            .unwrap();
        r.segments.iter().map(|s| s.shown_for).collect()
    };
    let fitted = video(&Settings {
        fit_key_frames: true,
        ..Settings::fixed(6.0)
    });
    assert_eq!(fitted.len(), 5, "{fitted:?}");
    for d in &fitted {
        assert!((d - 4.0).abs() < 0.05, "{fitted:?}");
    }
    let (_, target) = extinfs(&playlist_of(&index, true));
    assert_eq!(target, 4);
    let set = video(&SIX);
    assert!(
        set.iter().any(|d| (d - 8.0).abs() < 0.05),
        "an explicit 6 s target cuts at the key frame nearest each 6 s: {set:?}"
    );
}

/// The video playlist of the whole of `index`.
fn playlist_of(index: &Index, fit: bool) -> String {
    let settings = Settings {
        fit_key_frames: fit,
        ..Settings::fixed(6.0)
    };
    let p = cmaf::presentation(index, &Window::default(), &settings).unwrap();
    let r = (p.renditions.iter())
        .find(|r| r.kind == cmaf::Kind::Video)
        .unwrap();
    manifest::playlist(&p, TrackId { file: 0, id: r.id }, "", None).unwrap()
}

/// Audio renditions carry BCP 47's shortest tag (RFC 8216 §4.4.6.1) and a
/// name viewers read, the language's own: `eng` is `en`, "English"; `fra`
/// is `fr`, "français"; the MPD says the same with `lang` and `Label`.
#[test]
fn languages_are_tagged_and_named_for_viewers() {
    let (_, p) = plan(&media("two_audio.mp4"));
    let master = manifest::master(&one(&p), "");
    assert!(
        master.contains("LANGUAGE=\"en\",NAME=\"English\"")
            && master.contains("LANGUAGE=\"fr\",NAME=\"français\""),
        "{master}"
    );
    let mpd = manifest::mpd(&one(&p), "");
    assert!(
        mpd.contains("lang=\"en\"")
            && mpd.contains("<Label>English</Label>")
            && mpd.contains("lang=\"fr\"")
            && mpd.contains("<Label>français</Label>"),
        "{mpd}"
    );
}

/// A variant's RESOLUTION is the picture as shown (its `pasp` applied), the
/// MPD keeps the coded size with `sar`, as ffprobe reads the film; the
/// variant states its FRAME-RATE.
#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn resolution_as_shown_and_frame_rate() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("anamorphic.mp4");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x90:rate=30000/1001:duration=3")
        .args([
            "-vf",
            "setsar=4/3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
        ])
        .arg(&film)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["stream=sample_aspect_ratio,r_frame_rate", "-of", "csv=p=0"])
        .arg(&film)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "4:3,30000/1001"
    );
    let (_, p) = plan(&film);
    let master = manifest::master(&one(&p), "");
    assert!(
        master.contains("RESOLUTION=213x90") && master.contains("FRAME-RATE=29.970"),
        "{master}"
    );
    let mpd = manifest::mpd(&one(&p), "");
    assert!(
        mpd.contains("width=\"160\" height=\"90\" sar=\"4:3\""),
        "{mpd}"
    );
}
