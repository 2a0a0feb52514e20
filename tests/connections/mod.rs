//! What the tests/connections_*.rs share.
#![allow(dead_code, unused_imports)]

mod load;
pub use load::*;

use super::common::{Pool, media, require_tool};
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

pub static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: their timings (100 ms answers) mean nothing on a
/// machine another of them is flooding.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub const SEC: Duration = Duration::from_secs(1);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long "at once" may take: 100 ms, or five times what the same
/// request took on the same pool just before the test held it up, on a
/// machine whose other work (a parallel build, another suite) slows
/// everything alike.
pub fn at_once(baseline: Duration) -> Duration {
    ms(100).max(baseline * 5)
}

/// A record type no FastCGI version defines.
pub const UNKNOWN_RECORD_TYPE: u8 = 42;

// ---------------------------------------------------------------- media

/// A 60 s 640x360 film at 1 Mb/s (about 8 MB), made once per target dir: a
/// body large enough to be mid-flight.
pub fn big_film() -> PathBuf {
    require_tool("ffmpeg");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("connections-60s-640x360.mp4");
    if path.exists() {
        return path;
    }
    let part = path.with_extension(format!("{}.part.mp4", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=60")
        .args(["-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000:duration=60")
        .args(["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset"])
        .args([
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "50",
            "-keyint_min",
            "50",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-b:v",
            "1M",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
        ])
        .arg(&part)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&part, &path).unwrap();
    path
}

/// What the server sends for `query` (`start=..&end=..`) on `film`, as
/// `mp4-fcgi cut` writes it.
pub fn clip(film: &Path, dir: &Path, query: &str) -> Vec<u8> {
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').expect("key=value");
        args.push(format!("--{k}"));
        args.push(v.to_string());
    }
    let stem = film.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("cut-{stem}-{}.mp4", query.replace(['&', '='], "_")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    super::common::cut(film, &out, &args).expect("cut");
    std::fs::read(&out).unwrap()
}

/// Lengths and the first differing offset, for bodies too large to print.
pub fn diff(got: &[u8], want: &[u8]) -> String {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    format!(
        "{} bytes, expected {}; first difference at {first:?}",
        got.len(),
        want.len()
    )
}

pub fn log_tail(pool: &Pool) -> String {
    let log = pool.log_text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

// ---------------------------------------------------------------- FastCGI, strictly

/// Connects without ever blocking on a full backlog (EAGAIN instead), then
/// puts `timeout` on reads and writes.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    let s = UnixStream::from(fd);
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// BEGIN_REQUEST, PARAMS and the empty STDIN of a request.
pub fn encode(id: u16, keep: bool, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    fcgi::encode_begin_request(id, fcgi::FCGI_RESPONDER, keep, &mut out);
    fcgi::encode_params(pairs, id, &mut out);
    fcgi::encode_record(fcgi::FCGI_STDIN, id, &[], &mut out);
    out
}

/// A GET of `file` with `query`.
pub fn request(id: u16, file: &Path, query: &str, keep: bool) -> Vec<u8> {
    encode(
        id,
        keep,
        &[
            (b"SCRIPT_FILENAME", file.as_os_str().as_encoded_bytes()),
            (b"QUERY_STRING", query.as_bytes()),
            (b"REQUEST_METHOD", b"GET"),
            (b"SCRIPT_NAME", b"/clip.mp4"),
        ],
    )
}

pub struct Rec {
    pub rtype: u8,
    pub id: u16,
    pub content: Vec<u8>,
}

pub enum Fail {
    /// Closed at a record boundary.
    Eof,
    Io(io::Error),
    /// Bytes that are not a record a responder sends.
    Corrupt(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Eof => write!(f, "connection closed"),
            Fail::Io(e) => write!(f, "{e}"),
            Fail::Corrupt(m) => write!(f, "corrupt stream: {m}"),
        }
    }
}

/// A record reader that accepts only well-formed records a responder may
/// send: version 1, a responder's type, management types only on id 0, the
/// fixed sizes of END_REQUEST and UNKNOWN_TYPE, content and padding whole.
pub struct Strict {
    pub stream: UnixStream,
    pub buf: Vec<u8>,
    pub chunk: Vec<u8>,
    /// Bytes read from the socket so far.
    pub received: usize,
}

impl Strict {
    pub fn new(stream: UnixStream) -> Strict {
        Strict {
            stream,
            buf: Vec::new(),
            chunk: vec![0u8; 64 << 10],
            received: 0,
        }
    }

    pub fn next(&mut self) -> Result<Rec, Fail> {
        loop {
            if self.buf.len() >= fcgi::FCGI_HEADER_LEN {
                let h = &self.buf[..8];
                let at = self.received - self.buf.len();
                let bad =
                    |why: &str| Fail::Corrupt(format!("{why} in header {h:02x?} at byte {at}"));
                let (version, rtype) = (h[0], h[1]);
                let id = u16::from_be_bytes([h[2], h[3]]);
                let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
                let pad = usize::from(h[6]);
                if version != fcgi::FCGI_VERSION_1 {
                    return Err(bad("version is not 1"));
                }
                let management = matches!(
                    rtype,
                    fcgi::FCGI_GET_VALUES_RESULT | fcgi::FCGI_UNKNOWN_TYPE
                );
                let request = matches!(
                    rtype,
                    fcgi::FCGI_STDOUT | fcgi::FCGI_STDERR | fcgi::FCGI_END_REQUEST
                );
                if !management && !request {
                    return Err(bad("not a type a responder sends"));
                }
                if management != (id == 0) {
                    return Err(bad("request id 0 is for management records only"));
                }
                if matches!(rtype, fcgi::FCGI_END_REQUEST | fcgi::FCGI_UNKNOWN_TYPE) && len != 8 {
                    return Err(bad("END_REQUEST and UNKNOWN_TYPE carry 8 bytes"));
                }
                if self.buf.len() >= 8 + len + pad {
                    let content = self.buf[8..8 + len].to_vec();
                    self.buf.drain(..8 + len + pad);
                    return Ok(Rec { rtype, id, content });
                }
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) if self.buf.is_empty() => return Err(Fail::Eof),
                Ok(0) => {
                    return Err(Fail::Corrupt(format!(
                        "closed inside a record ({} bytes of it)",
                        self.buf.len()
                    )));
                }
                Ok(n) => {
                    self.received += n;
                    self.buf.extend_from_slice(&self.chunk[..n]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::Io(e)),
            }
        }
    }
}

/// What arrived for one request, plus management records and the ends of
/// other requests met on the way.
#[derive(Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    /// The empty STDOUT record that closes the stream arrived.
    pub stdout_closed: bool,
    /// END_REQUEST: app status, protocol status.
    pub end: Option<(u32, u8)>,
    pub management: Vec<Rec>,
    pub other_ends: Vec<(u16, u8)>,
}

impl Collected {
    /// Takes one record for request `id`; `others` are the other ids this
    /// connection may hear about. Anything else is an error.
    pub fn absorb(&mut self, id: u16, others: &[u16], r: Rec) -> Result<(), String> {
        if r.id == 0 {
            self.management.push(r);
            return Ok(());
        }
        if r.id != id {
            if !others.contains(&r.id) {
                return Err(format!(
                    "a type {} record for request {}, which was never sent",
                    r.rtype, r.id
                ));
            }
            if r.rtype == fcgi::FCGI_END_REQUEST {
                self.other_ends.push((r.id, r.content[4]));
            }
            return Ok(());
        }
        if self.end.is_some() {
            return Err(format!("a type {} record after END_REQUEST", r.rtype));
        }
        match r.rtype {
            fcgi::FCGI_STDOUT if self.stdout_closed => {
                return Err("STDOUT after the empty record that closed the stream".into());
            }
            fcgi::FCGI_STDOUT if r.content.is_empty() => self.stdout_closed = true,
            fcgi::FCGI_STDOUT => self.stdout.extend_from_slice(&r.content),
            fcgi::FCGI_END_REQUEST => {
                let app = u32::from_be_bytes(r.content[..4].try_into().unwrap());
                self.end = Some((app, r.content[4]));
            }
            _ => {}
        }
        Ok(())
    }

    /// Body bytes received so far (after the CGI head).
    pub fn body_len(&self) -> usize {
        find(&self.stdout, b"\r\n\r\n").map_or(0, |e| self.stdout.len() - e - 4)
    }

    pub fn protocol_status(&self) -> Option<u8> {
        self.end.map(|(_, p)| p)
    }
}

/// Reads to the END_REQUEST of `id`.
pub fn read_reply(s: &mut Strict, id: u16, others: &[u16]) -> Result<Collected, Fail> {
    let mut got = Collected::default();
    while got.end.is_none() {
        let r = s.next()?;
        got.absorb(id, others, r).map_err(Fail::Corrupt)?;
    }
    Ok(got)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A CGI response: status, headers, body.
pub type Cgi<'a> = (u16, Vec<(String, String)>, &'a [u8]);

pub fn cgi(stdout: &[u8]) -> Result<Cgi<'_>, String> {
    let end = find(stdout, b"\r\n\r\n")
        .ok_or_else(|| format!("no CGI head in {} bytes of STDOUT", stdout.len()))?;
    let mut status = 200;
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(&stdout[..end]).split("\r\n") {
        let (n, v) = line
            .split_once(": ")
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        if n == "Status" {
            status = v
                .get(..3)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad Status {v:?}"))?;
        }
        headers.push((n.to_string(), v.to_string()));
    }
    Ok((status, headers, &stdout[end + 4..]))
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A complete 200 whose body is `want`.
pub fn check_clip(got: &Collected, want: &[u8]) -> Result<(), String> {
    if got.protocol_status() != Some(fcgi::FCGI_REQUEST_COMPLETE) {
        return Err(format!("END_REQUEST {:?}", got.end));
    }
    let (status, headers, body) = cgi(&got.stdout)?;
    if status != 200 {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    if header(&headers, "Content-Length") != Some(body.len().to_string().as_str()) {
        return Err(format!(
            "Content-Length {:?} for {} body bytes",
            header(&headers, "Content-Length"),
            body.len()
        ));
    }
    if body != want {
        return Err(format!("the body differs from `cut`: {}", diff(body, want)));
    }
    Ok(())
}

/// A counter from the status page (`--status-path /status`), with timeouts.
pub fn counter(pool: &Pool, key: &str) -> u64 {
    let s = connect(&pool.socket, 5 * SEC).expect("connect for the status page");
    let mut s = Strict::new(s);
    let req = encode(
        1,
        false,
        &[
            (b"SCRIPT_NAME", b"/status"),
            (b"SCRIPT_FILENAME", b"/status"),
            (b"QUERY_STRING", b"json"),
            (b"REQUEST_METHOD", b"GET"),
        ],
    );
    s.stream.write_all(&req).expect("status request");
    let got = read_reply(&mut s, 1, &[]).unwrap_or_else(|e| panic!("status page: {e}"));
    let (_, _, body) = cgi(&got.stdout).unwrap();
    super::common::json_number(&String::from_utf8_lossy(body), key)
}

/// Bytes waiting to be read on `s`.
pub fn queued(s: &UnixStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD stores one int through the pointer.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD: {}", io::Error::last_os_error());
    usize::try_from(n).unwrap_or(0)
}

/// Waits until nothing more has arrived on `s` for 50 ms: the server is
/// blocked on a full socket. Returns the bytes queued.
pub fn wait_stalled(s: &UnixStream) -> usize {
    let deadline = Instant::now() + 5 * SEC;
    let mut last = queued(s);
    let mut since = Instant::now();
    loop {
        thread::sleep(ms(5));
        let q = queued(s);
        if q != last {
            (last, since) = (q, Instant::now());
        } else if since.elapsed() >= ms(50) {
            return q;
        }
        assert!(
            Instant::now() < deadline,
            "the server never stopped writing ({q} bytes queued)"
        );
    }
}
