//! The pool end to end: the real binary, spoken to over FastCGI.

mod common;

use common::{Client, Pool, media, require_tool};
use mp4_fcgi::fcgi;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type UnixClient = Client<std::os::unix::net::UnixStream>;

fn ok_mp4(r: &common::Reply, dir: &Path, name: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete && r.protocol_status == fcgi::FCGI_REQUEST_COMPLETE);
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    require_tool("ffmpeg");
    let out = dir.join(name);
    std::fs::write(&out, &r.body).unwrap();
    assert_eq!(common::decode_errors(&out), "", "{name} must decode clean");
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn trimmed_response_equals_cut_output() {
    let pool = Pool::start(&["--workers", "2"]);
    let mut c = pool.client();
    let r = c.get(&media("a.mp4"), "start=5.5&end=12", &[]);
    ok_mp4(&r, pool.dir.path(), "trim.mp4");
    let cut = pool.dir.path().join("cut.mp4");
    common::cut(&media("a.mp4"), &cut, &["--start", "5.5", "--end", "12"]).unwrap();
    assert_eq!(
        std::fs::read(&cut).unwrap(),
        r.body,
        "cut and the server send the same bytes"
    );
    assert_eq!(r.header("Content-Type"), Some("video/mp4"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert!(r.header("ETag").is_some_and(|e| e.starts_with('"')));
    assert!(r.header("Last-Modified").is_some());
    // Asked again and again (from the second use on, a cached layout keeps
    // its generated head): the same bytes, whole and as a Range.
    for _ in 0..4 {
        assert!(c.get(&media("a.mp4"), "start=5.5&end=12", &[]).body == r.body);
        let part = c.get(
            &media("a.mp4"),
            "start=5.5&end=12",
            &[("HTTP_RANGE", "bytes=100-30000")],
        );
        assert!(part.body[..] == r.body[100..30001]);
    }
}

/// A long answer goes out in full records: one per 65528 bytes of body,
/// not a full record and a 7-byte one for every 64 KiB of file (which
/// doubled the front server's reads and the pool's syscalls).
#[test]
fn media_goes_out_in_full_records() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("a.mp4").as_os_str().as_encoded_bytes().to_vec();
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", &f),
            (b"QUERY_STRING", b"start=10.5&end=20"),
            (b"REQUEST_METHOD", b"GET"),
        ],
        true,
    );
    let mut sizes = Vec::new();
    while let Some((t, rid, content)) = c.record() {
        assert_eq!(rid, id);
        if t == fcgi::FCGI_END_REQUEST {
            break;
        }
        if t == fcgi::FCGI_STDOUT && !content.is_empty() {
            sizes.push(content.len());
        }
    }
    let total: usize = sizes.iter().sum();
    assert!(
        total > 3 * fcgi::STDOUT_MAX,
        "a clip of ~220 KB, got {total} bytes"
    );
    // The CGI head is one record; then the generated head (ftyp, moov,
    // mdat header) in full records but its last, then the media the same way.
    let short = sizes[1..].iter().filter(|&&n| n < fcgi::STDOUT_MAX).count();
    assert!(
        short <= 2 && sizes.len() <= total.div_ceil(fcgi::STDOUT_MAX) + 2,
        "{} records for {total} bytes: {sizes:?}",
        sizes.len()
    );
}

#[test]
fn keep_conn_and_one_shot_connections() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    for q in ["start=1", "start=2&end=4", ""] {
        let r = c.get(&media("a_faststart.mp4"), q, &[]);
        assert_eq!(r.status, 200, "{q}");
    }
    // Without FCGI_KEEP_CONN the responder closes after the reply.
    let mut c = pool.client();
    let f = media("a.mp4");
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes()),
            (b"REQUEST_METHOD", b"GET"),
        ],
        false,
    );
    assert_eq!(c.reply(id).status, 200);
    assert!(
        c.record().is_none(),
        "connection closed after a one-shot request"
    );
}

