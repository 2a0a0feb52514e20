//! The connection layer, time: idle and half-sent connections time out and
//! never make a request wait.

mod common;
#[path = "connections/mod.rs"]
mod connections;

use common::{Pool, media};
use connections::*;
use mp4_fcgi::fcgi;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Instant;

// ---------------------------------------------------------------- 3. idle and half-sent

/// Raises RLIMIT_NOFILE's soft limit to the hard one (children inherit it).
/// False (after a note) when the hard limit is below `need`, outside CI.
fn raise_nofile(need: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_max < need {
        let msg = format!(
            "RLIMIT_NOFILE hard limit is {}; this test needs {need}",
            lim.rlim_max
        );
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "{msg}");
        eprintln!("note: {msg}; skipping this test");
        return false;
    }
    lim.rlim_cur = lim.rlim_max.min(1 << 20);
    // SAFETY: plain setrlimit on our own process.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit: {}", io::Error::last_os_error());
    true
}

/// Whether the server closed `s` (EOF or reset), reading past anything it sent.
fn closed_by_server(mut s: &UnixStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_half_sent_connections_time_out_and_never_hold_up_a_request() {
    let _serial = serial();
    if !raise_nofile(4096) {
        return;
    }
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--max-conns",
        "1000",
        "--idle-timeout",
        "3",
        "--request-timeout",
        "2",
        "--status-path",
        "/status",
    ]);
    pool.wait_workers(2);
    let a = media("a.mp4");
    let want = clip(&a, pool.dir.path(), "end=1");
    let probe = || {
        let t = Instant::now();
        let r = connect(&pool.socket, 2 * SEC)
            .map_err(|e| format!("connect: {e}"))
            .and_then(|s| {
                let mut c = Strict::new(s);
                c.stream
                    .write_all(&request(1, &a, "end=1", false))
                    .map_err(|e| format!("write: {e}"))?;
                read_reply(&mut c, 1, &[]).map_err(|e| e.to_string())
            });
        (r, t.elapsed())
    };
    // The same request on the idle pool, each worker's cache warm.
    let baseline = (0..4).map(|_| probe().1).max().unwrap_or_default();
    let mut idle = Vec::with_capacity(2000);
    for i in 0..2000 {
        idle.push(
            connect(&pool.socket, 2 * SEC).unwrap_or_else(|e| panic!("idle connection {i}: {e}")),
        );
    }
    let mut half = Vec::with_capacity(200);
    for i in 0..200 {
        let mut s =
            connect(&pool.socket, 2 * SEC).unwrap_or_else(|e| panic!("half connection {i}: {e}"));
        let bytes = if i % 2 == 0 {
            // Half a record header.
            vec![fcgi::FCGI_VERSION_1, fcgi::FCGI_BEGIN_REQUEST, 0, 1]
        } else {
            // A request whose PARAMS never end.
            let mut b = Vec::new();
            fcgi::encode_begin_request(1, fcgi::FCGI_RESPONDER, true, &mut b);
            fcgi::encode_record(
                fcgi::FCGI_PARAMS,
                1,
                b"\x0f\x08SCRIPT_FILENAME/a.mp4",
                &mut b,
            );
            b
        };
        s.write_all(&bytes)
            .unwrap_or_else(|e| panic!("half connection {i}: {e}"));
        half.push(s);
    }
    let opened = Instant::now();
    thread::sleep(ms(300));
    let mut overloaded = 0;
    for n in 0..3 {
        let (r, took) = probe();
        let r = r
            .unwrap_or_else(|e| panic!("probe {n} with 2200 connections held: {e} after {took:?}"));
        assert!(
            took < at_once(baseline),
            "probe {n}: answered after {took:?}, not at once (idle pool: {baseline:?})"
        );
        let (status, headers, _) = cgi(&r.stdout).unwrap_or_else(|e| panic!("probe {n}: {e}"));
        if status == 503 {
            assert!(
                header(&headers, "Retry-After").is_some(),
                "probe {n}: a 503 without Retry-After"
            );
            assert_eq!(
                r.protocol_status(),
                Some(fcgi::FCGI_OVERLOADED),
                "probe {n}: a 503 ends with FCGI_OVERLOADED"
            );
            overloaded += 1;
        } else {
            check_clip(&r, &want).unwrap_or_else(|e| panic!("probe {n}: {e}"));
        }
        thread::sleep(ms(100));
    }
    // Past both timeouts (with the sweep's slack) every one of them is closed.
    thread::sleep((opened + 4 * SEC).saturating_duration_since(Instant::now()));
    let deadline = opened + 7 * SEC;
    let (open_idle, open_half) = loop {
        let open_idle = idle.iter().filter(|s| !closed_by_server(s)).count();
        let open_half = half.iter().filter(|s| !closed_by_server(s)).count();
        if open_idle + open_half == 0 || Instant::now() > deadline {
            break (open_idle, open_half);
        }
        thread::sleep(ms(200));
    };
    assert_eq!(
        (open_idle, open_half),
        (0, 0),
        "(idle, half-sent) connections still open {:?} after opening them",
        opened.elapsed()
    );
    drop((idle, half));
    let mut c = Strict::new(connect(&pool.socket, 2 * SEC).unwrap());
    c.stream.write_all(&request(1, &a, "end=1", true)).unwrap();
    let r = read_reply(&mut c, 1, &[]).unwrap_or_else(|e| panic!("after the timeouts: {e}"));
    check_clip(&r, &want).unwrap_or_else(|e| panic!("after the timeouts: {e}"));
    assert!(counter(&pool, "idle_timeouts") > 0);
    assert!(counter(&pool, "request_timeouts") > 0);
    if overloaded > 0 {
        assert!(counter(&pool, "overloaded") > 0, "503s are counted");
    }
}
