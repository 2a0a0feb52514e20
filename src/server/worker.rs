//! A worker: one event loop (mio, created after fork) serving many
//! connections at once. Each connection streams its body from the file with
//! `pread` into a bounded buffer, refilled only when the socket drained.

use super::cache::Caches;
use super::config::Config;
use super::handler::{self, Chunk, Ctx, Prepared};
use super::listen::Listener;
use super::stats::Stats;
use super::stream::{Acceptor, Stream};
use crate::fcgi::{self, Event};
use crate::mp4::{self, ReadAt, Segment};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Body bytes buffered per stream before we wait for the socket.
const FILL: usize = 64 << 10;
/// Unparsed input a connection may hold (a request's params are far smaller).
const MAX_INBUF: usize = 256 << 10;
const SIGNALS: Token = Token(usize::MAX - 1);
const CLIENT_BASE: usize = 1 << 16;

/// A response being written.
struct Streaming {
    id: u16,
    /// Plain HTTP (`--http`): body bytes unframed, no END_REQUEST.
    raw: bool,
    chunks: std::collections::VecDeque<Chunk>,
    layout: Option<std::rc::Rc<mp4::Layout>>,
    file: Option<std::rc::Rc<std::fs::File>>,
}

struct Client {
    stream: Stream,
    fcgi: fcgi::Conn,
    /// A `--http` connection, and whether it is kept alive.
    http: Option<bool>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    resp: Option<Streaming>,
    /// Close once the output is flushed.
    closing: bool,
    /// Half-closed after the last response: input is drained and dropped
    /// until the peer closes or this deadline passes. Closing at once could
    /// make a peer still writing (its empty STDIN record) fail and lose the reply.
    lingering: Option<Instant>,
}

/// How long a half-closed connection may keep us waiting for the peer's EOF.
const LINGER: Duration = Duration::from_secs(2);

enum Pump {
    Open,
    Close,
}

pub struct Worker<'a> {
    config: &'a Config,
    stats: Stats,
    pool_start: u64,
    limits: mp4::Limits,
    caches: Caches,
    poll: Poll,
    acceptors: Vec<Acceptor>,
    /// Acceptors from this index on speak HTTP (`--http`).
    first_http: usize,
    accepting: bool,
    /// When accept failed for lack of fds: try again then.
    accept_retry: Option<Instant>,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    live: usize,
    draining: bool,
    served: u64,
}

fn fcgi_limits(config: &Config) -> fcgi::Limits {
    fcgi::Limits {
        max_params: config.max_params,
        ..fcgi::Limits::default()
    }
}

