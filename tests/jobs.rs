//! Work off the event loop (index builds, large plans): a request whose
//! client has gone cancels the work only it waited for, so requests that
//! come later do not wait behind work for nobody.

mod common;
#[path = "../benches/synth/mod.rs"]
mod synth;

use common::boxes::{be32, film, full};
use common::{Pool, media};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tests here load the one worker they start (long index builds, 100
/// films at once) and one of them times a cached answer: run beside each
/// other, one test's load was the other's 67 ms wait. One at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A long synthetic film (its index takes a while to build), as a sparse file.
fn long_film(dir: &Path, name: &str) -> PathBuf {
    let film = synth::film(10 * 3600);
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&film.head).unwrap();
    f.set_len(film.size).unwrap();
    path
}

#[test]
fn requests_that_leave_cancel_the_index_builds_they_queued() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let films: Vec<PathBuf> = (0..7)
        .map(|i| long_film(dir.path(), &format!("long{i}.mp4")))
        .collect();
    // What one cold index build costs on this machine, now.
    let at = Instant::now();
    let r = pool.client().get(&films[0], "start=60&end=61", &[]);
    let one = at.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    // Six new films asked for, the clients gone at once.
    for f in &films[1..] {
        let mut c = pool.client();
        c.send_get(f, "start=60&end=61", &[]);
    }
    // A new film then waits for at most the build under way, not all six.
    let small = dir.path().join("small.mp4");
    std::fs::copy(media("a.mp4"), &small).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let at = Instant::now();
    let r = pool.client().get(&small, "start=5", &[]);
    let waited = at.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        waited < one * 2 + Duration::from_millis(500),
        "waited {waited:?} behind work for nobody (one build: {one:?})"
    );
}

#[test]
fn past_its_queue_a_worker_answers_503_and_serves_the_rest() {
    let _serial = serial();
    // 100 new films at once on one worker: the jobs it queues are bounded
    // (64); the others are told to come back, none waits without end.
    let pool = Pool::start(&["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let film = synth::film(3600);
    let mut clients = Vec::new();
    for i in 0..100 {
        let path = dir.path().join(format!("f{i}.mp4"));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&film.head).unwrap();
        f.set_len(film.size).unwrap();
        let mut c = pool.client();
        let id = c.send_get(&path, "start=60&end=61", &[]);
        clients.push((c, id));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for (mut c, id) in clients {
        let r = c.reply(id);
        if r.status == 503 {
            assert_eq!(r.header("Retry-After"), Some("1"));
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [200, 503],
        "{statuses:?}"
    );
    assert!(statuses[&200] >= 64, "{statuses:?}");
    assert_eq!(pool.workers().len(), 1);
}

#[test]
fn a_window_that_cannot_be_planned_is_refused_again_from_memory() {
    let _serial = serial();
    // A header that claims 2^32 samples of 1 ms: its index builds, its
    // segment plan is refused (415), and the refusal is remembered.
    let pool = Pool::start(&["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.mp4");
    let n = u32::MAX - 64;
    film(
        1000,
        n,
        1000,
        &[
            full(b"stts", 0, &be32(&[1, n, 1])),
            full(b"stsc", 0, &be32(&[1, 1, n, 1])),
            full(b"stsz", 0, &be32(&[1, n])),
        ],
        u64::from(n),
    )
    .write(&path);
    let master = path.join("master.m3u8");
    for _ in 0..2 {
        let r = pool.client().get(&master, "", &[]);
        assert_eq!(r.status, 415, "{}", r.text());
    }
    let log = pool.log_text();
    assert_eq!(log.matches("(remembered)").count(), 1, "{log}");
}

#[test]
fn hostile_plans_do_not_hold_up_a_cached_request_on_the_same_worker() {
    let _serial = serial();
    // Films whose headers claim 50 M samples in one segment and 2^32 key
    // frames: each new window is a new plan, each refused. Meanwhile a
    // cached clip on the same worker is answered at once.
    let pool = Pool::start(&["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let mut films = Vec::new();
    for (name, n, timescale) in [
        ("50m.mp4", 50_000_000u32, 1_000_000),
        ("2to32.mp4", u32::MAX - 64, 1000),
    ] {
        let path = dir.path().join(name);
        film(
            timescale,
            n,
            timescale,
            &[
                full(b"stts", 0, &be32(&[1, n, 1])),
                full(b"stsc", 0, &be32(&[1, 1, n, 1])),
                full(b"stsz", 0, &be32(&[1, n])),
            ],
            u64::from(n),
        )
        .write(&path);
        films.push(path.join("master.m3u8"));
    }
    let small = media("a.mp4");
    let ask = || {
        let t = Instant::now();
        let r = pool.client().get(&small, "start=5&end=9", &[]);
        assert_eq!(r.status, 200);
        t.elapsed()
    };
    ask();
    let baseline = (0..3).map(|_| ask()).max().unwrap();
    let attack = {
        let (socket, films) = (pool.socket.clone(), films.clone());
        std::thread::spawn(move || {
            for k in 0..40 {
                let mut c =
                    common::Client::new(std::os::unix::net::UnixStream::connect(&socket).unwrap());
                let end = format!("end={}", 100 + k);
                let r = c.get(&films[k % 2], &end, &[]);
                // A window of a claim can be small enough to plan (200).
                assert!(
                    matches!(r.status, 200 | 415 | 503),
                    "{}: {}",
                    r.status,
                    r.text()
                );
            }
        })
    };
    let mut worst = Duration::ZERO;
    while !attack.is_finished() {
        worst = worst.max(ask());
    }
    attack.join().unwrap();
    assert!(
        worst < Duration::from_millis(50).max(baseline * 5),
        "a cached clip waited {worst:?} (alone: {baseline:?})"
    );
    assert_eq!(pool.workers().len(), 1);
}

#[test]
fn a_plan_too_large_to_keep_is_refused_before_it_is_built() {
    let _serial = serial();
    // Its plan would be built again for each of its segments: refused with
    // the flags to raise, and remembered. A plan that fits is served.
    let small = |duration: &str| {
        Pool::start(&[
            "--workers",
            "1",
            "--cache-size",
            "8K",
            "--segment-duration",
            duration,
        ])
    };
    let master = media("a.mp4").join("master.m3u8");
    let pool = small("1");
    for _ in 0..2 {
        let r = pool.client().get(&master, "", &[]);
        assert_eq!(r.status, 415, "{}", r.text());
        assert!(r.text().contains("--cache-size"), "{}", r.text());
    }
    assert_eq!(pool.log_text().matches("(remembered)").count(), 1);
    let pool = small("6");
    let r = pool.client().get(&master, "", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}
