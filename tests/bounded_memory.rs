//! Bounded work, memory and disk: stalled clients cannot pin unbounded
//! memory, and `--offload-dir` is neither a way out of its folder nor over
//! its budget.

#[path = "bounded/mod.rs"]
mod bounded;
mod common;
#[path = "../benches/synth/mod.rs"]
mod synth;

use bounded::*;
use common::{Client, Pool, media};
use std::collections::BTreeSet;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// --- 5. memory ----------------------------------------------------------------

#[test]
fn a_hundred_stalled_downloads_of_distinct_windows_stay_under_32_mib() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("two_hours.mp4");
    let synth = synth::film(7200);
    assert!(
        synth.head.len() > 2 << 20,
        "moov of {} bytes",
        synth.head.len()
    );
    write_synth(&film, &synth);
    drop(synth);
    let extra = max_inflight_args("8M");
    let mut args = vec!["--workers", "1"];
    args.extend(extra.iter().map(String::as_str));
    let pool = Pool::start(&args);
    let _quit = QuitOnDrop(pool.pid());
    let worker = pool.wait_workers(1)[0];

    let warm = Conn::open(&pool).get(&film, "start=3600&end=3610", &[]);
    assert_eq!(warm.status, 200, "{}", warm.text());
    let base = common::rss_kib(worker);
    let limit_kib = 32 << 10;

    let deadline = Instant::now() + Duration::from_secs(25);
    let mut held = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for k in 0..100u32 {
        let mut c = Conn::open(&pool);
        let q = format!("start={}", k * 60);
        let id = c.send(&film, &q, &[]);
        let r = c.read(id, deadline, true, false, &mut || None);
        match r.status {
            200 => ok += 1,
            503 => {
                assert!(
                    r.header("Retry-After").is_some(),
                    "{q}: 503 without Retry-After"
                );
                busy += 1;
            }
            s => panic!("{q}: status {s} {:?}", r.cut),
        }
        // The client reads no further.
        held.push(c);
        let grown = common::rss_kib(worker).saturating_sub(base);
        assert!(
            grown < limit_kib,
            "after {} stalled downloads ({ok} 200, {busy} 503) the worker grew {} MiB",
            k + 1,
            grown >> 10
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    let grown = common::rss_kib(worker).saturating_sub(base);
    assert!(
        grown < limit_kib,
        "100 stalled downloads ({ok} 200, {busy} 503): the worker grew {} MiB",
        grown >> 10
    );
    assert!(ok > 0, "some downloads are served");
    drop(held);
}

// --- 6. offload ---------------------------------------------------------------

/// Reads `path first-last, ...` back, as lighttpd does; also returns the paths.
fn rebuild(v: &str) -> (Vec<u8>, Vec<PathBuf>) {
    let mut out = Vec::new();
    let mut paths = Vec::new();
    for piece in v.split(", ") {
        let (p, range) = piece.rsplit_once(' ').unwrap();
        let path = PathBuf::from(percent_decode(p));
        let (a, b) = range.split_once('-').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        let bytes = std::fs::read(&path).unwrap_or_default();
        out.extend_from_slice(bytes.get(a..=b).unwrap_or(&[]));
        paths.push(path);
    }
    (out, paths)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Names created in a folder (inotify), to learn every name a pool writes.
struct Watch {
    fd: i32,
}

impl Watch {
    fn new(dir: &Path) -> Watch {
        // SAFETY: plain syscalls on a fresh descriptor and a valid C string.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0, "inotify_init1");
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            let wd = libc::inotify_add_watch(
                fd,
                c.as_ptr(),
                libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM,
            );
            assert!(wd >= 0, "inotify_add_watch");
            Watch { fd }
        }
    }

    fn names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            // SAFETY: reading into a buffer we own, of the length given.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return names;
            }
            let mut at = 0;
            while at + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = &buf[at + 16..at + 16 + len];
                let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
                if !name.is_empty() {
                    names.insert(String::from_utf8_lossy(name).into_owned());
                }
                at += 16 + len;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: our descriptor.
        unsafe { libc::close(self.fd) };
    }
}

