//! One connection: a socket, the transport that speaks on it, and the
//! response in flight. [`Connection::pump`] reads, answers and writes until
//! the socket would block, reading only while the output has room.

use super::answer::Prepared;
use super::body::{self, Body, Sendfile, Socket};
use super::note::Note;
use super::transport::{End, Event, Transport};
use crate::fcgi::Request;
use std::io;
use std::time::{Duration, Instant};

/// Reads of 4 KiB a lingering connection gets per turn of the loop.
const LINGER_READS: usize = 16;

/// How long a half-closed connection may keep us waiting for the peer's EOF.
const LINGER: Duration = Duration::from_secs(2);

impl Producing {
    fn ended(self, now: Instant, complete: bool) -> Ended {
        Ended {
            status: self.status,
            waited: self.waited,
            took: now.saturating_duration_since(self.request.at),
            bytes: self.body.queued(),
            complete,
            note: self.note,
            charge: self.charge,
            request: self.request,
            layout: self.body.into_layout(),
        }
    }
}

/// What the connection needs from the worker.
pub trait Handler {
    /// Answers a request now, or later through [`Connection::answer`] with
    /// the serial returned (its work runs off the event loop). `slot` is
    /// where the worker keeps this connection.
    fn request(&mut self, r: &Request, fcgi: bool, slot: usize) -> Answer;
    /// Refuses a request for lack of room (`--max-conns`): a 503.
    fn overloaded(&mut self) -> Prepared;
    /// A response begun by either ended, complete or not.
    fn ended(&mut self, e: Ended);
    /// A request answered [`Answer::Later`] whose client has gone.
    fn abandoned(&mut self, _serial: u64) {}
}

pub enum Answer {
    Now(Prepared),
    Later(u64),
}

/// A request as the log and the counters see it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub at: Instant,
}

/// A response that ended, for the log and the counters.
pub struct Ended {
    pub request: Seen,
    pub status: u16,
    /// From the request's arrival to its answer's head.
    pub waited: Duration,
    /// From the request's arrival to its answer's end.
    pub took: Duration,
    /// Body bytes queued.
    pub bytes: u64,
    /// All of it was queued (else aborted or cut).
    pub complete: bool,
    pub note: Note,
    /// What it held against `--max-inflight`.
    pub charge: usize,
    /// Its layout (and through it the index), for the worker to let go of.
    pub layout: Option<std::sync::Arc<crate::mp4::Layout>>,
}

/// The answer being produced.
struct Producing {
    body: Body,
    end: End,
    charge: usize,
    status: u16,
    note: Note,
    request: Seen,
    waited: Duration,
}

pub enum Verdict {
    Open,
    Close,
}

/// Why a connection is being closed by the worker's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing moved either way for `--idle-timeout`.
    Idle,
    /// A request did not arrive whole within `--request-timeout`.
    Request,
    /// Lingering, or a drain that is done waiting.
    Quiet,
}

pub struct Connection<S> {
    pub sock: S,
    pub transport: Transport,
    /// Where the worker keeps it.
    slot: usize,
    /// The answer being produced.
    body: Option<Producing>,
    /// The request being answered (from its arrival).
    seen: Option<Seen>,
    /// Bytes written, and how many of them the worker has counted.
    pub sent: u64,
    pub counted: u64,
    /// The serial of the answer being prepared off the loop.
    waiting: Option<u64>,
    /// A request that waits for the previous response's file spans to go.
    queued: Option<Request>,
    /// The file of the spans in the output.
    sendfile: Option<Sendfile>,
    pub readable: bool,
    pub writable: bool,
    /// The last time a byte moved either way.
    pub last_io: Instant,
    /// When the request on its way in started to arrive.
    pub request_since: Option<Instant>,
    /// Responses completed on this connection.
    pub served: u64,
    /// Close once idle; answer no new request after the one in flight.
    pub closing: bool,
    /// Refuse the first request as overloaded, then close.
    pub overload: bool,
    /// Half-closed: reading until EOF or this deadline.
    pub lingering: Option<Instant>,
    /// The peer sent its end of stream: nothing more to read, but what it
    /// asked for is still answered.
    eof: bool,
}

