//! What opening a remote film and streaming it cost the origin, against the
//! test store of `origin::budget_tests` (127.0.0.1, counts requests and
//! bytes): index builds within their budget, reads of dropped streams
//! cancelled.

use super::*;
use crate::origin::budget_tests::{Film, KIB, MIB, Seen, settings, store};
use crate::server::fetch::{Fetcher, Take};
use std::time::{Duration, Instant, SystemTime};

/// Opens `film.mp4` on the store on `port` through a worker's link, as a
/// request would: what the job answered and how long it took.
fn open_film(port: u16, timeout: Duration, max_moov: u64) -> (Result<Opened, Fault>, Duration) {
    let (link, _chunks) = Link::start(&settings(port, timeout), || {}).unwrap();
    let started = Instant::now();
    let r = start_open(&link, "film.mp4", max_moov, Arc::default())
        .recv_timeout(Duration::from_secs(120))
        .expect("the job answered");
    (r, started.elapsed())
}

/// Starts opening `key` through `link`: where the answer comes.
fn start_open(
    link: &Link,
    key: &str,
    max_moov: u64,
    cancel: Arc<AtomicBool>,
) -> mpsc::Receiver<Result<Opened, Fault>> {
    let (tx, rx) = mpsc::channel();
    link.open(
        Arc::from(key),
        None,
        mp4::Limits {
            max_moov,
            ..Default::default()
        },
        cancel,
        move |r| {
            let _ = tx.send(r);
        },
    );
    rx
}

fn index_of(r: Result<Opened, Fault>) -> Arc<Index> {
    match r {
        Ok((_, Some(Ok(index)))) => index,
        Ok((_, Some(Err(e)))) => panic!("the build failed: {e}"),
        Ok((_, None)) => panic!("no build"),
        Err(f) => panic!("the origin failed: {}", f.detail()),
    }
}

