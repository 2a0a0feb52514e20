//! A blocking view of an object for the engine's index build, which runs
//! off the event loop: reads are served from the bytes already fetched, and
//! a miss fetches at least a chunk, so a `moov` costs one or two requests.

use super::{Fault, Object, Origin};
use crate::mp4::ReadAt;
use bytes::Bytes;
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fetched pieces kept at once: a build reads the start, the `moov`, and
/// for a fragmented film one `moof` after another.
const KEEP: usize = 4;

pub struct Reader {
    handle: tokio::runtime::Handle,
    origin: Arc<Origin>,
    object: Object,
    pieces: Mutex<Vec<(u64, Bytes)>>,
    /// Requests this reader sent, the opening one included.
    pub requests: AtomicU64,
}

impl Reader {
    /// `first` are the object's first bytes, fetched when it was opened.
    pub fn new(
        handle: tokio::runtime::Handle,
        origin: Arc<Origin>,
        object: Object,
        first: Bytes,
    ) -> Reader {
        Reader {
            handle,
            origin,
            object,
            pieces: Mutex::new(vec![(0, first)]),
            requests: AtomicU64::new(1),
        }
    }

    pub fn object(&self) -> &Object {
        &self.object
    }

    fn cached(&self, buf: &mut [u8], offset: u64) -> Option<usize> {
        let pieces = self.pieces.lock().ok()?;
        let (at, b) = pieces
            .iter()
            .find(|(at, b)| *at <= offset && offset < at + b.len() as u64)?;
        // Within the piece, so the difference fits its length.
        let from = (offset - at) as usize;
        let n = buf.len().min(b.len() - from);
        buf[..n].copy_from_slice(&b[from..from + n]);
        Some(n)
    }
}

impl ReadAt for Reader {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if buf.is_empty() || offset >= self.object.size {
            return Ok(0);
        }
        if let Some(n) = self.cached(buf, offset) {
            return Ok(n);
        }
        // A chunk, or for a longer read (a `moov`) a little past it: the box
        // header after a `moov` is read next, and would cost a request.
        let asked = buf.len() as u64;
        let want = if asked <= self.origin.chunk {
            self.origin.chunk
        } else {
            asked + (64 << 10)
        };
        let end = offset.saturating_add(want).min(self.object.size);
        self.requests.fetch_add(1, Relaxed);
        let bytes = self
            .handle
            .block_on(self.origin.read(&self.object, offset..end))
            .map_err(|f| io::Error::other(OriginError(f)))?;
        if let Ok(mut pieces) = self.pieces.lock() {
            if pieces.len() >= KEEP {
                pieces.remove(0);
            }
            pieces.push((offset, bytes));
        }
        Ok(self.cached(buf, offset).unwrap_or(0))
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