impl<S: Socket> Connection<S> {
    pub fn new(sock: S, transport: Transport, slot: usize, now: Instant) -> Self {
        Connection {
            sock,
            transport,
            slot,
            body: None,
            seen: None,
            sent: 0,
            counted: 0,
            waiting: None,
            queued: None,
            sendfile: None,
            readable: true,
            writable: true,
            last_io: now,
            request_since: None,
            served: 0,
            closing: false,
            overload: false,
            lingering: None,
            eof: false,
        }
    }

    /// Nothing in flight, nothing arriving, nothing to send.
    pub fn is_idle(&self) -> bool {
        self.body.is_none()
            && self.waiting.is_none()
            && self.queued.is_none()
            && !self.transport.answering()
            && !self.transport.receiving()
            && self.transport.output_ref().is_empty()
    }

    /// The charge of a response begun by the handler that has not ended.
    /// Ends the answer in flight as cut (the connection closes).
    pub fn cut(&mut self, h: &mut dyn Handler, now: Instant) {
        if let Some(serial) = self.waiting.take() {
            h.abandoned(serial);
        }
        if let Some(p) = self.body.take() {
            h.ended(p.ended(now, false));
        }
    }

    /// A response is being prepared, produced or sent.
    pub fn busy(&self) -> bool {
        self.body.is_some()
            || self.waiting.is_some()
            || self.queued.is_some()
            || self.transport.answering()
    }

    /// Delivers an answer prepared off the loop. False when this connection
    /// no longer waits for it (aborted, or another request since).
    pub fn answer(&mut self, serial: u64, p: Prepared) -> bool {
        if self.waiting != Some(serial) {
            return false;
        }
        self.waiting = None;
        self.begin(p, End::Complete);
        true
    }

    /// Delivers a body read from the origin. False when no response here
    /// waits for it (cut, or ended since).
    pub fn fetched(&mut self, c: super::remote::Fetched) -> bool {
        self.body.as_mut().is_some_and(|p| p.body.arrived(c))
    }

    /// Whether the worker's clock should close it now, and why.
    pub fn expired(&self, now: Instant, idle: Duration, request: Duration) -> Option<Expiry> {
        if let Some(t) = self.lingering {
            return (now >= t).then_some(Expiry::Quiet);
        }
        if let Some(t) = self.request_since
            && !self.busy()
            && now.duration_since(t) >= request
        {
            return Some(Expiry::Request);
        }
        (now.duration_since(self.last_io) >= idle).then_some(Expiry::Idle)
    }

