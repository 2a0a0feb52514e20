//! One FastCGI connection as a state machine: bytes in, events out, and one
//! output queue that holds every byte the connection sends, in order.
//!
//! Driven from outside, as rustls' connections are: [`Conn::read_from`]
//! takes what the socket has, [`Conn::next_event`] parses it record by
//! record (by offset, once per read), and the caller answers a request with
//! [`Conn::stdout`], [`Conn::stdout_file`] and [`Conn::end_request`]. The
//! caller sends [`Conn::output`] and never writes bytes of its own: a
//! management answer queued mid-download lands after the whole record in
//! flight, never inside it.

use super::params::{Params, encode_pair};
use super::record::{Status, encode_record, parse_header, stdout_header};
use super::*;
use crate::output::Output;
use std::fmt;
use std::io::{self, Read};

/// Hard caps per request; each is a setting.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total PARAMS bytes (`--max-params`).
    pub max_params: usize,
    /// STDIN bytes a request may send; beyond it the connection is dropped.
    pub max_stdin: u64,
    /// Records per request.
    pub max_records: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_params: 64 << 10,
            max_stdin: 1 << 20,
            max_records: 4096,
        }
    }
}

/// What `GET_VALUES` answers; it must be the truth.
#[derive(Clone, Debug)]
pub struct Capabilities {
    pub max_conns: u32,
    pub max_reqs: u32,
    pub mpxs_conns: bool,
}

