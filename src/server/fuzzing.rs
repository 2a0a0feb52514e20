//! A whole connection under a scripted peer, for fuzzing: the FastCGI codec,
//! the handler (jobs resolved when the script says) and the body writer, on
//! a socket whose reads and writes arrive in arbitrary pieces.
//!
//! The oracle: what the peer receives is a well-formed record stream, and
//! every request answered in full carries exactly the bytes an independent
//! rendering of its response gives (the head, then the Layout's bytes).

use super::answer::{Ctx, Prepared};
use super::cache::Caches;
use super::config::Config;
use super::connection::{Answer, Connection, Handler, Verdict};
use super::flow::{self, Outcome};
use super::jobs::{Done, Job, JobKey};
use super::stats::Stats;
use super::transport::Transport;
use super::walk::Walk;
use crate::fcgi::{self, Request};
use crate::http;
use crate::mp4::{self, Index};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A socket fed and drained by the script.
#[derive(Default)]
struct Peer {
    /// Bytes the peer has sent that the server has not read.
    inbox: VecDeque<u8>,
    /// The peer closed its side.
    closed: bool,
    /// What the server sent.
    received: Vec<u8>,
    /// Bytes the socket accepts before it blocks.
    room: usize,
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            return if self.closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.inbox.len());
        for (dst, src) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.received.extend_from_slice(&buf[..n]);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl super::body::Socket for Peer {
    fn send_file(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut buf = vec![0u8; len.min(self.room)];
        let n = file.read_at(&mut buf, offset)?;
        self.received.extend_from_slice(&buf[..n]);
        self.room -= n;
        Ok(n)
    }
    fn shutdown_write(&mut self) {}
}

/// The handler, with jobs that run when the script says.
struct Service {
    config: Config,
    caches: Caches,
    stats: Stats,
    jobs: Vec<(u64, JobKey, Job, Box<Walk>, bool)>,
    serial: u64,
    ready: Vec<(u64, Prepared)>,
}

impl Service {
    fn ctx(&mut self, fcgi: bool) -> Ctx<'_> {
        let _ = fcgi;
        Ctx {
            config: &self.config,
            caches: &mut self.caches,
            stats: self.stats,
            pool_start: 0,
            limits: &LIMITS,
            offload: None,
            inflight: 0,
            link: None,
        }
    }

    /// Runs the jobs waiting, as the helper thread would.
    fn run_jobs(&mut self) {
        for (serial, key, job, resume, fcgi) in std::mem::take(&mut self.jobs) {
            let done = run(job);
            flow::remember(key, &done, &self.config, &mut self.caches);
            match flow::resume(resume, &done, &mut self.ctx(fcgi)) {
                Outcome::Ready(p) => self.ready.push((serial, p)),
                Outcome::Wait {
                    key,
                    job,
                    walk: resume,
                } => {
                    self.jobs.push((serial, key, job, resume, fcgi));
                }
            }
        }
    }
}

static LIMITS: mp4::Limits = mp4::Limits { max_moov: 1 << 20 };

fn run(job: Job) -> Done {
    match job {
        Job::Index { file, limits } => Done::Index(Index::build(&file, &limits).map(Arc::new)),
        Job::Plan {
            index,
            want,
            style,
            settings,
            known,
        } => Done::Plan(crate::package::build(
            &index, &want, &style, &settings, known,
        )),
        // The harness has no origin.
        Job::Object { .. } => Done::Object(Err(crate::origin::Fault::Failed("no origin".into()))),
    }
}

impl Handler for Service {
    fn request(&mut self, r: &Request, fcgi: bool, _slot: usize) -> Answer {
        match flow::handle(&r.params, r.params_overflow, &mut self.ctx(fcgi)) {
            Outcome::Ready(p) => Answer::Now(p),
            Outcome::Wait {
                key,
                job,
                walk: resume,
            } => {
                self.serial += 1;
                self.jobs.push((self.serial, key, job, resume, fcgi));
                Answer::Later(self.serial)
            }
        }
    }
    fn overloaded(&mut self) -> Prepared {
        Prepared::overloaded()
    }
    fn ended(&mut self, _e: super::connection::Ended) {}
}

/// The requests a script may send whole: the params of each.
fn canned(media: &Path) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let file = media.as_os_str().as_encoded_bytes().to_vec();
    let req = |query: &str, extra: &[(&str, &str)]| {
        let mut v = vec![
            (b"SCRIPT_FILENAME".to_vec(), file.clone()),
            (b"REQUEST_METHOD".to_vec(), b"GET".to_vec()),
            (b"QUERY_STRING".to_vec(), query.as_bytes().to_vec()),
        ];
        for (n, x) in extra {
            v.push((n.as_bytes().to_vec(), x.as_bytes().to_vec()));
        }
        v
    };
    // Windows that fit a 2-second film.
    vec![
        req("", &[]),
        req("start=0.5&end=1.5", &[]),
        req("start=1.2", &[("HTTP_RANGE", "bytes=100-5000,9000-")]),
        req("end=0.6", &[("REQUEST_METHOD", "HEAD")]),
        req("start=99", &[]),
        req("start=0.3", &[("HTTP_RANGE", "bytes=-300")]),
    ]
}

