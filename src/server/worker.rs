//! A worker: one event loop (mio, created after fork) serving many
//! connections at once. It accepts, hands socket events to connections,
//! keeps the clock (idle and request timeouts, drains) and makes room at
//! `--max-conns` instead of leaving new connections in the backlog.

use super::config::Config;
use super::connection::{Connection, Expiry, Verdict};
use super::dev_http;
use super::jobs::Jobs;
use super::listen::Listener;
use super::service::Service;
use super::stats::Stats;
use super::stream::{Acceptor, Stream};
use super::transport::Transport;
use crate::fcgi;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

const SIGNALS: Token = Token(usize::MAX - 1);
const JOBS: Token = Token(usize::MAX - 2);
const CLIENT_BASE: usize = 1 << 16;
/// How often the clock looks at every connection.
const TICK: Duration = Duration::from_millis(250);
/// During a drain, how long a connection that never carried a request may
/// still bring one.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// At `--max-conns`, how many idle connections are tried (read once) to
/// find one that is truly idle and can be closed to make room.
const EVICT_TRIES: usize = 8;
/// Connections held beyond `--max-conns` only to answer 503.
const OVERLOAD_SLOTS: usize = 64;
/// How long such a connection may take to send its request.
const OVERLOAD_WAIT: Duration = Duration::from_secs(1);
/// At most one overload line per this period.
const OVERLOAD_LOG: Duration = Duration::from_secs(10);

pub struct Worker<'a> {
    service: Service<'a>,
    poll: Poll,
    /// Closed (`None`) once the worker drains.
    acceptors: Vec<Option<Acceptor>>,
    /// Acceptors from this index on speak HTTP (`--http`).
    first_http: usize,
    /// When accept failed for lack of fds: try again then.
    accept_retry: Option<Instant>,
    conns: Vec<Option<Connection<Stream>>>,
    free: Vec<usize>,
    live: usize,
    /// Of `live`, connections held only to answer 503.
    overloaded: usize,
    /// Set once the worker drains: when it began, and when it must end.
    drain: Option<(Instant, Instant)>,
    scratch: Vec<u8>,
    /// Overload refusals since the last log line, and when that was.
    overload_note: (u64, Option<Instant>),
    /// Requests ran since the heap was last given back (see [`heap_kept`]).
    trim_due: bool,
    /// The pool's request count at the last tick.
    requests_seen: u64,
}

/// Answers allocate and free their buffers (records, read-ahead, plans) by
/// the thousand a second. glibc trims its heap's top after each burst and
/// the next answer faults the pages in again: under segment load a fifth
/// of a worker's CPU went to `brk` and page faults. The heap now keeps what
/// it freed, and [`Worker::tick`] gives it back once the worker is idle.
fn heap_kept() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        // Setting the trim threshold fixes the mmap threshold too: record
        // buffers (up to a few hundred KiB) stay in the heap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Returns the heap's free memory to the system.
