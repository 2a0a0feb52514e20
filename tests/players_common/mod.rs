//! What the tests/players_common_*.rs share.
#![allow(dead_code, unused_imports)]

pub mod demo;

use super::common::webdriver::base64_decode;
use super::common::{Stop, free_port, media, require_tool, wait_port};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest one player run may take in the page (player.html's budget);
/// WebDriver's script timeout is a little longer, the socket's longer still.
pub const PLAYER_BUDGET_S: u64 = 55;
pub const SCRIPT_TIMEOUT_S: u64 = 60;

pub fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    super::common::webdriver::wd(
        port,
        method,
        path,
        body,
        Duration::from_secs(SCRIPT_TIMEOUT_S + 20),
    )
}

/// A WebDriver error answer (`{"value": {"error": ...}}`) as a panic.
pub fn wd_ok(what: &str, answer: Value) -> Value {
    if let Some(err) = answer["value"]["error"].as_str() {
        panic!(
            "WebDriver {what}: {err}: {}",
            answer["value"]["message"].as_str().unwrap_or("")
        );
    }
    answer
}

/// Calls the page's `runPlayer` and hands its report (or its failure) to WebDriver.
pub const RUN: &str = r#"
const done = arguments[arguments.length - 1];
if (typeof window.runPlayer !== 'function') {
  done({harnessError: 'player.html did not define runPlayer'});
} else {
  window.runPlayer(arguments[0], arguments[1], arguments[2], arguments[3])
    .then(done, e => done({harnessError: 'runPlayer threw: ' + (e && e.stack || e)}));
}
"#;

/// A headless Chromium session under chromedriver (both stopped when this
/// is dropped).
pub struct Browser {
    pub driver_port: u16,
    pub id: String,
    _driver: Stop,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A session with a window of `size` ("900,600"), autoplay allowed.
    pub fn start(size: &str) -> Browser {
        let driver_bin = require_tool("chromedriver");
        require_tool("chromium");
        let profile = tempfile::tempdir().expect("a profile dir");
        let driver_port = free_port();
        let driver = Stop(
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
                     "--autoplay-policy=no-user-gesture-required", format!("--window-size={size}"),
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
        Browser {
            driver_port,
            id,
            _driver: driver,
            _profile: profile,
        }
    }

    /// A WebDriver command of this session (`what` after `/session/<id>`).
    pub fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{what}", self.id);
        wd_ok(what, wd(self.driver_port, method, &path, body))
    }

    /// Loads `page` (player.html's URL) with the suite's script and page
    /// load timeouts.
    pub fn open(&self, page: &str) {
        self.cmd(
            "POST",
            "/timeouts",
            Some(json!({"script": SCRIPT_TIMEOUT_S * 1000, "pageLoad": 30000})),
        );
        self.cmd("POST", "/url", Some(json!({ "url": page })));
    }
}

