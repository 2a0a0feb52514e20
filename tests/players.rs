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

use common::webdriver::base64_decode;
use common::{Stop, free_port, media, require_tool, wait_port};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest one player run may take in the page (player.html's budget);
/// WebDriver's script timeout is a little longer, the socket's longer still.
const PLAYER_BUDGET_S: u64 = 55;
const SCRIPT_TIMEOUT_S: u64 = 60;

fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    common::webdriver::wd(
        port,
        method,
        path,
        body,
        Duration::from_secs(SCRIPT_TIMEOUT_S + 20),
    )
}

/// A WebDriver error answer (`{"value": {"error": ...}}`) as a panic.
fn wd_ok(what: &str, answer: Value) -> Value {
    if let Some(err) = answer["value"]["error"].as_str() {
        panic!(
            "WebDriver {what}: {err}: {}",
            answer["value"]["message"].as_str().unwrap_or("")
        );
    }
    answer
}

/// Calls the page's `runPlayer` and hands its report (or its failure) to WebDriver.
const RUN: &str = r#"
const done = arguments[arguments.length - 1];
if (typeof window.runPlayer !== 'function') {
  done({harnessError: 'player.html did not define runPlayer'});
} else {
  window.runPlayer(arguments[0], arguments[1], arguments[2], arguments[3])
    .then(done, e => done({harnessError: 'runPlayer threw: ' + (e && e.stack || e)}));
}
"#;

/// Plays `url` with `kind` ("hls": hls.js, "dash": dash.js) in headless
/// Chromium and runs `script` (a JSON array of steps, see player.html) on it.
/// `page_base` is the URL of the folder serving tests/players/ (player.html and
/// node_modules/), on the media's origin, e.g. `http://127.0.0.1:PORT/players/`.
/// Starts its own chromedriver with a fresh profile, and returns the page's
/// report; a screenshot of the page at the end goes to
/// `<cargo target dir>/players-<kind>-<url's last segment>.png`. Bounded: the
/// page gives up after 55 s, WebDriver after 60 s.
pub fn run_player(page_base: &str, kind: &str, url: &str, script: Value) -> Value {
    let driver_bin = require_tool("chromedriver");
    require_tool("chromium");
    let profile = tempfile::tempdir().expect("a profile dir");
    let driver_port = free_port();
    let _driver = Stop(
        Command::new(driver_bin)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    wait_port(driver_port);

    let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=900,600",
                 format!("--user-data-dir={}", profile.path().display())]
    }}}});
    let session = wd_ok(
        "new session",
        wd(driver_port, "POST", "/session", Some(caps)),
    );
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    let cmd = |method: &str, what: &str, body: Option<Value>| {
        wd_ok(
            what,
            wd(driver_port, method, &format!("/session/{id}{what}"), body),
        )
    };
    cmd(
        "POST",
        "/timeouts",
        Some(json!({"script": SCRIPT_TIMEOUT_S * 1000, "pageLoad": 30000})),
    );
    let page = format!("{}/player.html", page_base.trim_end_matches('/'));
    cmd("POST", "/url", Some(json!({ "url": page })));
    let started = Instant::now();
    let out = wd(
        driver_port,
        "POST",
        &format!("/session/{id}/execute/async"),
        Some(json!({
            "script": RUN,
            "args": [kind, url, script, {"budget": PLAYER_BUDGET_S}],
        })),
    );
    let took = started.elapsed();
    if let Some(b64) = wd(
        driver_port,
        "GET",
        &format!("/session/{id}/screenshot"),
        None,
    )["value"]
        .as_str()
    {
        // The cargo target dir (CARGO_TARGET_DIR if set): CARGO_TARGET_TMPDIR is its tmp/.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR is <target dir>/tmp");
        let name: String = url
            .split('?')
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let _ = std::fs::write(
            target.join(format!("players-{kind}-{name}.png")),
            base64_decode(b64),
        );
    }
    wd(driver_port, "DELETE", &format!("/session/{id}"), None);
    let report = wd_ok(&format!("execute/async runPlayer({kind}, {url})"), out)["value"].clone();
    assert!(
        report.is_object(),
        "runPlayer({kind}, {url}) returned {report} after {took:?}"
    );
    report
}

