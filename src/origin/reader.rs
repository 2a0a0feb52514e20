//! A blocking view of an object for the engine's index build, which runs
//! off the event loop: reads are served from the bytes already fetched, and
//! a miss fetches what was asked, or for a box header a small probe, so a
//! `moov` costs one or two requests and a fragment one.
//!
//! What a build may cost the origin is bounded by its [`Budget`]: requests,
//! bytes and time, checked before each request, and the bytes it keeps.

use super::{Fault, Object, Origin};
use crate::mp4::ReadAt;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a probe fetches for a read of a box header (the engine walks the
/// top-level boxes 32 bytes at a time): enough for the header and, in a
/// fragmented film, the `moof` behind it. Probes that walk on through
/// bytes just fetched double, up to a chunk.
const PROBE: u64 = 16 << 10;

/// Requests every build may send, whatever `--max-moov` says.
const BASE_REQUESTS: u64 = 64;
/// `--max-moov` bytes that justify one more request: a fragment (its
/// `moof` is counted against `--max-moov`) costs one.
const BYTES_PER_REQUEST: u64 = 8 << 10;
/// Bytes every build may fetch beyond its opening chunk and twice
/// `--max-moov` (a `moov` and the `moof`s).
const BASE_BYTES: u64 = 8 << 20;
/// A build may read for this many origin timeouts.
const TIMEOUTS: u32 = 4;

/// What one index build may cost the origin, and what it may keep.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Requests, the opening one included.
    pub requests: u64,
    /// Bytes fetched, the opening chunk included.
    pub bytes: u64,
    /// How long the build may read, from the reader's creation.
    pub time: Option<Duration>,
    /// Bytes of fetched pieces kept at once (beyond it, new pieces serve
    /// the read that fetched them and are let go).
    pub keep: u64,
    /// Set when nobody waits for the build any more.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Budget {
    /// A server's build of an object on `origin`, with `--max-moov` at
    /// `max_moov`: 64 requests and one more per 8 KiB of `--max-moov`;
    /// the opening chunk, twice `--max-moov` and 8 MiB; 4 origin
    /// timeouts; a `moov` and a chunk kept.
    pub fn build(origin: &Origin, max_moov: u64) -> Budget {
        Budget {
            requests: BASE_REQUESTS.saturating_add(max_moov / BYTES_PER_REQUEST),
            bytes: (origin.chunk)
                .saturating_add(max_moov.saturating_mul(2))
                .saturating_add(BASE_BYTES),
            time: Some(origin.timeout.saturating_mul(TIMEOUTS)),
            keep: Self::kept(origin, max_moov),
            cancel: None,
        }
    }

    /// No bound but on what is kept (`cut` and `info`, run by hand).
    pub fn unlimited(origin: &Origin, max_moov: u64) -> Budget {
        Budget {
            requests: u64::MAX,
            bytes: u64::MAX,
            time: None,
            keep: Self::kept(origin, max_moov),
            cancel: None,
        }
    }

    fn kept(origin: &Origin, max_moov: u64) -> u64 {
        max_moov.saturating_add(origin.chunk)
    }
}

/// A read the budget did not allow: the object needs more requests or
/// bytes than a film may (a fault of the object, not of the store).
#[derive(Debug)]
pub struct OverBudget(pub String);

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OverBudget {}

/// Why the budget stopped a build, if it did for lack of requests or bytes.
pub fn over_budget(e: &io::Error) -> Option<&str> {
    e.get_ref()?
        .downcast_ref::<OverBudget>()
        .map(|o| o.0.as_str())
}

/// Pieces fetched, by offset, never overlapping.
#[derive(Default)]
struct Pieces {
    map: BTreeMap<u64, Bytes>,
    /// Their bytes.
    bytes: u64,
    /// Where the last fetch ended, and the probe it used.
    last_end: u64,
    probe: u64,
}

impl Pieces {
    /// The piece holding `offset`.
    fn find(&self, offset: u64) -> Option<(u64, &Bytes)> {
        let (at, b) = self.map.range(..=offset).next_back()?;
        (offset < at + b.len() as u64).then_some((*at, b))
    }

    /// Where the first piece after `offset` starts.
    fn next_start(&self, offset: u64) -> Option<u64> {
        self.map.range(offset..).next().map(|(at, _)| *at)
    }
}

