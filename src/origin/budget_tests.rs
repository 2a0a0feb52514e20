//! What reading an object for an index build costs the origin: a tiny
//! HTTP/1.1 store on 127.0.0.1 in a thread that answers byte ranges of a
//! film made up on the fly and counts the requests and bytes it sent. The
//! server's own tests (`server::remote`) use it too.

use super::hostile_tests::{range_of, read_head};
use super::*;
use crate::mp4::ReadAt;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

pub(crate) const KIB: u64 = 1 << 10;
pub(crate) const MIB: u64 = 1 << 20;

/// The bytes of a film at an offset, written into the buffer given.
pub(crate) type Content = Arc<dyn Fn(u64, &mut [u8]) + Send + Sync>;

/// A film a test store holds, and how it answers.
#[derive(Clone)]
pub(crate) struct Film {
    pub size: u64,
    pub content: Content,
    /// Waited before each answer but the first, and those for `quick`.
    pub delay: Duration,
    /// A key answered at once.
    pub quick: Option<&'static str>,
    /// Waited between 64 KiB pieces of a body.
    pub pace: Duration,
    /// Requests answered; later ones get a 404.
    pub answers: u64,
}

impl Film {
    pub(crate) fn new(size: u64, content: impl Fn(u64, &mut [u8]) + Send + Sync + 'static) -> Film {
        Film {
            size,
            content: Arc::new(content),
            delay: Duration::ZERO,
            quick: None,
            pace: Duration::ZERO,
            answers: u64::MAX,
        }
    }

    /// The film held in memory.
    pub(crate) fn bytes(data: Vec<u8>) -> Film {
        let size = data.len() as u64;
        Film::new(size, move |at, buf| {
            let n = data.read_at(buf, at).unwrap();
            buf[n..].fill(0);
        })
    }

    /// `n` boxes `free` of `each` bytes (headers only, the rest zeros) and
    /// a 16-byte `moov` after them.
    pub(crate) fn sparse_boxes(n: u64, each: u64) -> Film {
        let head = {
            let mut h = u32::try_from(each).unwrap().to_be_bytes().to_vec();
            h.extend_from_slice(b"free");
            h
        };
        let moov = [0, 0, 0, 16, b'm', b'o', b'o', b'v', 0, 0, 0, 0, 0, 0, 0, 0];
        let boxes = n * each;
        Film::new(boxes + 16, move |at, buf| {
            for (i, b) in buf.iter_mut().enumerate() {
                let p = at + i as u64;
                *b = if p >= boxes {
                    moov[(p - boxes) as usize]
                } else {
                    head.get((p % each) as usize).copied().unwrap_or(0)
                };
            }
        })
    }
}

/// What a test store saw and sent.
#[derive(Default)]
pub(crate) struct Seen {
    pub requests: AtomicU64,
    /// Body bytes written.
    pub bytes: AtomicU64,
    /// Bodies written whole.
    pub completed: AtomicU64,
}

impl Seen {
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(SeqCst)
    }
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(SeqCst)
    }
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(SeqCst)
    }
}

/// Starts a store holding `film` as `film.mp4`: its port and what it saw.
pub(crate) fn store(film: Film) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            // A head and its body in two writes, without 40 ms between.
            let _ = conn.set_nodelay(true);
            let (film, seen) = (film.clone(), Arc::clone(&counts));
            std::thread::spawn(move || {
                while let Some(head) = read_head(&mut conn) {
                    if !answer(&film, &seen, &head, &mut conn) {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Answers one request; false once the client is gone.
fn answer(film: &Film, seen: &Seen, head: &str, conn: &mut TcpStream) -> bool {
    let n = seen.requests.fetch_add(1, SeqCst) + 1;
    if n > 1 && !film.quick.is_some_and(|k| head.contains(k)) {
        std::thread::sleep(film.delay);
    }
    if n > film.answers {
        return conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .is_ok();
    }
    let Some((a, b)) = range_of(head).filter(|(a, _)| *a < film.size) else {
        return conn
            .write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n")
            .is_ok();
    };
    let b = b.min(film.size - 1);
    let answer = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{}\r\n\
         Content-Length: {}\r\nETag: \"e\"\r\n\
         Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n",
        film.size,
        b - a + 1
    );
    if conn.write_all(answer.as_bytes()).is_err() {
        return false;
    }
    let mut at = a;
    let mut piece = vec![0u8; 64 << 10];
    while at <= b {
        let n = (b + 1 - at).min(piece.len() as u64) as usize;
        (film.content)(at, &mut piece[..n]);
        if conn.write_all(&piece[..n]).is_err() {
            return false;
        }
        seen.bytes.fetch_add(n as u64, SeqCst);
        at += n as u64;
        if at <= b {
            std::thread::sleep(film.pace);
        }
    }
    seen.completed.fetch_add(1, SeqCst);
    true
}

/// Settings for the store on `port`.
pub(crate) fn settings(port: u16, timeout: Duration) -> Settings {
    Settings {
        url: format!("http://127.0.0.1:{port}/"),
        timeout,
        ..Settings::default()
    }
}

/// `film.mp4` on a store holding `film`, opened: the reader, its runtime
/// and what the store saw.
fn reader(film: Film) -> (Reader, tokio::runtime::Runtime, Arc<Seen>) {
    let (port, seen) = store(film);
    let origin = Origin::new(&settings(port, Duration::from_secs(10))).unwrap();
    let rt = runtime().unwrap();
    let (object, first) = rt.block_on(origin.open("film.mp4", origin.chunk)).unwrap();
    let reader = Reader::new(rt.handle().clone(), Arc::new(origin), object, first);
    (reader, rt, seen)
}

#[test]
fn a_box_header_costs_a_probe_not_a_chunk() {
    let (reader, _rt, seen) = reader(Film::sparse_boxes(100, 4 * MIB));
    let opened = seen.bytes();
    let mut head = [0u8; 32];
    for k in 1..=10 {
        reader.read_exact_at(&mut head, k * 4 * MIB).unwrap();
        assert_eq!(&head[4..8], b"free");
    }
    let probes = seen.bytes() - opened;
    assert_eq!(seen.requests(), 11);
    assert!(
        probes <= 10 * 64 * KIB,
        "10 box headers cost {} KiB",
        probes / KIB
    );
}

#[test]
fn the_reader_holds_about_a_moov_and_a_chunk() {
    // Three reads of 40 MiB: the pieces kept may not add up to 120 MiB
    // (--max-moov is 64 MiB by default): reading them again costs requests.
    let (reader, _rt, seen) = reader(Film::sparse_boxes(4, 64 * MIB));
    let mut buf = vec![0u8; (40 * MIB) as usize];
    for k in 0..3 {
        reader.read_exact_at(&mut buf, k * 64 * MIB + MIB).unwrap();
    }
    let first = seen.requests();
    for k in 0..3 {
        reader.read_exact_at(&mut buf, k * 64 * MIB + MIB).unwrap();
    }
    assert!(
        seen.requests() > first,
        "three pieces of 40 MiB were all kept"
    );
}