/// tests/players/, served as the page base.
fn players_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/players")
}

/// Whether `npm ci --prefix tests/players` has run. Like a missing tool
/// (common::require_tool): under CI=true its absence fails the test; locally
/// the test says it did not run and passes.
pub fn players_installed() -> bool {
    let modules = players_dir().join("node_modules");
    if modules.join("hls.js/dist/hls.min.js").is_file()
        && modules.join("dashjs/dist/dash.all.min.js").is_file()
    {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "tests/players/node_modules has no hls.js or dash.js: \
             npm ci --prefix tests/players (.ci/run installs them in CI)"
        );
    }
    println!("not run: npm ci --prefix tests/players");
    false
}

/// nginx serving `root` at / and tests/players/ at /players/, on `port`;
/// `.mpd` as application/dash+xml, `.m4s` as video/iso.segment.
pub fn serve_with_players(nginx: &Path, conf_dir: &Path, root: &Path, port: u16) -> Stop {
    let server = format!(
        "root {};\n  location /players/ {{ alias {}/; }}",
        root.display(),
        players_dir().display()
    );
    let conf = common::nginx_conf(
        conf_dir,
        port,
        "include /etc/nginx/mime.types;\n types { application/dash+xml mpd; video/iso.segment m4s; }",
        &server,
    );
    common::start_nginx(nginx, conf_dir, &conf, port)
}

/// `samples[i]` of a report: the state after script step `i` (the first
/// sample, step -1, is the state before the script).
fn after_step(report: &Value, step: i64) -> &Value {
    report["samples"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["step"].as_i64() == Some(step)))
        .unwrap_or_else(|| panic!("no sample after step {step}: {report:#}"))
}

