//! Browsers are the real clients: headless Chromium (driven by chromedriver)
//! plays clips through nginx and through the development listener. Each must
//! load, play (currentTime advances, no error) and report the duration asked
//! for. Screenshots of the page are kept in the cargo target dir
//! (`target/browser-*.png`, or under CARGO_TARGET_DIR).

mod common;

use common::webdriver::base64_decode;
use common::{Pool, media, require_tool};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PLAY: &str = r#"
const [srcs, done] = [arguments[0], arguments[arguments.length - 1]];
const results = [];
let pending = srcs.length;
for (const src of srcs) {
  const v = document.createElement('video');
  v.muted = true; v.width = 160; v.controls = true; v.src = src;
  document.body.appendChild(v);
  const r = {src, duration: null, currentTime: 0, error: null};
  results.push(r);
  let finished = false;
  const finish = () => { if (!finished) { finished = true; r.currentTime = v.currentTime; r.duration = v.duration; if (--pending === 0) done(results); } };
  v.addEventListener('error', () => { r.error = v.error ? v.error.code + ' ' + v.error.message : 'error'; finish(); });
  v.addEventListener('timeupdate', () => { if (v.currentTime > 0.5) finish(); });
  setTimeout(finish, 12000);
  v.play().catch(e => { r.error = 'play: ' + e; finish(); });
}
"#;

/// Plays every clip in one page at `page_url`; returns (src, duration, currentTime, error).
fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    common::webdriver::wd(port, method, path, body, Duration::from_secs(60))
}

fn play_all(
    driver: u16,
    page_url: &str,
    srcs: &[String],
    shot: &Path,
) -> Vec<(String, f64, f64, Option<String>)> {
    let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=900,600"]
    }}}});
    let session = wd(driver, "POST", "/session", Some(caps));
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    wd(
        driver,
        "POST",
        &format!("/session/{id}/timeouts"),
        Some(json!({"script": 30000})),
    );
    wd(
        driver,
        "POST",
        &format!("/session/{id}/url"),
        Some(json!({"url": page_url})),
    );
    let out = wd(
        driver,
        "POST",
        &format!("/session/{id}/execute/async"),
        Some(json!({"script": PLAY, "args": [srcs]})),
    );
    let shot_b64 = wd(driver, "GET", &format!("/session/{id}/screenshot"), None);
    if let Some(b64) = shot_b64["value"].as_str() {
        let png = base64_decode(b64);
        let _ = std::fs::write(shot, png);
    }
    wd(driver, "DELETE", &format!("/session/{id}"), None);
    out["value"]
        .as_array()
        .unwrap_or_else(|| panic!("script result: {out}"))
        .iter()
        .map(|r| {
            (
                r["src"].as_str().unwrap_or("").to_string(),
                r["duration"].as_f64().unwrap_or(f64::NAN),
                r["currentTime"].as_f64().unwrap_or(0.0),
                r["error"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn check(results: &[(String, f64, f64, Option<String>)], expected: &[f64]) {
    assert_eq!(results.len(), expected.len());
    for ((src, duration, t, err), want) in results.iter().zip(expected) {
        assert!(err.is_none(), "{src}: {err:?}");
        assert!(*t > 0.5, "{src}: did not play (currentTime {t})");
        assert!(
            (duration - want).abs() <= 0.05,
            "{src}: duration {duration}, want {want}"
        );
    }
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_chromium, has_chromedriver)),
    ignore = "needs nginx, chromium, chromedriver: apt-get install -y nginx chromium chromium-driver"
)]
fn chromium_plays_clips_through_nginx_and_the_dev_listener() {
    let (nginx, driver_bin, _) = (
        require_tool("nginx"),
        require_tool("chromedriver"),
        require_tool("chromium"),
    );
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for f in ["a.mp4", "audio.m4a"] {
        std::fs::copy(media(f), root.path().join(f)).unwrap();
    }
    std::fs::write(
        root.path().join("page.html"),
        "<!doctype html><title>clips</title><body></body>",
    )
    .unwrap();
    let clips = [
        "a.mp4?start=10.5&end=18",
        "a.mp4?start=12",
        "a.mp4",
        "audio.m4a?start=3&end=9",
    ];
    let expected = [7.5, 8.0, 20.0, 6.0];

    // Through nginx (conf-examples/nginx.conf's location) to the pool.
    let pool = Pool::start(&["--workers", "1", "--socket-mode", "666"]);
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = common::free_port();
    let server = format!(
        "root {};\n  location ~ \\.(mp4|m4a)$ {{ include /etc/nginx/fastcgi_params;\n\
         fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
         fastcgi_buffering off; fastcgi_keep_conn on; fastcgi_pass unix:{}; }}",
        root.path().display(),
        pool.socket.display()
    );
    let conf = common::nginx_conf(dir.path(), port, "include /etc/nginx/mime.types;", &server);
    let _nginx = common::start_nginx(&nginx, dir.path(), &conf, port);

    // The development listener, serving the same folder.
    let dev_port = common::free_port();
    let _dev = common::Stop(
        Command::new(common::BIN)
            .args([
                "--http",
                &format!("127.0.0.1:{dev_port}"),
                "--listen",
                &format!("unix:{d}/dev.sock"),
            ])
            .arg("--root")
            .arg(root.path())
            .args(["--workers", "1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_port(dev_port);

    let driver_port = common::free_port();
    let _driver = common::Stop(
        Command::new(driver_bin)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_port(driver_port);
    // The cargo target dir (CARGO_TARGET_DIR if set): CARGO_TARGET_TMPDIR is its tmp/.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target dir>/tmp");
    let _ = std::fs::create_dir_all(target);

    let via_nginx: Vec<String> = clips
        .iter()
        .map(|c| format!("http://127.0.0.1:{port}/{c}"))
        .collect();
    let r = play_all(
        driver_port,
        &format!("http://127.0.0.1:{port}/page.html"),
        &via_nginx,
        &target.join("browser-nginx.png"),
    );
    check(&r, &expected);

    let via_dev: Vec<String> = clips
        .iter()
        .map(|c| format!("http://127.0.0.1:{dev_port}/{c}"))
        .collect();
    let page = format!("file://{}", root.path().join("page.html").display());
    let r = play_all(
        driver_port,
        &page,
        &via_dev,
        &target.join("browser-dev-listener.png"),
    );
    check(&r, &expected);
}
