//! What a connection speaks: FastCGI from a front server, or plain HTTP/1.1
//! on the development listener. Both are sans-io codecs with one output
//! queue; this is the one place that tells them apart.

use super::dev_http;
use crate::fcgi::{self, Request};
use crate::output::Output;
use std::io::{self, Read};

pub enum Transport {
    Fcgi(fcgi::Conn),
    Http(dev_http::Conn),
}

pub enum Event {
    Request(Request),
    /// The front server gave up on the request being answered.
    Abort,
}

/// How a response ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Complete,
    /// The front server aborted it.
    Aborted,
    /// Refused for lack of room (`--max-conns`): FastCGI says so in END_REQUEST.
    Overloaded,
}

impl Transport {
    pub fn read_from(&mut self, r: &mut dyn Read) -> io::Result<usize> {
        match self {
            Transport::Fcgi(c) => c.read_from(r),
            Transport::Http(c) => c.read_from(r),
        }
    }

    pub fn wants_read(&self) -> bool {
        match self {
            Transport::Fcgi(c) => c.wants_read(),
            Transport::Http(c) => c.wants_read(),
        }
    }

    pub fn next_event(&mut self) -> Result<Option<Event>, fcgi::ProtocolError> {
        match self {
            Transport::Fcgi(c) => Ok(c.next_event()?.map(|e| match e {
                fcgi::Event::Request(r) => Event::Request(r),
                fcgi::Event::Abort { .. } => Event::Abort,
            })),
            Transport::Http(c) => Ok(c.next_event().map(Event::Request)),
        }
    }

    /// A request is being answered.
    pub fn answering(&self) -> bool {
        match self {
            Transport::Fcgi(c) => c.answering().is_some(),
            Transport::Http(c) => c.answering(),
        }
    }

    /// Part of a request has arrived.
    pub fn receiving(&self) -> bool {
        match self {
            Transport::Fcgi(c) => c.receiving(),
            Transport::Http(c) => c.receiving(),
        }
    }

    pub fn keep_open(&self) -> bool {
        match self {
            Transport::Fcgi(c) => c.keep_open(),
            Transport::Http(c) => c.keep_open(),
        }
    }

    pub fn output(&mut self) -> &mut Output {
        match self {
            Transport::Fcgi(c) => c.output(),
            Transport::Http(c) => c.output(),
        }
    }

    pub fn output_ref(&self) -> &Output {
        match self {
            Transport::Fcgi(c) => c.output_ref(),
            Transport::Http(c) => c.output_ref(),
        }
    }

    pub fn is_fcgi(&self) -> bool {
        matches!(self, Transport::Fcgi(_))
    }

    /// The response head (a CGI head: `Status:` first).
    pub fn head(&mut self, cgi: &[u8]) {
        match self {
            Transport::Fcgi(c) => c.stdout(cgi),
            Transport::Http(c) => c.head(cgi),
        }
    }

    /// Opens a piece of body built in place at the end of the output (for
    /// FastCGI one STDOUT record, at most `STDOUT_MAX` bytes): returns where
    /// its bytes start, `None` when no response is being answered.
    pub fn open_piece(&mut self) -> Option<usize> {
        match self {
            Transport::Fcgi(c) => c.stdout_open(),
            Transport::Http(c) => c.answering().then(|| c.output_ref().buf_len()),
        }
    }

    /// Ends the piece begun at `start`; returns its body bytes.
    pub fn close_piece(&mut self, start: usize) -> usize {
        match self {
            Transport::Fcgi(c) => c.stdout_close(start),
            Transport::Http(c) => c.output_ref().buf_len().saturating_sub(start),
        }
    }

    /// Queues up to `len` bytes of the file at `offset`; returns how many.
    pub fn body_file(&mut self, offset: u64, len: u64) -> usize {
        match self {
            Transport::Fcgi(c) => c.stdout_file(offset, len),
            Transport::Http(c) => c.body_file(offset, len),
        }
    }

    pub fn end(&mut self, how: End) {
        match self {
            Transport::Fcgi(c) => {
                let (app, protocol) = match how {
                    End::Complete => (0, fcgi::FCGI_REQUEST_COMPLETE),
                    End::Aborted => (1, fcgi::FCGI_REQUEST_COMPLETE),
                    End::Overloaded => (0, fcgi::FCGI_OVERLOADED),
                };
                c.end_request(app, protocol);
            }
            Transport::Http(c) => c.end(how == End::Complete),
        }
    }

    /// HTTP closes after the response in flight (FastCGI front servers
    /// learn it from the closed connection).
    pub fn close_after(&mut self) {
        if let Transport::Http(c) = self {
            c.close_after();
        }
    }

    pub fn release(&mut self) {
        match self {
            Transport::Fcgi(c) => c.release(),
            Transport::Http(c) => c.release(),
        }
    }
}