fn time_after(report: &Value, step: i64) -> f64 {
    after_step(report, step)["currentTime"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// The script both players run on the 20 s two_audio.mp4 packagings, and what
/// a good run of it shows.
fn play_seek_switch() -> Value {
    json!([
        {"play": true},             // 0
        {"waitUntil": 1.5, "timeout": 15}, // 1
        {"seek": 10},               // 2
        {"wait": 2},                // 3
        {"audioTrack": 1},          // 4
        {"wait": 3},                // 5
    ])
}

fn check_play_seek_switch(name: &str, r: &Value) {
    let ctx = || format!("{name}: {r:#}");
    assert!(r["harnessError"].is_null(), "harness error: {}", ctx());
    assert!(r["aborted"].is_null(), "aborted: {}", ctx());
    assert_eq!(r["errors"], json!([]), "player errors: {}", ctx());
    assert!(r["videoError"].is_null(), "video.error: {}", ctx());
    assert!(
        r["videoData"] == true && r["audioData"] == true,
        "video and audio SourceBuffers must get data: {}",
        ctx()
    );
    // dash.js reports BCP 47 normalised ("fr"), hls.js the playlist's "fra".
    let langs: Vec<&str> = r["audioTracks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["lang"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        matches!(langs[..], ["eng" | "en", "fra" | "fr"]),
        "audio tracks {langs:?}: {}",
        ctx()
    );
    // 20 s; hls.js shows the video's 80 ms composition delay (20.08 s).
    let duration = r["duration"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (duration - 20.0).abs() < 0.25,
        "duration {duration}: {}",
        ctx()
    );

    // Plays from 0.
    assert!(time_after(r, 1) > 1.0, "did not play past 1 s: {}", ctx());
    assert_eq!(after_step(r, 0)["paused"], false, "{}", ctx());
    // Seeks to 10 s and goes on from there.
    let (seeked, later) = (time_after(r, 2), time_after(r, 3));
    assert!(
        seeked >= 10.0 - 0.05,
        "seek to 10 s gave {seeked}: {}",
        ctx()
    );
    assert!(
        later > seeked + 0.5,
        "not playing after the seek ({seeked} then {later}): {}",
        ctx()
    );
    // Switches from the first audio track to the second, loads its segments
    // and goes on playing.
    let end = time_after(r, 5);
    assert_eq!(after_step(r, 3)["audioTrack"], 0, "{}", ctx());
    assert_eq!(r["activeAudioTrack"], 1, "active audio track: {}", ctx());
    assert_eq!(after_step(r, 5)["audioTrack"], 1, "{}", ctx());
    assert_eq!(
        r["lastAudioTrackLoaded"],
        1,
        "audio loaded after the switch: {}",
        ctx()
    );
    assert!(
        end > later + 1.0,
        "not playing after the audio switch ({later} then {end}): {}",
        ctx()
    );
}

fn ffmpeg(dir: &Path, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-y", "-i"])
        .arg(media("two_audio.mp4"))
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
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

    for (kind, url) in [
        ("hls", format!("{base}/hls/master.m3u8")),
        ("dash", format!("{base}/dash/manifest.mpd")),
    ] {
        let started = Instant::now();
        let r = run_player(&page_base, kind, &url, play_seek_switch());
        println!(
            "{kind} ({:.1} s): {}",
            started.elapsed().as_secs_f64(),
            serde_json::to_string(&r).unwrap()
        );
        check_play_seek_switch(kind, &r);
    }

    // And the harness sees a player fail: a manifest that is not there.
    for (kind, url) in [
        ("hls", format!("{base}/hls/missing.m3u8")),
        ("dash", format!("{base}/dash/missing.mpd")),
    ] {
        let started = Instant::now();
        let r = run_player(&page_base, kind, &url, json!([{"play": true}, {"wait": 1}]));
        println!(
            "{kind}, 404 ({:.1} s): errors {}, aborted {}",
            started.elapsed().as_secs_f64(),
            r["errors"],
            r["aborted"]
        );
        let errors = r["errors"].as_array().map_or(0, Vec::len);
        assert!(errors > 0, "{kind}: no error for {url}: {r:#}");
        assert!(r["aborted"].is_string(), "{kind}: ran on: {r:#}");
        assert_eq!(r["videoData"], false, "{kind}: {r:#}");
    }
}

/// nginx in front of a pool as conf-examples/nginx.conf routes HLS/DASH
/// (PATH_INFO split after the film or the URL set), with the players'
/// page at /players/.
fn serve_pool_with_players(
    nginx: &Path,
    conf_dir: &Path,
    root: &Path,
    socket: &Path,
    port: u16,
) -> Stop {
    let server = format!(
        "root {root};
  location /players/ {{ alias {players}/; }}
  location ~ \\.(mp4|urlset)/ {{
    include /etc/nginx/fastcgi_params;
    fastcgi_split_path_info ^(.+\\.(?:mp4|urlset))(/.+)$;
    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
    fastcgi_param PATH_INFO $fastcgi_path_info;
    fastcgi_buffering off;
    fastcgi_pass unix:{socket};
  }}",
        root = root.display(),
        players = players_dir().display(),
        socket = socket.display()
    );
    let conf = common::nginx_conf(conf_dir, port, "include /etc/nginx/mime.types;", &server);
    common::start_nginx(nginx, conf_dir, &conf, port)
}

/// A run without an error event in which both kinds of media arrived and
/// `currentTime` reached each `(step, at least)`.
fn check_clean(name: &str, r: &Value, reached: &[(i64, f64)]) {
    let ctx = || format!("{name}: {r:#}");
    assert!(
        r["harnessError"].is_null() && r["aborted"].is_null(),
        "{}",
        ctx()
    );
    assert_eq!(r["errors"], json!([]), "player errors: {}", ctx());
    assert!(r["videoError"].is_null(), "video.error: {}", ctx());
    assert!(
        r["videoData"] == true && r["audioData"] == true,
        "{}",
        ctx()
    );
    for &(step, t) in reached {
        let now = time_after(r, step);
        assert!(
            now >= t,
            "after step {step}: currentTime {now} < {t}: {}",
            ctx()
        );
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
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
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
    let pool = common::Pool::start(&["--workers", "2", "--socket-mode", "666"]);
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nginx = serve_pool_with_players(&nginx, conf_dir.path(), root.path(), &pool.socket, port);
    let base = format!("http://127.0.0.1:{port}");
    let page_base = format!("{base}/players/");
    let run = |kind: &str, url: &str, script: Value| {
        let started = Instant::now();
        let r = run_player(&page_base, kind, &format!("{base}{url}"), script);
        println!(
            "{kind} {url} ({:.1} s): errors {}, times {}",
            started.elapsed().as_secs_f64(),
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
        // Two audio languages: play, seek to the middle, switch audio.
        let r = run(
            kind,
            &format!("/two_audio.mp4/{manifest}"),
            play_seek_switch(),
        );
        check_play_seek_switch(&format!("{kind} two_audio"), &r);

        // Seek near the end of the whole film.
        let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"seek": 17.5}, {"wait": 1.5}]);
        let r = run(kind, &format!("/a.mp4/{manifest}"), script);
        check_clean(&format!("{kind} a.mp4"), &r, &[(1, 1.0), (3, 17.6)]);

        // A clip (from its key frame at 2 s to 13 s: 11 s), middle and near its end.
        let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"seek": 5}, {"wait": 1}, {"seek": 9.5}, {"wait": 1}]);
        let r = run(kind, &format!("/a.mp4/{manifest}?start=3.3&end=13"), script);
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
            let r = run(kind, "/hevc.mp4/master.m3u8", json!([{"play": true}]));
            let errors = r["errors"].to_string();
            assert!(
                errors.contains("manifestIncompatibleCodecsError")
                    && errors.contains("hvc1.1.6.L60.90,mp4a.40.2"),
                "hevc: {r:#}"
            );
            println!("not run: HEVC playback in Chromium (no HEVC decoder in Debian's build)");
        }

        // A URL set of two encodes: a forced switch up, then down.
        let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"level": 1}, {"wait": 3}, {"level": 0}, {"wait": 2}]);
        let r = run(
            kind,
            &format!("/set_,360,720,.mp4.urlset/{manifest}"),
            script,
        );
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