#[test]
fn get_values_answers_truthfully() {
    let pool = Pool::start(&["--workers", "2", "--max-conns", "100"]);
    let mut c = pool.client();
    let mut q = Vec::new();
    fcgi::encode_record(
        fcgi::FCGI_GET_VALUES,
        0,
        &{
            let mut b = Vec::new();
            for n in ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"] {
                b.push(n.len() as u8);
                b.push(0);
                b.extend_from_slice(n.as_bytes());
            }
            b
        },
        &mut q,
    );
    c.stream.write_all(&q).unwrap();
    let (t, _, content) = c.record().unwrap();
    assert_eq!(t, fcgi::FCGI_GET_VALUES_RESULT);
    let p = fcgi::Params::parse(content).unwrap();
    assert_eq!(p.get(b"FCGI_MAX_CONNS"), Some(&b"200"[..]));
    assert_eq!(p.get(b"FCGI_MPXS_CONNS"), Some(&b"0"[..]));
    // A second request while one runs is refused as GET_VALUES said.
    let f = media("a.mp4");
    let pairs: &[(&[u8], &[u8])] = &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())];
    let mut both = Vec::new();
    let first = c.encode(pairs, true, &mut both);
    let second = c.encode(pairs, true, &mut both);
    c.stream.write_all(&both).unwrap();
    let r2 = c.reply(second);
    assert_eq!(r2.protocol_status, fcgi::FCGI_CANT_MPX_CONN);
    assert_eq!(c.reply(first).status, 200);
}

#[test]
fn abort_mid_stream_frees_the_slot() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("two_audio.mp4");
    let id = c.send(
        &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
        true,
    );
    c.first_stdout(id);
    let mut abort = Vec::new();
    fcgi::encode_record(fcgi::FCGI_ABORT_REQUEST, id, &[], &mut abort);
    c.stream.write_all(&abort).unwrap();
    let r = c.reply(id);
    assert!(r.complete, "END_REQUEST follows the abort");
    // The connection serves the next request.
    let r = c.get(&media("a.mp4"), "start=3", &[]);
    assert_eq!(r.status, 200);
}

#[test]
fn params_over_the_limit_are_refused_and_the_worker_lives() {
    let pool = Pool::start(&["--workers", "1", "--max-params", "4K"]);
    let mut c = pool.client();
    let big = "x".repeat(8000);
    let r = c.get(&media("a.mp4"), "", &[("HTTP_COOKIE", &big)]);
    assert_eq!(r.status, 431, "{}", r.text());
    let r = c.get(&media("a.mp4"), "end=2", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(pool.wait_workers(1).len(), 1);
}

#[test]
fn non_utf8_params_are_kept() {
    let pool = Pool::start(&["--workers", "1"]);
    let dir = pool.dir.path();
    let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(b"film-\xff\xfe.mp4");
    let path = dir.join(name);
    std::fs::copy(media("a.mp4"), &path).unwrap();
    let mut c = pool.client();
    let id = c.send(
        &[
            (b"SCRIPT_FILENAME", path.as_os_str().as_encoded_bytes()),
            (b"HTTP_X_\xc3\x28", b"\xff"),
            (b"QUERY_STRING", b"start=2"),
        ],
        true,
    );
    assert_eq!(c.reply(id).status, 200);
}

#[test]
fn status_codes() {
    let root = tempfile::tempdir().unwrap();
    let served = root.path().join("videos");
    std::fs::create_dir(&served).unwrap();
    std::fs::copy(media("a.mp4"), served.join("a.mp4")).unwrap();
    std::fs::write(served.join("notes.mp4"), b"this is not a film").unwrap();
    std::fs::create_dir(served.join("dir.mp4")).unwrap();
    std::fs::copy(media("a.mp4"), root.path().join("secret.mp4")).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.mp4"), served.join("escape.mp4")).unwrap();
    let root_arg = served.to_str().unwrap().to_string();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--root",
        &root_arg,
        "--status-path",
        "/status",
    ]);
    let mut c = pool.client();
    let a = served.join("a.mp4");
    type Case<'a> = (
        Box<dyn Fn(&mut UnixClient) -> common::Reply + 'a>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (Box::new(|c| c.get(&a, "", &[])), 200, ""),
        (
            Box::new(|c| c.get(&served.join("nope.mp4"), "", &[])),
            404,
            "no such file",
        ),
        (
            Box::new(|c| c.get(&served.join("escape.mp4"), "", &[])),
            403,
            "--root",
        ),
        (
            Box::new(|c| c.get(&served.join("../secret.mp4"), "", &[])),
            403,
            "--root",
        ),
        (
            Box::new(|c| c.get(&served.join("dir.mp4"), "", &[])),
            403,
            "not a regular file",
        ),
        (
            Box::new(|c| c.get(&a, "start=abc", &[])),
            400,
            "not a number",
        ),
        (
            Box::new(|c| c.get(&a, "start=-5", &[])),
            400,
            "not a number",
        ),
        (
            Box::new(|c| c.get(&a, "start=1e999", &[])),
            400,
            "not a number",
        ),
        (
            Box::new(|c| c.get(&a, "start=25", &[])),
            400,
            "past the end",
        ),
        (
            Box::new(|c| c.get(&a, "start=10&end=5", &[])),
            400,
            "not after start",
        ),
        (
            Box::new(|c| c.get(&a, "", &[("REQUEST_METHOD", "POST")])),
            405,
            "GET and HEAD",
        ),
        (
            Box::new(|c| c.get(&served.join("notes.mp4"), "", &[])),
            415,
            "not an MP4",
        ),
        (
            Box::new(|c| c.get(&a, "", &[("HTTP_RANGE", "bytes=999999999-")])),
            416,
            "outside",
        ),
    ];
    for (req, status, reason) in &cases {
        let r = req(&mut c);
        assert_eq!(r.status, *status, "{}", r.text());
        assert!(
            r.text().contains(reason),
            "{status}: body '{}' lacks '{reason}'",
            r.text()
        );
        if *status >= 400 {
            assert!(
                !r.text().contains(root.path().to_str().unwrap()),
                "no server paths in bodies"
            );
            assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        }
    }
    assert_eq!(
        c.get(&a, "", &[("REQUEST_METHOD", "POST")]).header("Allow"),
        Some("GET, HEAD")
    );
    // Every failure got one log line: method, target, status, reason, the
    // file, the time it took.
    let log = pool.log_text();
    let line = |file: &str, status: &str| {
        log.lines().any(|l| {
            l.contains(&format!("GET /clip.mp4 {status} "))
                && l.contains(file)
                && l.ends_with(" ms")
        })
    };
    assert!(line("escape.mp4", "403"), "{log}");
    assert!(line("notes.mp4", "415"), "{log}");
    // The status page counts them.
    let r = c.get(Path::new("/none"), "", &[("SCRIPT_NAME", "/status")]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("requests:"), "{}", r.text());
    let r = c.get(Path::new("/none"), "json", &[("SCRIPT_NAME", "/status")]);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.text().contains("\"errors\":13"), "{}", r.text());
}

