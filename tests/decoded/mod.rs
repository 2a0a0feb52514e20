//! What ffmpeg decodes: frames per stream, packets, decode errors, and
//! ffmpeg's own HLS/DASH packaging of a film to compare with ours.

use serde_json::Value;
use std::process::Command;

pub fn ffprobe_json(args: &[&str], input: &str) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(input)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decoded frames per stream type ("video", "audio"), in stream order.
pub fn frames(input: &str) -> Vec<(String, u64)> {
    let v = ffprobe_json(
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames",
        ],
        input,
    );
    let mut out: Vec<(String, u64)> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap().to_string(),
                s["nb_read_frames"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn decode_errors(input: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", input, "-map", "0", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the packaged frame counts equal the reference's.
pub fn same_frames(what: &str, packaged: &[(String, u64)], reference: &[(String, u64)]) {
    assert_eq!(packaged, reference, "{what}: frames per stream");
}

/// Every video frame of the source; audio, at most its priming frame more
/// (ffmpeg's HLS reader decodes it, its DASH reader does not).
pub fn every_source_frame(what: &str, packaged: &[(String, u64)], source: &[(String, u64)]) {
    assert_eq!(
        packaged.len(),
        source.len(),
        "{what}: {packaged:?} vs {source:?}"
    );
    for ((kind, n), (source_kind, source_n)) in packaged.iter().zip(source) {
        assert_eq!(kind, source_kind, "{what}");
        let more = n.checked_sub(*source_n);
        let allowed = u64::from(kind == "audio");
        assert!(
            more.is_some_and(|m| m <= allowed),
            "{what}: {kind} frames {n}, source {source_n}"
        );
    }
}

/// ffmpeg's own HLS (fMP4) or DASH packaging of `film` (stream copy), for
/// what ffmpeg's readers decode from a packager other than ours: its HLS
/// reader decodes AAC's priming frame, which the source's edit list hides
/// (ffmpeg 5.1 applies no edit list to fragments there), so audio counts
/// one frame more than the source, from ffmpeg's packaging as from ours.
pub fn ffmpeg_packaged(dir: &std::path::Path, film: &std::path::Path, manifest: &str) -> String {
    let stem = film.file_name().unwrap_or_default().to_string_lossy();
    let out = dir.join(format!("{stem}-{manifest}"));
    std::fs::create_dir_all(&out).unwrap();
    let (format, name): (&[&str], &str) = match manifest {
        "master.m3u8" => (
            &[
                "-f",
                "hls",
                "-hls_segment_type",
                "fmp4",
                "-hls_playlist_type",
                "vod",
            ],
            "ffmpeg.m3u8",
        ),
        _ => (&["-f", "dash"], "ffmpeg.mpd"),
    };
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(film)
        .args(["-map", "0", "-c", "copy"])
        .args(format)
        .arg(out.join(name))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ffmpeg packages {} as {manifest}",
        film.display()
    );
    out.join(name).to_str().unwrap().to_string()
}

/// Packets of a file's one stream (or stream `index`): (size, MD5, duration).
pub fn packets(path: &str, select: Option<usize>) -> Vec<(u64, String, Option<i64>)> {
    let sel = select.map(|i| i.to_string());
    let mut args = vec![
        "-show_entries",
        "packet=size,duration,data_hash",
        "-show_data_hash",
        "MD5",
    ];
    if let Some(s) = &sel {
        args.extend(["-select_streams", s]);
    }
    let v = ffprobe_json(&args, path);
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["size"].as_str().unwrap().parse().unwrap(),
                p["data_hash"].as_str().unwrap().to_string(),
                p["duration"].as_i64(),
            )
        })
        .collect()
}
