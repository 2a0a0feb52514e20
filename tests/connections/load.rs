//! Load from many client threads, counted: what reloads and signals are
//! measured with.
#![allow(dead_code, unused_imports)]

use super::super::common::{Pool, media, require_tool};
use super::*;
use mp4_fcgi::fcgi;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// What load threads saw.
#[derive(Default)]
pub struct Tally {
    pub ok: u64,
    pub retries: u64,
    pub failed: u64,
    pub failures: Vec<String>,
    pub done: Vec<Instant>,
}

impl Tally {
    pub fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.failures.len() < 6 {
            self.failures.push(why);
        }
    }
    pub fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.retries += o.retries;
        self.failed += o.failed;
        self.failures
            .extend(o.failures.into_iter().take(6 - self.failures.len().min(6)));
        self.done.extend(o.done);
    }
    pub fn before(&self, t: Instant) -> usize {
        self.done.iter().filter(|d| **d < t).count()
    }
    pub fn after(&self, t: Instant) -> usize {
        self.done.iter().filter(|d| **d > t).count()
    }
    /// No failure, and requests completed before `first` and after `last`.
    pub fn assert_clean(&self, what: &str, first: Instant, last: Instant) {
        eprintln!(
            "{what}: {} requests, {} failed, {} retried on a fresh connection",
            self.ok, self.failed, self.retries
        );
        assert!(
            self.failed == 0,
            "{what}: {} of {} requests failed, e.g. {:#?}",
            self.failed,
            self.ok + self.failed,
            self.failures
        );
        assert!(
            self.before(first) > 0 && self.after(last) > 0,
            "{what}: the load must span the signals ({} requests before the first, {} after the last)",
            self.before(first),
            self.after(last)
        );
    }
}

/// `n` threads, each calling its step until `stop`.
pub fn run_load<F>(
    n: usize,
    stop: &Arc<AtomicBool>,
    mut make: impl FnMut(usize) -> F,
) -> Vec<thread::JoinHandle<Tally>>
where
    F: FnMut(&mut Tally) + Send + 'static,
{
    (0..n)
        .map(|i| {
            let mut step = make(i);
            let stop = stop.clone();
            thread::spawn(move || {
                let mut t = Tally::default();
                while !stop.load(Relaxed) {
                    step(&mut t);
                }
                t
            })
        })
        .collect()
}

pub fn join_load(handles: Vec<thread::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for h in handles {
        all.merge(h.join().unwrap());
    }
    all
}

/// Sends `sigs` to the master `gap` apart after `lead`: (first, last) sent.
pub fn send_signals(
    pool: &Pool,
    sigs: &[i32],
    lead: Duration,
    gap: Duration,
) -> (Instant, Instant) {
    thread::sleep(lead);
    let first = Instant::now();
    for (i, s) in sigs.iter().enumerate() {
        if i > 0 {
            thread::sleep(gap);
        }
        pool.signal(*s);
    }
    (first, Instant::now())
}

/// Waits until the master has `n` workers and none of `old`.
pub fn wait_replaced(pool: &Pool, old: &[i32], n: usize, within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let w = pool.workers();
        if w.len() == n && !w.iter().any(|p| old.contains(p)) {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "workers {w:?}: expected {n}, none of {old:?}"
        );
        thread::sleep(ms(20));
    }
}

pub fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
    )
}

pub enum Miss {
    /// The connection was closed before any byte of the answer arrived.
    Early(String),
    Failed(String),
}

/// One request on `c`, its answer checked against `want`.
pub fn exchange(c: &mut Strict, id: u16, req: &[u8], want: &[u8]) -> Result<(), Miss> {
    let before = c.received;
    if let Err(e) = c.stream.write_all(req) {
        let why = format!("write: {e}");
        return Err(if is_gone(&e) {
            Miss::Early(why)
        } else {
            Miss::Failed(why)
        });
    }
    let r = match read_reply(c, id, &[]) {
        Ok(r) => r,
        Err(Fail::Eof) if c.received == before => {
            return Err(Miss::Early("closed before answering".into()));
        }
        Err(Fail::Io(e)) if is_gone(&e) && c.received == before => {
            return Err(Miss::Early(format!("{e} before answering")));
        }
        Err(e) => {
            return Err(Miss::Failed(format!(
                "{e} ({} bytes of the answer in)",
                c.received - before
            )));
        }
    };
    check_clip(&r, want).map_err(Miss::Failed)
}