pub struct Reader {
    handle: tokio::runtime::Handle,
    origin: Arc<Origin>,
    object: Object,
    pieces: Mutex<Pieces>,
    budget: Budget,
    started: Instant,
    /// Requests this reader sent, the opening one included.
    pub requests: AtomicU64,
    /// Bytes they fetched, the opening chunk included.
    pub fetched: AtomicU64,
}

impl Reader {
    /// `first` are the object's first bytes, fetched when it was opened.
    /// Unbounded but for the bytes kept (`--max-moov` at its default).
    pub fn new(
        handle: tokio::runtime::Handle,
        origin: Arc<Origin>,
        object: Object,
        first: Bytes,
    ) -> Reader {
        let budget = Budget::unlimited(&origin, crate::mp4::Limits::default().max_moov);
        Self::with_budget(handle, origin, object, first, budget)
    }

    /// A reader within `budget`.
    pub fn with_budget(
        handle: tokio::runtime::Handle,
        origin: Arc<Origin>,
        object: Object,
        first: Bytes,
        budget: Budget,
    ) -> Reader {
        let n = first.len() as u64;
        let mut pieces = Pieces {
            last_end: n,
            probe: PROBE,
            ..Pieces::default()
        };
        if n > 0 {
            pieces.map.insert(0, first);
            pieces.bytes = n;
        }
        Reader {
            handle,
            origin,
            object,
            pieces: Mutex::new(pieces),
            budget,
            started: Instant::now(),
            requests: AtomicU64::new(1),
            fetched: AtomicU64::new(n),
        }
    }

    pub fn object(&self) -> &Object {
        &self.object
    }

    fn cached(&self, buf: &mut [u8], offset: u64) -> Option<usize> {
        let pieces = self.pieces.lock().ok()?;
        let (at, b) = pieces.find(offset)?;
        Some(copy(buf, b, offset - at))
    }

    /// The range a miss at `offset` of `asked` bytes fetches: what was
    /// asked, at least a probe, and never what is kept already.
    fn span(&self, offset: u64, asked: u64) -> u64 {
        let Ok(mut p) = self.pieces.lock() else {
            return asked;
        };
        let want = if asked > PROBE {
            asked
        } else {
            // A walk through what was just fetched reads on faster.
            let walking = offset >= p.last_end && offset - p.last_end < p.probe;
            p.probe = if walking {
                p.probe.saturating_mul(2).min(self.origin.chunk.max(PROBE))
            } else {
                PROBE
            };
            p.probe.max(asked)
        };
        let end = offset.saturating_add(want).min(self.object.size);
        let end = p.next_start(offset).map_or(end, |next| end.min(next));
        end - offset
    }

    /// Whether one more request of `want` bytes is within the budget: the
    /// bytes it may fetch (at least `asked`), or why not.
    fn allow(&self, asked: u64, want: u64) -> io::Result<u64> {
        let b = &self.budget;
        if b.cancel.as_ref().is_some_and(|c| c.load(Relaxed)) {
            return Err(fault(Fault::Failed(format!(
                "{}: index build stopped, nobody waits for it",
                self.object.key
            ))));
        }
        if let Some(t) = b.time
            && self.started.elapsed() >= t
        {
            return Err(self.late(t));
        }
        let sent = self.requests.load(Relaxed);
        if sent >= b.requests {
            return Err(io::Error::other(OverBudget(format!(
                "{}: its index needs more than {} origin requests (the budget of a build: \
                 {BASE_REQUESTS} + one per {} KiB of --max-moov)",
                self.object.key,
                b.requests,
                BYTES_PER_REQUEST >> 10
            ))));
        }
        let room = b.bytes.saturating_sub(self.fetched.load(Relaxed));
        if room < asked {
            return Err(io::Error::other(OverBudget(format!(
                "{}: its index needs more than {} MiB from the origin (the budget of a build: \
                 a chunk, twice --max-moov and {} MiB)",
                self.object.key,
                b.bytes >> 20,
                BASE_BYTES >> 20
            ))));
        }
        Ok(want.min(room))
    }

    /// The fault of a build that ran out of time.
    fn late(&self, t: Duration) -> io::Error {
        fault(Fault::Timeout(format!(
            "{}: the index build read for more than its time budget of {} s \
             ({TIMEOUTS} × --origin-timeout)",
            self.object.key,
            t.as_secs_f64()
        )))
    }

