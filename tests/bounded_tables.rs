//! Bounded work, crafted files: sample tables that lie are refused with a
//! reason, and a FIFO (or anything not a regular file) never blocks the
//! event loop.

#[path = "bounded/mod.rs"]
mod bounded;
mod common;
#[path = "../benches/synth/mod.rs"]
mod synth;

use bounded::*;
use common::boxes::{be32, co64, full};
use common::{Pool, media};
use std::time::{Duration, Instant};

// --- 1. crafted sample tables -------------------------------------------------

#[test]
fn crafted_co64_near_2_pow_64_is_refused_and_crashes_nothing() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1", "--status-path", "/status"]);
    let worker = pool.wait_workers(1)[0];
    let dir = tempfile::tempdir().unwrap();
    let crafted = dir.path().join("crafted.mp4");
    let bytes = crafted_co64_file();
    assert!(
        (8000..9500).contains(&bytes.len()),
        "~8.5 KB: {}",
        bytes.len()
    );
    std::fs::write(&crafted, &bytes).unwrap();

    for q in ["", "start=1"] {
        let r = Conn::open(&pool).get(&crafted, q, &[]);
        r.assert_refused_with_reason(&format!("crafted co64, query {q:?}"));
        assert_eq!(r.status, 415, "query {q:?}: {}", r.text());
    }
    for args in [&[][..], &["--start", "1"][..]] {
        let out = dir.path().join("out.mp4");
        let (code, stderr) = cut_status(&crafted, &out, args);
        assert!(
            !stderr.contains("panicked"),
            "cut {args:?} must not panic: {stderr}"
        );
        assert_ne!(code, Some(101), "cut {args:?}: exit 101 is a panic");
        assert!(
            code.is_some_and(|c| c != 0),
            "cut {args:?} fails with an exit code: {code:?}"
        );
        assert!(
            stderr.contains("crafted.mp4") && stderr.trim().len() > "crafted.mp4".len() + 4,
            "cut {args:?} says why: {stderr:?}"
        );
    }

    assert_eq!(pool.counter("worker_deaths"), 0, "{}", pool.log_text());
    let r = Conn::open(&pool).get(&media("a.mp4"), "start=2&end=4", &[]);
    assert_eq!(r.status, 200, "a normal request afterwards: {}", r.text());
    assert!(r.complete && r.body.len() > 1000);
    assert_eq!(pool.workers(), vec![worker], "the worker was not replaced");
}

#[test]
fn duplicate_sample_tables_are_refused_with_a_reason() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1", "--status-path", "/status"]);
    let dir = tempfile::tempdir().unwrap();
    // Control: the same film without duplicates is served.
    let clean = dir.path().join("clean.mp4");
    std::fs::write(&clean, small_film(true, small_tables)).unwrap();
    let r = Conn::open(&pool).get(&clean, "start=1", &[]);
    assert_eq!(r.status, 200, "the clean film is served: {}", r.text());

    // Two stts: the second one says the samples last 10x longer.
    let two_stts = small_film(true, |o| {
        [
            small_tables(o),
            full(b"stts", 0, &be32(&[1, SMALL_SAMPLES, 1000])),
        ]
        .concat()
    });
    // stco and co64 giving the same (valid) offsets.
    let stco_co64 = small_film(true, |o| [small_tables(o), co64(o)].concat());
    for (name, bytes) in [("two_stts.mp4", two_stts), ("stco_co64.mp4", stco_co64)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for q in ["", "start=1"] {
            let r = Conn::open(&pool).get(&path, q, &[]);
            r.assert_refused_with_reason(&format!("{name} {q:?}"));
            assert!(
                r.text().contains("duplicate"),
                "{name} {q:?}: the reason names the duplicate: {}",
                r.text()
            );
        }
    }
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
fn chunk_offsets_past_the_end_are_refused_for_the_whole_file_too() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1", "--status-path", "/status"]);
    let dir = tempfile::tempdir().unwrap();
    for moov_first in [true, false] {
        let bytes = small_film(moov_first, |o| {
            let past: Vec<u64> = o.iter().map(|x| x + 1_000_000).collect();
            small_tables(&past)
        });
        let path = dir.path().join(format!("past_end_{moov_first}.mp4"));
        std::fs::write(&path, bytes).unwrap();
        for q in ["", "start=1", "start=0&end=5"] {
            let r = Conn::open(&pool).get(&path, q, &[]);
            r.assert_refused_with_reason(&format!(
                "offsets past the end, moov first {moov_first}, {q:?}"
            ));
        }
    }
    assert_eq!(pool.counter("worker_deaths"), 0);
}

// --- 2. FIFOs -----------------------------------------------------------------

#[test]
fn a_fifo_in_root_is_refused_at_once_and_stalls_nothing() {
    let _serial = serial();
    let root = tempfile::tempdir().unwrap();
    let fifo = root.path().join("x.mp4");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let link = root.path().join("link.mp4");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let film = root.path().join("a.mp4");
    std::fs::copy(media("a.mp4"), &film).unwrap();
    let r = root.path().canonicalize().unwrap();
    let pool = Pool::start(&["--workers", "1", "--root", r.to_str().unwrap()]);
    let _quit = QuitOnDrop(pool.pid());
    // Warm: the ordinary request below is answered from the caches; what it
    // takes with nothing else on the pool is the measure of "at once".
    let warm = Conn::open(&pool).get(&film, "end=1", &[]);
    assert_eq!(warm.status, 200, "{}", warm.text());
    let baseline = (0..3)
        .map(|_| {
            let t = Instant::now();
            Conn::open(&pool).get(&film, "end=1", &[]);
            t.elapsed()
        })
        .max()
        .unwrap_or_default();
    let at_once = Duration::from_millis(100).max(baseline * 5);

    for target in [&fifo, &link] {
        let mut hostile = Conn::open(&pool);
        let sent = Instant::now();
        let hid = hostile.send(target, "", &[]);
        // Let the worker take the FIFO request first.
        std::thread::sleep(Duration::from_millis(20));
        let mut ordinary = Conn::open(&pool);
        let t = Instant::now();
        let oid = ordinary.send(&film, "end=1", &[]);
        let o = ordinary.reply(oid, Duration::from_secs(1));
        let took = t.elapsed();
        assert!(
            o.complete && o.status == 200,
            "{}: the ordinary request on the same worker: {} {:?}",
            target.display(),
            o.status,
            o.cut
        );
        assert!(
            took < at_once,
            "{}: the ordinary request took {took:?} (alone: {baseline:?})",
            target.display()
        );
        let h = hostile.reply(hid, Duration::from_secs(1));
        assert_eq!(
            h.status,
            403,
            "{}: {:?} {}",
            target.display(),
            h.cut,
            h.text()
        );
        assert!(h.complete);
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "{}: refused within 1 s, took {:?}",
            target.display(),
            sent.elapsed()
        );
    }
}