#[test]
fn apache_proxy_fcgi_form_and_document_root() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("a.mp4");
    let apache = format!("proxy:fcgi://localhost{}", f.display()).replace(".mp4", "%2Emp4");
    let r = c.get(Path::new(&apache), "end=3", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let dir = f.parent().unwrap().to_str().unwrap().to_string();
    let id = c.send(
        &[
            (b"DOCUMENT_ROOT", dir.as_bytes()),
            (b"SCRIPT_NAME", b"/a.mp4"),
        ],
        true,
    );
    assert_eq!(c.reply(id).status, 200);
}

#[test]
fn ranges_conditionals_and_head() {
    let pool = Pool::start(&["--workers", "1"]);
    let mut c = pool.client();
    let f = media("a.mp4");
    let full = c.get(&f, "start=4", &[]);
    let len = full.body.len();
    let etag = full.header("ETag").unwrap().to_string();
    let lm = full.header("Last-Modified").unwrap().to_string();
    let range = |c: &mut Client<_>, h: &str| c.get(&f, "start=4", &[("HTTP_RANGE", h)]);
    let r = range(&mut c, "bytes=0-99");
    assert_eq!((r.status, r.body.as_slice()), (206, &full.body[..100]));
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    let r = range(&mut c, "bytes=-100");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &full.body[len - 100..])
    );
    let r = range(&mut c, "bytes=1000-");
    assert_eq!((r.status, r.body.as_slice()), (206, &full.body[1000..]));
    let r = range(&mut c, "bytes=0-9,100-109");
    assert_eq!(r.status, 206);
    let ct = r.header("Content-Type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="));
    assert_eq!(
        r.header("Content-Length").unwrap(),
        r.body.len().to_string()
    );
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains(&format!("Content-Range: bytes 100-109/{len}")));
    let r = range(&mut c, &format!("bytes={len}-"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{len}").as_str())
    );
    // If-Range: a matching tag ranges, a stale one gets the whole clip.
    let r = c.get(
        &f,
        "start=4",
        &[("HTTP_RANGE", "bytes=0-9"), ("HTTP_IF_RANGE", &etag)],
    );
    assert_eq!(r.status, 206);
    let r = c.get(
        &f,
        "start=4",
        &[("HTTP_RANGE", "bytes=0-9"), ("HTTP_IF_RANGE", "\"stale\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, len));
    // Conditionals.
    let r = c.get(&f, "start=4", &[("HTTP_IF_NONE_MATCH", &etag)]);
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = c.get(&f, "start=5", &[("HTTP_IF_NONE_MATCH", &etag)]);
    assert_eq!(r.status, 200, "another window has another tag");
    let r = c.get(&f, "start=4", &[("HTTP_IF_MODIFIED_SINCE", &lm)]);
    assert_eq!(r.status, 304);
    // HEAD: the same headers, no body.
    let r = c.get(&f, "start=4", &[("REQUEST_METHOD", "HEAD")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some(len.to_string().as_str()));
    assert!(r.body.is_empty());
}

#[test]
#[cfg_attr(
    not(has_cgi_fcgi),
    ignore = "needs cgi-fcgi: apt-get install -y libfcgi-bin"
)]
fn cgi_fcgi_drives_the_pool() {
    require_tool("cgi-fcgi");
    let pool = Pool::start(&["--workers", "1"]);
    let out = Command::new("cgi-fcgi")
        .env_clear()
        .env("SCRIPT_FILENAME", media("a.mp4"))
        .env("QUERY_STRING", "start=10&end=12")
        .env("REQUEST_METHOD", "GET")
        .args(["-bind", "-connect"])
        .arg(&pool.socket)
        .output()
        .unwrap();
    let (status, _, body) = common::parse_cgi(&out.stdout);
    assert_eq!(status, 200);
    let cut = pool.dir.path().join("cut.mp4");
    common::cut(&media("a.mp4"), &cut, &["--start", "10", "--end", "12"]).unwrap();
    let want = std::fs::read(cut).unwrap();
    let first_diff = want.iter().zip(&body).position(|(a, b)| a != b);
    assert_eq!(
        (want.len(), first_diff),
        (body.len(), None),
        "cgi-fcgi got other bytes"
    );
}

/// Waits for a unix socket to accept.
fn wait_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} never accepted",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn one_request(socket: &Path) -> u16 {
    let mut c = Client::new(std::os::unix::net::UnixStream::connect(socket).unwrap());
    c.get(&media("a.mp4"), "start=1&end=2", &[]).status
}