/// A request whose PARAMS have all arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub request_id: u16,
    pub role: u16,
    pub keep_conn: bool,
    pub params: Params,
    /// The params exceeded `max_params` or `max_records` and were dropped:
    /// the caller should refuse the request (e.g. 431), not serve it.
    pub params_overflow: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Answer it, then call [`Conn::end_request`].
    Request(Request),
    /// The front server aborted the request being answered: stop its body
    /// and call [`Conn::end_request`].
    Abort { request_id: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    BadVersion(u8),
    BadBeginRequest,
    /// A second `BEGIN_REQUEST` for the request in progress.
    DuplicateRequest(u16),
    BadParams,
    StdinTooLarge {
        limit: u64,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadVersion(v) => write!(f, "FastCGI record version {v}, expected 1"),
            ProtocolError::BadBeginRequest => write!(f, "BEGIN_REQUEST body is not 8 bytes"),
            ProtocolError::DuplicateRequest(id) => {
                write!(
                    f,
                    "BEGIN_REQUEST for request {id}, which is already in progress"
                )
            }
            ProtocolError::BadParams => write!(f, "PARAMS stream has a truncated name-value pair"),
            ProtocolError::StdinTooLarge { limit } => {
                write!(f, "request body exceeds {limit} bytes (a GET needs none)")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The largest record: header, 65535 bytes of content, 255 of padding.
const MAX_RECORD: usize = FCGI_HEADER_LEN + 65535 + 255;
/// Unparsed input held at most: two records, so one read always fits.
const INPUT_CAP: usize = 2 * MAX_RECORD;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 32 << 10;
/// Body bytes put in one STDOUT record: a multiple of 8, so no padding.
pub const STDOUT_MAX: usize = 65528;

/// The request being received or answered.
#[derive(Debug)]
struct Active {
    id: u16,
    role: u16,
    keep_conn: bool,
    params: Vec<u8>,
    params_done: bool,
    overflow: bool,
    records: u32,
    stdin: u64,
}

/// Everything but the buffers, so a record can be handled while the input
/// that holds it is borrowed.
struct Core {
    limits: Limits,
    caps: Capabilities,
    active: Option<Active>,
    keep_open: bool,
}

pub struct Conn {
    core: Core,
    input: Vec<u8>,
    /// Bytes of `input` already parsed.
    parsed: usize,
    out: Output,
    error: Option<ProtocolError>,
}

impl Conn {
    pub fn new(limits: Limits, caps: Capabilities) -> Conn {
        Conn {
            core: Core {
                limits,
                caps,
                active: None,
                keep_open: true,
            },
            input: Vec::new(),
            parsed: 0,
            out: Output::new(),
            error: None,
        }
    }

    /// Reads once from `r` into the input buffer. `Ok(0)` is the peer's end
    /// of stream. Call only when [`Conn::wants_read`].
    pub fn read_from(&mut self, r: &mut dyn Read) -> io::Result<usize> {
        if self.parsed == self.input.len() {
            self.input.clear();
            self.parsed = 0;
        } else if self.parsed > 0 && self.input.len() + READ_CHUNK > INPUT_CAP {
            self.input.drain(..self.parsed);
            self.parsed = 0;
        }
        let room = INPUT_CAP.saturating_sub(self.input.len()).min(READ_CHUNK);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let at = self.input.len();
        self.input.resize(at + room, 0);
        let r = r.read(&mut self.input[at..]);
        self.input.truncate(at + *r.as_ref().unwrap_or(&0));
        r
    }

    /// Feeds bytes as if read (tests, fuzzing). Returns how many were taken.
    pub fn feed(&mut self, mut bytes: &[u8]) -> usize {
        let mut taken = 0;
        while self.wants_read() && !bytes.is_empty() {
            match self.read_from(&mut bytes) {
                Ok(n) if n > 0 => taken += n,
                _ => break,
            }
        }
        taken
    }

    /// Parses the input up to the next event. `Ok(None)`: nothing complete
    /// yet, or the output is full (call again once it drained). Errors stick.
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        while self.out.buffered() < crate::output::BOUND {
            let input = &self.input[self.parsed..];
            let Status::Complete(h) = parse_header(input) else {
                return Ok(None);
            };
            if h.version != FCGI_VERSION_1 {
                return Err(self.fail(ProtocolError::BadVersion(h.version)));
            }
            let Some(record) = input.get(..h.record_len()) else {
                return Ok(None);
            };
            let content = &record[FCGI_HEADER_LEN..FCGI_HEADER_LEN + usize::from(h.content_length)];
            let event = self
                .core
                .record(h.rtype, h.request_id, content, &mut self.out);
            self.parsed += h.record_len();
            match event {
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(None)
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.core.keep_open = false;
        self.error = Some(e.clone());
        e
    }

    /// Whether the caller should read more: no error, room for input, and
    /// the output below its bound.
    pub fn wants_read(&self) -> bool {
        self.error.is_none()
            && self.out.buffered() < crate::output::BOUND
            && self.input.len() - self.parsed < INPUT_CAP
    }

    /// The request being answered, if its PARAMS are complete.
    pub fn answering(&self) -> Option<u16> {
        self.core
            .active
            .as_ref()
            .filter(|a| a.params_done)
            .map(|a| a.id)
    }

    /// A request is on its way in: unparsed bytes, or PARAMS not complete.
    pub fn receiving(&self) -> bool {
        self.parsed < self.input.len() || self.core.active.as_ref().is_some_and(|a| !a.params_done)
    }

    /// Nothing in, nothing in flight, nothing to send.
    pub fn is_idle(&self) -> bool {
        self.core.active.is_none() && !self.receiving() && self.out.is_empty()
    }

    /// Appends response bytes (head or body) to the request being answered,
    /// as STDOUT records.
    pub fn stdout(&mut self, bytes: &[u8]) {
        let Some(id) = self.answering() else { return };
        for chunk in bytes.chunks(STDOUT_MAX) {
            encode_record(FCGI_STDOUT, id, chunk, self.out.buf_mut());
        }
    }

    /// Opens a STDOUT record whose payload the caller appends in place to
    /// the output's buffer, at most [`STDOUT_MAX`] bytes, so a body is not
    /// staged and copied. Returns where the payload starts, for
    /// [`Conn::stdout_close`]; `None` when no request is being answered.
    pub fn stdout_open(&mut self) -> Option<usize> {
        let id = self.answering()?;
        let buf = self.out.buf_mut();
        buf.extend_from_slice(&stdout_header(id, 0).0);
        Some(buf.len())
    }

    /// Ends the record [`Conn::stdout_open`] began at `start`: its length
    /// written into its header, its padding appended (an empty one is
    /// removed). Returns the payload's length.
    pub fn stdout_close(&mut self, start: usize) -> usize {
        let id = self.answering().unwrap_or(0);
        let buf = self.out.buf_mut();
        let n = buf.len().saturating_sub(start);
        let Some(at) = start.checked_sub(8) else {
            return 0;
        };
        if n == 0 || n > STDOUT_MAX {
            // Empty, or not this record (the caller broke the contract).
            buf.truncate(at);
            return 0;
        }
        // n <= STDOUT_MAX < 65536.
        let (header, padding) = stdout_header(id, n as u16);
        buf[at..start].copy_from_slice(&header);
        buf.extend_from_slice(&[0u8; 8][..padding]);
        n
    }

    /// Appends up to one record's worth of the file at `offset` as a STDOUT
    /// record whose payload the caller sends from the file. Returns the bytes
    /// taken (at most `len`).
    pub fn stdout_file(&mut self, offset: u64, len: u64) -> usize {
        let Some(id) = self.answering() else { return 0 };
        let n = usize::try_from(len).map_or(STDOUT_MAX, |l| l.min(STDOUT_MAX));
        if n == 0 {
            return 0;
        }
        // n <= STDOUT_MAX < 65536.
        let (header, padding) = stdout_header(id, n as u16);
        self.out.push(&header);
        self.out.push_file(offset, n);
        self.out.push(&[0u8; 8][..padding]);
        n
    }

    /// Ends the request being answered: the empty STDOUT record, then
    /// `END_REQUEST` with `protocol_status`. The slot is free again.
    pub fn end_request(&mut self, app_status: u32, protocol_status: u8) {
        let Some(a) = self.core.active.take_if(|a| a.params_done) else {
            return;
        };
        encode_end(a.id, app_status, protocol_status, self.out.buf_mut());
        if !a.keep_conn {
            self.core.keep_open = false;
        }
    }

    /// Everything this connection owes its peer.
    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    pub fn output_ref(&self) -> &Output {
        &self.out
    }

    /// False once a request without `FCGI_KEEP_CONN` ended, or after an
    /// error: the caller closes once the output is flushed.
    pub fn keep_open(&self) -> bool {
        self.core.keep_open
    }

    /// Heap bytes held by the buffers.
    pub fn capacity(&self) -> usize {
        self.input.capacity() + self.out.capacity()
    }

    /// Gives idle buffers' memory back.
    pub fn release(&mut self) {
        if self.parsed == self.input.len() {
            self.input = Vec::new();
            self.parsed = 0;
        }
        self.out.release();
    }
}

/// Ends a request: the empty STDOUT record, then `END_REQUEST`.
fn encode_end(id: u16, app_status: u32, protocol_status: u8, out: &mut Vec<u8>) {
    encode_record(FCGI_STDOUT, id, &[], out);
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&app_status.to_be_bytes());
    body[4] = protocol_status;
    encode_record(FCGI_END_REQUEST, id, &body, out);
}

impl Core {
    fn record(
        &mut self,
        rtype: u8,
        id: u16,
        content: &[u8],
        out: &mut Output,
    ) -> Result<Option<Event>, ProtocolError> {
        if id == 0 {
            self.management(rtype, content, out.buf_mut());
            return Ok(None);
        }
        match rtype {
            FCGI_BEGIN_REQUEST => self.begin_request(id, content, out.buf_mut()),
            FCGI_ABORT_REQUEST => Ok(self.abort_request(id, out.buf_mut())),
            FCGI_PARAMS => self.params(id, content),
            FCGI_STDIN | FCGI_DATA => self.stdin(id, content),
            // Records for requests we do not know, or types a responder
            // never receives, are ignored (FastCGI 1.0 §3.3).
            _ => Ok(None),
        }
    }

    fn management(&mut self, rtype: u8, content: &[u8], out: &mut Vec<u8>) {
        if rtype != FCGI_GET_VALUES {
            let mut body = [0u8; 8];
            body[0] = rtype;
            encode_record(FCGI_UNKNOWN_TYPE, 0, &body, out);
            return;
        }
        let mut result = Vec::new();
        if let Some(asked) = Params::parse(content.to_vec()) {
            for (name, _) in asked.iter() {
                let value = match name {
                    b"FCGI_MAX_CONNS" => self.caps.max_conns.to_string(),
                    b"FCGI_MAX_REQS" => self.caps.max_reqs.to_string(),
                    b"FCGI_MPXS_CONNS" => u8::from(self.caps.mpxs_conns).to_string(),
                    _ => continue,
                };
                encode_pair(name, value.as_bytes(), &mut result);
            }
        }
        encode_record(FCGI_GET_VALUES_RESULT, 0, &result, out);
    }

    fn begin_request(
        &mut self,
        id: u16,
        content: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Event>, ProtocolError> {
        let [r0, r1, flags, ..] = content else {
            return Err(ProtocolError::BadBeginRequest);
        };
        if content.len() != 8 {
            return Err(ProtocolError::BadBeginRequest);
        }
        let role = u16::from_be_bytes([*r0, *r1]);
        let keep_conn = flags & FCGI_KEEP_CONN != 0;
        if let Some(a) = &self.active {
            if a.id == id {
                return Err(ProtocolError::DuplicateRequest(id));
            }
            // One request at a time per connection, as GET_VALUES says.
            encode_end(id, 0, FCGI_CANT_MPX_CONN, out);
            return Ok(None);
        }
        if role != FCGI_RESPONDER {
            encode_end(id, 0, FCGI_UNKNOWN_ROLE, out);
            if !keep_conn {
                self.keep_open = false;
            }
            return Ok(None);
        }
        self.active = Some(Active {
            id,
            role,
            keep_conn,
            params: Vec::new(),
            params_done: false,
            overflow: false,
            records: 0,
            stdin: 0,
        });
        Ok(None)
    }

    fn abort_request(&mut self, id: u16, out: &mut Vec<u8>) -> Option<Event> {
        let a = self.active.as_ref().filter(|a| a.id == id)?;
        if a.params_done {
            return Some(Event::Abort { request_id: id });
        }
        // Not handed out yet: end it here.
        let keep = a.keep_conn;
        self.active = None;
        encode_end(id, 0, FCGI_REQUEST_COMPLETE, out);
        if !keep {
            self.keep_open = false;
        }
        None
    }

    fn params(&mut self, id: u16, content: &[u8]) -> Result<Option<Event>, ProtocolError> {
        let max_params = self.limits.max_params;
        let max_records = self.limits.max_records;
        let Some(a) = self
            .active
            .as_mut()
            .filter(|a| a.id == id && !a.params_done)
        else {
            return Ok(None);
        };
        a.records = a.records.saturating_add(1);
        if !content.is_empty() {
            if a.params.len() + content.len() > max_params || a.records > max_records {
                a.overflow = true;
                a.params = Vec::new();
            }
            if !a.overflow {
                a.params.extend_from_slice(content);
            }
            return Ok(None);
        }
        a.params_done = true;
        let params = if a.overflow {
            Params::default()
        } else {
            Params::parse(std::mem::take(&mut a.params)).ok_or(ProtocolError::BadParams)?
        };
        Ok(Some(Event::Request(Request {
            request_id: id,
            role: a.role,
            keep_conn: a.keep_conn,
            params,
            params_overflow: a.overflow,
        })))
    }

    fn stdin(&mut self, id: u16, content: &[u8]) -> Result<Option<Event>, ProtocolError> {
        let limit = self.limits.max_stdin;
        if let Some(a) = self.active.as_mut().filter(|a| a.id == id) {
            a.stdin += content.len() as u64;
            if a.stdin > limit {
                return Err(ProtocolError::StdinTooLarge { limit });
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
