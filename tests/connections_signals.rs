//! The connection layer under signals: reloads (SIGHUP), SIGUSR1/SIGUSR2 and
//! SIGTERM behind nginx lose no request.

mod common;
#[path = "connections/mod.rs"]
mod connections;

use common::{Pool, media, require_tool};
use connections::*;
use mp4_fcgi::fcgi;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::Instant;

// ---------------------------------------------------------------- 4. reloads

#[test]
fn ten_reloads_under_direct_load_lose_no_request() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "2", "--status-path", "/status"]);
    let original = pool.wait_workers(2);
    let query = "start=1&end=2";
    let want = Arc::new(clip(&media("a.mp4"), pool.dir.path(), query));
    let stop = Arc::new(AtomicBool::new(false));
    let load = run_load(64, &stop, |i| {
        let mut c = FcgiClient::new(&pool, i % 2 == 1, true, query, &want);
        move |t: &mut Tally| c.step(t)
    });
    let (first, last) = send_signals(&pool, &[libc::SIGHUP; 10], ms(500), ms(400));
    thread::sleep(SEC);
    stop.store(true, Relaxed);
    let tally = join_load(load);
    tally.assert_clean("64 FastCGI clients, 10 SIGHUPs", first, last);
    assert_eq!(counter(&pool, "reloads"), 10);
    wait_replaced(&pool, &original, 2, 10 * SEC);
}

/// Symlinks to the films in a folder front servers can read.
fn film_root(films: &[(&str, &Path)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (name, path) in films {
        std::os::unix::fs::symlink(path, d.path().join(name)).unwrap();
    }
    d
}

/// nginx in front of `pool`: `/kept/NAME` through an upstream with
/// `keepalive 8` and `fastcgi_keep_conn on`, `/direct/NAME` with a
/// connection per request; NAME is a file in `root`. Unbuffered, so a slow
/// client keeps its upstream request in flight.
fn nginx_in_front(
    nginx: &Path,
    pool: &Pool,
    root: &Path,
) -> (tempfile::TempDir, u16, common::Stop) {
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let sock = pool.socket.display();
    let params = format!(
        "fastcgi_param SCRIPT_FILENAME {}/$1; fastcgi_param SCRIPT_NAME /$1; \
         fastcgi_param QUERY_STRING $query_string; fastcgi_param REQUEST_METHOD $request_method; \
         fastcgi_buffering off;",
        root.display()
    );
    let upstream = format!("upstream pool {{ server unix:{sock}; keepalive 8; }}");
    let server = format!(
        "location ~ ^/kept/(.+)$ {{ fastcgi_pass pool; fastcgi_keep_conn on; {params} }}\n  \
         location ~ ^/direct/(.+)$ {{ fastcgi_pass unix:{sock}; {params} }}"
    );
    let conf = common::nginx_conf(dir.path(), port, &upstream, &server);
    let stop = common::start_nginx(nginx, dir.path(), &conf, port);
    (dir, port, stop)
}

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn ten_reloads_behind_nginx_lose_no_request() {
    let _serial = serial();
    let nginx = require_tool("nginx");
    let pool = Pool::start(&["--workers", "2", "--socket-mode", "666"]);
    pool.wait_workers(2);
    let a = media("a.mp4");
    let root = film_root(&[("a.mp4", &a)]);
    let (_dir, port, _nginx) = nginx_in_front(&nginx, &pool, root.path());
    let want = Arc::new(clip(&a, pool.dir.path(), "start=1&end=2"));
    for path in ["/kept/a.mp4?start=1&end=2", "/direct/a.mp4?start=1&end=2"] {
        let before = pool.workers();
        let stop = Arc::new(AtomicBool::new(false));
        let load = run_load(64, &stop, |_| {
            let want = want.clone();
            move |t: &mut Tally| match http_get(port, path, 3 * SEC) {
                Ok(r) if r.status == 200 && r.body == *want => {
                    t.ok += 1;
                    t.done.push(Instant::now());
                }
                Ok(r) => t.fail(format!(
                    "{path}: {} with {}",
                    r.status,
                    diff(&r.body, &want)
                )),
                Err(e) => t.fail(e),
            }
        });
        let (first, last) = send_signals(&pool, &[libc::SIGHUP; 10], ms(500), ms(400));
        thread::sleep(SEC);
        stop.store(true, Relaxed);
        join_load(load).assert_clean(
            &format!("64 HTTP clients on {path}, 10 SIGHUPs"),
            first,
            last,
        );
        wait_replaced(&pool, &before, 2, 5 * SEC);
    }
}

#[test]
fn a_recycled_worker_held_by_half_sent_headers_exits_within_the_shutdown_timeout() {
    let _serial = serial();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--shutdown-timeout",
        "3",
        "--status-path",
        "/status",
    ]);
    let old = pool.wait_workers(1)[0];
    let stalled: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut s = connect(&pool.socket, 2 * SEC).unwrap();
            s.write_all(&[fcgi::FCGI_VERSION_1, fcgi::FCGI_BEGIN_REQUEST, 0, 1])
                .unwrap();
            s
        })
        .collect();
    // The status request queued behind the 8: once it is answered, the
    // worker holds all of them.
    let active = counter(&pool, "active_connections");
    assert!(
        active >= 9,
        "the worker holds the 8 stalled peers: {active}"
    );
    let hup = Instant::now();
    pool.signal(libc::SIGHUP);
    while pool.workers().contains(&old) {
        assert!(
            hup.elapsed() < 4 * SEC,
            "the recycled worker {old} still runs {:?} after SIGHUP (--shutdown-timeout 3)",
            hup.elapsed()
        );
        thread::sleep(ms(20));
    }
    eprintln!("recycled worker gone after {:?}", hup.elapsed());
    let a = media("a.mp4");
    let mut c = Strict::new(connect(&pool.socket, 5 * SEC).unwrap());
    c.stream.write_all(&request(1, &a, "end=1", true)).unwrap();
    let r = read_reply(&mut c, 1, &[]).unwrap_or_else(|e| panic!("after the reload: {e}"));
    check_clip(&r, &clip(&a, pool.dir.path(), "end=1")).unwrap();
    drop(stalled);
}

