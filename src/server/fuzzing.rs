//! A whole connection under a scripted peer, for fuzzing: the FastCGI
//! codec, the request stages (jobs run when the script says, by the helper
//! thread's own runner) and the body writer, on a socket whose reads and
//! writes arrive in arbitrary pieces. The script and its oracle live with
//! the fuzz code (fuzz/oracle/connection.rs); this is only the seam.

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
use crate::mp4;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
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
    fn new(caches: Caches) -> Service {
        Service {
            config: Config::default(),
            caches,
            stats: stats(),
            jobs: Vec::new(),
            serial: 0,
            ready: Vec::new(),
        }
    }

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
            // The helper thread's own runner; the harness has no origin.
            let done = super::jobs::run(job).unwrap_or_else(|| {
                Done::Object(Err(crate::origin::Fault::Failed("no origin".into())))
            });
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

static LIMITS: mp4::Limits = mp4::Limits {
    max_moov: 1 << 20,
    max_cue_bytes: 1 << 20,
};

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

/// An independent rendering of one request's full answer: its head, then
/// its layout's bytes read from `media` (no connection, no body writer).
pub fn render(params: &[(Vec<u8>, Vec<u8>)], media: &Path) -> Vec<u8> {
    let mut s = Service::new(Caches::new(64 << 20));
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

/// A FastCGI connection to a scripted peer, and the worker behind it.
pub struct Harness {
    conn: Connection<Peer>,
    service: Service,
    scratch: Vec<u8>,
    open: bool,
    warm: bool,
}

impl Harness {
    /// A connection on a fresh worker; `warm`: with the caches the last
    /// warm harness left (fast runs), else cold (requests wait for jobs).
    pub fn new(warm: bool) -> Harness {
        let caches = if warm {
            WARM.with(|w| w.borrow_mut().take())
                .unwrap_or_else(|| Caches::new(64 << 20))
        } else {
            Caches::new(64 << 20)
        };
        let transport = Transport::Fcgi(fcgi::Conn::new(
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
        Harness {
            conn: Connection::new(Peer::default(), transport, 0, Instant::now()),
            service: Service::new(caches),
            scratch: Vec::new(),
            open: true,
            warm,
        }
    }

    /// The peer sends `bytes`.
    pub fn deliver(&mut self, bytes: impl IntoIterator<Item = u8>) {
        self.conn.sock.inbox.extend(bytes);
        self.conn.readable = true;
    }

    /// The socket accepts `n` more bytes.
    pub fn room(&mut self, n: usize) {
        self.conn.sock.room += n;
        self.conn.writable = true;
    }

    /// The peer closes its side.
    pub fn close(&mut self) {
        self.conn.sock.closed = true;
        self.conn.readable = true;
    }

    /// Runs the jobs requests wait for.
    pub fn run_jobs(&mut self) {
        self.service.run_jobs();
    }

    /// Hands finished answers to the connection and lets it work; false
    /// once the connection has closed.
    pub fn pump(&mut self) -> bool {
        if self.open {
            for (serial, p) in std::mem::take(&mut self.service.ready) {
                self.conn.answer(serial, p);
            }
            let verdict = self
                .conn
                .pump(Instant::now(), &mut self.service, &mut self.scratch);
            self.open = !matches!(verdict, Verdict::Close);
        }
        self.open
    }

    /// Jobs run and room given until nothing moves; returns all the peer
    /// received.
    pub fn drain(&mut self) -> &[u8] {
        for _ in 0..10_000 {
            if !self.open {
                break;
            }
            self.run_jobs();
            self.room(1 << 20);
            let before = self.conn.sock.received.len();
            self.pump();
            if self.conn.sock.received.len() == before
                && self.service.jobs.is_empty()
                && self.service.ready.is_empty()
            {
                break;
            }
        }
        &self.conn.sock.received
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.warm {
            let caches = std::mem::replace(&mut self.service.caches, Caches::new(0));
            WARM.with(|w| *w.borrow_mut() = Some(caches));
        }
    }
}

thread_local! {
    static WARM: std::cell::RefCell<Option<Caches>> = const { std::cell::RefCell::new(None) };
}
