//! scripts/try-s3.sh, the README's one-command trial of films in object
//! storage: run as a user runs it, in its own process group as a terminal
//! would, it prints URLs that answer the film from SeaweedFS (the window is
//! byte for byte what `cut` makes of the local film, and decodes; the HLS and
//! DASH presentations decode in ffmpeg), and Ctrl-C (SIGINT to the group)
//! stops the pool and SeaweedFS and removes its temp folder.

mod common;

use common::dev_http;
use common::*;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const REAL_SECRET: &str = "a-real-secret-never-shown";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/try-s3.sh")
}

/// The script and everything it started: one process group, as in a terminal.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], tmp: &Path) -> Running {
        let mut child = Command::new(require_tool("bash"))
            .arg(script())
            .args(args)
            .env("MP4_FCGI", BIN)
            .env("TMPDIR", tmp)
            // A real account's keys in the environment: neither used nor shown.
            .env("AWS_ACCESS_KEY_ID", "AKREALACCOUNT")
            .env("AWS_SECRET_ACCESS_KEY", REAL_SECRET)
            .env("AWS_SESSION_TOKEN", "a-real-session")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("bash runs the script");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads the output until a line contains `what`.
    fn wait_for(&mut self, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.seen.iter().any(|l| l.contains(what)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no '{what}' from try-s3.sh within {within:?}:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The URL printed after `label`.
    fn url(&self, label: &str) -> String {
        self.seen
            .iter()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no '{label}' line:\n{}", self.seen.join("\n")))
            .trim()
            .to_string()
    }

    /// Ctrl-C: SIGINT to the whole process group; the exit status.
    fn interrupt(&mut self, within: Duration) -> Option<i32> {
        // SAFETY: signalling the process group we made for the script.
        unsafe { libc::killpg(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    /// Ctrl-C if the script still runs; then SIGKILL to whatever of its group
    /// is left (what a broken script would leave running).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt(Duration::from_secs(15));
        }
        // SAFETY: as above; the group outlives the script while it has members.
        unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `http://127.0.0.1:PORT/target` on the port the script was given: the target.
fn target_on(url: &str, port: u16) -> String {
    let prefix = format!("http://127.0.0.1:{port}/");
    let rest = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not on {prefix}"));
    format!("/{rest}")
}

fn ffmpeg_decodes(url: &str) {
    let out = Command::new(require_tool("ffmpeg"))
        .args(["-v", "error", "-i", url, "-map", "0", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
#[cfg_attr(
    not(all(has_weed, has_ffmpeg, has_ffprobe)),
    ignore = "needs weed and boto3 (pip install -r .ci/python-packages) and ffmpeg"
)]
fn try_s3_serves_what_it_prints_and_stops_on_ctrl_c() {
    require_tool("weed");
    require_tool("ffprobe");
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    // As the README says it: no film named, so tests/media/a.mp4.
    let mut run = Running::start(&["--http", &http], tmp.path());
    run.wait_for("Ctrl-C stops", Duration::from_secs(120));
    let s3: u16 = run
        .url("SeaweedFS:")
        .split_whitespace()
        .next()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the S3 port");
    assert!(port_open(s3));
    let said = run.seen.join("\n");
    assert!(!said.contains(REAL_SECRET), "{said}");

    let progressive = run.url("progressive:");
    let window = progressive
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .expect("a window");
    let got = dev_http::get(port, &target_on(&progressive, port));
    let want = tempfile::NamedTempFile::new().unwrap();
    let mut args = Vec::new();
    for pair in window.split('&') {
        let (k, v) = pair.split_once('=').unwrap();
        args.push(format!("--{k}"));
        args.push(v.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cut(&media("a.mp4"), want.path(), &args).unwrap();
    assert!(
        got.body == std::fs::read(want.path()).unwrap(),
        "{progressive}: not what cut makes of tests/media/a.mp4"
    );
    let clip = tmp.path().join("window.mp4");
    std::fs::write(&clip, &got.body).unwrap();
    assert_eq!(decode_errors(&clip), "", "{progressive}");
    assert!(first_video_packet_is_key(&clip));
    let d = probe_duration(&clip);
    assert!((d - 6.0).abs() <= 0.05, "{progressive}: {d} s");

    for (label, kind) in [
        ("HLS:", "application/vnd.apple.mpegurl"),
        ("DASH:", "application/dash+xml"),
    ] {
        let url = run.url(label);
        let got = dev_http::get(port, &target_on(&url, port));
        assert_eq!(got.header("Content-Type").as_deref(), Some(kind), "{url}");
        ffmpeg_decodes(&url);
    }
    let status = dev_http::get(port, &target_on(&run.url("status:"), port));
    assert!(status.text().contains("requests"), "{}", status.text());

    assert_eq!(
        run.interrupt(Duration::from_secs(30)),
        Some(130),
        "{}",
        run.seen.join("\n")
    );
    assert!(!port_open(port), "the pool still answers on {http}");
    assert!(!port_open(s3), "SeaweedFS still answers on {s3}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "window.mp4")
        .collect();
    assert!(left.is_empty(), "the temp folder is left: {left:?}");
    let sockets: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seaweedfs-") && n.ends_with(&format!("-{s3}.sock")))
        .collect();
    assert!(sockets.is_empty(), "weed's sockets are left: {sockets:?}");
}

/// What a user gets wrong first answers at once, before anything starts.
#[test]
fn try_s3_refuses_a_missing_film_and_a_bad_option() {
    let bash = require_tool("bash");
    let run = |args: &[&str]| {
        Command::new(&bash)
            .arg(script())
            .args(args)
            .env("MP4_FCGI", BIN)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["/nonexistent/film.mp4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/film.mp4: no such file"));
    let out = run(&["--nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option --nope"));
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--http ADDR",
        "--s3-port PORT",
        "--data DIR",
        "--bucket NAME",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}