// ---------------------------------------------------------------- 5. SIGUSR1, SIGUSR2

#[test]
fn sigusr1_and_sigusr2_under_load_disturb_nothing() {
    let _serial = serial();
    let mut pool = Pool::start(&["--workers", "2", "--status-path", "/status"]);
    let mut workers = pool.wait_workers(2);
    workers.sort();
    let query = "start=3&end=4";
    let want = Arc::new(clip(&media("a.mp4"), pool.dir.path(), query));
    let stop = Arc::new(AtomicBool::new(false));
    // No retries: nothing here may close a connection.
    let load = run_load(4, &stop, |i| {
        let mut c = FcgiClient::new(&pool, i % 2 == 1, false, query, &want);
        move |t: &mut Tally| c.step(t)
    });
    let sigs = [libc::SIGUSR1, libc::SIGUSR2].repeat(3);
    let (first, last) = send_signals(&pool, &sigs, ms(300), ms(400));
    thread::sleep(ms(500));
    stop.store(true, Relaxed);
    let tally = join_load(load);
    assert!(
        matches!(pool.child.try_wait(), Ok(None)),
        "the master exited: {}",
        log_tail(&pool)
    );
    tally.assert_clean("4 FastCGI clients, 3 SIGUSR1 + 3 SIGUSR2", first, last);
    let mut now = pool.workers();
    now.sort();
    assert_eq!(now, workers, "the same workers serve");
    assert_eq!(counter(&pool, "worker_deaths"), 0);
}

// ---------------------------------------------------------------- 6. SIGTERM behind nginx

#[test]
#[cfg_attr(
    not(all(has_nginx, has_ffmpeg)),
    ignore = "needs nginx, ffmpeg: apt-get install -y nginx ffmpeg"
)]
fn sigterm_behind_nginx_answers_new_requests_at_once_and_finishes_a_slow_download() {
    let _serial = serial();
    let nginx = require_tool("nginx");
    let film = big_film();
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--shutdown-timeout",
        "10",
        "--socket-mode",
        "666",
    ]);
    pool.wait_workers(2);
    let a = media("a.mp4");
    let root = film_root(&[("a.mp4", &a), ("big.mp4", &film)]);
    let (_dir, port, _nginx) = nginx_in_front(&nginx, &pool, root.path());
    let want = clip(&film, pool.dir.path(), "start=20");
    // Several requests at once, so nginx keeps several upstream connections.
    let warm: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || http_get(port, "/kept/a.mp4?end=1", 10 * SEC)))
        .collect();
    for w in warm {
        let r = w.join().unwrap().unwrap();
        assert_eq!(r.status, 200);
    }
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let slow = thread::spawn(move || -> Result<Vec<u8>, String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(10 * SEC)).unwrap();
        write!(
            s,
            "GET /kept/big.mp4?start=20 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        let began = Instant::now();
        loop {
            if began.elapsed() > 25 * SEC {
                return Err(format!(
                    "still reading after {:?}: {} bytes",
                    began.elapsed(),
                    all.len()
                ));
            }
            match s.read(&mut chunk) {
                Ok(0) => return Ok(all),
                Ok(n) => {
                    all.extend_from_slice(&chunk[..n]);
                    seen.store(all.len(), Relaxed);
                }
                Err(e) => return Err(format!("{e} after {} bytes", all.len())),
            }
            thread::sleep(ms(50));
        }
    });
    let deadline = Instant::now() + 10 * SEC;
    while progress.load(Relaxed) < 256 << 10 {
        assert!(Instant::now() < deadline, "the slow download never started");
        thread::sleep(ms(10));
    }
    // The same requests while nothing holds the pool but the download.
    let baseline = ["/kept/a.mp4?end=1", "/direct/a.mp4?end=1"]
        .iter()
        .map(|path| {
            let t = Instant::now();
            let _ = http_get(port, path, 2 * SEC);
            t.elapsed()
        })
        .max()
        .unwrap_or_default();
    pool.signal(libc::SIGTERM);
    thread::sleep(ms(200));
    let mut probes = Vec::new();
    for i in 0..6 {
        let path = if i % 2 == 0 {
            "/kept/a.mp4?end=1"
        } else {
            "/direct/a.mp4?end=1"
        };
        let t = Instant::now();
        let r = http_get(port, path, 2 * SEC);
        probes.push((path, r.map(|r| r.status), t.elapsed()));
        thread::sleep(ms(50));
    }
    let download = slow.join().unwrap();
    eprintln!("probes after SIGTERM: {probes:?}");
    for (path, r, took) in &probes {
        assert!(
            r.is_ok() && *took < at_once(baseline),
            "{path} after SIGTERM: {r:?} in {took:?} (all: {probes:?}, before: {baseline:?})"
        );
    }
    let all = download.unwrap_or_else(|e| panic!("the slow download: {e}"));
    let r = parse_http(&all).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(content_length(&r.head), Some(want.len()));
    assert!(
        r.body == want,
        "the slow download: {}",
        diff(&r.body, &want)
    );
}