#[test]
fn offload_never_writes_through_symlinks_planted_in_its_folder() {
    let _serial = serial();
    let work = tempfile::tempdir().unwrap();
    let offload = work.path().join("offload");
    std::fs::create_dir(&offload).unwrap();
    let offload = offload.canonicalize().unwrap();
    let outside_dir = tempfile::tempdir().unwrap();
    let victim = outside_dir.path().join("victim.bin");
    let victim_bytes = b"outside --offload-dir: must never change\n".repeat(100);
    std::fs::write(&victim, &victim_bytes).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let victim_mtime = std::fs::metadata(&victim).unwrap().modified().unwrap();
    let film = media("a.mp4").canonicalize().unwrap();

    let pool = Pool::start(&[
        "--workers",
        "1",
        "--offload",
        "x-sendfile2",
        "--offload-dir",
        offload.to_str().unwrap(),
    ]);
    let watch = Watch::new(&offload);
    let first = ["start=3&end=9", "start=5", "end=4"];
    let later = ["start=7&end=12", "start=11", "start=1.5&end=2.5"];
    let mut c = Conn::open(&pool);
    for q in first {
        // The first answer streams while a chore writes the header file.
        let r = c.get(&film, q, &[]);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let r = c.get(&film, q, &[]);
            assert_eq!(r.status, 200, "{q}: {}", r.text());
            if r.header("X-Sendfile2").is_some() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{q} is offloaded");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // Every name the pool created, whether it still exists or not.
    let mut names = watch.names();
    for e in std::fs::read_dir(&offload).unwrap() {
        names.insert(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    assert!(names.len() >= first.len(), "names learned: {names:?}");
    for e in std::fs::read_dir(&offload).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for n in &names {
        std::os::unix::fs::symlink(&victim, offload.join(n)).unwrap();
    }

    for q in first.iter().chain(&later) {
        let r = c.get(&film, q, &[]);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let want = dir_cut(&film, q, work.path());
        match r.header("X-Sendfile2") {
            Some(v) => {
                let (bytes, paths) = rebuild(v);
                for p in &paths {
                    let meta = std::fs::symlink_metadata(p);
                    assert!(
                        meta.as_ref().is_ok_and(|m| !m.file_type().is_symlink()),
                        "{q}: X-Sendfile2 names {} ({:?})",
                        p.display(),
                        meta.map(|m| m.file_type())
                    );
                    assert!(
                        p.starts_with(&offload) || p == &film,
                        "{q}: X-Sendfile2 names {} outside the offload folder",
                        p.display()
                    );
                }
                assert!(bytes == want, "{q}: the pieces rebuild the clip: {v}");
            }
            None => assert!(r.body == want, "{q}: the streamed body is the clip"),
        }
    }
    assert!(
        std::fs::read(&victim).unwrap() == victim_bytes,
        "the file outside --offload-dir was written through a symlink"
    );
    assert_eq!(
        std::fs::metadata(&victim).unwrap().modified().unwrap(),
        victim_mtime,
        "the file outside --offload-dir was touched through a symlink"
    );
    let outside: Vec<_> = std::fs::read_dir(outside_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("victim.bin")]);
}

/// What `cut` makes of `query` (start=..&end=..).
fn dir_cut(film: &Path, query: &str, dir: &Path) -> Vec<u8> {
    let mut args = Vec::new();
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap();
        args.push(format!("--{k}"));
        args.push(v.to_string());
    }
    let out = dir.join("want.mp4");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::cut(film, &out, &args).unwrap();
    std::fs::read(&out).unwrap()
}

#[test]
fn the_offload_budget_is_shared_by_all_workers() {
    let _serial = serial();
    let work = tempfile::tempdir().unwrap();
    let offload = work.path().join("offload");
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--offload",
        "x-sendfile2",
        "--offload-dir",
        offload.to_str().unwrap(),
        "--offload-size",
        "2M",
    ]);
    pool.wait_workers(2);
    let film = media("a.mp4").canonicalize().unwrap();
    let socket = pool.socket.clone();
    // A connection per request, from 4 threads: both workers take requests
    // from the first moment.
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (socket, film) = (socket.clone(), film.clone());
            std::thread::spawn(move || {
                let (mut offloaded, mut served, mut busy) = (0, 0, 0);
                // Each window twice: its first answer streams while a chore
                // writes its header file, a later one is offloaded.
                let windows = (t..1000).step_by(4);
                for k in windows.clone().chain(windows) {
                    let mut c = Client::new(UnixStream::connect(&socket).unwrap());
                    let q = format!("start={}.{:02}", k / 100, k % 100);
                    let r = c.get(&film, &q, &[("HTTP_RANGE", "bytes=0-99")]);
                    match r.status {
                        206 => {
                            served += 1;
                            if r.header("X-Sendfile2").is_some() {
                                offloaded += 1;
                            } else {
                                assert_eq!(r.body.len(), 100, "{q}: streamed instead");
                            }
                        }
                        503 => {
                            assert!(
                                r.header("Retry-After").is_some(),
                                "{q}: 503 needs Retry-After"
                            );
                            busy += 1;
                        }
                        s => panic!("{q}: status {s} {}", r.text()),
                    }
                }
                (offloaded, served, busy)
            })
        })
        .collect();
    let (mut offloaded, mut served, mut busy) = (0, 0, 0);
    for t in threads {
        let (o, s, b) = t.join().unwrap();
        offloaded += o;
        served += s;
        busy += b;
    }
    assert!(served >= 1800, "{served} served, {busy} busy of 2000");
    assert!(offloaded > 0, "the offload folder was used");
    let total: u64 = std::fs::read_dir(&offload)
        .unwrap()
        .map(|e| std::fs::symlink_metadata(e.unwrap().path()).unwrap().len())
        .sum();
    let budget = 2u64 << 20;
    assert!(
        total * 10 <= budget * 11,
        "--offload-size 2M with 2 workers: the folder holds {total} bytes ({offloaded} offloaded)"
    );
}