impl<'a> Worker<'a> {
    pub fn new(
        config: &'a Config,
        listeners: &[Listener],
        first_http: usize,
        stats: Stats,
        pool_start: u64,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut acceptors = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let mut a = match l {
                Listener::Tcp(t) => Acceptor::Tcp(mio::net::TcpListener::from_std(t.try_clone()?)),
                Listener::Unix { listener, .. } => {
                    Acceptor::Unix(mio::net::UnixListener::from_std(listener.try_clone()?))
                }
            };
            poll.registry()
                .register(&mut a, Token(i), Interest::READABLE)?;
            acceptors.push(a);
        }
        Ok(Worker {
            config,
            stats,
            pool_start,
            limits: mp4::Limits {
                max_moov: config.max_moov,
            },
            caches: Caches::new(config.cache_size),
            poll,
            acceptors,
            first_http,
            accepting: true,
            accept_retry: None,
            clients: Vec::new(),
            free: Vec::new(),
            live: 0,
            draining: false,
            served: 0,
        })
    }

    /// Serves until told to stop. Returns the exit code.
    pub fn run(mut self) -> i32 {
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGINT,
        ] {
            mask.add(s);
        }
        let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        {
            Ok(s) => s,
            Err(e) => {
                log::error!("worker {}: signalfd: {e}", std::process::id());
                return 1;
            }
        };
        let raw = sfd.as_raw_fd();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&raw), SIGNALS, Interest::READABLE)
        {
            log::error!("worker {}: {e}", std::process::id());
            return 1;
        }
        let mut events = Events::with_capacity(1024);
        let mut last_sweep = Instant::now();
        loop {
            if self.draining && self.live == 0 {
                return 0;
            }
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(Duration::from_millis(500)))
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("worker {}: poll: {e}", std::process::id());
                return 1;
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNALS => {
                        while let Ok(Some(info)) = sfd.read_signal() {
                            match Signal::try_from(info.ssi_signo as i32) {
                                Ok(Signal::SIGQUIT) => return 0,
                                Ok(Signal::SIGTERM) => self.drain(),
                                // SIGINT reaches the whole process group from a
                                // terminal; the master decides what it means.
                                _ => {}
                            }
                        }
                    }
                    Token(i) if i < CLIENT_BASE => self.accept_all(),
                    Token(t) => self.client_event(t - CLIENT_BASE),
                }
            }
            if self.accept_retry.is_some_and(|t| Instant::now() >= t) {
                self.accept_retry = None;
                self.accept_all();
            }
            if last_sweep.elapsed() >= Duration::from_millis(500) {
                last_sweep = Instant::now();
                self.sweep_lingering();
            }
        }
    }

    /// Stops accepting; idle connections close; busy ones finish first.
    fn drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.set_accepting(false);
        for slot in 0..self.clients.len() {
            if let Some(c) = self.clients[slot].as_mut() {
                c.closing = true;
                if c.resp.is_none() && c.inbuf.is_empty() && c.out_pos >= c.out.len() {
                    self.close(slot);
                }
            }
        }
    }

    fn sweep_lingering(&mut self) {
        let now = Instant::now();
        for slot in 0..self.clients.len() {
            let expired = self.clients[slot]
                .as_ref()
                .and_then(|c| c.lingering)
                .is_some_and(|t| now >= t);
            if expired {
                self.close(slot);
            }
        }
    }

    fn set_accepting(&mut self, on: bool) {
        if self.accepting == on {
            return;
        }
        self.accepting = on;
        for (i, a) in self.acceptors.iter_mut().enumerate() {
            let r = if on {
                self.poll
                    .registry()
                    .register(a, Token(i), Interest::READABLE)
            } else {
                self.poll.registry().deregister(a)
            };
            if let Err(e) = r {
                log::warn!("worker {}: listener {i}: {e}", std::process::id());
            }
        }
    }

    fn accept_all(&mut self) {
        if self.draining {
            return;
        }
        for i in 0..self.acceptors.len() {
            loop {
                if self.live >= self.config.max_conns {
                    // Resumed when a connection closes.
                    self.set_accepting(false);
                    return;
                }
                match self.acceptors[i].accept() {
                    Ok(stream) => self.add_client(stream, i >= self.first_http),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // EMFILE and friends: the pending connection stays in
                        // the backlog; back off and try again.
                        log::warn!(
                            "worker {}: accept: {e}; retrying in 100 ms",
                            std::process::id()
                        );
                        self.accept_retry = Some(Instant::now() + Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }

    fn add_client(&mut self, mut stream: Stream, http: bool) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.clients.push(None);
            self.clients.len() - 1
        });
        let token = Token(CLIENT_BASE + slot);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("worker {}: register: {e}", std::process::id());
            self.free.push(slot);
            return;
        }
        let caps = fcgi::Capabilities {
            max_conns: u32::try_from(self.config.max_conns.saturating_mul(self.config.workers))
                .unwrap_or(u32::MAX),
            max_reqs: u32::try_from(self.config.max_conns.saturating_mul(self.config.workers))
                .unwrap_or(u32::MAX),
            mpxs_conns: false,
        };
        self.clients[slot] = Some(Client {
            stream,
            fcgi: fcgi::Conn::new(fcgi_limits(self.config), caps),
            http: http.then_some(true),
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            resp: None,
            closing: false,
            lingering: None,
        });
        self.live += 1;
        let c = self.stats.get();
        c.started.fetch_add(1, Relaxed);
        c.connections.fetch_add(1, Relaxed);
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut c) = self.clients.get_mut(slot).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            if c.resp.is_some() {
                self.stats.get().in_flight.fetch_sub(1, Relaxed);
            }
            self.free.push(slot);
            self.live -= 1;
            self.stats.get().connections.fetch_sub(1, Relaxed);
            if !self.draining && !self.accepting && self.live < self.config.max_conns {
                self.set_accepting(true);
                self.accept_all();
            }
        }
    }

    fn client_event(&mut self, slot: usize) {
        let Some(mut c) = self.clients.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let verdict = self.serve(&mut c);
        self.clients[slot] = Some(c);
        if matches!(verdict, Pump::Close) {
            self.close(slot);
        }
    }

    /// Reads what arrived, answers complete requests, writes what it can.
    fn serve(&mut self, c: &mut Client) -> Pump {
        let mut buf = [0u8; 16 << 10];
        if c.lingering.is_some() {
            return self.linger_read(c);
        }
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => return Pump::Close,
                Ok(n) => {
                    c.inbuf.extend_from_slice(&buf[..n]);
                    if c.inbuf.len() > MAX_INBUF {
                        log::warn!(
                            "connection sent {} bytes without a complete record; closed",
                            c.inbuf.len()
                        );
                        return Pump::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Pump::Close,
            }
        }
        if c.http.is_some() {
            self.http_input(c);
            return self.pump(c);
        }
        loop {
            let progress = match c.fcgi.process(&c.inbuf) {
                Ok(p) => p,
                Err(e) => {
                    log::warn!("FastCGI protocol error: {e}; connection closed");
                    return Pump::Close;
                }
            };
            c.inbuf.drain(..progress.consumed);
            match progress.event {
                Some(Event::Request(r)) => self.start(c, r),
                Some(Event::Abort { request_id })
                    if c.resp.as_ref().is_some_and(|s| s.id == request_id) =>
                {
                    c.resp = None;
                    self.stats.get().in_flight.fetch_sub(1, Relaxed);
                    fcgi::encode_end_request(
                        request_id,
                        1,
                        fcgi::FCGI_REQUEST_COMPLETE,
                        &mut c.out,
                    );
                    c.fcgi.finish_request(request_id);
                }
                Some(Event::Abort { .. }) => {}
                None if progress.consumed == 0 => break,
                None => {}
            }
        }
        c.fcgi.take_output(&mut c.out);
        self.pump(c)
    }

    /// Answers the next complete HTTP request in the input, if any.
    fn http_input(&mut self, c: &mut Client) {
        if c.resp.is_some() || c.closing {
            return;
        }
        let root = self
            .config
            .root
            .as_deref()
            .unwrap_or(std::path::Path::new("/nonexistent"));
        match super::dev_http::parse(&c.inbuf, root) {
            super::dev_http::Parsed::Partial => {}
            super::dev_http::Parsed::Request {
                consumed,
                params,
                keep_alive,
            } => {
                c.inbuf.drain(..consumed);
                c.http = Some(keep_alive);
                let r = fcgi::Request {
                    request_id: 0,
                    role: fcgi::FCGI_RESPONDER,
                    keep_conn: keep_alive,
                    params,
                    params_overflow: false,
                };
                self.start(c, r);
            }
            super::dev_http::Parsed::Bad(status, why) => {
                let r = crate::http::error_response(status, why);
                c.out
                    .extend_from_slice(&super::dev_http::response_head(&r.cgi_head(), false));
                if let crate::http::Body::Text(t) = r.body {
                    c.out.extend_from_slice(t.as_bytes());
                }
                c.inbuf.clear();
                c.closing = true;
            }
        }
    }

    fn start(&mut self, c: &mut Client, r: fcgi::Request) {
        if c.resp.is_some() {
            // The codec refuses a second request while one runs; be safe anyway.
            return;
        }
        let mut ctx = Ctx {
            config: self.config,
            caches: &mut self.caches,
            stats: self.stats,
            pool_start: self.pool_start,
            limits: &self.limits,
        };
        let Prepared {
            head,
            chunks,
            layout,
            file,
            ..
        } = handler::handle(&r.params, r.params_overflow, &mut ctx);
        match c.http {
            Some(keep_alive) => c
                .out
                .extend_from_slice(&super::dev_http::response_head(&head, keep_alive)),
            None => fcgi::encode_stdout(r.request_id, &head, &mut c.out),
        }
        self.stats.get().in_flight.fetch_add(1, Relaxed);
        c.resp = Some(Streaming {
            id: r.request_id,
            raw: c.http.is_some(),
            chunks,
            layout,
            file,
        });
    }

    /// Writes until the socket would block; refills the buffer from the body
    /// only once it drained.
    fn pump(&mut self, c: &mut Client) -> Pump {
        loop {
            while c.out_pos < c.out.len() {
                match c.stream.write(&c.out[c.out_pos..]) {
                    Ok(0) => return Pump::Close,
                    Ok(n) => c.out_pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pump::Open,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Pump::Close,
                }
            }
            c.out.clear();
            c.out_pos = 0;
            let Some(resp) = c.resp.as_mut() else {
                // Idle: give the buffer's memory back.
                c.out = Vec::new();
                let keep = match c.http {
                    Some(keep_alive) => keep_alive,
                    None => c.fcgi.keep_open(),
                };
                if c.closing || !keep {
                    if c.lingering.is_none() {
                        c.stream.shutdown_write();
                        c.lingering = Some(Instant::now() + LINGER);
                    }
                    // The peer may have closed already: check at once.
                    return self.linger_read(c);
                }
                return Pump::Open;
            };
            match fill(resp, &mut c.out) {
                Ok(true) => {}
                Ok(false) => {
                    let (id, raw) = (resp.id, resp.raw);
                    c.resp = None;
                    if !raw {
                        fcgi::encode_end_request(id, 0, fcgi::FCGI_REQUEST_COMPLETE, &mut c.out);
                        c.fcgi.finish_request(id);
                    }
                    self.stats.get().in_flight.fetch_sub(1, Relaxed);
                    self.served += 1;
                    if self.config.max_requests > 0 && self.served >= self.config.max_requests {
                        log::info!(
                            "worker {}: served {} requests, recycling",
                            std::process::id(),
                            self.served
                        );
                        self.drain();
                    }
                    if self.draining {
                        c.closing = true;
                    }
                    if raw && !c.inbuf.is_empty() {
                        self.http_input(c);
                    }
                }
                Err(e) => {
                    // The file shrank or vanished mid-stream: the status is
                    // already sent, so all we can do is cut the connection.
                    log::error!("body read failed mid-response: {e}; connection closed");
                    return Pump::Close;
                }
            }
        }
    }
}

