//! What an operator runs: --check, --version, completions and a man page,
//! --log-file reopened on SIGUSR1 as logrotate expects, the development
//! listener binding only what was asked, a clean SIGQUIT log, the socket
//! file removed when the pool stops and replaced after a crash.

mod common;

use common::{BIN, Pool, Stop, free_port, media, wait_port};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

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
