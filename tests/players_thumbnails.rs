//! Seek-bar previews and trick play in Shaka Player (headless Chromium):
//! with `--thumbnail-interval 1 --thumbnail-tiles 5x2 --thumbnail-width 160`
//! the 20 s a.mp4 has 20 tiles of 160x90 in two 800x180 sprites, and Shaka,
//! from the MPD's DASH-IF thumbnail set and from the master playlist's
//! EXT-X-IMAGE-STREAM-INF (images.m3u8) alike, lists one image track and
//! gives, for a time in tile k, the sprite of that tile, its place in the
//! sprite, its size and [k, k+1) s; each sprite it names fetches from the
//! page as a JPEG of 800x180 whose tile there is a picture, not black.
//! With `--dash-trick-mode` (previews at their defaults: 10x1 tiles of
//! 160x90, one every 10 s), Shaka gives each variant's video a trick-mode
//! stream, the MPD's trick-mode adaptation set for DASH and the
//! EXT-X-I-FRAME-STREAM-INF playlist for HLS, and `trickPlay(4)` moves the
//! playhead on while it loads key-<n>-1.m4s segments; without the option
//! the MPD gives none, the master playlist still does. No player error in
//! any run.
//!
//! The page is tests/players/player.html; before its `runPlayer`, [`SETUP`]
//! keeps the Shaka player it makes, its error events and the URI of every
//! segment it loads; after it, [`QUERY`] asks that player.

mod common;
#[path = "players_common/mod.rs"]
mod players_common;

use common::{media, require_tool};
use players_common::*;
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Run in player.html before `runPlayer`: the Shaka player it loads is kept
/// as `window.shaka_`, its error events go to `window.shakaErrors_` and the
/// segments it loads (URI, stream id and type) to `window.segments_`.
const SETUP: &str = r#"
window.shakaErrors_ = [];
window.segments_ = [];
const load = shaka.Player.prototype.load;
shaka.Player.prototype.load = function (...a) {
  window.shaka_ = this;
  this.addEventListener('error', (e) => {
    const d = e.detail || {};
    window.shakaErrors_.push({code: d.code, severity: d.severity, category: d.category,
                              message: d.message || null, data: JSON.stringify(d.data)});
  });
  const T = shaka.net.NetworkingEngine.RequestType;
  this.getNetworkingEngine().registerResponseFilter((type, response, context) => {
    if (type !== T.SEGMENT || window.segments_.length > 500) return;
    const st = context && context.stream;
    window.segments_.push({uri: response.uri, stream: st ? st.id : null, type: st ? st.type : null});
  });
  return load.apply(this, a);
};
"#;

