//! What an operator runs: --check, --version, completions and a man page,
//! --log-file reopened on SIGUSR1 as logrotate expects, the development
//! listener binding only what was asked, a clean SIGQUIT log.

mod common;

use common::{BIN, Pool, Stop, free_port, media, wait_port};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn check_says_whether_the_pool_would_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let sock = format!("unix:{d}/pool.sock");
    let (code, out, _) = run(&["--check", "--listen", &sock, "--root", d, "--workers", "3"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the configuration is good") && out.contains("3 workers"),
        "{out}"
    );
    for (args, why) in [
        (
            vec!["--listen", "unix:/nonexistent/x.sock"],
            "/nonexistent does not exist",
        ),
        (vec!["--root", "/nonexistent"], "--root /nonexistent"),
        (vec!["--root", "Cargo.toml"], "not a directory"),
        (vec!["--status-path", "status"], "must start with /"),
        (vec!["--workers", "0"], "--workers"),
        (vec!["--user", "no-such-user-here"], "no-such-user-here"),
    ] {
        let mut a = vec!["--check"];
        a.extend(args.iter().copied());
        let (code, _, err) = run(&a);
        assert_eq!(code, 1, "{a:?}: {err}");
        assert!(
            err.contains("the configuration is not good") && err.contains(why),
            "{a:?}: {err}"
        );
    }
}

#[test]
fn version_completions_and_a_man_page() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            format!("mp4-fcgi {}", env!("CARGO_PKG_VERSION")).as_str()
        )
    );
    let (code, script, _) = run(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        script.contains("--max-moov") && script.contains("complete -F"),
        "{script}"
    );
    // The script is valid bash.
    let check = Command::new("bash")
        .args(["-n", "-c", &script])
        .status()
        .unwrap();
    assert!(check.success());
    let (code, page, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(
        page.starts_with(".ie") && page.contains(".TH mp4-fcgi 1"),
        "{page}"
    );
    assert!(page.contains("max\\-inflight"), "every flag is documented");
    // Every flag has a help text.
    let (_, help, _) = run(&["--help"]);
    let lines: Vec<&str> = help.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("--") {
            let next = lines.get(i + 1).map_or("", |n| n.trim());
            assert!(
                !next.is_empty() && !next.starts_with("--"),
                "no help for {l}"
            );
        }
    }
}

#[test]
fn the_log_file_is_reopened_on_sigusr1() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mp4-fcgi.log");
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--log-file",
        log.to_str().unwrap(),
        "--status-path",
        "/status",
    ]);
    let workers = pool.wait_workers(2);
    let missing = |name: &str| {
        let r = pool.client().get(Path::new(name), "", &[]);
        assert_eq!(r.status, 404);
    };
    missing("/before-rotation.mp4");
    let old = std::fs::read_to_string(&log).unwrap();
    assert!(
        old.contains("listening on") && old.contains("before-rotation.mp4"),
        "{old}"
    );
    // What logrotate does: move the file away, then signal.
    let rotated = dir.path().join("mp4-fcgi.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    pool.signal(libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() {
        assert!(Instant::now() < deadline, "no new log file after SIGUSR1");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both workers reopened too: requests on either land in the new file.
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..8 {
        missing(&format!("/after-rotation-{i}.mp4"));
    }
    let new = std::fs::read_to_string(&log).unwrap();
    let moved = std::fs::read_to_string(&rotated).unwrap();
    for i in 0..8 {
        assert!(new.contains(&format!("after-rotation-{i}.mp4")), "{new}");
        assert!(
            !moved.contains(&format!("after-rotation-{i}.mp4")),
            "{moved}"
        );
    }
    assert_eq!(pool.workers(), workers, "SIGUSR1 kills no one");
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
fn sigquit_logs_no_death_for_workers_it_stops() {
    let mut pool = Pool::start(&["--workers", "2"]);
    pool.wait_workers(2);
    pool.signal(libc::SIGQUIT);
    assert_eq!(pool.wait_exit(Duration::from_secs(5)), Some(0));
    let log = pool.log_text();
    assert!(log.contains("stopping now (SIGQUIT)"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert!(!log.contains("died"), "{log}");
}

#[test]
fn the_development_listener_binds_only_what_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(media("a.mp4"), dir.path().join("a+1.mp4")).unwrap();
    let root = dir.path().to_str().unwrap();
    let start = |port: u16| {
        let child = Command::new(BIN)
            .args(["--http", &format!("127.0.0.1:{port}"), "--root", root])
            .args(["--workers", "1"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_port(port);
        Stop(child)
    };
    let (p1, p2) = (free_port(), free_port());
    // Two at once: neither takes a FastCGI port it was not given.
    let _one = start(p1);
    let _two = start(p2);
    // A '+' in a path is a plus, as nginx and lighttpd read it.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p2)).unwrap();
    s.write_all(b"HEAD /a+1.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    s.read_to_string(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
}

#[test]
fn a_peer_that_half_closes_after_its_request_still_gets_the_answer() {
    // FastCGI: the request, then shutdown(SHUT_WR), then read.
    let pool = Pool::start(&["--workers", "1"]);
    let a = media("a.mp4");
    let want = {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("clip.mp4");
        common::cut(&a, &out, &["--start", "5"]).unwrap();
        std::fs::read(out).unwrap()
    };
    let mut c = pool.client();
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", a.as_os_str().as_encoded_bytes()),
            (b"QUERY_STRING", b"start=5"),
        ],
        false,
    );
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let r = c.reply(id);
    assert!(r.complete, "END_REQUEST arrived");
    assert_eq!(r.status, 200);
    assert!(
        r.body == want,
        "{} bytes, {} expected",
        r.body.len(),
        want.len()
    );

    // HTTP/1.0 on the development listener, the same way.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&a, dir.path().join("a.mp4")).unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .args(["--http", &format!("127.0.0.1:{port}"), "--root"])
        .arg(dir.path())
        .args(["--workers", "1"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    let _pool = Stop(child);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /a.mp4?start=5 HTTP/1.0\r\n\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.starts_with(b"HTTP/1.1 200 "));
    assert!(
        got[head_end..] == want[..],
        "{} bytes",
        got.len() - head_end
    );
}
