//! Thumbnails under load: 50 pictures of a two-hour film asked for at once
//! on one worker are decoded off its event loop, one at a time, while a
//! 100-byte answer on the same worker stays quick and the worker's memory
//! stays bounded.

mod common;

use common::{Pool, media, require_tool, rss_kib};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A two-hour 960x540 film with a key frame every 10 s and B-frames: ten
/// seconds encoded, then copied 720 times over (68 MB), so each picture
/// decodes up to 250 frames.
fn two_hours(dir: &Path) -> PathBuf {
    let ffmpeg = require_tool("ffmpeg");
    let (ten, path) = (dir.join("ten.mp4"), dir.join("two-hours.mp4"));
    let run = |args: &[&str]| {
        let ok = Command::new(&ffmpeg)
            .args(["-v", "error", "-y"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ffmpeg {args:?} failed");
    };
    let (ten_s, path_s) = (ten.to_str().unwrap(), path.to_str().unwrap());
    run(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=960x540:rate=25",
        "-t",
        "10",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "250",
        "-bf",
        "2",
        "-crf",
        "40",
        ten_s,
    ]);
    run(&["-stream_loop", "719", "-i", ten_s, "-c", "copy", path_s]);
    path
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install ffmpeg")]
fn fifty_thumbnails_leave_a_small_answer_quick_and_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let film = two_hours(dir.path());
    let pool = Pool::start(&["--workers", "1"]);
    let small = media("a.mp4");
    let hundred = [("HTTP_RANGE", "bytes=0-99")];
    let ask = || {
        let t = Instant::now();
        let r = pool.client().get(&small, "", &hundred);
        assert_eq!(r.status, 206, "{}", r.text());
        assert_eq!(r.body.len(), 100);
        t.elapsed()
    };
    // The long film's index, and the small answer, cached first.
    let r = pool.client().get(&film.join("thumb-1000.jpg"), "", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let worker = pool.workers()[0];
    ask();
    let baseline = (0..5).map(|_| ask()).max().unwrap();
    let before = rss_kib(worker);

    // 50 times spread over the two hours, each 3 to 8 s after a key
    // frame, so each decodes forward from it.
    let began = Instant::now();
    let load: Vec<_> = (0..50u64)
        .map(|k| {
            let (socket, film) = (pool.socket.clone(), film.clone());
            std::thread::spawn(move || {
                let mut c =
                    common::Client::new(std::os::unix::net::UnixStream::connect(&socket).unwrap());
                let ms = 3_000 + k * 143_000 + (k % 6) * 1_000;
                let r = c.get(&film.join(format!("thumb-{ms}.jpg")), "", &[]);
                (r.status, r.body.starts_with(b"\xff\xd8\xff"))
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut asked = 0;
    let mut peak = before;
    while load.iter().any(|t| !t.is_finished()) {
        let one = ask();
        if one > Duration::from_millis(30) {
            eprintln!("slow: {one:?} at {:?}", began.elapsed());
        }
        worst = worst.max(one);
        peak = peak.max(rss_kib(worker));
        asked += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = began.elapsed();
    let answers: Vec<(u16, bool)> = load.into_iter().map(|t| t.join().unwrap()).collect();
    let good = answers.iter().filter(|a| **a == (200, true)).count();
    assert_eq!(good, 50, "{answers:?}");
    assert!(
        asked >= 5,
        "only {asked} small answers while the pictures were made"
    );
    assert!(
        worst < Duration::from_millis(50).max(baseline * 3),
        "a 100-byte answer waited {worst:?} beside 50 thumbnails (alone: {baseline:?})"
    );
    // One decoder at a time: the worker grows by one decoder's frames and
    // the queued requests, not by 50 decoders.
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "the worker grew by {grown} KiB for 50 thumbnails"
    );
    eprintln!(
        "50 thumbnails of a 2-hour film in {took:?}; the 100-byte answer at worst {worst:?} \
         (alone {baseline:?}, {asked} asked); the worker grew by {grown} KiB"
    );
    assert_eq!(pool.workers(), vec![worker], "the worker was replaced");
}