pub(super) fn give_back_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointers and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
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
        listeners: Vec<Listener>,
        first_http: usize,
        stats: Stats,
        pool_start: u64,
    ) -> io::Result<Self> {
        heap_kept();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), JOBS)?);
        let w = waker.clone();
        let mut jobs = Jobs::start(move || {
            let _ = w.wake();
        })?;
        let link = match &config.origin {
            Some(settings) => {
                // Body chunks (1 MiB by default) come and go all the time: a
                // fixed threshold keeps each one its own mapping, returned on
                // free, instead of glibc raising the threshold and keeping
                // freed chunks in its heap.
                // SAFETY: mallopt only sets an allocator parameter.
                unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10) };
                let (link, chunks) = super::remote::Link::start(settings, move || {
                    let _ = waker.wake();
                })
                .map_err(io::Error::other)?;
                jobs.set_link(link.clone());
                Some((link, chunks))
            }
            None => None,
        };
        let mut service = Service::new(config, stats, pool_start, jobs);
        service.link = link;
        let mut acceptors = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let mut a = match l {
                Listener::Tcp(t) => Acceptor::Tcp(mio::net::TcpListener::from_std(t)),
                Listener::Unix { listener, .. } => {
                    Acceptor::Unix(mio::net::UnixListener::from_std(listener))
                }
            };
            poll.registry()
                .register(&mut a, Token(i), Interest::READABLE)?;
            acceptors.push(Some(a));
        }
        Ok(Worker {
            service,
            poll,
            acceptors,
            first_http,
            accept_retry: None,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            overloaded: 0,
            drain: None,
            scratch: Vec::new(),
            overload_note: (0, None),
            trim_due: false,
            requests_seen: 0,
        })
    }

    fn config(&self) -> &'a Config {
        self.service.config
    }

    fn stats(&self) -> &super::stats::Counters {
        self.service.stats.get()
    }

    /// Serves until told to stop. Returns the exit code.
    pub fn run(mut self) -> i32 {
        let mut mask = SigSet::empty();
        for s in super::HANDLED_SIGNALS {
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
        let mut last_tick = Instant::now();
        loop {
            if self.drain.is_some() && self.live == 0 {
                return 0;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(TICK))
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
                                Ok(Signal::SIGTERM | Signal::SIGHUP) => self.start_drain(),
                                Ok(Signal::SIGUSR1) => super::logging::reopen(None),
                                // SIGINT reaches the whole process group from a
                                // terminal; the master decides what it means.
                                _ => {}
                            }
                        }
                    }
                    JOBS => self.finished(),
                    Token(i) if i < CLIENT_BASE => self.accept_all(),
                    Token(t) => {
                        let slot = t - CLIENT_BASE;
                        if let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                            c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                            c.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        }
                        self.pump(slot);
                    }
                }
            }
            let now = Instant::now();
            if self.accept_retry.is_some_and(|t| now >= t) {
                self.accept_retry = None;
                self.accept_all();
            }
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.tick(now);
            }
            if let Some((_, deadline)) = self.drain
                && now >= deadline
            {
                log::warn!(
                    "worker {}: --shutdown-timeout reached; cutting {} connections",
                    std::process::id(),
                    self.live
                );
                return 0;
            }
            let max = self.config().max_requests;
            if max > 0 && self.service.served >= max && self.drain.is_none() {
                log::info!(
                    "worker {}: served {} requests, recycling",
                    std::process::id(),
                    self.service.served
                );
                self.start_drain();
            }
        }
    }

    /// Delivers what finished jobs answered.
    fn finished(&mut self) {
        for chunk in self.service.chunks() {
            let slot = chunk.slot;
            if let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut)
                && c.fetched(chunk)
            {
                self.pump(slot);
            }
        }
        let answers = self.service.finished();
        self.deliver(answers);
    }

    /// Hands answers prepared off the loop to the requests that wait.
    fn deliver(&mut self, answers: Vec<(usize, u64, super::answer::Prepared)>) {
        for (slot, serial, p) in answers {
            let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let charge = p.charge;
            if c.answer(serial, p) {
                self.service.begins(charge);
                self.pump(slot);
            }
        }
    }

    fn pump(&mut self, slot: usize) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let verdict = c.pump(Instant::now(), &mut self.service, &mut self.scratch);
        if c.sent > c.counted {
            self.service.stats.sent(c.sent - c.counted);
            c.counted = c.sent;
        }
        self.conns[slot] = Some(c);
        if matches!(verdict, Verdict::Close) {
            self.close(slot);
        }
    }

    /// Stops accepting (the listeners close here, so once every process
    /// has let go a new connection is refused at once), serves what is on
    /// the connections, and closes them as they fall idle.
    fn start_drain(&mut self) {
        if self.drain.is_some() {
            return;
        }
        let now = Instant::now();
        self.drain = Some((now, now + self.config().shutdown_timeout));
        if let Some(s) = self.service.stats.mine() {
            s.draining.store(1, Relaxed);
        }
        for a in &mut self.acceptors {
            if let Some(mut a) = a.take() {
                let _ = self.poll.registry().deregister(&mut a);
            }
        }
        for slot in 0..self.conns.len() {
            if let Some(c) = self.conns[slot].as_mut() {
                c.closing = true;
                // A request already in the socket is served, not reset.
                c.readable = true;
                self.pump(slot);
            }
        }
    }

    /// The clock: timeouts, lingering closes, drains that are done waiting,
    /// and this worker's figures on the status page.
    fn tick(&mut self, now: Instant) {
        // Requests finish within a tick: the pool's count says whether any
        // ran since the last one, where a glance at the connections would not.
        let requests = self.service.stats.get().requests.load(Relaxed);
        let ran = std::mem::replace(&mut self.requests_seen, requests) != requests;
        if ran || self.conns.iter().flatten().any(|c| !c.is_idle()) {
            self.trim_due = true;
        } else if std::mem::take(&mut self.trim_due) {
            // Idle: what the last burst freed goes back to the system.
            give_back_heap();
        }
        if let Some(s) = self.service.stats.mine() {
            let idle = self.conns.iter().flatten().filter(|c| c.is_idle()).count();
            s.idle.store(idle as u64, Relaxed);
            s.cache_bytes
                .store(self.service.caches.bytes() as u64, Relaxed);
        }
        let (idle, request) = (self.config().idle_timeout, self.config().request_timeout);
        // A request waits for its job at most half the idle timeout: a
        // stuck or very slow build answers 503 before the connection expires.
        let late = self
            .service
            .expired(now, (idle / 2).max(Duration::from_secs(1)));
        self.deliver(late);
        let draining = self
            .drain
            .is_some_and(|(t, _)| now.duration_since(t) >= DRAIN_WAIT);
        for slot in 0..self.conns.len() {
            let Some(c) = self.conns[slot].as_ref() else {
                continue;
            };
            let why = c.expired(now, idle, request).or_else(|| {
                let unused = c.served == 0 && !c.busy() && !c.transport.receiving();
                let overload_late =
                    c.overload && !c.busy() && now.duration_since(c.last_io) >= OVERLOAD_WAIT;
                (unused && draining || overload_late).then_some(Expiry::Quiet)
            });
            match why {
                None => continue,
                Some(Expiry::Idle) => {
                    self.stats().idle_timeouts.fetch_add(1, Relaxed);
                    log::debug!("connection idle for --idle-timeout ({idle:?}); closed");
                }
                Some(Expiry::Request) => {
                    self.stats().request_timeouts.fetch_add(1, Relaxed);
                    log::info!(
                        "request not complete within --request-timeout ({request:?}); connection closed"
                    );
                }
                Some(Expiry::Quiet) => {}
            }
            self.close(slot);
        }
    }

    fn accept_all(&mut self) {
        for i in 0..self.acceptors.len() {
            while let Some(a) = self.acceptors[i].as_ref() {
                match a.accept() {
                    Ok(stream) => self.admit(stream, i >= self.first_http),
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

    /// Takes a new connection. At `--max-conns` it first closes the
    /// longest-idle connection; failing that, it answers the new one's
    /// request with 503 at once rather than leave it waiting.
    fn admit(&mut self, stream: Stream, http: bool) {
        let now = Instant::now();
        let max = self.config().max_conns;
        if self.live - self.overloaded >= max {
            self.evict_idle(max);
        }
        let overload = self.live - self.overloaded >= max;
        if overload {
            self.note_overload(now, max);
            if self.overloaded >= OVERLOAD_SLOTS
                && let Some(oldest) = self.oldest(|c| c.overload)
            {
                // It had its chance to send a request; the new one may be
                // a front server's, with its request already on the way.
                self.close(oldest);
            }
        }
        self.add(stream, http, overload, now);
    }

    /// Closes the longest-idle connection, after reading it once: one whose
    /// request just arrived is served instead, and the next is tried.
    fn evict_idle(&mut self, max: usize) {
        for _ in 0..EVICT_TRIES {
            let Some(slot) = self.oldest(|c| c.is_idle() && !c.overload) else {
                return;
            };
            if let Some(c) = self.conns[slot].as_mut() {
                c.readable = true;
                // Marks it as tried: a fresh read moves its clock on.
                c.last_io = Instant::now();
            }
            self.pump(slot);
            if self.conns[slot].as_ref().is_some_and(Connection::is_idle) {
                log::debug!("at --max-conns ({max}): closing the longest-idle connection");
                self.close(slot);
                return;
            }
            if self.live - self.overloaded < max {
                return;
            }
        }
    }

    /// The connection with the oldest clock among those `which` picks.
    fn oldest(&self, which: impl Fn(&Connection<Stream>) -> bool) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.as_ref()?)))
            .filter(|(_, c)| which(c))
            .min_by_key(|(_, c)| c.last_io)
            .map(|(i, _)| i)
    }

    fn note_overload(&mut self, now: Instant, max: usize) {
        self.stats().overloaded.fetch_add(1, Relaxed);
        self.stats().max_conns_reached.fetch_add(1, Relaxed);
        self.overload_note.0 += 1;
        if self
            .overload_note
            .1
            .is_none_or(|t| now.duration_since(t) >= OVERLOAD_LOG)
        {
            log::warn!(
                "worker {}: at --max-conns ({max}) with no idle connection: \
                 {} connections refused with 503 (raise --max-conns or --workers)",
                std::process::id(),
                self.overload_note.0
            );
            self.overload_note = (0, Some(now));
        }
    }

    fn add(&mut self, mut stream: Stream, http: bool, overload: bool, now: Instant) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
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
        let config = self.config();
        let transport = if http {
            let root = config.root.clone().unwrap_or_else(|| "/nonexistent".into());
            let options = dev_http::Options {
                demo: config.demo,
                local: config.root.is_some(),
                cors: config.cors.clone(),
            };
            Transport::Http(dev_http::Conn::new(root, options))
        } else {
            let all =
                u32::try_from(config.max_conns.saturating_mul(config.workers)).unwrap_or(u32::MAX);
            let caps = fcgi::Capabilities {
                max_conns: all,
                max_reqs: all,
                mpxs_conns: false,
            };
            Transport::Fcgi(fcgi::Conn::new(fcgi_limits(config), caps))
        };
        let mut c = Connection::new(stream, transport, slot, now);
        c.overload = overload;
        c.closing = self.drain.is_some();
        self.conns[slot] = Some(c);
        self.live += 1;
        self.overloaded += usize::from(overload);
        let s = self.stats();
        s.started.fetch_add(1, Relaxed);
        s.connections.fetch_add(1, Relaxed);
        if let Some(s) = self.service.stats.mine() {
            s.connections.store(self.live as u64, Relaxed);
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.sock);
        c.cut(&mut self.service, Instant::now());
        self.free.push(slot);
        self.live -= 1;
        self.overloaded -= usize::from(c.overload);
        self.stats().connections.fetch_sub(1, Relaxed);
        if let Some(s) = self.service.stats.mine() {
            s.connections.store(self.live as u64, Relaxed);
        }
    }
}
