//! The files a pool owns: its log (reopened on SIGUSR1, rotated by
//! logrotate with the shipped snippet, also under --user) and its socket
//! file (removed when it stops, replaced after a crash, left alone when
//! handed to it).

mod common;

use common::{BIN, Pool, media};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