    /// Bytes `offset..end`, within the time left.
    fn fetch(&self, offset: u64, end: u64) -> io::Result<Bytes> {
        self.requests.fetch_add(1, Relaxed);
        let read = self.origin.read(&self.object, offset..end);
        let got = match self.budget.time {
            Some(t) => {
                let left = t.saturating_sub(self.started.elapsed());
                self.handle
                    .block_on(async { tokio::time::timeout(left, read).await })
                    .map_err(|_| self.late(t))?
            }
            None => self.handle.block_on(read),
        };
        let bytes = got.map_err(fault)?;
        self.fetched.fetch_add(bytes.len() as u64, Relaxed);
        Ok(bytes)
    }
}

/// Copies what `b` holds from `from` into `buf`: how many bytes.
fn copy(buf: &mut [u8], b: &[u8], from: u64) -> usize {
    // `from` lies within `b`, so it fits its length.
    let from = from as usize;
    let n = buf.len().min(b.len() - from);
    buf[..n].copy_from_slice(&b[from..from + n]);
    n
}

fn fault(f: Fault) -> io::Error {
    io::Error::other(OriginError(f))
}

impl ReadAt for Reader {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if buf.is_empty() || offset >= self.object.size {
            return Ok(0);
        }
        if let Some(n) = self.cached(buf, offset) {
            return Ok(n);
        }
        let asked = (buf.len() as u64).min(self.object.size - offset);
        let want = self.span(offset, asked);
        let want = self.allow(asked.min(want), want)?;
        let end = offset + want;
        let bytes = self.fetch(offset, end)?;
        let n = copy(buf, &bytes, 0);
        if let Ok(mut p) = self.pieces.lock() {
            p.last_end = end;
            // The first pieces are kept, later ones only while there is
            // room: a build reads the object twice in the same order (box
            // headers, then `moof`s), and what comes first is read first.
            let len = bytes.len() as u64;
            if len > 0 && p.bytes.saturating_add(len) <= self.budget.keep {
                p.bytes += len;
                p.map.insert(offset, bytes);
            }
        }
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.object.size)
    }
}

/// A fault carried through the engine's `io::Error`, to be told apart from
/// a damaged file afterwards.
#[derive(Debug)]
pub struct OriginError(pub Fault);

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.detail())
    }
}

impl std::error::Error for OriginError {}

/// The fault behind an engine error, if an origin read caused it.
pub fn fault_of(e: &io::Error) -> Option<&Fault> {
    e.get_ref()?.downcast_ref::<OriginError>().map(|o| &o.0)
}

/// Keys from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
/// else `~/.aws/credentials`), profile `AWS_PROFILE` or `default`, when the
/// environment holds none: the client reads the environment, container and
/// instance roles itself, but not this file.
pub fn shared_credentials() -> Option<(String, String, Option<String>)> {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return None;
    }
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".aws/credentials"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let values = ini_section(&text, &profile);
    let get = |k: &str| values.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some((
        get("aws_access_key_id")?,
        get("aws_secret_access_key")?,
        get("aws_session_token"),
    ))
}

/// The region from the shared config file (`AWS_CONFIG_FILE`, else
/// `~/.aws/config`; `[default]` or `[profile NAME]`), when the environment
/// names none.
pub fn shared_region() -> Option<String> {
    if std::env::var_os("AWS_REGION").is_some() || std::env::var_os("AWS_DEFAULT_REGION").is_some()
    {
        return None;
    }
    let path = match std::env::var_os("AWS_CONFIG_FILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".aws/config"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let section = match std::env::var("AWS_PROFILE") {
        Ok(p) if p != "default" => format!("profile {p}"),
        _ => "default".into(),
    };
    ini_section(&text, &section)
        .into_iter()
        .find(|(k, _)| k == "region")
        .map(|(_, v)| v)
}

/// The `name = value` lines of `[section]` in an INI text.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_sections() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=B\n\n\
                    # comment\n[other]\naws_access_key_id = C\n";
        let d = ini_section(text, "default");
        assert_eq!(
            d,
            vec![
                ("aws_access_key_id".into(), "A".into()),
                ("aws_secret_access_key".into(), "B".into())
            ]
        );
        assert_eq!(ini_section(text, "other").len(), 1);
        assert!(ini_section(text, "none").is_empty());
    }
}