/// A FastCGI load client: one-shot (a connection per request, never
/// retried) or kept-alive. A kept-alive client may retry, when `retry`, a
/// request its *reused* connection lost before any byte of the answer, once,
/// on a fresh connection.
pub struct FcgiClient {
    pub socket: PathBuf,
    pub keep: bool,
    pub retry: bool,
    pub file: PathBuf,
    pub query: &'static str,
    pub want: Arc<Vec<u8>>,
    pub conn: Option<Strict>,
    pub id: u16,
}

impl FcgiClient {
    pub fn new(
        pool: &Pool,
        keep: bool,
        retry: bool,
        query: &'static str,
        want: &Arc<Vec<u8>>,
    ) -> Self {
        FcgiClient {
            socket: pool.socket.clone(),
            keep,
            retry,
            file: media("a.mp4"),
            query,
            want: want.clone(),
            conn: None,
            id: 0,
        }
    }

    pub fn fresh(&self, req: &[u8]) -> Result<Strict, String> {
        let mut c =
            Strict::new(connect(&self.socket, 5 * SEC).map_err(|e| format!("connect: {e}"))?);
        match exchange(&mut c, self.id, req, &self.want) {
            Ok(()) => Ok(c),
            Err(Miss::Early(m) | Miss::Failed(m)) => Err(m),
        }
    }

    pub fn step(&mut self, t: &mut Tally) {
        self.id = self.id % 50_000 + 1;
        let req = request(self.id, &self.file, self.query, self.keep);
        let kind = if self.keep { "kept-alive" } else { "one-shot" };
        let result = match self.conn.take() {
            None => self
                .fresh(&req)
                .map_err(|e| format!("{kind}, fresh connection: {e}")),
            Some(mut c) => match exchange(&mut c, self.id, &req, &self.want) {
                Ok(()) => Ok(c),
                Err(Miss::Early(why)) if self.retry => {
                    t.retries += 1;
                    self.fresh(&req).map_err(|e| {
                        format!("{kind}: retry on a fresh connection after '{why}' failed: {e}")
                    })
                }
                Err(Miss::Early(m) | Miss::Failed(m)) => {
                    Err(format!("{kind}, reused connection: {m}"))
                }
            },
        };
        match result {
            Ok(c) => {
                t.ok += 1;
                t.done.push(Instant::now());
                if self.keep {
                    self.conn = Some(c);
                }
            }
            Err(e) => t.fail(e),
        }
    }
}

pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

pub fn parse_http(all: &[u8]) -> Result<HttpReply, String> {
    let end =
        find(all, b"\r\n\r\n").ok_or_else(|| format!("no response head in {} bytes", all.len()))?;
    let head = String::from_utf8_lossy(&all[..end]).to_ascii_lowercase();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", head.lines().next()))?;
    Ok(HttpReply {
        status,
        head,
        body: all[end + 4..].to_vec(),
    })
}

pub fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A GET over a new connection with `Connection: close`, read to the end.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Result<HttpReply, String> {
    let mut s =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("{path}: connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{path}: write: {e}"))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .map_err(|e| format!("{path}: {e} after {} bytes", all.len()))?;
    let r = parse_http(&all).map_err(|e| format!("{path}: {e}"))?;
    if let Some(len) = content_length(&r.head)
        && len != r.body.len()
    {
        return Err(format!(
            "{path}: {} body bytes, Content-Length {len}",
            r.body.len()
        ));
    }
    Ok(r)
}