/// Plays `url` with `kind` ("hls": hls.js, "dash": dash.js) in headless
/// Chromium and runs `script` (a JSON array of steps, see player.html) on it.
/// `page_base` is the URL of the folder serving tests/players/ (player.html and
/// node_modules/), on the media's origin, e.g. `http://127.0.0.1:PORT/players/`.
/// Starts its own chromedriver with a fresh profile, and returns the page's
/// report; a screenshot of the page at the end goes to
/// `<cargo target dir>/players-<kind>-<url's last segment>.png`. Bounded: the
/// page gives up after 55 s, WebDriver after 60 s.
pub fn run_player(page_base: &str, kind: &str, url: &str, script: Value) -> Value {
    let browser = Browser::start("900,600");
    let (driver_port, id) = (browser.driver_port, browser.id.clone());
    browser.open(&format!("{}/player.html", page_base.trim_end_matches('/')));
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

/// How many player runs [`run_parallel`] has going at once in a test binary
/// (across its tests, which run in parallel too): each is a Chromium playing
/// in real time, mostly waiting but decoding; on two cores, six at once made
/// hls.js stall on a full buffer.
pub const RUNS_AT_ONCE: usize = 3;

/// The runs going in this binary, and a wake-up when one ends.
static RUNNING: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// One of [`RUNS_AT_ONCE`] places, given back when dropped.
struct Place;

impl Place {
    fn take() -> Place {
        let (count, ended) = &RUNNING;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= RUNS_AT_ONCE {
            n = ended.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Place
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let (count, ended) = &RUNNING;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        ended.notify_one();
    }
}

/// `run` on each job, at most [`RUNS_AT_ONCE`] at a time in the binary, taken
/// in order from one queue: the results in the jobs' order, each with how
/// long its run took. Each job has a name; a run that panics does not stop
/// the others, and once all have finished one panic names every failed run
/// and why.
pub fn run_parallel<J: Send, R: Send>(
    jobs: Vec<(String, J)>,
    run: impl Fn(J) -> R + Sync,
) -> Vec<(R, Duration)> {
    type Outcome<R> = std::thread::Result<(R, Duration)>;
    let names: Vec<String> = jobs.iter().map(|(name, _)| name.clone()).collect();
    let queue = std::sync::Mutex::new(jobs.into_iter().map(|(_, j)| j).enumerate());
    let outcomes: std::sync::Mutex<Vec<Option<Outcome<R>>>> =
        std::sync::Mutex::new(names.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..RUNS_AT_ONCE.min(names.len()) {
            s.spawn(|| {
                loop {
                    let _place = Place::take();
                    // The queue's guard is dropped before the run.
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, job)) = next else { break };
                    let started = Instant::now();
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(job)))
                            .map(|r| (r, started.elapsed()));
                    outcomes.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (name, outcome) in names.iter().zip(outcomes) {
        match outcome {
            Some(Ok(r)) => results.push(r),
            Some(Err(panic)) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failed.push(format!("{name}: {why}"));
            }
            None => failed.push(format!("{name}: not run")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} player runs failed:\n{}",
        failed.len(),
        names.len(),
        failed.join("\n\n")
    );
    results
}

/// [`run_player`] on each `(kind, url, script)`, [`RUNS_AT_ONCE`] at a time:
/// the reports in the runs' order (see [`run_parallel`]).
pub fn run_players(page_base: &str, runs: Vec<(String, String, Value)>) -> Vec<Value> {
    let jobs = runs
        .into_iter()
        .map(|(kind, url, script)| (format!("{kind} {url}"), (kind, url, script)))
        .collect();
    run_parallel(jobs, |(kind, url, script)| {
        run_player(page_base, &kind, &url, script)
    })
    .into_iter()
    .map(|(r, _)| r)
    .collect()
}

/// tests/players/, served as the page base.
pub fn players_dir() -> std::path::PathBuf {
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
    let conf = super::common::nginx_conf(
        conf_dir,
        port,
        "include /etc/nginx/mime.types;\n types { application/dash+xml mpd; video/iso.segment m4s; }",
        &server,
    );
    super::common::start_nginx(nginx, conf_dir, &conf, port)
}

/// `samples[i]` of a report: the state after script step `i` (the first
/// sample, step -1, is the state before the script).
pub fn after_step(report: &Value, step: i64) -> &Value {
    report["samples"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["step"].as_i64() == Some(step)))
        .unwrap_or_else(|| panic!("no sample after step {step}: {report:#}"))
}

pub fn time_after(report: &Value, step: i64) -> f64 {
    after_step(report, step)["currentTime"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// The script both players run on the 20 s two_audio.mp4 packagings, and what
/// a good run of it shows.
pub fn play_seek_switch() -> Value {
    json!([
        {"play": true},             // 0
        {"waitUntil": 1.5, "timeout": 15}, // 1
        {"seek": 10},               // 2
        {"wait": 2},                // 3
        {"audioTrack": 1},          // 4
        {"wait": 3},                // 5
    ])
}

pub fn check_play_seek_switch(name: &str, r: &Value) {
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

pub fn ffmpeg(dir: &Path, args: &[&str]) {
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

/// nginx in front of a pool as conf-examples/nginx.conf routes HLS/DASH
/// (PATH_INFO split after the film or the URL set), with the players'
/// page at /players/.
pub fn serve_pool_with_players(
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
    let conf = super::common::nginx_conf(conf_dir, port, "include /etc/nginx/mime.types;", &server);
    super::common::start_nginx(nginx, conf_dir, &conf, port)
}

/// A run without an error event in which both kinds of media arrived and
/// `currentTime` reached each `(step, at least)`.
pub fn check_clean(name: &str, r: &Value, reached: &[(i64, f64)]) {
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

/// Whether Shaka Player is in tests/players/node_modules (players_installed
/// looks for hls.js and dash.js only): a node_modules from before it was
/// added fails under CI=true, and locally is skipped with a line saying so.
pub fn shaka_player_installed() -> bool {
    let js = players_dir().join("node_modules/shaka-player/dist/shaka-player.compiled.js");
    if js.is_file() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing: npm ci --prefix tests/players", js.display());
    }
    println!("Shaka Player not run: npm ci --prefix tests/players");
    false
}

/// WebVTT cue text as shown: the character references `&amp;`, `&lt;`,
/// `&gt;` decoded (some players keep them in `VTTCue.text`, some decode them).
pub fn cue_text(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The active cues (start, end, text as shown) of the video element's text
/// tracks in "showing" mode after script step `step` (player.html's
/// `{"subtitles": L}` reports them in every sample).
pub fn showing_cues(report: &Value, step: i64) -> Vec<(f64, f64, String)> {
    after_step(report, step)["textTracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["mode"] == "showing")
        .flat_map(|t| t["activeCues"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["start"].as_f64().unwrap_or(f64::NAN),
                c["end"].as_f64().unwrap_or(f64::NAN),
                cue_text(c["text"].as_str().unwrap_or("")),
            )
        })
        .collect()
}

/// A folder of films that nginx's workers may read.
pub fn films_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    root
}

/// A pool behind nginx with the players page, serving the films of a root.
pub struct Served {
    pub pool: super::common::Pool,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    _nginx: Stop,
    _conf: tempfile::TempDir,
}

/// Starts a pool of `workers` workers and nginx in front of it, serving
/// `root`'s films and the players page under `/players/`.
pub fn serve_films(nginx: &Path, root: &Path, workers: &str) -> Served {
    serve_films_with(nginx, root, workers, &[])
}

/// [`serve_films`] with more arguments for the pool (`--keys FILE`, ...).
pub fn serve_films_with(nginx: &Path, root: &Path, workers: &str, args: &[&str]) -> Served {
    let pool = super::common::Pool::start(
        &[&["--workers", workers, "--socket-mode", "666"], args].concat(),
    );
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let conf = tempfile::tempdir().unwrap();
    let port = free_port();
    let nginx = serve_pool_with_players(nginx, conf.path(), root, &pool.socket, port);
    Served {
        pool,
        base: format!("http://127.0.0.1:{port}"),
        _nginx: nginx,
        _conf: conf,
    }
}
