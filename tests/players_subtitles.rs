//! A film's subtitle track (`tx3g`, which ffmpeg writes from an `.srt` as
//! `mov_text`), served as WebVTT, in hls.js, dash.js and Shaka Player (HLS
//! and DASH) in Chromium: each lists it (language "en", label "English"),
//! and once it is enabled and shown, seeking to just after a cue's start
//! shows that cue, at the source's time: the whole film and a clip. The
//! same cues from a sidecar file (`side.en.srt` beside `side.mp4`).

mod common;
#[path = "players_common/mod.rs"]
mod players_common;

use common::{media, require_tool};
use players_common::*;
use serde_json::{Value, json};
use std::process::Command;

/// As tests/subtitles.rs: the second cue is the one the players must show.
const SRT: &str = "1\n00:00:01,000 --> 00:00:02,500\nFirst line\n\n\
2\n00:00:05,500 --> 00:00:07,000\nAcross a cut & 3 < 4\n\n\
3\n00:00:12,250 --> 00:00:14,000\nLater,\ntwo lines\n";
const CUE: &str = "Across a cut & 3 < 4";
/// How far from the source's time a player may put the cue's start.
const TOLERANCE_S: f64 = 0.1;

/// What one run shows: its summary line, and whether it is what it must be.
fn check(url: &str, cue_start: f64, r: &Value) -> (String, Result<(), String>) {
    let step = 2; // after {"wait": ...}, past the seek
    let tracks: Vec<(String, String)> = r["subtitleTracks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["lang"].as_str().unwrap_or("").to_string(),
                t["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let cues = showing_cues(r, step);
    // The video element's text tracks: (kind, language, label, mode, the
    // active cues' text as the player put it in VTTCue.text).
    let text_tracks: Vec<String> = after_step(r, step)["textTracks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "({}, {}, {}, {}, {})",
                t["kind"], t["language"], t["label"], t["mode"], t["activeCues"]
            )
        })
        .collect();
    let line = format!(
        "{} {url}: subtitle tracks {tracks:?}, active {}, text tracks [{}], cues shown {cues:?} (expected {CUE:?} from {cue_start}), currentTime {}, errors {}",
        r["player"],
        r["activeSubtitleTrack"],
        text_tracks.join(", "),
        time_after(r, step),
        r["errors"]
    );
    let mut why = Vec::new();
    if !r["harnessError"].is_null() || !r["aborted"].is_null() {
        why.push(format!(
            "harness error {} / aborted {}",
            r["harnessError"], r["aborted"]
        ));
    }
    // hls.js reports a request it cancels itself (the seek moves it off a
    // subtitle segment it was loading) as a non-fatal "aborted"
    // (INTERNAL_ABORTED) network error: printed, not a failure.
    let errors: Vec<&Value> = r["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| !(e["fatal"] == false && e["details"] == "aborted"))
        .collect();
    if !errors.is_empty() || !r["videoError"].is_null() {
        why.push(format!("errors {errors:?} video.error {}", r["videoError"]));
    }
    if !tracks
        .iter()
        .any(|(lang, name)| matches!(lang.as_str(), "en" | "eng") && name == "English")
    {
        why.push(format!("no subtitle track en/English: {tracks:?}"));
    }
    if !cues
        .iter()
        .any(|(start, _, text)| text == CUE && (start - cue_start).abs() <= TOLERANCE_S)
    {
        why.push(format!(
            "cue {CUE:?} from {cue_start} ±{TOLERANCE_S} not shown: {cues:?}"
        ));
    }
    let verdict = if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    };
    (line, verdict)
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver, has_ffmpeg)),
    ignore = "needs nginx, chromium, chromedriver, ffmpeg: apt-get install -y nginx chromium chromium-driver ffmpeg"
)]
fn players_show_subtitles() {
    let nginx = require_tool("nginx");
    require_tool("ffmpeg");
    if !players_installed() {
        return;
    }
    let root = films_root();
    std::fs::write(root.path().join("subs.srt"), SRT).unwrap();
    let out = Command::new("ffmpeg")
        .current_dir(root.path())
        .args(["-v", "error", "-y", "-i"])
        .arg(media("a.mp4"))
        .args(["-i", "subs.srt", "-map", "0", "-map", "1", "-c", "copy"])
        .args(["-c:s", "mov_text", "-metadata:s:s:0", "language=eng"])
        .arg("subs.mp4")
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(media("a.mp4"), root.path().join("side.mp4")).unwrap();
    std::fs::write(root.path().join("side.en.srt"), SRT).unwrap();
    let served = serve_films(&nginx, root.path(), "2");
    let base = served.base.clone();
    let page_base = format!("{base}/players/");

    let mut players = vec![("hls", "master.m3u8"), ("dash", "manifest.mpd")];
    if shaka_player_installed() {
        players.extend([("shaka", "master.m3u8"), ("shaka", "manifest.mpd")]);
    }
    // The whole film: the cue at 5.5 s. The clip from 3.3 s starts at the
    // key frame at 2 s, so the cue is at 3.5 s. The sidecar: the whole film.
    let windows = [
        ("subs.mp4", "", 5.5),
        ("subs.mp4", "?start=3.3&end=13", 3.5),
        ("side.mp4", "", 5.5),
    ];
    let mut runs = Vec::new();
    for (kind, manifest) in players {
        for (film, query, cue_start) in windows {
            runs.push((kind, manifest, film, query, cue_start));
        }
    }
    // The runs are independent: played RUNS_AT_ONCE at a time, then
    // checked in order.
    let reports = run_players(
        &page_base,
        (runs.iter())
            .map(|&(kind, manifest, film, query, cue_start)| {
                let url = format!("{base}/{film}/{manifest}{query}");
                let script = json!([
                    {"subtitles": "en"},
                    {"seek": cue_start + 0.1},
                    {"wait": 2},
                ]);
                (kind.to_string(), url, script)
            })
            .collect(),
    );
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for ((kind, manifest, film, query, cue_start), r) in runs.into_iter().zip(reports) {
        let (line, verdict) = check(&format!("{film}/{manifest}{query}"), cue_start, &r);
        println!("{line}");
        if let Err(why) = verdict {
            failures.push(format!("{kind} {film}/{manifest}{query}: {why}\n{r:#}"));
        }
        lines.push(line);
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        lines.join("\n"),
        failures.join("\n\n")
    );
}
