//! The demo page (`--http`) in headless Chromium, driven by chromedriver:
//! every film listed as text, and one played progressive (with a window),
//! with hls.js and with dash.js. Shared by tests/demo_page.rs and the
//! Debian package's test (the installed binary).

use serde_json::{Value, json};
use std::path::Path;

/// Waits for the page's list, then says what it shows.
const LISTED: &str = r#"
const done = arguments[arguments.length - 1];
const until = Date.now() + 20000;
(function look() {
  if (window.demo && window.demo.ready) {
    done({
      names: [...document.querySelectorAll('#films button')].map(b => b.textContent),
      listing: document.getElementById('listing').textContent,
      markup: document.querySelectorAll('#films img, #films script').length,
      pwned: window.pwned === 1,
    });
  } else if (Date.now() > until) {
    done({error: 'the list never came'});
  } else {
    setTimeout(look, 100);
  }
})();
"#;

/// Chooses `arguments[0]` in the list, fills the window, presses the
/// button of mode `arguments[1]`, and waits until the video has played past
/// 2.5 s (or an error, or 40 s).
const PLAY: &str = r#"
const [film, mode, start, end, done] = arguments;
const until = Date.now() + 40000;
const video = document.getElementById('video');
const report = (extra) => done(Object.assign({
  currentTime: video.currentTime, duration: video.duration, paused: video.paused,
  videoError: video.error && video.error.message, errors: window.demo && window.demo.errors,
  url: window.demo && window.demo.url, src: video.currentSrc,
}, extra));
(function choose() {
  if (!(window.demo && window.demo.ready)) {
    if (Date.now() > until) return report({harness: 'the list never came'});
    return setTimeout(choose, 100);
  }
  const b = [...document.querySelectorAll('#films button')].find(b => b.textContent === film);
  if (!b) return report({harness: 'not listed: ' + film});
  b.click();
  document.getElementById('start').value = start;
  document.getElementById('end').value = end;
  document.getElementById('play-' + mode).click();
  (function watch() {
    if (video.currentTime > 2.5 || window.demo.errors.length > 0 || video.error) return report({});
    if (Date.now() > until) return report({harness: 'timed out'});
    setTimeout(watch, 100);
  })();
})();
"#;

/// The page of the pool on `port` lists exactly `names` (as text, no
/// markup) and plays `film` (a copy of tests/media/a.mp4, whose URL path
/// is `base`) three ways.
pub fn plays_three_ways(port: u16, film: &str, base: &str, names: &[&str]) {
    let page = format!("http://127.0.0.1:{port}/");
    let browser = super::Browser::start("1000,800");
    let cmd = |method: &str, what: &str, body: Option<Value>| browser.cmd(method, what, body);
    cmd(
        "POST",
        "/timeouts",
        Some(json!({"script": 60_000, "pageLoad": 30_000})),
    );
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target dir>/tmp")
        .to_path_buf();
    let shot = |name: &str| {
        let b64 = cmd("GET", "/screenshot", None)["value"]
            .as_str()
            .map(str::to_string);
        if let Some(b64) = b64 {
            let png = super::super::common::webdriver::base64_decode(&b64);
            let _ = std::fs::write(target.join(format!("demo-{name}.png")), png);
        }
    };

    // The list: every name as text, no markup from a name.
    cmd("POST", "/url", Some(json!({ "url": page })));
    let listed = cmd(
        "POST",
        "/execute/async",
        Some(json!({"script": LISTED, "args": []})),
    )["value"]
        .clone();
    shot("list");
    let mut want: Vec<&str> = names.to_vec();
    want.sort();
    assert_eq!(listed["names"], json!(want), "{listed}");
    assert_eq!(listed["markup"], 0, "{listed}");
    assert_eq!(listed["pwned"], false, "{listed}");

    for (mode, start, end, duration) in [
        ("progressive", "4", "14", 10.0),
        ("hls", "", "", 20.0),
        ("dash", "", "", 20.0),
    ] {
        cmd("POST", "/url", Some(json!({ "url": page })));
        let r = cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": PLAY, "args": [film, mode, start, end]})),
        )["value"]
            .clone();
        shot(mode);
        println!("{mode}: {r}");
        assert!(r["harness"].is_null(), "{mode}: {r}");
        assert_eq!(r["errors"], json!([]), "{mode}: {r}");
        assert!(r["videoError"].is_null(), "{mode}: {r}");
        let t = r["currentTime"].as_f64().unwrap_or(0.0);
        assert!(t > 2.0, "{mode}: currentTime {t}: {r}");
        let d = r["duration"].as_f64().unwrap_or(f64::NAN);
        assert!((d - duration).abs() < 0.5, "{mode}: duration {d}: {r}");
        let url = r["url"].as_str().unwrap_or("");
        let want_url = match mode {
            "progressive" => format!("{base}?start=4&end=14"),
            "hls" => format!("{base}/master.m3u8"),
            _ => format!("{base}/manifest.mpd"),
        };
        assert_eq!(url, want_url, "{mode}: {r}");
    }
    cmd("DELETE", "", None);
}
