//! The per-peer share (`--max-per-peer`): one address (`REMOTE_ADDR`, which
//! front servers pass) whose clients stop reading holds at most its share of
//! a worker's responses; its further requests are answered 503 with
//! `Retry-After` at once, and every other address is served.

mod common;

use common::{Client, Pool, require_tool};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";

/// A 20 s 640x360 film at 2 Mb/s (about 5 MB), made once per target dir:
/// far more than a unix socket's buffers hold, so an answer nobody reads
/// stays in flight.
fn big_film() -> PathBuf {
    require_tool("ffmpeg");
    // The tests of this file run at once: one of them makes it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers-20s-640x360.mp4");
    if path.exists() {
        return path;
    }
    let part = path.with_extension(format!("{}.part.mp4", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=20")
        .args(["-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000:duration=20")
        .args(["-map", "0:v", "-map", "1:a", "-c:v", "libx264"])
        .args(["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50"])
        .args(["-b:v", "2M", "-c:a", "aac", "-b:a", "64k"])
        .arg(&part)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&part, &path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 2 << 20, "the film must not fit the buffers: {size}");
    path
}

/// The head of an answer: its status and header lines.
struct Head {
    status: u16,
    text: String,
}

/// A connection that sent one request (with `REMOTE_ADDR` = `peer` unless
/// None) and read only the head of its answer: an answer of the big film
/// then stays in flight, as from a client that stopped reading.
fn ask(pool: &Pool, film: &Path, query: &str, peer: Option<&str>) -> (Client<UnixStream>, Head) {
    let mut c = pool.client();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let extra: Vec<(&str, &str)> = peer.map(|p| ("REMOTE_ADDR", p)).into_iter().collect();
    let id = c.send_get(film, query, &extra);
    let mut head = Vec::new();
    while let Some((t, rid, content)) = c.record() {
        if rid == id && t == mp4_fcgi::fcgi::FCGI_STDOUT {
            head.extend_from_slice(&content);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    assert!(!head.is_empty(), "request from {peer:?} got no answer");
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .strip_prefix("Status: ")
        .and_then(|s| s.get(..3))
        .map_or(200, |s| s.parse().unwrap());
    (c, Head { status, text })
}

/// A whole answer read at once, and how long it took.
fn served(pool: &Pool, film: &Path, query: &str, peer: &str) -> (u16, Duration) {
    let t = Instant::now();
    let mut c = pool.client();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let r = c.get(film, query, &[("REMOTE_ADDR", peer)]);
    assert!(r.complete, "answer to {peer} not complete: {r:?}");
    (r.status, t.elapsed())
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn one_address_that_stops_reading_leaves_room_for_the_others() {
    let film = big_film();
    // One worker of 8 connections: without a share, A's 8 stalled
    // downloads would take all of it, and everybody else would get 503.
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--max-conns",
        "8",
        "--max-per-peer",
        "4",
        "--status-path",
        "/status",
    ]);
    let started = Instant::now();
    // A asks for the whole film 12 times, one connection each, and reads
    // no answer past its head.
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (c, head) = ask(&pool, &film, "", Some(A));
        statuses.push(head.status);
        held.push((c, head));
    }
    // B is served at once, more than once.
    for i in 0..3 {
        let (status, took) = served(&pool, &film, "start=2&end=4", B);
        assert_eq!(
            status,
            200,
            "B's request {i} while A holds its downloads (A got {statuses:?}); log:\n{}",
            pool.log_text()
        );
        assert!(took < Duration::from_secs(1), "B waited {took:?}");
    }
    // A had its share and no more; the rest were told to come back later.
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(ok, 4, "A's share: {statuses:?}");
    for (_, head) in held.iter().filter(|(_, h)| h.status != 200) {
        assert_eq!(head.status, 503, "{}", head.text);
        assert!(head.text.contains("Retry-After: "), "{}", head.text);
    }
    let log = pool.log_text();
    assert!(
        log.contains(A) && log.contains("--max-per-peer"),
        "the refusal is logged with the peer and the flag:\n{log}"
    );
    assert!(!log.contains(B), "B was never refused:\n{log}");
    assert_eq!(pool.counter("per_peer_refused"), 8);
    assert_eq!(pool.counter("worker_deaths"), 0);
    // A's downloads were still held all along.
    assert_eq!(pool.counter("in_flight"), 4);
    drop(held);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn a_peers_share_comes_back_as_its_answers_end() {
    let film = big_film();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--max-per-peer",
        "3",
        "--status-path",
        "/status",
    ]);
    let mut held: Vec<_> = (0..3).map(|_| ask(&pool, &film, "", Some(A)).0).collect();
    assert_eq!(ask(&pool, &film, "", Some(A)).1.status, 503);
    // Two of A's clients go away: their answers end, and A may ask again.
    held.truncate(1);
    let deadline = Instant::now() + Duration::from_secs(3);
    let again = loop {
        let (c, head) = ask(&pool, &film, "", Some(A));
        if head.status == 200 {
            break c;
        }
        assert!(Instant::now() < deadline, "A's share never came back");
        std::thread::sleep(Duration::from_millis(50));
    };
    held.push(again);
    held.push(ask(&pool, &film, "", Some(A)).0);
    assert_eq!(held.len(), 3);
    assert_eq!(ask(&pool, &film, "", Some(A)).1.status, 503, "3 again");
    // Answers A read to the end give their share back too.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    while pool.counter("in_flight") > 0 {
        assert!(Instant::now() < deadline, "A's answers never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..6 {
        assert_eq!(served(&pool, &film, "start=2&end=4", A).0, 200);
    }
    assert_eq!(pool.counter("worker_deaths"), 0);
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn the_share_is_per_address_and_requests_without_one_are_exempt() {
    let film = big_film();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--max-per-peer",
        "2",
        "--status-path",
        "/status",
    ]);
    let mut held = Vec::new();
    // Eight addresses with one stalled download each: each within its share.
    for i in 1..=8 {
        let (c, head) = ask(&pool, &film, "", Some(&format!("192.0.2.{i}")));
        assert_eq!(head.status, 200, "peer {i}: {}", head.text);
        held.push(c);
    }
    // Two addresses of one IPv6 /64 are one peer (one host hands them out
    // by the billion); another /64 is another.
    for (peer, want) in [
        ("2001:db8:1:2::1", 200),
        ("2001:db8:1:2::2", 200),
        ("2001:db8:1:2:ffff::3", 503),
        ("2001:db8:1:3::1", 200),
    ] {
        let (c, head) = ask(&pool, &film, "", Some(peer));
        assert_eq!(head.status, want, "{peer}: {}", head.text);
        held.push(c);
    }
    // No REMOTE_ADDR (a local client on the unix socket): not limited.
    for i in 0..6 {
        let (c, head) = ask(&pool, &film, "", None);
        assert_eq!(head.status, 200, "local request {i}: {}", head.text);
        held.push(c);
    }
    assert_eq!(pool.counter("per_peer_refused"), 1);
    assert_eq!(pool.counter("in_flight"), 8 + 3 + 6);
    drop(held);
    assert_eq!(pool.counter("worker_deaths"), 0);
}