/// What a request's full answer must be: its head, then its body's bytes
/// (rendered once per film and request).
fn expected(k: usize, params: &[(Vec<u8>, Vec<u8>)], media: &Path) -> Vec<u8> {
    thread_local! {
        static DONE: std::cell::RefCell<HashMap<(PathBuf, usize), Vec<u8>>> =
            std::cell::RefCell::new(HashMap::new());
    }
    let key = (media.to_path_buf(), k);
    if let Some(v) = DONE.with(|d| d.borrow().get(&key).cloned()) {
        return v;
    }
    let v = render(params, media);
    DONE.with(|d| d.borrow_mut().insert(key, v.clone()));
    v
}

fn render(params: &[(Vec<u8>, Vec<u8>)], media: &Path) -> Vec<u8> {
    let mut s = Service {
        config: Config::default(),
        caches: Caches::new(64 << 20),
        stats: stats(),
        jobs: Vec::new(),
        serial: 0,
        ready: Vec::new(),
    };
    let params = fcgi::Params::from_pairs(params.iter().map(|(n, v)| (&n[..], &v[..])));
    let p = match flow::handle(&params, false, &mut s.ctx(true)) {
        Outcome::Ready(p) => p,
        Outcome::Wait {
            key,
            job,
            walk: resume,
        } => {
            s.jobs.push((0, key, job, resume, true));
            while s.ready.is_empty() && !s.jobs.is_empty() {
                s.run_jobs();
            }
            match s.ready.pop() {
                Some((_, p)) => p,
                None => return Vec::new(),
            }
        }
    };
    let mut out = p.head.clone();
    let file = File::open(media).ok();
    for piece in &p.body {
        match piece {
            http::Piece::Bytes(b) => out.extend_from_slice(b),
            http::Piece::Range(r) => {
                if let (Some(l), Some(f)) = (&p.layout, &file) {
                    let _ = l.copy_to(r.clone(), f, &mut out);
                }
            }
        }
    }
    out
}

thread_local! {
    static STATS: Stats = Stats::new().expect("a shared mapping for the counters");
}

fn stats() -> Stats {
    STATS.with(|s| *s)
}

/// One run: interprets `data` as a script, then checks what the peer got.
/// Panics when the oracle fails; returns how many answers it compared whole.
pub fn run_script(data: &[u8], media: &Path) -> usize {
    let media = PathBuf::from(media);
    let requests = canned(&media);
    // Scripts starting with an even byte find the caches warm (fast runs);
    // odd ones start cold, so their requests wait for index jobs.
    let warm = data.first().is_some_and(|b| b % 2 == 0);
    let caches = if warm {
        WARM.with(|w| w.borrow_mut().take())
            .unwrap_or_else(|| Caches::new(64 << 20))
    } else {
        Caches::new(64 << 20)
    };
    let mut service = Service {
        config: Config::default(),
        caches,
        stats: stats(),
        jobs: Vec::new(),
        serial: 0,
        ready: Vec::new(),
    };
    let conn_transport = Transport::Fcgi(fcgi::Conn::new(
        fcgi::Limits {
            max_params: 4096,
            max_stdin: 1 << 16,
            max_records: 64,
        },
        fcgi::Capabilities {
            max_conns: 1,
            max_reqs: 1,
            mpxs_conns: false,
        },
    ));
    let mut conn = Connection::new(Peer::default(), conn_transport, 0, Instant::now());
    let mut to_send: Vec<u8> = Vec::new();
    // The canned requests sent under each id, in order (each gets one
    // END_REQUEST); `pure` while no raw bytes were sent.
    let mut sent: HashMap<u16, VecDeque<usize>> = HashMap::new();
    let mut pure = true;
    let mut scratch = Vec::new();
    let mut open = true;
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let mut steps = 0;
    while let Some(op) = next() {
        steps += 1;
        if steps > 400 {
            break;
        }
        match op % 16 {
            0..=3 => {
                let k = usize::from(next().unwrap_or(0)) % requests.len();
                let id = u16::from(next().unwrap_or(1)) % 4 + 1;
                let keep = next().unwrap_or(1) & 3 != 0;
                sent.entry(id).or_default().push_back(k);
                fcgi::encode_begin_request(id, fcgi::FCGI_RESPONDER, keep, &mut to_send);
                let pairs: Vec<(&[u8], &[u8])> =
                    requests[k].iter().map(|(n, v)| (&n[..], &v[..])).collect();
                fcgi::encode_params(&pairs, id, &mut to_send);
                fcgi::encode_record(fcgi::FCGI_STDIN, id, &[], &mut to_send);
            }
            4 | 5 => {
                // A management record, or anything else under id 0.
                let rtype = next().unwrap_or(9);
                let len = usize::from(next().unwrap_or(0) % 24);
                let content: Vec<u8> = (0..len).map(|_| next().unwrap_or(0)).collect();
                fcgi::encode_record(rtype, 0, &content, &mut to_send);
            }
            6 => {
                let id = u16::from(next().unwrap_or(1)) % 4 + 1;
                fcgi::encode_record(fcgi::FCGI_ABORT_REQUEST, id, &[], &mut to_send);
            }
            15 => {
                // Raw bytes: anything at all.
                pure = false;
                let len = usize::from(next().unwrap_or(0) % 32);
                to_send.extend((0..len).map(|_| next().unwrap_or(0)));
            }
            7..=9 => {
                let n = usize::from(next().unwrap_or(0)) * 8 + 1;
                let n = n.min(to_send.len());
                conn.sock.inbox.extend(to_send.drain(..n));
                conn.readable = true;
            }
            10..=12 => {
                let n = usize::from(next().unwrap_or(0)) * 97 + 1;
                conn.sock.room += n;
                conn.writable = true;
            }
            13 => service.run_jobs(),
            _ => {
                if next().unwrap_or(0) == 0 {
                    conn.sock.closed = true;
                    conn.readable = true;
                }
            }
        }
        if open {
            for (serial, p) in std::mem::take(&mut service.ready) {
                conn.answer(serial, p);
            }
            if matches!(
                conn.pump(Instant::now(), &mut service, &mut scratch),
                Verdict::Close
            ) {
                open = false;
            }
        }
    }
    // The rest goes out and everything drains.
    conn.sock.inbox.extend(to_send.drain(..));
    conn.readable = true;
    for _ in 0..10_000 {
        if !open {
            break;
        }
        service.run_jobs();
        for (serial, p) in std::mem::take(&mut service.ready) {
            conn.answer(serial, p);
        }
        conn.sock.room = 1 << 20;
        conn.writable = true;
        let before = conn.sock.received.len();
        if matches!(
            conn.pump(Instant::now(), &mut service, &mut scratch),
            Verdict::Close
        ) {
            open = false;
        }
        if conn.sock.received.len() == before && service.jobs.is_empty() && service.ready.is_empty()
        {
            break;
        }
    }
    let compared = check(&conn.sock.received, &mut sent, pure, &requests, &media);
    if warm {
        WARM.with(|w| *w.borrow_mut() = Some(service.caches));
    }
    compared
}