fn media(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/media/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The top-level boxes of `data`: fourcc, offset, size.
fn top(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 8 <= data.len() {
        let size = u32::from_be_bytes(data[p..p + 4].try_into().unwrap()) as usize;
        out.push((data[p + 4..p + 8].try_into().unwrap(), p, size));
        p += size;
    }
    out
}

/// `data` with `pad` zeros at the end of every `mdat`; the `tfhd`s'
/// absolute base data offsets moved along, so the film stays the same.
fn padded(data: &[u8], pad: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shift = 0u64;
    for (fourcc, at, size) in top(data) {
        let start = out.len();
        out.extend_from_slice(&data[at..at + size]);
        match &fourcc {
            b"mdat" => {
                out.resize(out.len() + pad, 0);
                let grown = u32::try_from(size + pad).unwrap();
                out[start..start + 4].copy_from_slice(&grown.to_be_bytes());
                shift += pad as u64;
            }
            b"moof" => {
                for (f, t, s) in top(&out[start + 8..start + size]) {
                    if &f != b"traf" {
                        continue;
                    }
                    let traf = start + 8 + t;
                    for (g, h, _) in top(&out[traf + 8..traf + s]) {
                        let tfhd = traf + 8 + h;
                        if &g == b"tfhd" && out[tfhd + 11] & 1 != 0 {
                            let at = tfhd + 16..tfhd + 24;
                            let base = u64::from_be_bytes(out[at.clone()].try_into().unwrap());
                            out[at].copy_from_slice(&(base + shift).to_be_bytes());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn sparse_boxes_stop_at_the_request_budget() {
    // 100 000 boxes of 4 MiB (400 GB that are headers and zeros), then the
    // moov: one request per header. The store answers 1 000 at most.
    let film = Film {
        answers: 1000,
        ..Film::sparse_boxes(100_000, 4 * MIB)
    };
    let (port, seen) = store(film);
    let (r, _) = open_film(port, Duration::from_secs(10), MIB);
    let requests = seen.requests();
    let bytes = seen.bytes();
    eprintln!("sparse: {requests} requests, {} MiB", bytes / MIB);
    match r {
        Ok((_, Some(Err(mp4::Error::Unsupported(why))))) => {
            assert!(why.contains("origin requests"), "{why}")
        }
        Ok((_, Some(r))) => panic!("not stopped by the budget: {:?}", r.map(|_| ())),
        Ok((_, None)) => panic!("no build"),
        Err(f) => panic!(
            "not stopped by the budget but by the store, after {requests} requests: {}",
            f.detail()
        ),
    }
    // 64 + --max-moov / 8 KiB, the opening request included.
    assert!(requests <= 192, "{requests} requests");
    assert!(bytes < 8 * MIB, "{} MiB fetched", bytes / MIB);
}

#[test]
fn a_slow_origin_stops_at_the_time_budget() {
    // Each answer after the first waits 300 ms, within the 1 s origin
    // timeout: the build as a whole may take 4 timeouts.
    let film = Film {
        delay: Duration::from_millis(300),
        answers: 40,
        ..Film::sparse_boxes(100_000, 4 * MIB)
    };
    let (port, seen) = store(film);
    let (r, took) = open_film(port, Duration::from_secs(1), 64 * MIB);
    match r {
        Err(Fault::Timeout(why)) => assert!(why.contains("budget"), "{why}"),
        Err(f) => panic!(
            "not stopped by the time budget ({took:?}, {} requests): {f:?}",
            seen.requests()
        ),
        Ok(_) => panic!("built"),
    }
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(seen.requests() <= 16, "{} requests", seen.requests());
}

#[test]
fn builds_on_a_slow_origin_do_not_hold_up_another_film() {
    // Eight films whose store answers each request after 2 s (within the
    // 10 s timeout) are being indexed; a ninth, answered at once, is not
    // kept waiting for them.
    let film = Film {
        delay: Duration::from_secs(2),
        quick: Some("/quick.mp4"),
        ..Film::sparse_boxes(100_000, 4 * MIB)
    };
    let (port, _seen) = store(film);
    let (link, _chunks) = Link::start(&settings(port, Duration::from_secs(10)), || {}).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = (0..8)
        .map(|i| start_open(&link, &format!("slow{i}.mp4"), 64 * MIB, cancel.clone()))
        .collect();
    // Their opening requests are answered; their builds wait on probes.
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let quick =
        start_open(&link, "quick.mp4", MIB, Arc::default()).recv_timeout(Duration::from_secs(10));
    let took = started.elapsed();
    match quick {
        Ok(Ok((_, Some(Err(mp4::Error::Unsupported(_)))))) => {}
        Ok(other) => panic!("{:?}", other.map(|o| o.1.map(|r| r.map(|_| ())))),
        Err(_) => panic!("a film answered at once waited 10 s behind 8 slow ones"),
    }
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(slow.iter().all(|rx| rx.try_recv().is_err()));
    // Nobody waits for them any more: they stop before their next request.
    cancel.store(true, Relaxed);
    for rx in slow {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Err(Fault::Failed(why))) => assert!(why.contains("nobody waits"), "{why}"),
            other => panic!("{:?}", other.map(|r| r.map(|o| o.0))),
        }
    }
}

#[test]
fn films_index_with_few_requests_and_bytes() {
    let chunk = origin::Settings::default().chunk;
    // The film as it is (444 KB, the moov at its end), within one chunk.
    let a = media("a.mp4");
    let (port, seen) = store(Film::bytes(a.clone()));
    let (r, _) = open_film(port, Duration::from_secs(10), 64 * MIB);
    index_of(r);
    assert_eq!(seen.requests(), 1);
    assert_eq!(seen.bytes(), a.len() as u64);

    // Its mdat 5 MiB longer: the opening chunk and one probe at the moov.
    let long = padded(&a, 5 * MIB as usize);
    let (port, seen) = store(Film::bytes(long.clone()));
    let (r, _) = open_film(port, Duration::from_secs(10), 64 * MIB);
    eprintln!(
        "long: {} requests, {} KiB",
        seen.requests(),
        seen.bytes() / KIB
    );
    let index = index_of(r);
    let local = Index::build(&long, &mp4::Limits::default()).unwrap();
    assert_eq!(format!("{index:?}"), format!("{local:?}"));
    assert!(seen.requests() <= 2, "{} requests", seen.requests());
    assert!(
        seen.bytes() <= chunk + 64 * KIB,
        "{} KiB fetched",
        seen.bytes() / KIB
    );

    // Fragmented, 10 fragments of 3 MiB: a probe per fragment, which holds
    // its moof, not a chunk for the header and another for the moof.
    let frag = padded(&media("frag.mp4"), 3 * MIB as usize);
    let (port, seen) = store(Film::bytes(frag.clone()));
    let (r, _) = open_film(port, Duration::from_secs(10), 64 * MIB);
    eprintln!(
        "fragmented: {} requests, {} KiB",
        seen.requests(),
        seen.bytes() / KIB
    );
    let index = index_of(r);
    let local = Index::build(&frag, &mp4::Limits::default()).unwrap();
    assert_eq!(format!("{index:?}"), format!("{local:?}"));
    assert!(seen.requests() <= 13, "{} requests", seen.requests());
    assert!(
        seen.bytes() <= chunk + 10 * 64 * KIB,
        "{} KiB fetched",
        seen.bytes() / KIB
    );
}

/// Waits until `seen` has been quiet for a while.
fn settle(seen: &Seen) {
    let mut last = (u64::MAX, u64::MAX);
    while last != (seen.requests(), seen.bytes()) {
        last = (seen.requests(), seen.bytes());
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_dropped_stream_cancels_its_reads() {
    // 20 streams ask for their first chunk and go away at once; the store
    // takes 200 ms to answer and sends 1 MiB in 16 pieces 10 ms apart.
    let size = 64 * MIB;
    let film = Film {
        delay: Duration::from_millis(200),
        pace: Duration::from_millis(10),
        ..Film::new(size, |_, buf| buf.fill(0))
    };
    let (port, seen) = store(film);
    // The first answer comes without the delay: a read that is not dropped.
    let (link, chunks) = Link::start(&settings(port, Duration::from_secs(10)), || {}).unwrap();
    let object = Arc::new(Object {
        key: "film.mp4".into(),
        size,
        etag: Some("\"e\"".into()),
        version: None,
        modified: SystemTime::UNIX_EPOCH,
    });
    let mut kept = Fetcher::new(link.clone(), object.clone(), 0, size);
    assert!(matches!(kept.take(0, 100), Ok(Take::Pending)));
    let c = chunks.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(kept.arrived(c));
    for slot in 1..=20 {
        let mut f = Fetcher::new(link.clone(), object.clone(), slot, size);
        assert!(matches!(f.take(0, 100), Ok(Take::Pending)));
        drop(f);
    }
    settle(&seen);
    eprintln!(
        "dropped: {} requests, {} KiB, {} answered whole",
        seen.requests(),
        seen.bytes() / KIB,
        seen.completed()
    );
    assert_eq!(
        seen.completed(),
        1,
        "reads for dropped streams went on ({} requests, {} KiB)",
        seen.requests(),
        seen.bytes() / KIB
    );
    assert!(
        seen.bytes() < 4 * MIB,
        "{} KiB sent for 20 dropped streams",
        seen.bytes() / KIB
    );
    assert!(chunks.try_recv().is_err());
}