#[test]
#[cfg_attr(
    not(has_spawn_fcgi),
    ignore = "needs spawn-fcgi: apt-get install -y spawn-fcgi"
)]
fn serves_a_socket_on_fd_0_under_spawn_fcgi() {
    require_tool("spawn-fcgi");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("spawned.sock");
    let mut child = Command::new("spawn-fcgi")
        .arg("-n")
        .arg("-s")
        .arg(&sock)
        .args(["--", common::BIN, "--workers", "1"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_socket(&sock);
    assert_eq!(one_request(&sock), 200);
    // SAFETY: signalling our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[test]
#[cfg_attr(
    not(has_systemd_socket_activate),
    ignore = "needs systemd-socket-activate: apt-get install -y systemd"
)]
fn socket_activation_under_systemd_socket_activate() {
    require_tool("systemd-socket-activate");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("activated.sock");
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .args([common::BIN, "--workers", "1"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_socket(&sock);
    assert_eq!(one_request(&sock), 200);
    // SAFETY: signalling our child (exec'd into mp4-fcgi).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[test]
fn a_killed_worker_is_respawned() {
    let pool = Pool::start(&["--workers", "2"]);
    let before = pool.wait_workers(2);
    // SAFETY: signalling our grandchild.
    unsafe { libc::kill(before[0], libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = pool.workers();
        if now.len() == 2 && !now.contains(&before[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "no respawn: {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..20 {
        assert_eq!(
            pool.client().get(&media("a.mp4"), "start=3", &[]).status,
            200
        );
    }
    assert!(
        pool.log_text().contains("died (signal SIGKILL)"),
        "{}",
        pool.log_text()
    );
}

/// Starts a download and reads only its first record.
fn start_download(pool: &Pool) -> (Client<std::os::unix::net::UnixStream>, u16) {
    let mut c = pool.client();
    let f = media("two_audio.mp4");
    let id = c.send(
        &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
        true,
    );
    c.first_stdout(id);
    (c, id)
}

#[test]
fn sigterm_lets_a_download_finish() {
    let mut pool = Pool::start(&["--workers", "1", "--shutdown-timeout", "20"]);
    let (mut c, id) = start_download(&pool);
    pool.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let r = c.reply(id);
    assert!(r.complete, "the download completes");
    assert_eq!(pool.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!pool.socket.exists(), "the socket file is removed");
}

#[test]
fn sighup_recycles_without_failing_a_request() {
    let pool = Pool::start(&["--workers", "2"]);
    let old = pool.wait_workers(2);
    let (mut c, id) = start_download(&pool);
    let socket = pool.socket.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    // Runs until told to stop: when each request completed, and the failures.
    let load = std::thread::spawn(move || {
        let mut done = Vec::new();
        let mut failures = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            if one_request(&socket) == 200 {
                done.push(Instant::now());
            } else {
                failures += 1;
            }
        }
        (done, failures)
    });
    std::thread::sleep(Duration::from_millis(300));
    let hup = Instant::now();
    pool.signal(libc::SIGHUP);
    assert!(
        c.reply(id).complete,
        "the download begun before SIGHUP completes"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.workers().iter().any(|p| old.contains(p)) {
        assert!(Instant::now() < deadline, "old workers linger");
        std::thread::sleep(Duration::from_millis(20));
    }
    let replaced = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (done, failures) = load.join().unwrap();
    assert_eq!(failures, 0);
    // The load ran across the reload: served by the old workers and the new.
    let before = done.iter().filter(|t| **t < hup).count();
    let after = done.iter().filter(|t| **t > replaced).count();
    assert!(
        before > 0 && after > 0,
        "{before} requests completed before SIGHUP, {after} after the old workers left"
    );
    assert_eq!(pool.workers().len(), 2);
}

#[test]
fn a_thousand_slow_readers_on_two_workers() {
    // Each connection needs an fd here and in a worker.
    let lim = libc::rlimit {
        rlim_cur: 8192,
        rlim_max: 8192,
    };
    // SAFETY: plain setrlimit on our own process; children inherit it.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    let pool = Pool::start(&["--workers", "2", "--max-conns", "2000"]);
    let f = media("a.mp4");
    let expect = std::fs::metadata(&f).unwrap().len() as usize;
    let started = Instant::now();
    let mut clients: Vec<_> = (0..1000)
        .map(|_| {
            let mut c = pool.client();
            let id = c.send(
                &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
                true,
            );
            c.stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            (c, id)
        })
        .collect();
    // Everyone has begun; nobody has read much.
    for (c, id) in clients.iter_mut() {
        c.first_stdout(*id);
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss: Vec<u64> = pool.workers().iter().map(|&p| common::rss_kib(p)).collect();
    eprintln!("1000 slow readers on 2 workers: worker RSS {rss:?} KiB");
    for r in &rss {
        // 64 KiB of buffer per stream at most, plus the worker itself.
        assert!(*r < 160 * 1024, "worker RSS {r} KiB");
    }
    // Now drain them all; every body is complete.
    for (c, id) in clients.iter_mut() {
        let r = c.reply(*id);
        assert!(r.complete);
        assert_eq!((r.status, r.body.len()), (200, expect));
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn workers_exit_when_the_master_is_killed() {
    let mut pool = Pool::start(&["--workers", "2"]);
    let workers = pool.wait_workers(2);
    let _ = pool.child.kill();
    let _ = pool.child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers
        .iter()
        .any(|w| Path::new(&format!("/proc/{w}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "orphaned workers {workers:?} still run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn max_requests_recycles_a_worker_and_the_pid_file_names_the_master() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pool.pid");
    let mut pool = Pool::start(&[
        "--workers",
        "1",
        "--max-requests",
        "3",
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, pool.pid());
    let first = pool.wait_workers(1)[0];
    for _ in 0..3 {
        assert_eq!(one_request(&pool.socket), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let w = pool.workers();
        if w.len() == 1 && w[0] != first {
            break;
        }
        assert!(Instant::now() < deadline, "worker not recycled: {w:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(one_request(&pool.socket), 200);
    assert!(pool.log_text().contains("served 3 requests, recycling"));
    // SIGQUIT stops at once, even with a download in flight.
    let (_c, _id) = start_download(&pool);
    pool.signal(libc::SIGQUIT);
    assert_eq!(pool.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(!pid_file.exists(), "the pid file is removed on exit");
}

#[test]
fn listens_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI machines have IPv6 loopback"
        );
        eprintln!("note: no IPv6 loopback here; skipping");
        return;
    }
    let port = common::free_port();
    let addr = format!("[::1]:{port}");
    let mut child = Command::new(common::BIN)
        .args(["--listen", &addr, "--workers", "1"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            break s;
        }
        assert!(Instant::now() < deadline, "no IPv6 listener");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut c = Client::new(stream);
    assert_eq!(c.get(&media("a.mp4"), "end=2", &[]).status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn socket_mode_owner_and_group_are_applied() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid = nix::unistd::Uid::effective().as_raw().to_string();
    let gid = nix::unistd::Gid::effective().as_raw().to_string();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--socket-mode",
        "660",
        "--socket-owner",
        &uid,
        "--socket-group",
        &gid,
    ]);
    let meta = std::fs::metadata(&pool.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.uid().to_string(), uid);
    assert_eq!(meta.gid().to_string(), gid);
    assert_eq!(one_request(&pool.socket), 200);
}

#[test]
fn user_drops_privileges_after_binding() {
    if !nix::unistd::Uid::effective().is_root() {
        let out = Command::new(common::BIN)
            .args(["--user", "nobody", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("need the pool to be started as root")
        );
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    // The clip must be readable by nobody.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let clip = dir.path().join("a.mp4");
    std::fs::copy(media("a.mp4"), &clip).unwrap();
    let pool = Pool::start(&["--workers", "1", "--user", "nobody"]);
    let worker = pool.wait_workers(1)[0];
    let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == nobody.uid.to_string()),
        "{uid_line}"
    );
    let mut c = pool.client();
    assert_eq!(c.get(&clip, "end=2", &[]).status, 200);
}

#[test]
fn offload_answers_x_sendfile2_pieces_that_rebuild_the_clip() {
    let pool_dir = tempfile::tempdir().unwrap();
    let offload = pool_dir.path().join("offload");
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--offload",
        "x-sendfile2",
        "--offload-dir",
        offload.to_str().unwrap(),
    ]);
    let film = media("a.mp4");
    let want = pool_dir.path().join("want.mp4");
    common::cut(&film, &want, &["--start", "3", "--end", "9"]).unwrap();
    let want = std::fs::read(&want).unwrap();
    // Reads `path first-last, ...` back, as lighttpd does.
    let rebuild = |v: &str| -> Vec<u8> {
        let mut out = Vec::new();
        for piece in v.split(", ") {
            let (path, range) = piece.rsplit_once(' ').unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            let bytes = std::fs::read(path).unwrap();
            out.extend_from_slice(&bytes[a..=b]);
        }
        out
    };
    let mut c = pool.client();
    // The window's first answer streams while a chore writes its header
    // file off the event loop; the next ones are offloaded.
    let r = c.get(&film, "start=3&end=9", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("X-Sendfile2").is_none() && r.body == want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let r = loop {
        let r = c.get(&film, "start=3&end=9", &[]);
        if r.header("X-Sendfile2").is_some() {
            break r;
        }
        assert!(r.body == want, "streamed meanwhile");
        assert!(std::time::Instant::now() < deadline, "never offloaded");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "the front server sends the body");
    let v = r.header("X-Sendfile2").expect("an X-Sendfile2 header");
    assert!(rebuild(v) == want, "pieces rebuild the clip: {v}");
    let r = c.get(&film, "start=3&end=9", &[("HTTP_RANGE", "bytes=100-2099")]);
    assert_eq!(r.status, 206);
    assert!(rebuild(r.header("X-Sendfile2").unwrap()) == want[100..2100]);
    // A HEAD, a multipart range and an error stream as before.
    let r = c.get(&film, "start=3&end=9", &[("REQUEST_METHOD", "HEAD")]);
    assert!(r.header("X-Sendfile2").is_none() && r.body.is_empty());
    let r = c.get(&film, "start=3&end=9", &[("HTTP_RANGE", "bytes=0-9,20-29")]);
    assert_eq!(r.status, 206);
    assert!(r.header("X-Sendfile2").is_none() && !r.body.is_empty());
    let r = c.get(&film, "start=99999", &[]);
    assert!(r.header("X-Sendfile2").is_none() && r.status >= 400);
}

#[test]
fn offload_dir_the_pool_cannot_write_stops_it_at_start() {
    let out = std::process::Command::new(common::BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--offload",
            "x-sendfile2",
            "--offload-dir",
            "/proc/mp4-fcgi-offload",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--offload-dir /proc/mp4-fcgi-offload"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
