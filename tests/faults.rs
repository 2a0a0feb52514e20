//! Faults and hostile input through the live pool: damaged files, peers that
//! vanish mid-body, files that shrink while they stream, paths that try to
//! escape. The pool answers or closes; no worker ever dies.

mod common;

use common::{Pool, media};
use mp4_fcgi::fcgi;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
#[cfg_attr(not(has_ffprobe), ignore = "needs ffprobe: apt-get install -y ffmpeg")]
fn damaged_media_through_the_live_pool() {
    let pool = Pool::start(&["--workers", "2", "--status-path", "/status"]);
    let workers = pool.wait_workers(2);
    let clean = std::fs::read(media("a.mp4")).unwrap();
    let moov = clean.windows(4).rposition(|w| w == b"moov").unwrap() - 4;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::XorShift(0x2545_f491_4f6c_dd1d);
    let mut c = pool.client();
    let mut answered = 0;
    // Truncations every 4 KiB, then flips aimed at the moov.
    let mut variants: Vec<Vec<u8>> = (0..clean.len())
        .step_by(4 << 10)
        .map(|n| clean[..n].to_vec())
        .collect();
    // CI flips 1000 files; DAMAGED_FLIPS=10000 for the long run.
    let flips: usize = std::env::var("DAMAGED_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    common::require_tool("ffprobe");
    let mut decoded = 0;
    for _ in 0..flips {
        let mut v = clean.clone();
        for _ in 0..1 + rng.below(3) {
            let at = moov + rng.below(clean.len() - moov);
            v[at] ^= 1 << rng.below(8);
        }
        variants.push(v);
    }
    for (i, v) in variants.iter().enumerate() {
        let path = dir.path().join(format!("v{i}.mp4"));
        std::fs::write(&path, v).unwrap();
        for q in ["", "start=7.3&end=15"] {
            let r = c.get(&path, q, &[]);
            assert!(r.complete, "variant {i} {q}: no END_REQUEST");
            match r.status {
                200 | 206 => {
                    assert_eq!(
                        r.header("Content-Length"),
                        Some(r.body.len().to_string().as_str())
                    );
                    // A sample of the answers goes through a real decoder. A flip
                    // inside a box the engine copies (avcC, say) can break the
                    // source itself: whatever ffprobe opens in, it must open out.
                    if i % 25 == 0 {
                        let out = dir.path().join("answer.mp4");
                        std::fs::write(&out, &r.body).unwrap();
                        assert!(
                            common::ffprobe_opens(&out) || !common::ffprobe_opens(&path),
                            "variant {i} {q}: the source opens, our 200 does not"
                        );
                        decoded += 1;
                    }
                }
                400..=599 => assert!(!r.text().is_empty()),
                s => panic!("variant {i}: status {s}"),
            }
            answered += 1;
        }
        std::fs::remove_file(&path).unwrap();
    }
    // Each request was answered (checked above) and reached the pool once:
    // its count is exactly what was sent, plus this status request itself.
    assert_eq!(
        pool.counter("requests"),
        answered + 1,
        "the pool counted every request, each once"
    );
    assert!(decoded > 10, "decoded only {decoded} answers");
    assert_eq!(pool.workers(), workers, "no worker was replaced");
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
fn a_peer_that_vanishes_mid_body_frees_its_slot_and_fd() {
    let pool = Pool::start(&["--workers", "1", "--status-path", "/status"]);
    let worker = pool.wait_workers(1)[0];
    let f = media("two_audio.mp4");
    // Warm up, then count the worker's fds.
    assert_eq!(pool.client().get(&f, "end=1", &[]).status, 200);
    let fds_before = common::open_fds(worker);
    for _ in 0..10_000 {
        let mut c = pool.client();
        let id = c.send(
            &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
            true,
        );
        c.first_stdout(id);
        drop(c);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::open_fds(worker) > fds_before {
        assert!(
            Instant::now() < deadline,
            "fds: {} before, {} after",
            fds_before,
            common::open_fds(worker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = pool
        .client()
        .get(Path::new("/"), "json", &[("SCRIPT_NAME", "/status")]);
    // The status body is written before its own request counts as in flight.
    assert!(r.text().contains("\"in_flight\":0,"), "{}", r.text());
    assert!(
        r.text().contains("\"active_connections\":1,"),
        "only the status connection: {}",
        r.text()
    );
    assert_eq!(pool.workers(), vec![worker]);
}

#[test]
fn a_file_truncated_while_it_streams_ends_that_response_only() {
    let pool = Pool::start(&["--workers", "1"]);
    let worker = pool.wait_workers(1)[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinking.mp4");
    std::fs::copy(media("two_audio.mp4"), &path).unwrap();
    let mut c = pool.client();
    let id = c.send(
        &[(b"SCRIPT_FILENAME", path.as_os_str().as_encoded_bytes())],
        true,
    );
    c.first_stdout(id);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let r = c.reply(id);
    assert!(!r.complete, "a body that cannot be read is cut, not padded");
    // Replaced by another file entirely: served fresh (new identity, new index).
    std::fs::copy(media("a.mp4"), &path).unwrap();
    let r = pool.client().get(&path, "start=2", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(pool.workers(), vec![worker]);
    assert!(pool.log_text().contains("body read failed mid-response"));
}

#[test]
fn hostile_paths_are_refused_and_the_worker_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(media("a.mp4"), root.path().join("a.mp4")).unwrap();
    let r = root.path().to_str().unwrap().to_string();
    let pool = Pool::start(&["--workers", "1", "--root", &r]);
    let mut c = pool.client();
    let cases: [(&[u8], u16); 6] = [
        (b"/etc/passwd", 403),
        (b"/../../etc/passwd", 403),
        (b"", 400),
        (b"a\0b.mp4", 400),
        (b"proxy:fcgi://localhost/%2e%2e/%2e%2e/etc/passwd", 403),
        (b"/x\r\nSet-Cookie: a=b.mp4", 404),
    ];
    for (name, status) in cases {
        let path: Vec<u8> = if name.starts_with(b"/") && !name.starts_with(b"/etc") {
            [r.as_bytes(), name].concat()
        } else {
            name.to_vec()
        };
        let id = c.send(
            &[(b"SCRIPT_FILENAME", &path), (b"REQUEST_METHOD", b"GET")],
            true,
        );
        let reply = c.reply(id);
        assert_eq!(reply.status, status, "{:?}", String::from_utf8_lossy(name));
        assert!(
            reply.headers.iter().all(|(n, _)| n != "Set-Cookie"),
            "CR/LF never reach a header"
        );
    }
    // Huge param sets: many names, each small, over the limit in total.
    let names: Vec<String> = (0..5000).map(|i| format!("HTTP_X_{i}")).collect();
    let mut pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect();
    let a = root.path().join("a.mp4");
    pairs.push((b"SCRIPT_FILENAME", a.as_os_str().as_encoded_bytes()));
    let id = c.send(&pairs, true);
    assert_eq!(c.reply(id).status, 431);
    // A name claiming a 2 GiB length: a protocol error closes that connection only.
    let mut raw = Vec::new();
    fcgi::encode_begin_request(9, fcgi::FCGI_RESPONDER, true, &mut raw);
    fcgi::encode_record(
        fcgi::FCGI_PARAMS,
        9,
        &[0xff, 0xff, 0xff, 0xf0, 1, b'a'],
        &mut raw,
    );
    fcgi::encode_record(fcgi::FCGI_PARAMS, 9, &[], &mut raw);
    let mut bad = pool.client();
    bad.stream.write_all(&raw).unwrap();
    assert!(bad.record().is_none(), "the connection is closed");
    assert_eq!(pool.client().get(&a, "end=2", &[]).status, 200);
    assert_eq!(pool.workers().len(), 1);
}

#[test]
fn after_a_worker_is_killed_mid_stream_the_next_10000_requests_succeed() {
    let pool = Pool::start(&["--workers", "2"]);
    let workers = pool.wait_workers(2);
    // A download in flight on one of the workers, then both workers die.
    let f = media("two_audio.mp4");
    let mut c = pool.client();
    let id = c.send(
        &[(b"SCRIPT_FILENAME", f.as_os_str().as_encoded_bytes())],
        true,
    );
    c.first_stdout(id);
    for w in &workers {
        // SAFETY: signalling our grandchildren.
        unsafe { libc::kill(*w, libc::SIGKILL) };
    }
    assert!(
        !c.reply(id).complete,
        "the cut download ends without END_REQUEST"
    );
    pool.wait_workers(2);
    let socket = pool.socket.clone();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut c =
                    common::Client::new(std::os::unix::net::UnixStream::connect(&socket).unwrap());
                let a = media("a.mp4");
                let mut ok = 0;
                for i in 0..2500 {
                    let q = format!("start={}&end={}", (i + t) % 15, (i + t) % 15 + 2);
                    if c.get(&a, &q, &[("HTTP_RANGE", "bytes=0-99")]).status == 206 {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let ok: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 10_000);
}

#[test]
fn running_out_of_file_descriptors_backs_off_and_recovers() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("small.sock");
    let log = dir.path().join("pool.log");
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .args(["--workers", "1"])
        .stderr(std::fs::File::create(&log).unwrap());
    // SAFETY: setrlimit is async-signal-safe; it only affects the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 40,
                rlim_max: 40,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Far more connections than the worker has fds for.
    let held: Vec<_> = (0..80)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    // Once they are gone, the pool serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = common::Client::new(std::os::unix::net::UnixStream::connect(&socket).unwrap());
        c.stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        if c.get(&media("a.mp4"), "end=2", &[]).status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the pool never recovered");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("retrying in 100 ms"),
        "accept errors are handled: {text}"
    );
    assert!(!text.contains("died"), "no worker died: {text}");
    let _ = child.kill();
    let _ = child.wait();
}
