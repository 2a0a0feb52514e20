//! The pool as an operator runs it: cgi-fcgi, spawn-fcgi, systemd socket
//! activation, respawns, signals, slow readers, recycling, IPv6, socket
//! modes, privilege drops, offload.

mod common;
#[path = "server/mod.rs"]
mod server;

use common::{Client, Pool, media, require_tool};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    // The master writes its pid file just after it binds the socket that
    // Pool::start waits for.
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid: i32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            break text
                .trim()
                .parse()
                .expect("the pid file holds a whole number");
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(10));
    };
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