/// After `runPlayer`: `arguments[0]` the times to ask previews for,
/// `arguments[1]` whether to try `trickPlay(4)`. Reports the image tracks,
/// each time's thumbnail, each sprite named (fetched: status, type, first
/// bytes, decoded size, and each thumbnail's mean brightness there), the
/// manifest's variants with their trick-mode video, and the trick play.
const QUERY: &str = r#"
const [times, trick, done] = arguments;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const p = window.shaka_;
  if (!p) return {harnessError: 'runPlayer made no Shaka player'};
  const out = {};
  const imageTracks = () => p.getImageTracks().map((t) => ({id: t.id, type: t.type,
    mimeType: t.mimeType, codecs: t.codecs, width: t.width, height: t.height,
    tilesLayout: t.tilesLayout}));
  const tracks = p.getImageTracks();
  out.imageTracksBefore = imageTracks();
  out.thumbnails = [];
  for (const time of times) {
    const th = tracks.length ? await p.getThumbnails(tracks[0].id, time) : null;
    out.thumbnails.push(th && {time, uris: th.uris, positionX: th.positionX,
      positionY: th.positionY, width: th.width, height: th.height, startTime: th.startTime,
      duration: th.duration, imageWidth: th.imageWidth, imageHeight: th.imageHeight,
      sprite: th.sprite, mimeType: th.mimeType});
  }
  // Shaka's HLS image track has its layout (EXT-X-TILES) only while the
  // image playlist's segment index is open: getThumbnails opens it (for 5 s).
  out.imageTracks = imageTracks();
  out.sprites = {};
  for (const th of out.thumbnails) {
    if (!th || !th.uris.length) continue;
    const uri = th.uris[0];
    if (!out.sprites[uri]) {
      const s = out.sprites[uri] = {};
      try {
        const r = await fetch(uri);
        const bytes = new Uint8Array(await r.arrayBuffer());
        Object.assign(s, {status: r.status, type: r.headers.get('content-type'),
                          bytes: bytes.length, head: [...bytes.slice(0, 3)]});
        const bmp = await createImageBitmap(new Blob([bytes]));
        s.width = bmp.width;
        s.height = bmp.height;
        const canvas = document.createElement('canvas');
        canvas.width = bmp.width;
        canvas.height = bmp.height;
        s.ctx = canvas.getContext('2d');
        s.ctx.drawImage(bmp, 0, 0);
      } catch (e) {
        s.error = String(e);
      }
    }
    const s = out.sprites[uri];
    if (s.ctx && th.width > 0 && th.height > 0) {
      const px = s.ctx.getImageData(th.positionX, th.positionY, th.width, th.height).data;
      let sum = 0;
      for (let i = 0; i < px.length; i += 4) sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
      th.brightness = sum / (px.length / 4);
    }
  }
  for (const s of Object.values(out.sprites)) delete s.ctx;

  const stream = (s) => s && {id: s.id, type: s.type, mimeType: s.mimeType, codecs: s.codecs,
    width: s.width, height: s.height, bandwidth: s.bandwidth, originalId: s.originalId};
  const m = p.getManifest();
  out.variants = m.variants.map((v) => ({id: v.id, video: stream(v.video),
    trickModeVideo: v.video ? stream(v.video.trickModeVideo) : null}));
  out.imageStreams = m.imageStreams.map((s) => Object.assign(stream(s), {tilesLayout: s.tilesLayout}));
  out.variantTracks = p.getVariantTracks().map((t) => ({id: t.id, videoId: t.videoId,
    width: t.width, height: t.height, videoCodec: t.videoCodec, active: t.active}));

  if (trick) {
    const video = p.getMediaElement();
    const from = window.segments_.length;
    const t0 = video.currentTime;
    await video.play();
    p.trickPlay(4);
    await sleep(2500);
    out.trick = {from: t0, to: video.currentTime, rate: p.getPlaybackRate(),
                 playbackRate: video.playbackRate, segments: window.segments_.slice(from)};
    p.cancelTrickPlay();
    video.pause();
  }
  out.errors = window.shakaErrors_;
  return out;
})().then(done, (e) => done({harnessError: 'query threw: ' + (e && e.stack || e)}));
"#;

/// A Chromium session; on a loaded machine chromedriver has reset the
/// connection of its first `POST /session`, so a second try, said aloud.
fn browser() -> Browser {
    match catch_unwind(|| Browser::start("900,600")) {
        Ok(b) => b,
        Err(e) => {
            let why = (e.downcast_ref::<String>().cloned()).unwrap_or_default();
            println!("no Chromium session ({why}): once more");
            Browser::start("900,600")
        }
    }
}

/// One Shaka session on `url`: SETUP, runPlayer (plays past 1 s), QUERY.
fn session(base: &str, url: &str, times: &[f64], trick: bool) -> (Value, Value) {
    let b = browser();
    b.open(&format!("{base}/players/player.html"));
    b.cmd(
        "POST",
        "/execute/sync",
        Some(json!({"script": SETUP, "args": []})),
    );
    let steps = json!([{"play": true}, {"waitUntil": 1.0, "timeout": 15}, {"play": false}]);
    let args = json!(["shaka", url, steps, {"budget": 30}]);
    let report = b.cmd(
        "POST",
        "/execute/async",
        Some(json!({"script": RUN, "args": args})),
    )["value"]
        .clone();
    let query = b.cmd(
        "POST",
        "/execute/async",
        Some(json!({"script": QUERY, "args": [times, trick]})),
    )["value"]
        .clone();
    b.cmd("DELETE", "", None);
    assert!(report.is_object(), "runPlayer(shaka, {url}): {report}");
    (report, query)
}