/// A 12 s film with two B-frames (x264 `-bf 2`: a composition delay of two
/// frames, which the source's edit list hides) and AAC (1024 samples of
/// encoder priming, hidden by the audio edit list), 25 fps, key frames every 2 s.
fn b_frame_film(dir: &Path, name: &str) {
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x180:rate=25:duration=12")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000:duration=12",
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
            "-bf",
            "2",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", name])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What ffmpeg's reader of `input` decodes: per stream type ("audio",
/// "video"), the first frame's presentation time (best effort) and the
/// frame count.
fn first_frames(input: &str) -> Vec<(String, f64, u64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_frames",
            "-show_entries",
        ])
        .arg("frame=media_type,best_effort_timestamp_time")
        .arg(input)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut by: Vec<(String, f64, u64)> = Vec::new();
    for f in v["frames"].as_array().into_iter().flatten() {
        let kind = f["media_type"].as_str().unwrap_or("").to_string();
        let t: f64 = f["best_effort_timestamp_time"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN);
        match by.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(e) => {
                e.1 = e.1.min(t);
                e.2 += 1;
            }
            None => by.push((kind, t, 1)),
        }
    }
    by.sort_by(|a, b| a.0.cmp(&b.0));
    by
}

/// Where a player's SourceBuffer of `kind` ("video", "audio") starts.
fn buffered_from(r: &Value, kind: &str) -> f64 {
    r["sourceBuffers"]
        .as_array()
        .and_then(|s| s.iter().find(|b| b["kind"] == kind))
        .and_then(|b| b["buffered"][0][0].as_f64())
        .unwrap_or_else(|| panic!("no buffered {kind}: {r:#}"))
}

