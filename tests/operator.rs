//! What an operator runs: --check, --version, completions and a man page,
//! --log-file reopened on SIGUSR1 as logrotate expects, the development
//! listener binding only what was asked, a clean SIGQUIT log, the socket
//! file removed when the pool stops and replaced after a crash.

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
    // What start-up would bind is tried: an address in use by anything
    // but a FastCGI pool fails here as it would there.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
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
        (
            vec!["--log-file", "/nonexistent/pool.log"],
            "/nonexistent does not exist",
        ),
        (vec!["--listen", &taken], "Address already in use"),
        (vec!["--http", &taken], "--http"),
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

/// `page` as groff sets it (one long line per paragraph, no hyphenation),
/// and groff's warnings.
fn render(page: &str) -> (String, String) {
    let groff = common::require_tool("groff");
    let mut child = Command::new(groff)
        .args(["-man", "-Tascii", "-ww", "-rLL=400n", "-rHY=0", "-P-cbu"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The man page says what the flags cannot (query parameters, HLS/DASH
/// names, signals, files, exit status, examples), renders without a
/// warning, and every page it names can be printed.
#[test]
#[cfg_attr(not(has_groff), ignore = "needs groff: apt-get install -y groff-base")]
fn the_man_page_covers_the_pool_and_names_only_pages_that_exist() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    let (text, warnings) = render(&page);
    assert!(warnings.is_empty(), "groff: {warnings}");
    // Headings are the lines set flush left; each section runs to the next.
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with(|c: char| c.is_ascii_uppercase()) {
            sections.push((line.trim().to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let mut missing = Vec::new();
    for (section, words) in [
        ("QUERY PARAMETERS", &["start=", "end=", "client=flash"][..]),
        (
            "HLS AND DASH",
            &[
                "master.m3u8",
                "index-TRACK.m3u8",
                "manifest.mpd",
                "init-TRACK.mp4",
                "seg-N-TRACK.m4s",
                ".urlset/",
            ],
        ),
        (
            "SIGNALS",
            &[
                "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2",
            ],
        ),
        ("FILES", &["--pid-file", "--log-file", "unix:PATH"]),
        ("EXIT STATUS", &["--check", "SIGPIPE", "141"]),
        (
            "EXAMPLES",
            &["mkdir -p /usr/local/share/man/man1", "man -l -"],
        ),
    ] {
        let Some(body) = sections.iter().find(|(h, _)| h == section).map(|(_, b)| b) else {
            missing.push(format!("no section {section}"));
            continue;
        };
        for w in words {
            if !body.contains(w) {
                missing.push(format!("{section} does not say {w}"));
            }
        }
    }
    assert!(missing.is_empty(), "{}\n{text}", missing.join("\n"));

    // Every page it names: mp4-fcgi-SUB(1), printed by `mp4-fcgi man SUB`.
    let named: Vec<&str> = text
        .split("mp4-fcgi-")
        .skip(1)
        .filter_map(|t| t.split_once("(1)").map(|(n, _)| n))
        .filter(|n| n.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    assert!(
        ["cut", "info", "completions", "man"]
            .iter()
            .all(|s| named.contains(s)),
        "{named:?}"
    );
    for sub in named {
        let (code, page, err) = run(&["man", sub]);
        assert_eq!(code, 0, "mp4-fcgi man {sub}: {err}");
        assert!(
            page.contains(&format!(".TH mp4-fcgi-{sub} 1")),
            "mp4-fcgi man {sub}: {page}"
        );
        let (text, warnings) = render(&page);
        assert!(warnings.is_empty(), "mp4-fcgi man {sub}: groff: {warnings}");
        assert!(
            text.contains(&format!("mp4-fcgi {sub}")) && text.contains("mp4-fcgi(1)"),
            "{text}"
        );
    }
    // How to install it where /usr/local/share/man/man1 does not exist yet.
    let (_, help, _) = run(&["man", "--help"]);
    assert!(
        help.contains("mkdir -p /usr/local/share/man/man1"),
        "{help}"
    );
}

/// `--help` says what the code does: --http needs --root or --origin, and
/// the status page's every format.
#[test]
fn help_says_what_the_flags_do() {
    let (_, help, _) = run(&["--help"]);
    let flag = |name: &str| {
        let at = help.find(&format!("--{name} ")).unwrap();
        let rest = &help[at..];
        let end = rest[2..].find("\n      --").map_or(rest.len(), |n| n + 2);
        rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let http = flag("http");
    assert!(
        http.contains("--root") && http.contains("--origin"),
        "{http}"
    );
    // As the code requires: --http alone is refused, naming both.
    let (code, _, err) = run(&["--check", "--http", "127.0.0.1:1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--root") && err.contains("--origin"), "{err}");
    let status = flag("status-path");
    for format in ["?json", "?full", "?openmetrics"] {
        assert!(status.contains(format), "{status}");
    }
    // And the README says the same.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("needs `--root` or `--origin`"));
    for format in ["`?json`", "`?full`", "`?openmetrics`"] {
        assert!(readme.contains(format), "README: {format}");
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

/// A pool on `socket` (its log in the socket's folder).
fn pool_at(socket: &Path, args: &[&str]) -> Pool {
    let log = socket.with_extension("log");
    let child = Command::new(BIN)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pool = Pool {
        child,
        dir: tempfile::tempdir().unwrap(),
        socket: socket.to_path_buf(),
        log,
    };
    pool.wait_ready();
    // The socket accepts once bound, before the master handles signals; an
    // answer comes from a worker, after.
    let r = pool.client().get(&media("a.mp4"), "end=1", &[]);
    assert_eq!(r.status, 200, "{}", pool.log_text());
    pool
}

/// A download whose reader reads only its first record: the worker stays
/// busy with it until --shutdown-timeout.
fn stalled_download(pool: &Pool) -> common::Client<std::os::unix::net::UnixStream> {
    let mut c = pool.client();
    let f = media("two_audio.mp4");
    let id = c.send(
        &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
        true,
    );
    c.first_stdout(id);
    c
}

/// SIGTERM, SIGINT and SIGQUIT remove the socket file the pool made as
/// they close its listeners, before the downloads in flight have drained:
/// no stale socket, and no name left that nobody answers.
#[test]
fn a_clean_stop_removes_the_socket_file_at_once() {
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
    ] {
        let mut pool = Pool::start(&["--workers", "1", "--shutdown-timeout", "3"]);
        let _busy = stalled_download(&pool);
        pool.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(1);
        while pool.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "{name}: the socket file is still there 1 s later ({})",
                if matches!(pool.child.try_wait(), Ok(None)) {
                    "the pool is draining"
                } else {
                    "the pool has stopped"
                }
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pool.wait_exit(Duration::from_secs(10)), Some(0), "{name}");
        assert!(!pool.socket.exists(), "{name}");
    }
}

/// A socket file left by a pool that crashed does not stop the next one:
/// start-up replaces it.
#[test]
fn a_socket_left_by_a_crash_does_not_prevent_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("pool.sock");
    let mut crashed = pool_at(&socket, &["--workers", "1"]);
    let workers = crashed.wait_workers(1);
    // The master first (else it would start new workers), then its workers.
    crashed.signal(libc::SIGKILL);
    crashed.child.wait().unwrap();
    for w in workers {
        // SAFETY: killing what was a worker of our pool a moment ago.
        unsafe { libc::kill(w, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        assert!(Instant::now() < deadline, "the crashed pool still answers");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(socket.exists(), "a crash leaves the socket file");
    // pool_at has had an answer from it.
    let _pool = pool_at(&socket, &["--workers", "1"]);
}

/// A socket handed to the pool (on fd 0, as spawn-fcgi and lighttpd's
/// bin-path do) belongs to whoever made it: it stays after the stop.
#[test]
fn a_socket_handed_to_the_pool_stays_after_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("handed.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let log = dir.path().join("pool.log");
    let child = Command::new(BIN)
        .args(["--workers", "1"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut pool = Pool {
        child,
        dir: tempfile::tempdir().unwrap(),
        socket: socket.clone(),
        log,
    };
    let r = pool.client().get(&media("a.mp4"), "end=1", &[]);
    assert_eq!(r.status, 200, "{}", pool.log_text());
    pool.signal(libc::SIGTERM);
    assert_eq!(pool.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(socket.exists(), "the pool removed a socket it did not make");
}

/// With --user nobody the workers run as nobody while the master stays
/// root (as nginx's and php-fpm's do), so it removes its socket file from
/// a folder nobody may not write to (the README's root-owned
/// /run/mp4-fcgi) as from one nobody owns.
#[test]
#[cfg_attr(
    not(is_root),
    ignore = "needs root (it starts the pool as root with --user): run as root"
)]
fn a_pool_run_as_another_user_removes_its_socket() {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the test starts the pool as root with --user: run it as root"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for owner in [nobody.uid, nix::unistd::Uid::from_raw(0)] {
        let folder = dir.path().join(format!("run-{owner}"));
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        nix::unistd::chown(&folder, Some(owner), None).unwrap();
        let socket = folder.join("pool.sock");
        let mut pool = pool_at(&socket, &["--workers", "1", "--user", "nobody"]);
        let log_file = dir.path().join(format!("pool-{owner}.log"));
        std::fs::rename(&pool.log, &log_file).unwrap();
        pool.log = log_file;
        pool.signal(libc::SIGTERM);
        assert_eq!(pool.wait_exit(Duration::from_secs(10)), Some(0));
        assert!(
            !socket.exists(),
            "folder of uid {owner}: {}",
            pool.log_text()
        );
    }
}

/// The shipped logrotate snippet, run by logrotate itself, rotates the log
/// of a pool whose workers run as another user: the master (root) reopens
/// the file logrotate created and gives it to them, and every process
/// writes to the new file from then on, rotation after rotation.
#[test]
#[cfg_attr(
    not(is_root),
    ignore = "needs root (it starts the pool as root with --user): run as root"
)]
#[cfg_attr(
    not(has_logrotate),
    ignore = "needs logrotate: apt-get install -y logrotate"
)]
fn logrotate_rotates_the_log_of_a_pool_run_as_another_user() {
    use std::os::unix::fs::MetadataExt;
    let logrotate = common::require_tool("logrotate");
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the test starts the pool as root with --user: run it as root"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("log");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("mp4-fcgi.log");
    let pid = dir.path().join("mp4-fcgi.pid");
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--user",
        "nobody",
        "--log-file",
        log.to_str().unwrap(),
        "--pid-file",
        pid.to_str().unwrap(),
        "--status-path",
        "/status",
    ]);
    let workers = pool.wait_workers(2);
    let missing = |name: &str| {
        let r = pool.client().get(Path::new(name), "", &[]);
        assert_eq!(r.status, 404);
    };
    let snippet = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conf-examples/logrotate.conf"),
    )
    .unwrap()
    .replace("/var/log/mp4-fcgi", logs.to_str().unwrap())
    .replace("/run/mp4-fcgi/mp4-fcgi.pid", pid.to_str().unwrap());
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(&conf, snippet).unwrap();
    for round in 1..=2 {
        missing(&format!("/before-{round}.mp4"));
        let out = Command::new(&logrotate)
            .arg("-f")
            .arg("-s")
            .arg(dir.path().join("state"))
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logrotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // logrotate's `create` made the file root's; the master gives it
        // to the workers' user when SIGUSR1 makes it reopen the file.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&log).map_or(true, |m| m.uid() != nobody.uid.as_raw()) {
            assert!(
                Instant::now() < deadline,
                "round {round}: the new log is not nobody's"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..8 {
            missing(&format!("/after-{round}-{i}.mp4"));
        }
        let new = std::fs::read_to_string(&log).unwrap();
        let rotated = std::fs::read_to_string(logs.join("mp4-fcgi.log.1")).unwrap();
        for i in 0..8 {
            let line = format!("after-{round}-{i}.mp4");
            assert!(new.contains(&line), "round {round}: {new}");
            assert!(!rotated.contains(&line), "round {round}: {rotated}");
        }
        assert!(
            rotated.contains(&format!("before-{round}.mp4")),
            "{rotated}"
        );
        assert!(!new.contains("cannot reopen"), "{new}");
    }
    // The first rotation's file was compressed by the second (delaycompress).
    assert!(logs.join("mp4-fcgi.log.2.gz").exists());
    assert_eq!(pool.workers(), workers, "SIGUSR1 kills no one");
    assert_eq!(pool.counter("worker_deaths"), 0);
}

/// `--check` tries what start-up will: a TCP address a running pool holds
/// is fine (a reload keeps it), and the folders the workers use are tried
/// as the `--user` they run as.
#[test]
fn check_binds_and_tries_folders_as_the_workers_user() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _pool = Pool::start(&["--workers", "1", "--listen", &addr]);
    let (code, out, err) = run(&["--check", "--listen", &addr]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("a pool answers there now"), "{out}");
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    // Root may write anywhere; nobody may not write to a folder of root's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let offload = dir.path().join("offload");
    std::fs::create_dir(&offload).unwrap();
    let d = offload.to_str().unwrap();
    let flags = [
        "--check",
        "--user",
        "nobody",
        "--offload",
        "x-sendfile2",
        "--offload-dir",
        d,
    ];
    let (code, _, err) = run(&flags);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--offload-dir") && err.contains("(as nobody)"),
        "{err}"
    );
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    nix::unistd::chown(&offload, Some(nobody.uid), None).unwrap();
    let (code, out, err) = run(&flags);
    assert_eq!(code, 0, "{out}{err}");
}