thread_local! {
    static WARM: std::cell::RefCell<Option<Caches>> = const { std::cell::RefCell::new(None) };
}

/// The oracle.
fn check(
    got: &[u8],
    sent: &mut HashMap<u16, VecDeque<usize>>,
    pure: bool,
    requests: &[Vec<(Vec<u8>, Vec<u8>)>],
    media: &Path,
) -> usize {
    let mut stdout: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut compared = 0;
    let mut b = got;
    while !b.is_empty() {
        let fcgi::Status::Complete(h) = fcgi::parse_header(b) else {
            // A cut connection may end inside a header.
            return compared;
        };
        assert_eq!(h.version, 1, "a record header that is not one");
        assert!(
            (fcgi::FCGI_END_REQUEST..=fcgi::FCGI_UNKNOWN_TYPE).contains(&h.rtype)
                && h.rtype != fcgi::FCGI_PARAMS
                && h.rtype != fcgi::FCGI_STDIN,
            "record type {} from a responder",
            h.rtype
        );
        let Some(record) = b.get(..h.record_len()) else {
            // A cut connection may end inside a record.
            return compared;
        };
        let content = &record[8..8 + usize::from(h.content_length)];
        match h.rtype {
            fcgi::FCGI_STDOUT => stdout
                .entry(h.request_id)
                .or_default()
                .extend_from_slice(content),
            fcgi::FCGI_END_REQUEST => {
                assert_eq!(content.len(), 8);
                let answer = stdout.remove(&h.request_id).unwrap_or_default();
                let app = u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                let complete = content[4] == fcgi::FCGI_REQUEST_COMPLETE && app == 0;
                let k = sent.get_mut(&h.request_id).and_then(VecDeque::pop_front);
                if let (true, true, Some(k)) = (pure, complete, k) {
                    let want = expected(k, &requests[k], media);
                    assert!(
                        answer == want,
                        "request {} (canned {k}): {} bytes answered, {} expected",
                        h.request_id,
                        answer.len(),
                        want.len()
                    );
                    compared += 1;
                }
            }
            _ => {}
        }
        b = &b[h.record_len()..];
    }
    compared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media/a_faststart.mp4")
    }

    #[test]
    fn scripted_connections_keep_their_records_whole() {
        // Requests, mid-stream management records, short writes, late jobs.
        let script = [
            0, 1, 1, 1, // canned 1 as id 2, kept
            7, 255, 10, 3, 13, 10, 1, // deliver, a little room, jobs, more room
            4, 9, 0, 7, 4, // GET_VALUES mid-body
            10, 255, 10, 255, 0, 2, 3, 1, 7, 255, 13, 10, 255,
        ];
        assert!(
            run_script(&script, &media()) >= 1,
            "the scripted answer is compared"
        );
        // Many random scripts: the oracle must have compared some answers.
        let mut compared = 0;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            let data: Vec<u8> = (0..96)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            compared += run_script(&data, &media());
        }
        assert!(compared > 20, "only {compared} answers compared");
    }
}
