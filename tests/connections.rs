//! The connection layer, pinned down: the codec frames everything it sends
//! (a management answer never lands inside a body record), a peer that only
//! writes is pushed back, idle and half-sent connections time out and never
//! make a request hang, reloads and signals lose no request, a POST body is
//! drained, and the development listener bounds what it parses.
//!
//! These tests load the machine (2200 sockets, 64 client threads, nginx,
//! reloads), so they run one at a time (`serial`), each in well under 40 s.
//! Every socket has a timeout, and a timeout is a failure.

mod common;

use common::{Pool, media, require_tool};
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

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: their timings (100 ms answers) mean nothing on a
/// machine another of them is flooding.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SEC: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long "at once" may take: 100 ms, or five times what the same
/// request took on the same pool just before the test held it up, on a
/// machine whose other work (a parallel build, another suite) slows
/// everything alike.
fn at_once(baseline: Duration) -> Duration {
    ms(100).max(baseline * 5)
}

/// A record type no FastCGI version defines.
const UNKNOWN_RECORD_TYPE: u8 = 42;

// ---------------------------------------------------------------- media

/// A 60 s 640x360 film at 1 Mb/s (about 8 MB), made once per target dir: a
/// body large enough to be mid-flight.
fn big_film() -> PathBuf {
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
fn clip(film: &Path, dir: &Path, query: &str) -> Vec<u8> {
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').expect("key=value");
        args.push(format!("--{k}"));
        args.push(v.to_string());
    }
    let stem = film.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("cut-{stem}-{}.mp4", query.replace(['&', '='], "_")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::cut(film, &out, &args).expect("cut");
    std::fs::read(&out).unwrap()
}

/// Lengths and the first differing offset, for bodies too large to print.
fn diff(got: &[u8], want: &[u8]) -> String {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    format!(
        "{} bytes, expected {}; first difference at {first:?}",
        got.len(),
        want.len()
    )
}

fn log_tail(pool: &Pool) -> String {
    let log = pool.log_text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

// ---------------------------------------------------------------- FastCGI, strictly

/// Connects without ever blocking on a full backlog (EAGAIN instead), then
/// puts `timeout` on reads and writes.
fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
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
fn encode(id: u16, keep: bool, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    fcgi::encode_begin_request(id, fcgi::FCGI_RESPONDER, keep, &mut out);
    fcgi::encode_params(pairs, id, &mut out);
    fcgi::encode_record(fcgi::FCGI_STDIN, id, &[], &mut out);
    out
}

/// A GET of `file` with `query`.
fn request(id: u16, file: &Path, query: &str, keep: bool) -> Vec<u8> {
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

struct Rec {
    rtype: u8,
    id: u16,
    content: Vec<u8>,
}

enum Fail {
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
struct Strict {
    stream: UnixStream,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// Bytes read from the socket so far.
    received: usize,
}

impl Strict {
    fn new(stream: UnixStream) -> Strict {
        Strict {
            stream,
            buf: Vec::new(),
            chunk: vec![0u8; 64 << 10],
            received: 0,
        }
    }

    fn next(&mut self) -> Result<Rec, Fail> {
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
struct Collected {
    stdout: Vec<u8>,
    /// The empty STDOUT record that closes the stream arrived.
    stdout_closed: bool,
    /// END_REQUEST: app status, protocol status.
    end: Option<(u32, u8)>,
    management: Vec<Rec>,
    other_ends: Vec<(u16, u8)>,
}

impl Collected {
    /// Takes one record for request `id`; `others` are the other ids this
    /// connection may hear about. Anything else is an error.
    fn absorb(&mut self, id: u16, others: &[u16], r: Rec) -> Result<(), String> {
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
    fn body_len(&self) -> usize {
        find(&self.stdout, b"\r\n\r\n").map_or(0, |e| self.stdout.len() - e - 4)
    }

    fn protocol_status(&self) -> Option<u8> {
        self.end.map(|(_, p)| p)
    }
}

/// Reads to the END_REQUEST of `id`.
fn read_reply(s: &mut Strict, id: u16, others: &[u16]) -> Result<Collected, Fail> {
    let mut got = Collected::default();
    while got.end.is_none() {
        let r = s.next()?;
        got.absorb(id, others, r).map_err(Fail::Corrupt)?;
    }
    Ok(got)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A CGI response: status, headers, body.
type Cgi<'a> = (u16, Vec<(String, String)>, &'a [u8]);

fn cgi(stdout: &[u8]) -> Result<Cgi<'_>, String> {
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

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A complete 200 whose body is `want`.
fn check_clip(got: &Collected, want: &[u8]) -> Result<(), String> {
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
fn counter(pool: &Pool, key: &str) -> u64 {
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
    common::json_number(&String::from_utf8_lossy(body), key)
}

/// Bytes waiting to be read on `s`.
fn queued(s: &UnixStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD stores one int through the pointer.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD: {}", io::Error::last_os_error());
    usize::try_from(n).unwrap_or(0)
}

/// Waits until nothing more has arrived on `s` for 50 ms: the server is
/// blocked on a full socket. Returns the bytes queued.
fn wait_stalled(s: &UnixStream) -> usize {
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

// ---------------------------------------------------------------- 1. framing

#[derive(Clone, Copy, Debug)]
enum Management {
    GetValues,
    UnknownType,
    SecondRequest,
}

/// A download of >= 2 MB is blocked on a full socket, mid-body, when a
/// management record (or a second request) arrives. The answer must come
/// between records, the body byte for byte, and the connection stay usable.
fn management_record_mid_body(kind: Management, query: &str) {
    let _serial = serial();
    let film = big_film();
    let pool = Pool::start(&["--workers", "1"]);
    let want = clip(&film, pool.dir.path(), query);
    assert!(
        want.len() >= 2 << 20,
        "the body must be large enough to be mid-flight: {} bytes",
        want.len()
    );
    let mut s = Strict::new(connect(&pool.socket, 10 * SEC).unwrap());
    s.stream.write_all(&request(1, &film, query, true)).unwrap();
    let others: &[u16] = match kind {
        Management::SecondRequest => &[2],
        _ => &[],
    };
    let mut got = Collected::default();
    while got.body_len() == 0 {
        let r = s
            .next()
            .unwrap_or_else(|e| panic!("before the first body record: {e}"));
        got.absorb(1, others, r).unwrap();
        assert!(got.end.is_none(), "the response ended without a body");
    }
    let waiting = wait_stalled(&s.stream);
    assert!(
        got.stdout.len() + s.buf.len() + waiting < want.len(),
        "the server must still be mid-body ({} + {} + {waiting} of {} bytes out)",
        got.stdout.len(),
        s.buf.len(),
        want.len()
    );
    let mut m = Vec::new();
    match kind {
        Management::GetValues => {
            let mut names = Vec::new();
            for n in ["FCGI_MPXS_CONNS", "FCGI_MAX_CONNS"] {
                names.extend_from_slice(&[n.len() as u8, 0]);
                names.extend_from_slice(n.as_bytes());
            }
            fcgi::encode_record(fcgi::FCGI_GET_VALUES, 0, &names, &mut m);
        }
        Management::UnknownType => fcgi::encode_record(UNKNOWN_RECORD_TYPE, 0, b"abc", &mut m),
        Management::SecondRequest => m = request(2, &media("a.mp4"), "start=1", true),
    }
    s.stream.write_all(&m).unwrap();
    let sent_at = got.body_len();
    let answered = |g: &Collected| match kind {
        Management::GetValues => g
            .management
            .iter()
            .any(|r| r.rtype == fcgi::FCGI_GET_VALUES_RESULT),
        Management::UnknownType => g
            .management
            .iter()
            .any(|r| r.rtype == fcgi::FCGI_UNKNOWN_TYPE),
        Management::SecondRequest => !g.other_ends.is_empty(),
    };
    while got.end.is_none() || !answered(&got) {
        let r = s.next().unwrap_or_else(|e| {
            panic!(
                "{kind:?} sent with {sent_at} body bytes read and {waiting} queued; then \
                 after {} more body bytes: {e}",
                got.body_len() - sent_at
            )
        });
        got.absorb(1, others, r)
            .unwrap_or_else(|e| panic!("{kind:?} sent mid-body: {e}"));
    }
    match kind {
        Management::GetValues => {
            assert_eq!(got.management.len(), 1, "one GET_VALUES_RESULT");
            let p = fcgi::Params::parse(got.management[0].content.clone())
                .expect("GET_VALUES_RESULT holds name-value pairs");
            assert_eq!(p.get(b"FCGI_MPXS_CONNS"), Some(&b"0"[..]));
        }
        Management::UnknownType => {
            assert_eq!(got.management.len(), 1, "one UNKNOWN_TYPE");
            assert_eq!(got.management[0].content[0], UNKNOWN_RECORD_TYPE);
        }
        Management::SecondRequest => {
            assert!(got.management.is_empty());
            assert_eq!(got.other_ends, vec![(2, fcgi::FCGI_CANT_MPX_CONN)]);
        }
    }
    check_clip(&got, &want).unwrap_or_else(|e| panic!("{kind:?} sent mid-body: {e}"));
    // The connection is still in step: the next request on it is served.
    let a = media("a.mp4");
    s.stream
        .write_all(&request(3, &a, "start=2&end=6", true))
        .unwrap();
    let next = read_reply(&mut s, 3, others)
        .unwrap_or_else(|e| panic!("the request after the download: {e}"));
    assert!(next.management.is_empty(), "no stray management records");
    check_clip(&next, &clip(&a, pool.dir.path(), "start=2&end=6"))
        .unwrap_or_else(|e| panic!("the request after the download: {e}"));
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn get_values_mid_body_is_answered_between_records() {
    management_record_mid_body(Management::GetValues, "");
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn unknown_type_mid_body_is_answered_between_records() {
    management_record_mid_body(Management::UnknownType, "start=10");
}

#[test]
#[cfg_attr(not(has_ffmpeg), ignore = "needs ffmpeg: apt-get install -y ffmpeg")]
fn second_request_mid_body_is_refused_between_records() {
    management_record_mid_body(Management::SecondRequest, "start=5&end=50");
}

// ---------------------------------------------------------------- 2. back-pressure

#[test]
fn a_peer_that_floods_management_records_and_never_reads_is_pushed_back() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1"]);
    let worker = pool.wait_workers(1)[0];
    let a = media("a.mp4");
    let want = clip(&a, pool.dir.path(), "start=2&end=4");
    // 8-byte GET_VALUES and unknown-type records, answered with 8 and 16 bytes.
    let mut flood = Vec::with_capacity(64 << 10);
    for i in 0..8192 {
        let t = if i % 2 == 0 {
            fcgi::FCGI_GET_VALUES
        } else {
            UNKNOWN_RECORD_TYPE
        };
        fcgi::encode_record(t, 0, &[], &mut flood);
    }
    let mut s = connect(&pool.socket, 5 * SEC).unwrap();
    s.set_nonblocking(true).unwrap();
    let socket = pool.socket.clone();
    let second = thread::spawn(move || -> Result<Duration, String> {
        thread::sleep(SEC);
        let t = Instant::now();
        let mut c = Strict::new(connect(&socket, 5 * SEC).map_err(|e| e.to_string())?);
        c.stream
            .write_all(&request(1, &a, "start=2&end=4", true))
            .map_err(|e| e.to_string())?;
        let r = read_reply(&mut c, 1, &[]).map_err(|e| e.to_string())?;
        check_clip(&r, &want)?;
        Ok(t.elapsed())
    });
    let start = Instant::now();
    let (mut sent, mut pos, mut peak) = (0usize, 0usize, common::rss_kib(worker));
    let mut blocked_since: Option<Instant> = None;
    let mut sampled = Instant::now();
    let stalled = loop {
        if sampled.elapsed() >= ms(10) {
            peak = peak.max(common::rss_kib(worker));
            sampled = Instant::now();
        }
        if start.elapsed() > 8 * SEC || peak >= 32 << 10 {
            break false;
        }
        match s.write(&flood[pos..]) {
            Ok(n) => {
                sent += n;
                pos = (pos + n) % flood.len();
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if blocked_since.get_or_insert_with(Instant::now).elapsed() >= 2 * SEC {
                    break true;
                }
                thread::sleep(ms(1));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "the worker dropped the flooding connection after {sent} bytes ({e}) instead \
                 of pushing back; log:\n{}",
                log_tail(&pool)
            ),
        }
    };
    let second = second.join().unwrap();
    peak = peak.max(common::rss_kib(worker));
    drop(s);
    eprintln!(
        "flood: {sent} bytes in {:?}, writer blocked: {stalled}, worker peak RSS {peak} KiB, \
         second client: {second:?}",
        start.elapsed()
    );
    assert!(peak < 32 << 10, "worker RSS reached {peak} KiB");
    assert!(
        stalled,
        "the worker kept reading: {sent} bytes taken in {:?} without 2 s of back-pressure",
        start.elapsed()
    );
    second.unwrap_or_else(|e| panic!("a second client during the flood: {e}"));
    assert_eq!(pool.workers(), vec![worker], "the worker survived");
}

// ---------------------------------------------------------------- 3. idle and half-sent

/// Raises RLIMIT_NOFILE's soft limit to the hard one (children inherit it).
/// False (after a note) when the hard limit is below `need`, outside CI.
fn raise_nofile(need: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_max < need {
        let msg = format!(
            "RLIMIT_NOFILE hard limit is {}; this test needs {need}",
            lim.rlim_max
        );
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "{msg}");
        eprintln!("note: {msg}; skipping this test");
        return false;
    }
    lim.rlim_cur = lim.rlim_max.min(1 << 20);
    // SAFETY: plain setrlimit on our own process.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit: {}", io::Error::last_os_error());
    true
}

/// Whether the server closed `s` (EOF or reset), reading past anything it sent.
fn closed_by_server(mut s: &UnixStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_half_sent_connections_time_out_and_never_hold_up_a_request() {
    let _serial = serial();
    if !raise_nofile(4096) {
        return;
    }
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--max-conns",
        "1000",
        "--idle-timeout",
        "3",
        "--request-timeout",
        "2",
        "--status-path",
        "/status",
    ]);
    pool.wait_workers(2);
    let a = media("a.mp4");
    let want = clip(&a, pool.dir.path(), "end=1");
    let probe = || {
        let t = Instant::now();
        let r = connect(&pool.socket, 2 * SEC)
            .map_err(|e| format!("connect: {e}"))
            .and_then(|s| {
                let mut c = Strict::new(s);
                c.stream
                    .write_all(&request(1, &a, "end=1", false))
                    .map_err(|e| format!("write: {e}"))?;
                read_reply(&mut c, 1, &[]).map_err(|e| e.to_string())
            });
        (r, t.elapsed())
    };
    // The same request on the idle pool, each worker's cache warm.
    let baseline = (0..4).map(|_| probe().1).max().unwrap_or_default();
    let mut idle = Vec::with_capacity(2000);
    for i in 0..2000 {
        idle.push(
            connect(&pool.socket, 2 * SEC).unwrap_or_else(|e| panic!("idle connection {i}: {e}")),
        );
    }
    let mut half = Vec::with_capacity(200);
    for i in 0..200 {
        let mut s =
            connect(&pool.socket, 2 * SEC).unwrap_or_else(|e| panic!("half connection {i}: {e}"));
        let bytes = if i % 2 == 0 {
            // Half a record header.
            vec![fcgi::FCGI_VERSION_1, fcgi::FCGI_BEGIN_REQUEST, 0, 1]
        } else {
            // A request whose PARAMS never end.
            let mut b = Vec::new();
            fcgi::encode_begin_request(1, fcgi::FCGI_RESPONDER, true, &mut b);
            fcgi::encode_record(
                fcgi::FCGI_PARAMS,
                1,
                b"\x0f\x08SCRIPT_FILENAME/a.mp4",
                &mut b,
            );
            b
        };
        s.write_all(&bytes)
            .unwrap_or_else(|e| panic!("half connection {i}: {e}"));
        half.push(s);
    }
    let opened = Instant::now();
    thread::sleep(ms(300));
    let mut overloaded = 0;
    for n in 0..3 {
        let (r, took) = probe();
        let r = r
            .unwrap_or_else(|e| panic!("probe {n} with 2200 connections held: {e} after {took:?}"));
        assert!(
            took < at_once(baseline),
            "probe {n}: answered after {took:?}, not at once (idle pool: {baseline:?})"
        );
        let (status, headers, _) = cgi(&r.stdout).unwrap_or_else(|e| panic!("probe {n}: {e}"));
        if status == 503 {
            assert!(
                header(&headers, "Retry-After").is_some(),
                "probe {n}: a 503 without Retry-After"
            );
            assert_eq!(
                r.protocol_status(),
                Some(fcgi::FCGI_OVERLOADED),
                "probe {n}: a 503 ends with FCGI_OVERLOADED"
            );
            overloaded += 1;
        } else {
            check_clip(&r, &want).unwrap_or_else(|e| panic!("probe {n}: {e}"));
        }
        thread::sleep(ms(100));
    }
    // Past both timeouts (with the sweep's slack) every one of them is closed.
    thread::sleep((opened + 4 * SEC).saturating_duration_since(Instant::now()));
    let deadline = opened + 7 * SEC;
    let (open_idle, open_half) = loop {
        let open_idle = idle.iter().filter(|s| !closed_by_server(s)).count();
        let open_half = half.iter().filter(|s| !closed_by_server(s)).count();
        if open_idle + open_half == 0 || Instant::now() > deadline {
            break (open_idle, open_half);
        }
        thread::sleep(ms(200));
    };
    assert_eq!(
        (open_idle, open_half),
        (0, 0),
        "(idle, half-sent) connections still open {:?} after opening them",
        opened.elapsed()
    );
    drop((idle, half));
    let mut c = Strict::new(connect(&pool.socket, 2 * SEC).unwrap());
    c.stream.write_all(&request(1, &a, "end=1", true)).unwrap();
    let r = read_reply(&mut c, 1, &[]).unwrap_or_else(|e| panic!("after the timeouts: {e}"));
    check_clip(&r, &want).unwrap_or_else(|e| panic!("after the timeouts: {e}"));
    assert!(counter(&pool, "idle_timeouts") > 0);
    assert!(counter(&pool, "request_timeouts") > 0);
    if overloaded > 0 {
        assert!(counter(&pool, "overloaded") > 0, "503s are counted");
    }
}

// ---------------------------------------------------------------- load helpers

/// What load threads saw.
#[derive(Default)]
struct Tally {
    ok: u64,
    retries: u64,
    failed: u64,
    failures: Vec<String>,
    done: Vec<Instant>,
}

impl Tally {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.failures.len() < 6 {
            self.failures.push(why);
        }
    }
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.retries += o.retries;
        self.failed += o.failed;
        self.failures
            .extend(o.failures.into_iter().take(6 - self.failures.len().min(6)));
        self.done.extend(o.done);
    }
    fn before(&self, t: Instant) -> usize {
        self.done.iter().filter(|d| **d < t).count()
    }
    fn after(&self, t: Instant) -> usize {
        self.done.iter().filter(|d| **d > t).count()
    }
    /// No failure, and requests completed before `first` and after `last`.
    fn assert_clean(&self, what: &str, first: Instant, last: Instant) {
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
fn run_load<F>(
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

fn join_load(handles: Vec<thread::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for h in handles {
        all.merge(h.join().unwrap());
    }
    all
}

/// Sends `sigs` to the master `gap` apart after `lead`: (first, last) sent.
fn send_signals(pool: &Pool, sigs: &[i32], lead: Duration, gap: Duration) -> (Instant, Instant) {
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
fn wait_replaced(pool: &Pool, old: &[i32], n: usize, within: Duration) -> Vec<i32> {
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

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
    )
}

enum Miss {
    /// The connection was closed before any byte of the answer arrived.
    Early(String),
    Failed(String),
}

/// One request on `c`, its answer checked against `want`.
fn exchange(c: &mut Strict, id: u16, req: &[u8], want: &[u8]) -> Result<(), Miss> {
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
struct FcgiClient {
    socket: PathBuf,
    keep: bool,
    retry: bool,
    file: PathBuf,
    query: &'static str,
    want: Arc<Vec<u8>>,
    conn: Option<Strict>,
    id: u16,
}

impl FcgiClient {
    fn new(pool: &Pool, keep: bool, retry: bool, query: &'static str, want: &Arc<Vec<u8>>) -> Self {
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

    fn fresh(&self, req: &[u8]) -> Result<Strict, String> {
        let mut c =
            Strict::new(connect(&self.socket, 5 * SEC).map_err(|e| format!("connect: {e}"))?);
        match exchange(&mut c, self.id, req, &self.want) {
            Ok(()) => Ok(c),
            Err(Miss::Early(m) | Miss::Failed(m)) => Err(m),
        }
    }

    fn step(&mut self, t: &mut Tally) {
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

// ---------------------------------------------------------------- 4. reloads

#[test]
fn ten_reloads_under_direct_load_lose_no_request() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "2", "--status-path", "/status"]);
    let original = pool.wait_workers(2);
    let query = "start=1&end=2";
    let want = Arc::new(clip(&media("a.mp4"), pool.dir.path(), query));
    let stop = Arc::new(AtomicBool::new(false));
    let load = run_load(64, &stop, |i| {
        let mut c = FcgiClient::new(&pool, i % 2 == 1, true, query, &want);
        move |t: &mut Tally| c.step(t)
    });
    let (first, last) = send_signals(&pool, &[libc::SIGHUP; 10], ms(500), ms(400));
    thread::sleep(SEC);
    stop.store(true, Relaxed);
    let tally = join_load(load);
    tally.assert_clean("64 FastCGI clients, 10 SIGHUPs", first, last);
    assert_eq!(counter(&pool, "reloads"), 10);
    wait_replaced(&pool, &original, 2, 10 * SEC);
}

/// Symlinks to the films in a folder front servers can read.
fn film_root(films: &[(&str, &Path)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (name, path) in films {
        std::os::unix::fs::symlink(path, d.path().join(name)).unwrap();
    }
    d
}

/// nginx in front of `pool`: `/kept/NAME` through an upstream with
/// `keepalive 8` and `fastcgi_keep_conn on`, `/direct/NAME` with a
/// connection per request; NAME is a file in `root`. Unbuffered, so a slow
/// client keeps its upstream request in flight.
fn nginx_in_front(
    nginx: &Path,
    pool: &Pool,
    root: &Path,
) -> (tempfile::TempDir, u16, common::Stop) {
    std::fs::set_permissions(
        pool.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let sock = pool.socket.display();
    let params = format!(
        "fastcgi_param SCRIPT_FILENAME {}/$1; fastcgi_param SCRIPT_NAME /$1; \
         fastcgi_param QUERY_STRING $query_string; fastcgi_param REQUEST_METHOD $request_method; \
         fastcgi_buffering off;",
        root.display()
    );
    let upstream = format!("upstream pool {{ server unix:{sock}; keepalive 8; }}");
    let server = format!(
        "location ~ ^/kept/(.+)$ {{ fastcgi_pass pool; fastcgi_keep_conn on; {params} }}\n  \
         location ~ ^/direct/(.+)$ {{ fastcgi_pass unix:{sock}; {params} }}"
    );
    let conf = common::nginx_conf(dir.path(), port, &upstream, &server);
    let stop = common::start_nginx(nginx, dir.path(), &conf, port);
    (dir, port, stop)
}

struct HttpReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn parse_http(all: &[u8]) -> Result<HttpReply, String> {
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

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A GET over a new connection with `Connection: close`, read to the end.
fn http_get(port: u16, path: &str, timeout: Duration) -> Result<HttpReply, String> {
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

#[test]
#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]
fn ten_reloads_behind_nginx_lose_no_request() {
    let _serial = serial();
    let nginx = require_tool("nginx");
    let pool = Pool::start(&["--workers", "2", "--socket-mode", "666"]);
    pool.wait_workers(2);
    let a = media("a.mp4");
    let root = film_root(&[("a.mp4", &a)]);
    let (_dir, port, _nginx) = nginx_in_front(&nginx, &pool, root.path());
    let want = Arc::new(clip(&a, pool.dir.path(), "start=1&end=2"));
    for path in ["/kept/a.mp4?start=1&end=2", "/direct/a.mp4?start=1&end=2"] {
        let before = pool.workers();
        let stop = Arc::new(AtomicBool::new(false));
        let load = run_load(64, &stop, |_| {
            let want = want.clone();
            move |t: &mut Tally| match http_get(port, path, 3 * SEC) {
                Ok(r) if r.status == 200 && r.body == *want => {
                    t.ok += 1;
                    t.done.push(Instant::now());
                }
                Ok(r) => t.fail(format!(
                    "{path}: {} with {}",
                    r.status,
                    diff(&r.body, &want)
                )),
                Err(e) => t.fail(e),
            }
        });
        let (first, last) = send_signals(&pool, &[libc::SIGHUP; 10], ms(500), ms(400));
        thread::sleep(SEC);
        stop.store(true, Relaxed);
        join_load(load).assert_clean(
            &format!("64 HTTP clients on {path}, 10 SIGHUPs"),
            first,
            last,
        );
        wait_replaced(&pool, &before, 2, 5 * SEC);
    }
}

#[test]
fn a_recycled_worker_held_by_half_sent_headers_exits_within_the_shutdown_timeout() {
    let _serial = serial();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--shutdown-timeout",
        "3",
        "--status-path",
        "/status",
    ]);
    let old = pool.wait_workers(1)[0];
    let stalled: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut s = connect(&pool.socket, 2 * SEC).unwrap();
            s.write_all(&[fcgi::FCGI_VERSION_1, fcgi::FCGI_BEGIN_REQUEST, 0, 1])
                .unwrap();
            s
        })
        .collect();
    // The status request queued behind the 8: once it is answered, the
    // worker holds all of them.
    let active = counter(&pool, "active_connections");
    assert!(
        active >= 9,
        "the worker holds the 8 stalled peers: {active}"
    );
    let hup = Instant::now();
    pool.signal(libc::SIGHUP);
    while pool.workers().contains(&old) {
        assert!(
            hup.elapsed() < 4 * SEC,
            "the recycled worker {old} still runs {:?} after SIGHUP (--shutdown-timeout 3)",
            hup.elapsed()
        );
        thread::sleep(ms(20));
    }
    eprintln!("recycled worker gone after {:?}", hup.elapsed());
    let a = media("a.mp4");
    let mut c = Strict::new(connect(&pool.socket, 5 * SEC).unwrap());
    c.stream.write_all(&request(1, &a, "end=1", true)).unwrap();
    let r = read_reply(&mut c, 1, &[]).unwrap_or_else(|e| panic!("after the reload: {e}"));
    check_clip(&r, &clip(&a, pool.dir.path(), "end=1")).unwrap();
    drop(stalled);
}

// ---------------------------------------------------------------- 5. SIGUSR1, SIGUSR2

#[test]
fn sigusr1_and_sigusr2_under_load_disturb_nothing() {
    let _serial = serial();
    let mut pool = Pool::start(&["--workers", "2", "--status-path", "/status"]);
    let mut workers = pool.wait_workers(2);
    workers.sort();
    let query = "start=3&end=4";
    let want = Arc::new(clip(&media("a.mp4"), pool.dir.path(), query));
    let stop = Arc::new(AtomicBool::new(false));
    // No retries: nothing here may close a connection.
    let load = run_load(4, &stop, |i| {
        let mut c = FcgiClient::new(&pool, i % 2 == 1, false, query, &want);
        move |t: &mut Tally| c.step(t)
    });
    let sigs = [libc::SIGUSR1, libc::SIGUSR2].repeat(3);
    let (first, last) = send_signals(&pool, &sigs, ms(300), ms(400));
    thread::sleep(ms(500));
    stop.store(true, Relaxed);
    let tally = join_load(load);
    assert!(
        matches!(pool.child.try_wait(), Ok(None)),
        "the master exited: {}",
        log_tail(&pool)
    );
    tally.assert_clean("4 FastCGI clients, 3 SIGUSR1 + 3 SIGUSR2", first, last);
    let mut now = pool.workers();
    now.sort();
    assert_eq!(now, workers, "the same workers serve");
    assert_eq!(counter(&pool, "worker_deaths"), 0);
}

// ---------------------------------------------------------------- 6. SIGTERM behind nginx

#[test]
#[cfg_attr(
    not(all(has_nginx, has_ffmpeg)),
    ignore = "needs nginx, ffmpeg: apt-get install -y nginx ffmpeg"
)]
fn sigterm_behind_nginx_answers_new_requests_at_once_and_finishes_a_slow_download() {
    let _serial = serial();
    let nginx = require_tool("nginx");
    let film = big_film();
    let pool = Pool::start(&[
        "--workers",
        "2",
        "--shutdown-timeout",
        "10",
        "--socket-mode",
        "666",
    ]);
    pool.wait_workers(2);
    let a = media("a.mp4");
    let root = film_root(&[("a.mp4", &a), ("big.mp4", &film)]);
    let (_dir, port, _nginx) = nginx_in_front(&nginx, &pool, root.path());
    let want = clip(&film, pool.dir.path(), "start=20");
    // Several requests at once, so nginx keeps several upstream connections.
    let warm: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || http_get(port, "/kept/a.mp4?end=1", 10 * SEC)))
        .collect();
    for w in warm {
        let r = w.join().unwrap().unwrap();
        assert_eq!(r.status, 200);
    }
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let slow = thread::spawn(move || -> Result<Vec<u8>, String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(10 * SEC)).unwrap();
        write!(
            s,
            "GET /kept/big.mp4?start=20 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        let began = Instant::now();
        loop {
            if began.elapsed() > 25 * SEC {
                return Err(format!(
                    "still reading after {:?}: {} bytes",
                    began.elapsed(),
                    all.len()
                ));
            }
            match s.read(&mut chunk) {
                Ok(0) => return Ok(all),
                Ok(n) => {
                    all.extend_from_slice(&chunk[..n]);
                    seen.store(all.len(), Relaxed);
                }
                Err(e) => return Err(format!("{e} after {} bytes", all.len())),
            }
            thread::sleep(ms(50));
        }
    });
    let deadline = Instant::now() + 10 * SEC;
    while progress.load(Relaxed) < 256 << 10 {
        assert!(Instant::now() < deadline, "the slow download never started");
        thread::sleep(ms(10));
    }
    // The same requests while nothing holds the pool but the download.
    let baseline = ["/kept/a.mp4?end=1", "/direct/a.mp4?end=1"]
        .iter()
        .map(|path| {
            let t = Instant::now();
            let _ = http_get(port, path, 2 * SEC);
            t.elapsed()
        })
        .max()
        .unwrap_or_default();
    pool.signal(libc::SIGTERM);
    thread::sleep(ms(200));
    let mut probes = Vec::new();
    for i in 0..6 {
        let path = if i % 2 == 0 {
            "/kept/a.mp4?end=1"
        } else {
            "/direct/a.mp4?end=1"
        };
        let t = Instant::now();
        let r = http_get(port, path, 2 * SEC);
        probes.push((path, r.map(|r| r.status), t.elapsed()));
        thread::sleep(ms(50));
    }
    let download = slow.join().unwrap();
    eprintln!("probes after SIGTERM: {probes:?}");
    for (path, r, took) in &probes {
        assert!(
            r.is_ok() && *took < at_once(baseline),
            "{path} after SIGTERM: {r:?} in {took:?} (all: {probes:?}, before: {baseline:?})"
        );
    }
    let all = download.unwrap_or_else(|e| panic!("the slow download: {e}"));
    let r = parse_http(&all).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(content_length(&r.head), Some(want.len()));
    assert!(
        r.body == want,
        "the slow download: {}",
        diff(&r.body, &want)
    );
}

// ---------------------------------------------------------------- 7. POST

#[test]
fn a_post_with_a_640_kib_body_gets_405_and_end_request() {
    let _serial = serial();
    let pool = Pool::start(&["--workers", "1"]);
    let a = media("a.mp4");
    let body = vec![b'x'; 640 << 10];
    let len = body.len().to_string();
    let mut req = Vec::new();
    fcgi::encode_begin_request(1, fcgi::FCGI_RESPONDER, true, &mut req);
    fcgi::encode_params(
        &[
            (b"SCRIPT_FILENAME", a.as_os_str().as_encoded_bytes()),
            (b"REQUEST_METHOD", b"POST"),
            (b"QUERY_STRING", b""),
            (b"CONTENT_TYPE", b"application/octet-stream"),
            (b"CONTENT_LENGTH", len.as_bytes()),
        ],
        1,
        &mut req,
    );
    for chunk in body.chunks(32 << 10) {
        fcgi::encode_record(fcgi::FCGI_STDIN, 1, chunk, &mut req);
    }
    fcgi::encode_record(fcgi::FCGI_STDIN, 1, &[], &mut req);
    let s = connect(&pool.socket, 10 * SEC).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&req).map_err(|e| e.to_string()));
    let mut c = Strict::new(s);
    let r = read_reply(&mut c, 1, &[])
        .unwrap_or_else(|e| panic!("the POST: {e}; log:\n{}", log_tail(&pool)));
    let (status, _, text) = cgi(&r.stdout).unwrap();
    assert_eq!(status, 405, "{}", String::from_utf8_lossy(text));
    assert_eq!(r.protocol_status(), Some(fcgi::FCGI_REQUEST_COMPLETE));
    let wrote = writer.join().unwrap();
    assert!(wrote.is_ok(), "the body was not taken: {wrote:?}");
    // The STDIN stream was consumed in step: the connection serves the next request.
    c.stream.write_all(&request(2, &a, "end=1", true)).unwrap();
    let next = read_reply(&mut c, 2, &[]).unwrap_or_else(|e| panic!("after the POST: {e}"));
    check_clip(&next, &clip(&a, pool.dir.path(), "end=1")).unwrap();
    let log = pool.log_text();
    assert!(!log.contains("without a complete record"), "{log}");
}

// ---------------------------------------------------------------- 8. --http

/// A pool with the development listener on a free port; its port.
fn dev_pool() -> (Pool, u16) {
    let port = common::free_port();
    let root = media("a.mp4")
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let pool = Pool::start(&[
        "--workers",
        "1",
        "--http",
        &format!("127.0.0.1:{port}"),
        "--root",
        &root,
    ]);
    common::wait_port(port);
    (pool, port)
}

/// Sends `bytes` in one write and reads until the server closes.
fn http_raw(port: u16, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(5 * SEC)).unwrap();
    s.set_write_timeout(Some(5 * SEC)).unwrap();
    s.write_all(bytes).map_err(|e| format!("write: {e}"))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| {
        let first = all.split(|b| *b == b'\r').next().unwrap_or_default();
        format!(
            "not closed within 5 s ({e}) after {} bytes beginning {:?}",
            all.len(),
            String::from_utf8_lossy(first)
        )
    })?;
    Ok(all)
}

#[test]
fn dev_http_head_of_100_kib_gets_431_and_a_close() {
    let _serial = serial();
    let (_pool, port) = dev_pool();
    let mut req = b"GET /a.mp4 HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_vec();
    req.resize(100 << 10, b'f');
    req.extend_from_slice(b"\r\n\r\n");
    let all = http_raw(port, &req).unwrap_or_else(|e| panic!("100 KiB head: {e}"));
    let r = parse_http(&all).unwrap();
    assert_eq!(r.status, 431, "{}", r.head);
}

#[test]
fn dev_http_get_with_a_body_is_refused_and_the_smuggled_request_not_answered() {
    let _serial = serial();
    let (_pool, port) = dev_pool();
    let req = b"GET /a.mp4?end=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n\
                GET /a.mp4?end=2 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let all = http_raw(port, req).unwrap_or_else(|e| panic!("GET with a body: {e}"));
    let r = parse_http(&all).unwrap();
    assert!(
        matches!(r.status, 400 | 413),
        "a GET with a body: {}",
        r.head
    );
    let answers = all.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    assert_eq!(
        answers,
        1,
        "the request inside the body was answered: {}",
        String::from_utf8_lossy(&all)
    );
}

#[test]
fn dev_http_pipeline_of_2000_heads_is_answered_in_order() {
    let _serial = serial();
    let (_pool, port) = dev_pool();
    // Each window has its own ETag: the answers' order shows in them.
    let etag = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("etag: "))
            .map(str::to_string)
    };
    let windows: Vec<String> = (0..20)
        .map(|k| {
            let all = http_raw(
                port,
                format!(
                    "HEAD /a.mp4?start={k} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            let r = parse_http(&all).unwrap();
            assert_eq!(r.status, 200, "{}", r.head);
            etag(&r.head).expect("an ETag")
        })
        .collect();
    let pad = "p".repeat(90);
    let mut pipeline = Vec::new();
    for i in 0..2000 {
        write!(
            pipeline,
            "HEAD /a.mp4?start={} HTTP/1.1\r\nHost: localhost\r\nX-Seq: {i:04}\r\nX-Pad: {pad}\r\n\r\n",
            i % 20
        )
        .unwrap();
    }
    assert!(pipeline.len() > 280 << 10, "{} bytes", pipeline.len());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(10 * SEC)).unwrap();
    s.set_write_timeout(Some(10 * SEC)).unwrap();
    let mut r = s.try_clone().unwrap();
    let reader = thread::spawn(move || -> Result<Vec<String>, String> {
        let mut heads = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            while heads.len() < 2000
                && let Some(end) = find(&buf, b"\r\n\r\n")
            {
                heads.push(String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase());
                buf.drain(..end + 4);
            }
            if heads.len() == 2000 {
                return Ok(heads);
            }
            match r.read(&mut chunk) {
                Ok(0) => return Err(format!("closed after {} answers", heads.len())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("{e} after {} answers", heads.len())),
            }
        }
    });
    let wrote = s.write_all(&pipeline);
    let heads = reader.join().unwrap();
    assert!(wrote.is_ok(), "writing the pipeline: {wrote:?} ({heads:?})");
    let heads = heads.unwrap_or_else(|e| panic!("2000 pipelined HEADs: {e}"));
    for (i, h) in heads.iter().enumerate() {
        assert!(h.starts_with("http/1.1 200"), "answer {i}: {h}");
        assert_eq!(
            etag(h).as_deref(),
            Some(windows[i % 20].as_str()),
            "answer {i} is for another request"
        );
    }
}
