//! Adaptive-streaming players in a real browser: hls.js and dash.js (pinned in
//! tests/players/package.json, installed with `npm ci --prefix tests/players`)
//! run in headless Chromium, driven by chromedriver as in tests/browser.rs.
//! [`run_player`] loads tests/players/player.html, served over HTTP from the
//! same origin as the media, and runs a script of steps (play, wait, seek,
//! audio track, level) through `window.runPlayer`; it returns the page's
//! report (player errors, currentTime after each step, buffered ranges, what
//! each SourceBuffer received, the audio tracks and levels seen and the
//! active ones). player.html documents the steps and the report.
//!
//! `players_play_static_ffmpeg_packaging` proves the harness on HLS and DASH
//! packaged by ffmpeg itself, served by nginx as static files.

mod common;
#[path = "players_common/mod.rs"]
mod players_common;

use common::{free_port, media, require_tool};
use players_common::*;
use serde_json::{Value, json};

#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver, has_ffmpeg)),
    ignore = "needs nginx, chromium, chromedriver, ffmpeg: apt-get install -y nginx chromium chromium-driver ffmpeg"
)]
fn players_play_static_ffmpeg_packaging() {
    let nginx = require_tool("nginx");
    require_tool("ffmpeg");
    if !players_installed() {
        return;
    }
    let root = films_root();
    let (hls, dash) = (root.path().join("hls"), root.path().join("dash"));
    std::fs::create_dir(&hls).unwrap();
    std::fs::create_dir(&dash).unwrap();
    let maps = [
        "-map", "0:v:0", "-map", "0:a:0", "-map", "0:a:1", "-c", "copy",
    ];
    // HLS, fMP4 segments: the video variant with both audio tracks as
    // EXT-X-MEDIA alternatives of one group. Two things ffmpeg 5.1 needs for
    // hls.js to play it without an error event:
    // - the video variant's CODECS, which it only writes from Annex B
    //   extradata, hence the bitstream filter (the fMP4 muxer turns it back
    //   into avcC). Without it hls.js 1.7 takes the audio-only variants ffmpeg
    //   also lists for the whole story, creates no audio SourceBuffer and
    //   fails (fatal bufferAppendError).
    // - negative composition offsets: otherwise the first frame's 2-frame
    //   B-frame delay is only in an edit list, which hls.js ignores, so video
    //   starts at 0.08 s after audio, and now and then hls.js reports the gap
    //   (non-fatal bufferSeekOverHole, "seeking from 0 to 0.18").
    ffmpeg(
        &hls,
        &[
            &maps[..],
            &[
                "-bsf:v",
                "h264_mp4toannexb",
                "-f",
                "hls",
                "-hls_segment_type",
                "fmp4",
                "-hls_playlist_type",
                "vod",
                "-hls_time",
                "4",
                "-hls_segment_options",
                "movflags=+negative_cts_offsets",
                "-var_stream_map",
                "v:0,agroup:aud a:0,agroup:aud,language:eng a:1,agroup:aud,language:fra",
                "-master_pl_name",
                "master.m3u8",
                "-hls_segment_filename",
                "seg_%v_%03d.m4s",
                "-hls_fmp4_init_filename",
                "init.mp4",
                "stream_%v.m3u8",
            ],
        ]
        .concat(),
    );
    // DASH: one AdaptationSet per stream, lang="eng" and lang="fra" on the
    // audio. Its edit lists (media_time = the B-frame delay, the AAC priming)
    // are honoured by Chromium: video and audio both buffer from 0 to 20 s.
    ffmpeg(
        &dash,
        &[
            &maps[..],
            &["-f", "dash", "-seg_duration", "4", "manifest.mpd"],
        ]
        .concat(),
    );

    let conf_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nginx = serve_with_players(&nginx, conf_dir.path(), root.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let page_base = format!("{base}/players/");

    // The four runs are independent: all at once (RUNS_AT_ONCE at a time),
    // then checked in order.
    let plays = [
        ("hls", format!("{base}/hls/master.m3u8")),
        ("dash", format!("{base}/dash/manifest.mpd")),
    ];
    // And the harness sees a player fail: a manifest that is not there.
    let missing = [
        ("hls", format!("{base}/hls/missing.m3u8")),
        ("dash", format!("{base}/dash/missing.mpd")),
    ];
    let mut jobs = Vec::new();
    for (kind, url) in &plays {
        jobs.push((format!("{kind} {url}"), (*kind, url, play_seek_switch())));
    }
    for (kind, url) in &missing {
        let script = json!([{"play": true}, {"wait": 1}]);
        jobs.push((format!("{kind} {url}"), (*kind, url, script)));
    }
    let mut reports = run_parallel(jobs, |(kind, url, script)| {
        run_player(&page_base, kind, url, script)
    })
    .into_iter();

    for ((kind, _), (r, took)) in plays.iter().zip(reports.by_ref()) {
        println!(
            "{kind} ({:.1} s): {}",
            took.as_secs_f64(),
            serde_json::to_string(&r).unwrap()
        );
        check_play_seek_switch(kind, &r);
    }

    for ((kind, url), (r, took)) in missing.iter().zip(reports) {
        println!(
            "{kind}, 404 ({:.1} s): errors {}, aborted {}",
            took.as_secs_f64(),
            r["errors"],
            r["aborted"]
        );
        let errors = r["errors"].as_array().map_or(0, Vec::len);
        assert!(errors > 0, "{kind}: no error for {url}: {r:#}");
        assert!(r["aborted"].is_string(), "{kind}: ran on: {r:#}");
        assert_eq!(r["videoData"], false, "{kind}: {r:#}");
    }
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver, has_ffmpeg)),
    ignore = "needs nginx, chromium, chromedriver, ffmpeg: apt-get install -y nginx chromium chromium-driver ffmpeg"
)]
fn players_play_what_the_pool_packages() {
    let nginx = require_tool("nginx");
    require_tool("ffmpeg");
    if !players_installed() {
        return;
    }
    let root = films_root();
    for film in ["a.mp4", "two_audio.mp4", "hevc.mp4"] {
        std::fs::copy(media(film), root.path().join(film)).unwrap();
    }
    // Two encodes of one film, key frames every 2 s, for a URL set.
    for (name, size, rate) in [
        ("set_360.mp4", "320x180", "150k"),
        ("set_720.mp4", "640x360", "700k"),
    ] {
        common::encode(root.path(), name, size, rate, 50);
    }
    let served = serve_films(&nginx, root.path(), "2");
    let base = served.base.clone();
    let page_base = format!("{base}/players/");
    // The runs are independent: listed first, played RUNS_AT_ONCE at a
    // time, then checked in the same order.
    let mut runs: Vec<(&str, String, Value)> = Vec::new();
    for kind in ["hls", "dash"] {
        let manifest = if kind == "hls" {
            "master.m3u8"
        } else {
            "manifest.mpd"
        };
        // Two audio languages: play, seek to the middle, switch audio.
        runs.push((
            kind,
            format!("/two_audio.mp4/{manifest}"),
            play_seek_switch(),
        ));
        // Seek near the end of the whole film.
        let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"seek": 17.5}, {"wait": 1.5}]);
        runs.push((kind, format!("/a.mp4/{manifest}"), script));
        // A clip (from its key frame at 2 s to 13 s: 11 s), middle and near its end.
        let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"seek": 5}, {"wait": 1}, {"seek": 9.5}, {"wait": 1}]);
        runs.push((kind, format!("/a.mp4/{manifest}?start=3.3&end=13"), script));
        if kind == "hls" {
            runs.push((
                kind,
                "/hevc.mp4/master.m3u8".into(),
                json!([{"play": true}]),
            ));
        }
        // A URL set of two encodes: a forced switch up, then down.
        let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"level": 1}, {"wait": 3}, {"level": 0}, {"wait": 2}]);
        runs.push((
            kind,
            format!("/set_,360,720,.mp4.urlset/{manifest}"),
            script,
        ));
    }
    let jobs = (runs.into_iter())
        .map(|(kind, url, script)| (format!("{kind} {url}"), (kind, url, script)))
        .collect();
    let mut reports = run_parallel(jobs, |(kind, url, script)| {
        run_player(&page_base, kind, &format!("{base}{url}"), script)
    })
    .into_iter();
    let mut run = |kind: &str, url: &str| {
        let (r, took) = reports
            .next()
            .unwrap_or_else(|| panic!("no report for {kind} {url}"));
        println!(
            "{kind} {url} ({:.1} s): errors {}, times {}",
            took.as_secs_f64(),
            r["errors"],
            r["samples"]
        );
        r
    };

    for kind in ["hls", "dash"] {
        let manifest = if kind == "hls" {
            "master.m3u8"
        } else {
            "manifest.mpd"
        };
        let r = run(kind, &format!("/two_audio.mp4/{manifest}"));
        check_play_seek_switch(&format!("{kind} two_audio"), &r);

        let r = run(kind, &format!("/a.mp4/{manifest}"));
        check_clean(&format!("{kind} a.mp4"), &r, &[(1, 1.0), (3, 17.6)]);

        let r = run(kind, &format!("/a.mp4/{manifest}?start=3.3&end=13"));
        check_clean(&format!("{kind} clip"), &r, &[(1, 1.0), (3, 5.2), (5, 9.6)]);
        let duration = r["duration"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (duration - 11.0).abs() < 0.25,
            "{kind} clip duration {duration}"
        );

        // HEVC: Debian's Chromium has no HEVC decoder for Media Source, so
        // hls.js must refuse the variant for its CODECS (the string the pool
        // wrote from hvcC), and nothing else. ffmpeg decodes the same
        // packaging in tests/packaging.rs.
        if kind == "hls" {
            let r = run(kind, "/hevc.mp4/master.m3u8");
            let errors = r["errors"].to_string();
            assert!(
                errors.contains("manifestIncompatibleCodecsError")
                    && errors.contains("hvc1.1.6.L60.90,mp4a.40.2"),
                "hevc: {r:#}"
            );
            println!("not run: HEVC playback in Chromium (no HEVC decoder in Debian's build)");
        }

        let r = run(kind, &format!("/set_,360,720,.mp4.urlset/{manifest}"));
        check_clean(
            &format!("{kind} url set"),
            &r,
            &[(1, 1.0), (3, 3.0), (5, 5.0)],
        );
        let heights: Vec<u64> = r["levels"]
            .as_array()
            .map(|l| l.iter().filter_map(|l| l["height"].as_u64()).collect())
            .unwrap_or_default();
        assert_eq!(heights, vec![180, 360], "{kind} levels: {r:#}");
        assert_eq!(after_step(&r, 3)["level"], 1, "{kind} switched up: {r:#}");
        assert_eq!(after_step(&r, 5)["level"], 0, "{kind} switched down: {r:#}");
    }
}