    /// Reads, answers and writes until nothing more can be done now.
    pub fn pump(&mut self, now: Instant, h: &mut dyn Handler, scratch: &mut Vec<u8>) -> Verdict {
        if self.lingering.is_some() {
            return self.linger_read();
        }
        loop {
            let mut progress = false;
            if self.readable && !self.eof && self.transport.wants_read() {
                match self.transport.read_from(&mut self.sock) {
                    Ok(0) => {
                        // A front server that closes a FastCGI connection
                        // while its answer is being prepared has gone (its
                        // client did): the work it waits for is for nobody.
                        if self.transport.is_fcgi()
                            && self.waiting.is_some()
                            && self.sock.peer_gone()
                            && let Some(serial) = self.waiting.take()
                        {
                            h.abandoned(serial);
                            return Verdict::Close;
                        }
                        // A half-close after the request (nc -N, some
                        // HTTP/1.0 clients): answer, then close.
                        self.eof = true;
                        progress = true;
                    }
                    Ok(_) => {
                        progress = true;
                        self.last_io = now;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => return Verdict::Close,
                }
            }
            loop {
                match self.transport.next_event() {
                    Err(e) => {
                        log::warn!("FastCGI protocol error: {e}; connection closed");
                        return Verdict::Close;
                    }
                    Ok(None) => break,
                    Ok(Some(Event::Request(r))) => {
                        progress = true;
                        self.request_since = None;
                        let (method, target) = super::note::describe(&r.params);
                        self.seen = Some(Seen {
                            method,
                            target,
                            at: now,
                        });
                        self.queued = Some(r);
                    }
                    Ok(Some(Event::Abort)) => {
                        progress = true;
                        let answering = self.body.take();
                        let waited = self.waiting.take();
                        if let Some(serial) = waited {
                            h.abandoned(serial);
                        }
                        let pending = self.queued.take().is_some() || waited.is_some();
                        if answering.is_some() || pending {
                            self.transport.end(End::Aborted);
                        }
                        if let Some(p) = answering {
                            h.ended(p.ended(now, false));
                        }
                    }
                }
            }
            if self.queued.is_some()
                && self.body.is_none()
                && self.waiting.is_none()
                && !self.transport.output_ref().has_spans()
                && let Some(r) = self.queued.take()
            {
                self.start(&r, h);
                progress = true;
            }
            let filled = match &mut self.body {
                Some(p) => p.body.fill(
                    &mut self.transport,
                    self.sendfile.as_ref().map(|s| &*s.file),
                ),
                None => Ok(false),
            };
            let filled = match filled {
                Ok(done) => done,
                Err(e) => {
                    // The status is already sent: all we can do is cut.
                    log::error!("body read failed mid-response: {e}; connection closed");
                    return Verdict::Close;
                }
            };
            if filled && let Some(p) = self.body.take() {
                self.transport.end(p.end);
                self.served += 1;
                h.ended(p.ended(now, true));
                progress = true;
            }
            if self.transport.receiving() && self.request_since.is_none() {
                self.request_since = Some(now);
            }
            if self.writable && !self.transport.output_ref().is_empty() {
                match body::flush(
                    &mut self.transport,
                    &mut self.sock,
                    self.sendfile.as_mut(),
                    scratch,
                ) {
                    Ok((sent, all)) => {
                        if sent > 0 {
                            self.last_io = now;
                            self.sent += sent as u64;
                            progress = true;
                        }
                        if !all {
                            self.writable = false;
                        }
                    }
                    Err(e) if body::is_peer_gone(&e) => return Verdict::Close,
                    Err(e) => {
                        // The status is already sent: all we can do is cut.
                        log::error!("body read failed mid-response: {e}; connection closed");
                        return Verdict::Close;
                    }
                }
            }
            if !progress {
                break;
            }
        }
        if self.body.is_none() && self.transport.output_ref().is_empty() {
            self.sendfile = None;
            if self.queued.is_none() && self.waiting.is_none() && !self.transport.answering() {
                if self.eof {
                    return Verdict::Close;
                }
                // A drain closes kept connections once they served; one
                // never used may still be carrying its first request.
                let done = !self.transport.keep_open()
                    || self.overload && self.served > 0
                    || self.closing && self.served > 0 && !self.transport.receiving();
                if done {
                    self.sock.shutdown_write();
                    self.lingering = Some(now + LINGER);
                    // The peer may have closed already: check at once.
                    return self.linger_read();
                }
                self.transport.release();
            }
        }
        Verdict::Open
    }

    fn start(&mut self, r: &Request, h: &mut dyn Handler) {
        if self.overload {
            let p = h.overloaded();
            self.begin(p, End::Overloaded);
            return;
        }
        match h.request(r, self.transport.is_fcgi(), self.slot) {
            Answer::Now(p) => self.begin(p, End::Complete),
            Answer::Later(serial) => self.waiting = Some(serial),
        }
    }

    fn begin(&mut self, p: Prepared, end: End) {
        if self.closing {
            self.transport.close_after();
        }
        self.transport.head(&p.head);
        if let Some(f) = p.file {
            self.sendfile = Some(Sendfile::new(f));
        }
        let request = self.seen.take().unwrap_or_else(|| Seen {
            method: "-".into(),
            target: "-".into(),
            at: Instant::now(),
        });
        let mut body = Body::new(p.body, p.layout);
        if let Some((link, object)) = p.remote {
            let limit = body.file_extent();
            body.set_fetcher(super::fetch::Fetcher::new(link, object, self.slot, limit));
        }
        self.body = Some(Producing {
            body,
            end,
            charge: p.charge,
            status: p.status,
            note: p.note,
            waited: request.at.elapsed(),
            request,
        });
    }

    /// Half-closed after the last response: input is read and dropped until
    /// the peer closes. Closing at once could make a peer still writing (its
    /// empty STDIN record) fail and lose the reply.
    fn linger_read(&mut self) -> Verdict {
        let mut buf = [0u8; 4096];
        // A peer that keeps sending gets a bounded share of each turn; the
        // linger deadline ends it.
        for _ in 0..LINGER_READS {
            match io::Read::read(&mut self.sock, &mut buf) {
                Ok(0) => return Verdict::Close,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Verdict::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Verdict::Close,
            }
        }
        Verdict::Open
    }
}