/// The run played (past 1 s), and neither it nor the query had an error.
fn check_clean_run(name: &str, r: &Value, q: &Value) {
    assert!(
        r["harnessError"].is_null() && r["aborted"].is_null(),
        "{name}: {r:#}"
    );
    assert_eq!(r["errors"], json!([]), "{name}: player errors: {r:#}");
    assert!(r["videoError"].is_null(), "{name}: video.error: {r:#}");
    assert!(time_after(r, 1) >= 1.0, "{name}: did not play: {r:#}");
    assert!(q["harnessError"].is_null(), "{name}: {q:#}");
    assert_eq!(q["errors"], json!([]), "{name}: player errors: {q:#}");
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The previews of a film of 20 s, `tile` (w, h) tiles laid out `cols` x
/// `rows`, one every `interval` s: each time's thumbnail is its tile's, in
/// the sprite it names, a fetched JPEG of the sprite's size, and a picture.
fn check_previews(name: &str, q: &Value, times: &[f64], tiling: (u32, u32, u32, u32, f64)) {
    let (w, h, cols, rows, interval) = tiling;
    let ctx = || format!("{name}: {q:#}");
    let tracks = q["imageTracks"].as_array().expect("imageTracks");
    assert_eq!(tracks.len(), 1, "one image track: {}", ctx());
    let track = &tracks[0];
    assert_eq!(track["mimeType"], "image/jpeg", "{}", ctx());
    assert_eq!(track["tilesLayout"], format!("{cols}x{rows}"), "{}", ctx());
    assert_eq!(
        (f(&track["width"]), f(&track["height"])),
        (w as f64, h as f64),
        "the track's size is a tile's (Shaka, like Roku, reads EXT-X-IMAGE-STREAM-INF's \
         RESOLUTION as one tile's size and multiplies it by EXT-X-TILES' LAYOUT): {}",
        ctx()
    );
    let per_sprite = cols * rows;
    let (sprite_w, sprite_h) = (w * cols, h * rows);
    for (&time, th) in times
        .iter()
        .zip(q["thumbnails"].as_array().expect("thumbnails"))
    {
        let k = (time / interval).floor() as u32;
        let (n, i) = (k / per_sprite + 1, k % per_sprite);
        let at = |what: &str| format!("{name}: at {time} s (tile {k}) {what}: {th}");
        assert!(th.is_object(), "{}", at("no thumbnail"));
        let uris: Vec<&str> = th["uris"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            uris.len() == 1 && uris[0].ends_with(&format!("/a.mp4/tiles-{n}.jpg")),
            "{}",
            at(&format!("not tiles-{n}.jpg"))
        );
        assert_eq!(
            (f(&th["positionX"]), f(&th["positionY"])),
            (((i % cols) * w) as f64, ((i / cols) * h) as f64),
            "{}",
            at("position")
        );
        assert_eq!(
            (f(&th["width"]), f(&th["height"])),
            (w as f64, h as f64),
            "{}",
            at("size")
        );
        assert_eq!(
            (f(&th["imageWidth"]), f(&th["imageHeight"])),
            (sprite_w as f64, sprite_h as f64),
            "{}",
            at("sprite size")
        );
        let (start, duration) = (f(&th["startTime"]), f(&th["duration"]));
        assert!(
            (start - k as f64 * interval).abs() < 1e-3 && (duration - interval).abs() < 1e-3,
            "{}",
            at(&format!(
                "not [{}, {}) s",
                k as f64 * interval,
                (k + 1) as f64 * interval
            ))
        );
        let sprite = &q["sprites"][uris[0]];
        assert_eq!(sprite["status"], 200, "{}", at("fetched"));
        assert_eq!(sprite["type"], "image/jpeg", "{}", at("Content-Type"));
        assert_eq!(
            sprite["head"],
            json!([0xff, 0xd8, 0xff]),
            "{}",
            at("a JPEG")
        );
        assert_eq!(
            (f(&sprite["width"]), f(&sprite["height"])),
            (sprite_w as f64, sprite_h as f64),
            "{}",
            at(&format!("decoded size, {sprite}"))
        );
        // a.mp4 is colour bars: a black tile would be one past the end.
        assert!(
            f(&th["brightness"]) > 60.0,
            "{}",
            at("a picture, not black")
        );
    }
}

/// Every variant's video has a trick-mode stream of the same codec and size,
/// and trick play at 4x moved the playhead and loaded key frames.
fn check_trick_mode(name: &str, q: &Value) {
    let ctx = || format!("{name}: {q:#}");
    let variants = q["variants"].as_array().expect("variants");
    assert!(!variants.is_empty(), "{}", ctx());
    for v in variants {
        let (video, trick) = (&v["video"], &v["trickModeVideo"]);
        assert!(trick.is_object(), "no trickModeVideo: {}", ctx());
        assert_eq!(trick["type"], "video", "{}", ctx());
        assert_eq!(trick["codecs"], video["codecs"], "{}", ctx());
        assert_eq!(
            (&trick["width"], &trick["height"]),
            (&video["width"], &video["height"]),
            "{}",
            ctx()
        );
        assert_ne!(trick["id"], video["id"], "{}", ctx());
    }
    let t = &q["trick"];
    let (from, to) = (f(&t["from"]), f(&t["to"]));
    assert_eq!(t["rate"], 4, "{}", ctx());
    assert!(to > from + 3.0, "trick play {from} -> {to} s: {}", ctx());
    let keys = (t["segments"].as_array().into_iter().flatten())
        .filter(|s| s["uri"].as_str().is_some_and(|u| u.contains("/key-")))
        .count();
    assert!(keys > 0, "no key-<n> segment in trick play: {}", ctx());
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver)),
    ignore = "needs nginx, chromium, chromedriver: apt-get install -y nginx chromium chromium-driver"
)]
fn shaka_shows_previews_and_trick_play() {
    let nginx = require_tool("nginx");
    if !shaka_player_installed() {
        return;
    }
    let root = films_root();
    std::fs::copy(media("a.mp4"), root.path().join("a.mp4")).unwrap();
    let tiles = serve_films_with(
        &nginx,
        root.path(),
        "2",
        &[
            "--thumbnail-interval",
            "1",
            "--thumbnail-tiles",
            "5x2",
            "--thumbnail-width",
            "160",
        ],
    );
    let trick = serve_films_with(&nginx, root.path(), "2", &["--dash-trick-mode"]);

    // Tiles 0, 3, 7 (second row), 12 (second sprite), 19 (its last).
    let times = [0.5, 3.2, 7.9, 12.5, 19.5];
    // The defaults: 10x1 tiles of 160x90, one every 10 s.
    let default_times = [5.0, 15.0];
    let mut runs = Vec::new();
    for manifest in ["manifest.mpd", "master.m3u8"] {
        runs.push((&tiles.base, manifest, &times[..], false));
        runs.push((&trick.base, manifest, &default_times[..], true));
    }
    let jobs = (runs.iter())
        .map(|&(base, manifest, times, trick)| {
            let what = if trick { "trick mode" } else { "previews" };
            (format!("{what} {manifest}"), (base, manifest, times, trick))
        })
        .collect();
    let results = run_parallel(jobs, |(base, manifest, times, trick)| {
        let url = format!("{base}/a.mp4/{manifest}");
        session(base, &url, times, trick)
    });

    let mut failed = Vec::new();
    for ((_, manifest, times, trick), ((r, q), took)) in runs.iter().zip(results) {
        let name = &format!(
            "{} {manifest}",
            if *trick { "trick mode" } else { "previews" }
        );
        println!(
            "{name} ({}, {took:.1?}): image track {} (before any thumbnail: {}); thumbnails {}; sprites {}; \
             trick-mode videos {}; trick play {}; errors {} {}",
            r["player"],
            q["imageTracks"],
            q["imageTracksBefore"],
            q["thumbnails"],
            q["sprites"],
            json!(
                (q["variants"].as_array().into_iter().flatten())
                    .map(|v| &v["trickModeVideo"])
                    .collect::<Vec<_>>()
            ),
            q["trick"],
            r["errors"],
            q["errors"],
        );
        // Each check on its own: a failed one does not hide the others.
        let mut attempt = |check: &dyn Fn()| {
            if let Err(e) = catch_unwind(AssertUnwindSafe(check)) {
                let why = (e.downcast_ref::<String>().cloned())
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failed.push(why);
            }
        };
        attempt(&|| check_clean_run(name, &r, &q));
        if *trick {
            attempt(&|| check_trick_mode(name, &q));
            attempt(&|| check_previews(name, &q, times, (160, 90, 10, 1, 10.0)));
        } else {
            attempt(&|| check_previews(name, &q, times, (160, 90, 5, 2, 1.0)));
            // Without --dash-trick-mode the MPD has no trick-mode set; the
            // master playlist always lists its I-frame playlist.
            let dash = manifest.ends_with(".mpd");
            attempt(&|| {
                for v in q["variants"].as_array().into_iter().flatten() {
                    assert_eq!(
                        v["trickModeVideo"].is_object(),
                        !dash,
                        "{name}: trickModeVideo: {q:#}"
                    );
                }
            });
        }
    }
    assert!(
        failed.is_empty(),
        "{} check(s) of {} runs failed:\n{}",
        failed.len(),
        runs.len(),
        failed.join("\n\n")
    );
}
