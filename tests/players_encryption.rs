//! Encrypted streams (`--keys`, issue 22) played in headless Chromium:
//! Shaka Player and dash.js play cenc and cbcs DASH with Clear Key, Shaka
//! plays cbcs HLS whose `identity` key it fetches from the film's
//! `encryption.key`, and hls.js plays AES-128 HLS, decrypting it itself. Each
//! plays past 2 s, seeks to 10 s, switches to the second audio language and
//! plays on, decoding frames throughout, with no player error; and Shaka with
//! a wrong key does not play, so the stream really is encrypted.
//!
//! The page is tests/players/player.html; before its `runPlayer`, [`SETUP`]
//! hands each player its keys and records the decoded frames as it plays.

mod common;
#[path = "players_common/mod.rs"]
mod players_common;

use common::{media, require_tool};
use players_common::*;
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};

const KEY: &str = "00112233445566778899aabbccddeeff";
const KID: &str = "0123456789abcdef0123456789abcdef";
/// KID and KEY in unpadded base64url, as W3C Clear Key (and dash.js) want them.
const KID_B64URL: &str = "ASNFZ4mrze8BI0VniavN7w";
const KEY_B64URL: &str = "ABEiM0RVZneImaq7zN3u_w";

/// Run in player.html before `runPlayer`: `arguments[0]` is Shaka's
/// `drm.clearKeys` (or null), `arguments[1]` dash.js's protection data (or
/// null), each set just before the player loads the manifest. Then
/// `window.frames_` gets [currentTime, totalVideoFrames] every 100 ms.
const SETUP: &str = r#"
const [shakaKeys, dashData] = arguments;
if (shakaKeys) {
  const load = shaka.Player.prototype.load;
  shaka.Player.prototype.load = function (...a) {
    this.configure({drm: {clearKeys: shakaKeys}});
    return load.apply(this, a);
  };
}
if (dashData) {
  const MediaPlayer = dashjs.MediaPlayer;
  dashjs.MediaPlayer = Object.assign(function (...a) {
    const factory = MediaPlayer.apply(this, a);
    return {create(...b) {
      const player = factory.create(...b);
      const initialize = player.initialize;
      player.initialize = function (...c) {
        player.setProtectionData(dashData);
        return initialize.apply(player, c);
      };
      return player;
    }};
  }, MediaPlayer);
}
window.frames_ = [];
setInterval(() => {
  const v = document.querySelector('video');
  if (v && window.frames_.length < 3000) {
    window.frames_.push([v.currentTime, v.getVideoPlaybackQuality().totalVideoFrames]);
  }
}, 100);
"#;

/// Plays: past 2.5 s (step 1), seek to 10 s (2), 2 s on (3), the second
/// audio track (4), 3 s on (5); the steps of play_seek_switch.
fn script() -> Value {
    json!([
        {"play": true},
        {"waitUntil": 2.5, "timeout": 20},
        {"seek": 10},
        {"wait": 2},
        {"audioTrack": 1},
        {"wait": 3},
    ])
}

/// One run of player.html's `runPlayer` with keys: its report, and the
/// decoded frames as [`SETUP`] recorded them.
fn play(
    base: &str,
    kind: &str,
    url: &str,
    keys: [Value; 2],
    steps: Value,
) -> (Value, Vec<[f64; 2]>) {
    let b = Browser::start("900,600");
    b.open(&format!("{base}/players/player.html"));
    b.cmd(
        "POST",
        "/execute/sync",
        Some(json!({"script": SETUP, "args": keys})),
    );
    let args = json!([kind, url, steps, {"budget": PLAYER_BUDGET_S}]);
    let report = b.cmd(
        "POST",
        "/execute/async",
        Some(json!({"script": RUN, "args": args})),
    )["value"]
        .clone();
    let frames = b.cmd(
        "POST",
        "/execute/sync",
        Some(json!({"script": "return window.frames_", "args": []})),
    );
    let frames = serde_json::from_value(frames["value"].clone()).unwrap_or_default();
    b.cmd("DELETE", "", None);
    assert!(report.is_object(), "runPlayer({kind}, {url}): {report}");
    (report, frames)
}

/// Frames decoded when currentTime first reached `t` (0 if it never did).
fn frames_at(frames: &[[f64; 2]], t: f64) -> f64 {
    frames
        .iter()
        .find(|f| f[0] >= t - 0.05)
        .map_or(0.0, |f| f[1])
}

/// What a run shows, on one line (a step it never reached: NaN, null).
fn summary(name: &str, r: &Value, frames: &[[f64; 2]]) -> String {
    let sample = |step: i64| {
        r["samples"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["step"].as_i64() == Some(step)))
            .unwrap_or(&Value::Null)
    };
    let at = |step| sample(step)["currentTime"].as_f64().unwrap_or(f64::NAN);
    format!(
        "{name} ({}): currentTime {:.2} / {:.2} / {:.2} after play, seek, switch; frames {} / {} / {}; \
         audio {} -> {} (loaded {}); errors {}, video.error {}, aborted {}",
        r["player"].as_str().unwrap_or("?"),
        at(1),
        at(3),
        at(5),
        frames_at(frames, at(1)),
        frames_at(frames, at(3)),
        r["decoded"]["frames"],
        sample(3)["audioTrack"],
        r["activeAudioTrack"],
        r["lastAudioTrackLoaded"],
        r["errors"],
        r["videoError"],
        r["aborted"],
    )
}