/// Every reader presents the packaged film's first audio sample and first
/// video frame together (within one frame, 40 ms), the first frame at 0,
/// and ffmpeg's HLS and DASH readers decode the source's frame counts (audio:
/// or one more, the AAC priming frame the audio edit list hides, which they
/// decode). The init segments keep the source's edit lists (the B-frame
/// delay, the priming): Chromium's MP4 parser applies them under both hls.js
/// and dash.js, ffmpeg's readers too. Expressing video's delay as negative
/// `trun` composition offsets instead (no video edit list, the first frame
/// shown at `tfdt`) leaves both players at 0 ms but makes ffmpeg 5.1 show
/// every frame one frame late (its fragment reader adds the most negative
/// offset to each time: 61 ms between audio and video), which this fails on.
/// hls.js's own model of the first video fragment (`startPTS`, from `tfdt`
/// and the `trun`, without the edit list) says 0.08 s where Chromium buffers
/// from 0: printed (the report's `firstPts`), not asserted.
#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver, has_ffmpeg)),
    ignore = "needs nginx, chromium, chromedriver, ffmpeg: apt-get install -y nginx chromium chromium-driver ffmpeg"
)]
fn players_start_audio_and_video_together() {
    let nginx = require_tool("nginx");
    require_tool("ffmpeg");
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b_frame_film(root.path(), "bf.mp4");
    let pool = common::Pool::start(&["--workers", "2", "--socket-mode", "666"]);
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nginx = serve_pool_with_players(&nginx, conf_dir.path(), root.path(), &pool.socket, port);
    let base = format!("http://127.0.0.1:{port}");
    const FRAME: f64 = 0.04;

    let source = first_frames(root.path().join("bf.mp4").to_str().unwrap());
    let counts = |v: &[(String, f64, u64)]| {
        v.iter()
            .map(|(k, _, n)| (k.clone(), *n))
            .collect::<Vec<_>>()
    };
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let url = format!("{base}/bf.mp4/{manifest}");
        let got = first_frames(&url);
        assert_eq!(got.len(), 2, "{url}: audio and video: {got:?}");
        let (audio, video) = (got[0].1, got[1].1);
        table.push(format!(
            "ffmpeg {manifest}: video {video:.4} audio {audio:.4} (audio - video {:+.1} ms), frames {:?} (source {:?})",
            (audio - video) * 1000.0,
            counts(&got),
            counts(&source)
        ));
        let frames_ok = (counts(&got).iter().zip(counts(&source)))
            .all(|((k, n), (_, m))| *n == m || (k == "audio" && *n == m + 1))
            && got.len() == source.len();
        if (audio - video).abs() > FRAME || video.abs() > FRAME / 2.0 || !frames_ok {
            failures.push(manifest.to_string());
        }
    }
    if players_installed() {
        let page_base = format!("{base}/players/");
        for (kind, manifest) in [("hls", "master.m3u8"), ("dash", "manifest.mpd")] {
            let url = format!("{base}/bf.mp4/{manifest}");
            let script = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}]);
            let r = run_player(&page_base, kind, &url, script);
            check_clean(kind, &r, &[(1, 1.0)]);
            let (video, audio) = (buffered_from(&r, "video"), buffered_from(&r, "audio"));
            table.push(format!(
                "{}: video from {video:.3} audio from {audio:.3} (audio - video {:+.1} ms), buffered {}, the player's first fragments {}",
                r["player"],
                (audio - video) * 1000.0,
                r["sourceBuffers"],
                r["firstPts"]
            ));
            if (audio - video).abs() > FRAME || video.abs() > FRAME / 2.0 {
                failures.push(kind.to_string());
            }
        }
    }
    for line in &table {
        println!("{line}");
    }
    assert!(
        failures.is_empty(),
        "out of sync: {failures:?}\n{}",
        table.join("\n")
    );
}
