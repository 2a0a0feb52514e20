//! One FastCGI connection as a state machine: records in, events out.

use super::params::{Params, encode_pair};
use super::record::{Status, encode_end_request, encode_record, parse_header};
use super::*;
use std::fmt;

/// Hard caps per request; each is a setting.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total PARAMS bytes (`--max-params`).
    pub max_params: usize,
    /// STDIN bytes drained before the connection is dropped.
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
    Request(Request),
    /// The front server aborted a request that is being answered.
    Abort {
        request_id: u16,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Bytes of the input used; the caller keeps the rest.
    pub consumed: usize,
    pub event: Option<Event>,
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

pub struct Conn {
    limits: Limits,
    caps: Capabilities,
    active: Option<Active>,
    out: Vec<u8>,
    error: Option<ProtocolError>,
    keep_open: bool,
}

impl Conn {
    pub fn new(limits: Limits, caps: Capabilities) -> Conn {
        Conn {
            limits,
            caps,
            active: None,
            out: Vec::new(),
            error: None,
            keep_open: true,
        }
    }

    /// Feeds received bytes: consumes at most one whole record and returns
    /// how many bytes it used and the event it completed, if any. Errors stick.
    pub fn process(&mut self, input: &[u8]) -> Result<Progress, ProtocolError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Status::Complete(h) = parse_header(input) else {
            return Ok(Progress::default());
        };
        if h.version != FCGI_VERSION_1 {
            return Err(self.fail(ProtocolError::BadVersion(h.version)));
        }
        let Some(record) = input.get(..h.record_len()) else {
            return Ok(Progress::default());
        };
        let content = &record[FCGI_HEADER_LEN..FCGI_HEADER_LEN + usize::from(h.content_length)];
        let event = match self.record(h.rtype, h.request_id, content) {
            Ok(ev) => ev,
            Err(e) => return Err(self.fail(e)),
        };
        Ok(Progress {
            consumed: record.len(),
            event,
        })
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.keep_open = false;
        self.error = Some(e.clone());
        e
    }

    fn record(
        &mut self,
        rtype: u8,
        id: u16,
        content: &[u8],
    ) -> Result<Option<Event>, ProtocolError> {
        if id == 0 {
            self.management(rtype, content);
            return Ok(None);
        }
        match rtype {
            FCGI_BEGIN_REQUEST => self.begin_request(id, content),
            FCGI_ABORT_REQUEST => Ok(self.abort_request(id)),
            FCGI_PARAMS => self.params(id, content),
            FCGI_STDIN | FCGI_DATA => self.stdin(id, content),
            // Records for requests we do not know, or types a responder
            // never receives, are ignored (FastCGI 1.0 §3.3).
            _ => Ok(None),
        }
    }

    fn management(&mut self, rtype: u8, content: &[u8]) {
        if rtype != FCGI_GET_VALUES {
            let mut body = [0u8; 8];
            body[0] = rtype;
            encode_record(FCGI_UNKNOWN_TYPE, 0, &body, &mut self.out);
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
        encode_record(FCGI_GET_VALUES_RESULT, 0, &result, &mut self.out);
    }

    fn begin_request(&mut self, id: u16, content: &[u8]) -> Result<Option<Event>, ProtocolError> {
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
            encode_end_request(id, 0, FCGI_CANT_MPX_CONN, &mut self.out);
            return Ok(None);
        }
        if role != FCGI_RESPONDER {
            encode_end_request(id, 0, FCGI_UNKNOWN_ROLE, &mut self.out);
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

    fn abort_request(&mut self, id: u16) -> Option<Event> {
        let a = self.active.as_ref().filter(|a| a.id == id)?;
        if a.params_done {
            return Some(Event::Abort { request_id: id });
        }
        // Not handed out yet: end it here.
        let keep = a.keep_conn;
        self.active = None;
        encode_end_request(id, 0, FCGI_REQUEST_COMPLETE, &mut self.out);
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

    /// Appends the records the codec itself must send.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// The caller sent `END_REQUEST` for `id`: the slot is free again.
    pub fn finish_request(&mut self, id: u16) {
        if let Some(a) = self.active.take_if(|a| a.id == id)
            && !a.keep_conn
        {
            self.keep_open = false;
        }
    }

    /// The request in progress, if any.
    pub fn active_request(&self) -> Option<u16> {
        self.active.as_ref().map(|a| a.id)
    }

    /// False once a request without `FCGI_KEEP_CONN` ended, or after an
    /// error: the caller closes once its output is flushed.
    pub fn keep_open(&self) -> bool {
        self.keep_open
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{Header, encode_begin_request, encode_params};
    use super::*;

    fn conn() -> Conn {
        Conn::new(
            Limits {
                max_params: 1024,
                max_stdin: 100,
                max_records: 16,
            },
            Capabilities {
                max_conns: 1000,
                max_reqs: 1000,
                mpxs_conns: false,
            },
        )
    }

    /// Feeds everything, byte by byte when `trickle`, collecting events.
    fn feed(c: &mut Conn, input: &[u8], trickle: bool) -> Result<Vec<Event>, ProtocolError> {
        let mut buf = Vec::new();
        let mut events = Vec::new();
        let step = if trickle { 1 } else { input.len().max(1) };
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                let p = c.process(&buf)?;
                buf.drain(..p.consumed);
                events.extend(p.event.clone());
                if p.consumed == 0 {
                    break;
                }
            }
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(events)
    }

    fn request(id: u16, keep: bool, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        encode_begin_request(id, FCGI_RESPONDER, keep, &mut b);
        encode_params(pairs, id, &mut b);
        encode_record(FCGI_STDIN, id, &[], &mut b);
        b
    }

    fn output(c: &mut Conn) -> Vec<(Header, Vec<u8>)> {
        let mut out = Vec::new();
        c.take_output(&mut out);
        let mut v = Vec::new();
        let mut b = &out[..];
        while let Status::Complete(h) = parse_header(b) {
            v.push((h, b[8..8 + usize::from(h.content_length)].to_vec()));
            b = &b[h.record_len()..];
        }
        v
    }

    #[test]
    fn trickled_and_whole_input_agree() {
        let pairs: &[(&[u8], &[u8])] = &[
            (b"SCRIPT_FILENAME", b"/m/a.mp4"),
            (b"QUERY_STRING", b"start=1%2E5"),
            (b"HTTP_X\xff", &[0xc3, 0x28]),
        ];
        for trickle in [false, true] {
            let mut c = conn();
            let ev = feed(&mut c, &request(1, true, pairs), trickle).unwrap();
            let [Event::Request(r)] = &ev[..] else {
                panic!("{ev:?}")
            };
            assert_eq!(r.request_id, 1);
            assert!(r.keep_conn && !r.params_overflow);
            assert_eq!(r.params.get(b"QUERY_STRING"), Some(&b"start=1%2E5"[..]));
            assert_eq!(r.params.get(b"HTTP_X\xff"), Some(&[0xc3, 0x28][..]));
        }
    }

    #[test]
    fn pair_split_across_records() {
        let mut stream = Vec::new();
        encode_pair(b"SCRIPT_FILENAME", &[b'a'; 200], &mut stream);
        let mut b = Vec::new();
        encode_begin_request(9, FCGI_RESPONDER, false, &mut b);
        for part in stream.chunks(20) {
            encode_record(FCGI_PARAMS, 9, part, &mut b);
        }
        encode_record(FCGI_PARAMS, 9, &[], &mut b);
        let mut c = conn();
        let ev = feed(&mut c, &b, false).unwrap();
        let [Event::Request(r)] = &ev[..] else {
            panic!()
        };
        assert_eq!(r.params.get(b"SCRIPT_FILENAME").map(<[u8]>::len), Some(200));
    }

    #[test]
    fn get_values_is_truthful() {
        let mut q = Vec::new();
        for n in [
            &b"FCGI_MAX_CONNS"[..],
            b"FCGI_MPXS_CONNS",
            b"FCGI_MAX_REQS",
            b"OTHER",
        ] {
            encode_pair(n, b"", &mut q);
        }
        let mut b = Vec::new();
        encode_record(FCGI_GET_VALUES, 0, &q, &mut b);
        let mut c = conn();
        assert!(feed(&mut c, &b, false).unwrap().is_empty());
        let out = output(&mut c);
        assert_eq!(out[0].0.rtype, FCGI_GET_VALUES_RESULT);
        let p = Params::parse(out[0].1.clone()).unwrap();
        assert_eq!(p.get(b"FCGI_MAX_CONNS"), Some(&b"1000"[..]));
        assert_eq!(p.get(b"FCGI_MPXS_CONNS"), Some(&b"0"[..]));
        assert_eq!(p.get(b"OTHER"), None);
    }

    #[test]
    fn unknown_management_type() {
        let mut b = Vec::new();
        encode_record(42, 0, &[], &mut b);
        let mut c = conn();
        feed(&mut c, &b, false).unwrap();
        let out = output(&mut c);
        assert_eq!(out[0].0.rtype, FCGI_UNKNOWN_TYPE);
        assert_eq!(out[0].1[0], 42);
    }

    #[test]
    fn unknown_role_and_second_request_are_refused() {
        let mut b = Vec::new();
        encode_begin_request(2, FCGI_AUTHORIZER, true, &mut b);
        let mut c = conn();
        feed(&mut c, &b, false).unwrap();
        let out = output(&mut c);
        assert_eq!(out[1].0.rtype, FCGI_END_REQUEST);
        assert_eq!(out[1].1[4], FCGI_UNKNOWN_ROLE);
        assert!(c.keep_open());

        let mut c = conn();
        let mut b = request(1, true, &[]);
        encode_begin_request(2, FCGI_RESPONDER, true, &mut b);
        let ev = feed(&mut c, &b, false).unwrap();
        assert_eq!(ev.len(), 1);
        let out = output(&mut c);
        assert_eq!((out[1].0.request_id, out[1].1[4]), (2, FCGI_CANT_MPX_CONN));
        // After the first finishes, a new request is accepted.
        c.finish_request(1);
        assert!(c.keep_open());
        assert_eq!(
            feed(&mut c, &request(3, false, &[]), false).unwrap().len(),
            1
        );
        c.finish_request(3);
        assert!(!c.keep_open(), "no FCGI_KEEP_CONN: close after the request");
    }

    #[test]
    fn abort_before_and_after_params() {
        let mut c = conn();
        let mut b = Vec::new();
        encode_begin_request(5, FCGI_RESPONDER, true, &mut b);
        encode_record(FCGI_ABORT_REQUEST, 5, &[], &mut b);
        assert!(feed(&mut c, &b, false).unwrap().is_empty());
        assert_eq!(output(&mut c)[1].0.rtype, FCGI_END_REQUEST);
        assert_eq!(c.active_request(), None);

        let mut b = request(6, true, &[]);
        encode_record(FCGI_ABORT_REQUEST, 6, &[], &mut b);
        let ev = feed(&mut c, &b, false).unwrap();
        assert!(matches!(ev[1], Event::Abort { request_id: 6 }));
    }

    #[test]
    fn params_over_the_limit_are_flagged_not_kept() {
        let big = vec![b'v'; 2000];
        let mut c = conn();
        let ev = feed(&mut c, &request(1, true, &[(b"X", &big)]), false).unwrap();
        let [Event::Request(r)] = &ev[..] else {
            panic!()
        };
        assert!(r.params_overflow);
        assert!(r.params.is_empty());
    }

    #[test]
    fn stdin_limit_and_bad_version_stick() {
        let mut c = conn();
        let mut b = request(1, true, &[]);
        encode_record(FCGI_STDIN, 1, &[0; 101], &mut b);
        assert!(matches!(
            feed(&mut c, &b, false),
            Err(ProtocolError::StdinTooLarge { .. })
        ));
        assert!(
            c.process(&[1, 1, 0, 1, 0, 0, 0, 0]).is_err(),
            "errors stick"
        );
        assert!(!c.keep_open());

        let mut c = conn();
        assert_eq!(
            c.process(&[2, 1, 0, 1, 0, 0, 0, 0]),
            Err(ProtocolError::BadVersion(2))
        );
    }

    #[test]
    fn truncated_pair_is_a_protocol_error() {
        let mut b = Vec::new();
        encode_begin_request(1, FCGI_RESPONDER, true, &mut b);
        encode_record(FCGI_PARAMS, 1, &[5, 1, b'a'], &mut b);
        encode_record(FCGI_PARAMS, 1, &[], &mut b);
        assert_eq!(feed(&mut conn(), &b, false), Err(ProtocolError::BadParams));
    }

    #[test]
    fn records_for_other_ids_are_ignored() {
        let mut b = Vec::new();
        encode_record(FCGI_PARAMS, 77, b"junk", &mut b);
        encode_record(FCGI_STDIN, 77, b"junk", &mut b);
        let mut c = conn();
        assert!(feed(&mut c, &b, true).unwrap().is_empty());
        assert!(!c.wants_write());
    }
}