/// A good run: play_seek_switch's checks, past 2 s, and video frames decoded
/// by then and more after the seek and after the switch.
fn check(name: &str, r: &Value, frames: &[[f64; 2]]) {
    check_play_seek_switch(name, r);
    let (t1, t3) = (time_after(r, 1), time_after(r, 3));
    assert!(t1 > 2.0, "{name}: did not play past 2 s: {r:#}");
    let (f1, f3) = (frames_at(frames, t1), frames_at(frames, t3));
    let f5 = r["decoded"]["frames"].as_f64().unwrap_or(0.0);
    assert!(
        f1 > 0.0 && f3 > f1 && f5 > f3,
        "{name}: decoded frames {f1} at {t1} s, {f3} at {t3} s, {f5} at the end: {frames:?}"
    );
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver)),
    ignore = "needs nginx, chromium, chromedriver: apt-get install -y nginx chromium chromium-driver"
)]
fn players_play_encrypted_streams() {
    let nginx = require_tool("nginx");
    if !players_installed() || !shaka_player_installed() {
        return;
    }
    let root = films_root();
    let films = ["dash-cenc", "dash-cbcs", "hls-cbcs", "hls-aes"];
    for film in films {
        std::fs::copy(
            media("two_audio.mp4"),
            root.path().join(format!("{film}.mp4")),
        )
        .unwrap();
    }
    let keys = root.path().join("keys");
    std::fs::write(
        &keys,
        format!(
            "dash-cenc.mp4 cenc {KID} {KEY}\n\
             dash-cbcs.mp4 cbcs {KID} {KEY}\n\
             hls-cbcs.mp4 cbcs {KID} {KEY} serve-key=yes\n\
             hls-aes.mp4 aes-128 {KID} {KEY}\n"
        ),
    )
    .unwrap();
    let root_dir = root.path().canonicalize().unwrap();
    let served = serve_films_with(
        &nginx,
        &root_dir,
        "2",
        &[
            "--root",
            root_dir.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
    );
    let base = served.base.clone();
    let port: u16 = base[base.rfind(':').unwrap() + 1..].parse().unwrap();

    // Each film is announced encrypted as its scheme says (else the players
    // would prove nothing, playing it clear).
    let kid = "cenc:default_KID=\"01234567-89ab-cdef-0123-456789abcdef\"";
    for (path, wants) in [
        (
            "dash-cenc.mp4/manifest.mpd",
            &format!(r#"value="cenc" {kid}"#) as &str,
        ),
        (
            "dash-cbcs.mp4/manifest.mpd",
            &format!(r#"value="cbcs" {kid}"#),
        ),
        (
            "hls-cbcs.mp4/index-1.m3u8",
            r#"METHOD=SAMPLE-AES,URI="encryption.key",KEYFORMAT="identity""#,
        ),
        (
            "hls-aes.mp4/index-1.m3u8",
            r#"METHOD=AES-128,URI="encryption.key""#,
        ),
    ] {
        let got = common::dev_http::get(port, &format!("/{path}"));
        let text = got.text();
        assert!(
            got.status == 200 && text.contains(wants),
            "{path}: {}\n{text}",
            got.status
        );
    }

    let shaka = [json!({ KID: KEY }), Value::Null];
    let dash = [
        Value::Null,
        json!({"org.w3.clearkey": {"clearkeys": { KID_B64URL: KEY_B64URL }}}),
    ];
    let none = [Value::Null, Value::Null];
    let cases = [
        ("shaka", "dash-cenc.mp4/manifest.mpd", &shaka),
        ("shaka", "dash-cbcs.mp4/manifest.mpd", &shaka),
        ("dash", "dash-cenc.mp4/manifest.mpd", &dash),
        ("dash", "dash-cbcs.mp4/manifest.mpd", &dash),
        ("shaka", "hls-cbcs.mp4/master.m3u8", &none),
        ("hls", "hls-aes.mp4/master.m3u8", &none),
    ];
    let mut jobs = Vec::new();
    for (kind, path, keys) in cases {
        let url = format!("{base}/{path}");
        jobs.push((
            format!("{kind} {path}"),
            (kind, url, keys.clone(), script()),
        ));
    }
    // A wrong key (the right key id): no frames, or an error.
    let wrong = json!({ KID: "ffeeddccbbaa99887766554433221100" });
    let url = format!("{base}/dash-cenc.mp4/manifest.mpd");
    let steps = json!([{"play": true}, {"waitUntil": 2.5, "timeout": 10}]);
    jobs.push((
        "shaka dash-cenc, wrong key".into(),
        ("shaka", url, [wrong, Value::Null], steps),
    ));
    // The runs are independent: played RUNS_AT_ONCE at a time, then
    // checked in order.
    let mut runs = run_parallel(jobs, |(kind, url, keys, steps)| {
        play(&base, kind, &url, keys, steps)
    })
    .into_iter()
    .map(|(run, _)| run);

    let mut failed = Vec::new();
    for ((kind, path, _), (r, frames)) in cases.iter().zip(runs.by_ref()) {
        let name = &format!("{kind} {path}");
        println!("{}", summary(name, &r, &frames));
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(name, &r, &frames))) {
            let why = e.downcast_ref::<String>().cloned().unwrap_or_default();
            failed.push(format!("{name}: player errors {}: {why}", r["errors"]));
        }
    }

    let (r, frames) = runs.next().expect("the wrong key's run");
    let errors = r["errors"].as_array().map_or(0, Vec::len);
    let decoded = r["decoded"]["frames"].as_f64().unwrap_or(0.0);
    println!(
        "shaka dash-cenc, wrong key: currentTime {:.2}, frames {decoded}, errors {}, video.error {}, aborted {}",
        frames.last().map_or(0.0, |f| f[0]),
        r["errors"],
        r["videoError"],
        r["aborted"]
    );
    if errors == 0 && r["videoError"].is_null() && decoded > 0.0 {
        failed.push(format!(
            "shaka dash-cenc with a wrong key played: {frames:?} {r:#}"
        ));
    }
    assert!(
        failed.is_empty(),
        "{} case(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}