impl Worker<'_> {
    fn linger_read(&mut self, c: &mut Client) -> Pump {
        let mut buf = [0u8; 4096];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => return Pump::Close,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pump::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Pump::Close,
            }
        }
    }
}

/// Appends body bytes: as STDOUT records, or as they are for plain HTTP.
fn put(id: u16, raw: bool, bytes: &[u8], out: &mut Vec<u8>) {
    if raw {
        out.extend_from_slice(bytes);
    } else {
        fcgi::encode_stdout(id, bytes, out);
    }
}

/// Appends STDOUT records of the next body bytes, up to [`FILL`]. Returns
/// false when the body is complete.
fn fill(resp: &mut Streaming, out: &mut Vec<u8>) -> io::Result<bool> {
    while out.len() < FILL {
        let Some(chunk) = resp.chunks.front_mut() else {
            return Ok(false);
        };
        let room = (FILL - out.len()).min(crate::fcgi::FCGI_MAX_CONTENT - 7);
        match chunk {
            Chunk::Bytes(b) => {
                let n = b.len().min(room);
                put(resp.id, resp.raw, &b[..n], out);
                let _ = b.split_to(n);
                if b.is_empty() {
                    resp.chunks.pop_front();
                }
            }
            Chunk::Layout(range) => {
                let seg = resp
                    .layout
                    .as_ref()
                    .and_then(|l| l.segments(range.clone()).next());
                let Some(seg) = seg else {
                    resp.chunks.pop_front();
                    continue;
                };
                let n = match seg {
                    Segment::Mem(b) => {
                        let n = b.len().min(room);
                        put(resp.id, resp.raw, &b[..n], out);
                        n
                    }
                    Segment::File { offset, len } => {
                        let n = usize::try_from(len).map_or(room, |l| l.min(room));
                        let file = resp.file.as_ref().ok_or(io::ErrorKind::NotFound)?;
                        // n <= FCGI_MAX_CONTENT, so it fits a record.
                        let (hdr, pad) = fcgi::stdout_header(resp.id, n as u16);
                        let pad = if resp.raw { 0 } else { pad };
                        if !resp.raw {
                            out.extend_from_slice(&hdr);
                        }
                        let at = out.len();
                        out.resize(at + n, 0);
                        file.read_exact_at(&mut out[at..], offset)?;
                        out.resize(out.len() + pad, 0);
                        n
                    }
                };
                range.start += n as u64;
                if range.start >= range.end {
                    resp.chunks.pop_front();
                }
            }
        }
    }
    Ok(true)
}
