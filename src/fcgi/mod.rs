//! The FastCGI protocol codec, sans-io: bytes in, events out; responses into
//! buffers the caller owns. Names follow the FastCGI 1.0 specification.
//!
//! [`Conn`] is driven from outside (as rustls' connections are): the caller
//! reads into it, acts on its [`Event`]s, answers through it, and sends its
//! one output queue.
#![forbid(unsafe_code)]

mod conn;
mod params;
mod record;

pub use conn::{Capabilities, Conn, Event, Limits, ProtocolError, Request, STDOUT_MAX};
pub use params::Params;
pub use record::{
    Header, Status, encode_begin_request, encode_params, encode_record, parse_header,
};

pub const FCGI_VERSION_1: u8 = 1;
pub const FCGI_HEADER_LEN: usize = 8;
/// Largest content of one record.
pub const FCGI_MAX_CONTENT: usize = 65535;

pub const FCGI_BEGIN_REQUEST: u8 = 1;
pub const FCGI_ABORT_REQUEST: u8 = 2;
pub const FCGI_END_REQUEST: u8 = 3;
pub const FCGI_PARAMS: u8 = 4;
pub const FCGI_STDIN: u8 = 5;
pub const FCGI_STDOUT: u8 = 6;
pub const FCGI_STDERR: u8 = 7;
pub const FCGI_DATA: u8 = 8;
pub const FCGI_GET_VALUES: u8 = 9;
pub const FCGI_GET_VALUES_RESULT: u8 = 10;
pub const FCGI_UNKNOWN_TYPE: u8 = 11;

pub const FCGI_RESPONDER: u16 = 1;
pub const FCGI_AUTHORIZER: u16 = 2;
pub const FCGI_FILTER: u16 = 3;

/// `BEGIN_REQUEST` flag: keep the connection open after this request.
pub const FCGI_KEEP_CONN: u8 = 1;

pub const FCGI_REQUEST_COMPLETE: u8 = 0;
pub const FCGI_CANT_MPX_CONN: u8 = 1;
pub const FCGI_OVERLOADED: u8 = 2;
pub const FCGI_UNKNOWN_ROLE: u8 = 3;