/// AV1 + Opus and VP9 + Opus films (libaom and libvpx, as ffmpeg writes
/// them) play in Chromium through hls.js and dash.js, with a seek, from the
/// CODECS strings the pool derives from `av1C` and `vpcC`.
#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver, has_ffmpeg)),
    ignore = "needs nginx, chromium, chromedriver, ffmpeg: apt-get install -y nginx chromium chromium-driver ffmpeg"
)]
fn players_play_av1_and_vp9() {
    let nginx = require_tool("nginx");
    require_tool("ffmpeg");
    if !players_installed() {
        return;
    }
    let root = films_root();
    common::encode_av1_and_vp9(root.path(), "320x180", 10);
    let served = serve_films(&nginx, root.path(), "1");
    let base = served.base.clone();
    let page_base = format!("{base}/players/");
    let mut runs = Vec::new();
    for film in ["av1.mp4", "vp9.mp4"] {
        for (kind, manifest) in [("hls", "master.m3u8"), ("dash", "manifest.mpd")] {
            let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"seek": 6}, {"wait": 1.5}]);
            let url = format!("{base}/{film}/{manifest}");
            runs.push((film, kind, url, script));
        }
    }
    // Independent: played RUNS_AT_ONCE at a time, checked in order.
    let reports = run_players(
        &page_base,
        (runs.iter())
            .map(|(_, kind, url, script)| (kind.to_string(), url.clone(), script.clone()))
            .collect(),
    );
    for ((film, kind, _, _), r) in runs.iter().zip(reports) {
        println!(
            "{kind} {film}: errors {}, times {}",
            r["errors"], r["samples"]
        );
        check_clean(&format!("{kind} {film}"), &r, &[(1, 1.0), (3, 6.1)]);
    }
}
