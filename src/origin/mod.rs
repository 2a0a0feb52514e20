//! Films in object storage: an S3-compatible bucket or any HTTP server that
//! answers byte ranges, read through the `object_store` crate (credentials,
//! signing, retries, pooled keep-alive connections).
//!
//! This room knows objects and byte ranges, never sockets of the pool or
//! the engine's boxes: the server asks it for an object's first bytes and
//! identity ([`Origin::open`]), whether a known object changed
//! ([`Origin::check`]) and for ranges of it ([`Origin::read`]); [`Reader`]
//! lends the engine a blocking view of an object for index builds.

mod client;
mod key;
mod reader;

pub use key::{Refusal, object_key};
pub use reader::{Budget, OverBudget, Reader, fault_of, over_budget};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, GetRange, GetResult, ObjectStore, RetryConfig};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How S3 buckets are addressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Addressing {
    /// Virtual-hosted on AWS, path-style when an endpoint is given (what
    /// S3-compatible stores such as SeaweedFS and MinIO expect).
    #[default]
    Auto,
    /// `https://endpoint/bucket/key`.
    Path,
    /// `https://bucket.endpoint/key`.
    Virtual,
}

/// What `--origin` and its companions say.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `s3://BUCKET[/PREFIX]` or `http(s)://HOST/PREFIX/`.
    pub url: String,
    /// `--s3-endpoint`; else `AWS_ENDPOINT_URL` (read by the client).
    pub endpoint: Option<String>,
    /// `--s3-region`; else `AWS_REGION` / `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    pub addressing: Addressing,
    /// One origin request may take this long (connect and transfer).
    pub timeout: Duration,
    /// Bytes per body read.
    pub chunk: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            url: String::new(),
            endpoint: None,
            region: None,
            addressing: Addressing::Auto,
            timeout: Duration::from_secs(10),
            chunk: 1 << 20,
        }
    }
}

/// An object as the origin described it when it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// The store's `ETag`, if it gave one.
    pub etag: Option<String>,
    /// The object's version, where the store keeps versions.
    pub version: Option<String>,
    pub modified: SystemTime,
}

impl Object {
    /// 128 bits that change whenever the key, the content (ETag or
    /// version) or the size does: the same on every node.
    pub fn identity(&self) -> (u64, u64) {
        let tag = self
            .version
            .as_deref()
            .or(self.etag.as_deref())
            .unwrap_or("");
        let modified = self
            .modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let words: [&[u8]; 4] = [
            self.key.as_bytes(),
            tag.as_bytes(),
            &self.size.to_le_bytes(),
            &modified.to_le_bytes(),
        ];
        (
            fnv(0xcbf2_9ce4_8422_2325, &words),
            fnv(0x6c62_272e_07bb_0142, &words),
        )
    }
}

/// FNV-1a over several words, each followed by a separator.
fn fnv(mut h: u64, words: &[&[u8]]) -> u64 {
    for w in words {
        for &b in w.iter().chain([0xffu8].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Why the origin did not give what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 404 from the store.
    NotFound(String),
    /// 401/403: the credentials or the bucket policy.
    Denied(String),
    /// No answer within `--origin-timeout` (after retries).
    Timeout(String),
    /// The object changed since it was opened (412 on `If-Match`).
    Changed(String),
    /// Anything else: connection refused, 5xx after retries, a bad answer.
    Failed(String),
}

impl Fault {
    /// The status a client gets for it.
    pub fn status(&self) -> u16 {
        match self {
            Fault::NotFound(_) => 404,
            Fault::Timeout(_) => 504,
            Fault::Denied(_) | Fault::Changed(_) | Fault::Failed(_) => 502,
        }
    }

    /// What the client is told: never the store's own words.
    pub fn reason(&self) -> &'static str {
        match self {
            Fault::NotFound(_) => "no such file",
            Fault::Denied(_) => "the media store refused access",
            Fault::Timeout(_) => "the media store did not answer in time",
            Fault::Changed(_) => "the file changed while it was read",
            Fault::Failed(_) => "the media store failed",
        }
    }

    /// What the log is told: the store's error, with its code.
    pub fn detail(&self) -> &str {
        match self {
            Fault::NotFound(s)
            | Fault::Denied(s)
            | Fault::Timeout(s)
            | Fault::Changed(s)
            | Fault::Failed(s) => s,
        }
    }

    fn from_store(e: object_store::Error) -> Fault {
        // One log line: stores answer errors in indented XML.
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(r) = redirected(&e) {
            return Fault::Failed(format!("{r}: {text}"));
        }
        match e {
            object_store::Error::NotFound { .. } => Fault::NotFound(text),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Fault::Denied(text),
            object_store::Error::Precondition { .. } => Fault::Changed(text),
            e if timed_out(&e) => Fault::Timeout(text),
            _ => Fault::Failed(text),
        }
    }
}

/// The refused redirect anywhere in the error's chain.
fn redirected<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e client::Redirected> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<client::Redirected>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// Whether a timeout is anywhere in the error's chain.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<object_store::client::HttpError>()
            && matches!(h.kind(), object_store::client::HttpErrorKind::Timeout)
        {
            return true;
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A store and the prefix keys live under.
pub struct Origin {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// The URL as given, for log lines.
    pub label: String,
    pub chunk: u64,
    pub timeout: Duration,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("label", &self.label)
            .finish()
    }
}

impl Origin {
    /// Builds the client. Nothing is sent yet: a wrong endpoint or key
    /// shows on the first request.
    pub fn new(s: &Settings) -> Result<Origin, String> {
        Self::with_credentials(s, reader::shared_credentials())
    }

    /// [`Origin::new`] with S3 keys (id, secret, session token) that take
    /// precedence over the environment's, when given.
    fn with_credentials(
        s: &Settings,
        credentials: Option<(String, String, Option<String>)>,
    ) -> Result<Origin, String> {
        let options = ClientOptions::new()
            .with_timeout(s.timeout)
            .with_connect_timeout(s.timeout.min(Duration::from_secs(5)))
            // Idle connections to the store are sockets and memory held for
            // clients that may have left: a few per host, closed soon, are
            // enough to chain one chunk read after another (50 s and no cap
            // left some 300 sockets per worker after a burst).
            .with_pool_idle_timeout(Duration::from_secs(5))
            .with_pool_max_idle_per_host(16)
            .with_allow_http(true);
        // Reads are idempotent: retried with back-off, all within the timeout.
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: s.timeout,
            ..RetryConfig::default()
        };
        let url = s.url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("--origin {url}: no bucket (s3://BUCKET[/PREFIX])"));
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(options)
                .with_http_connector(client::NoRedirects)
                .with_retry(retry);
            if let Some(creds) = credentials {
                b = b
                    .with_access_key_id(creds.0)
                    .with_secret_access_key(creds.1);
                if let Some(token) = creds.2 {
                    b = b.with_token(token);
                }
            }
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(r) = s.region.clone().or_else(reader::shared_region) {
                b = b.with_region(r);
            }
            let endpoint_set = s.endpoint.is_some()
                || std::env::var_os("AWS_ENDPOINT_URL").is_some()
                || std::env::var_os("AWS_ENDPOINT").is_some();
            let virtual_hosted = match s.addressing {
                Addressing::Auto => !endpoint_set,
                Addressing::Path => false,
                Addressing::Virtual => true,
            };
            b = b.with_virtual_hosted_style_request(virtual_hosted);
            let store = b.build().map_err(|e| format!("--origin {url}: {e}"))?;
            Ok(Origin {
                store: Arc::new(store),
                prefix: prefix.trim_matches('/').to_string(),
                label: url.to_string(),
                chunk: s.chunk,
                timeout: s.timeout,
            })
        } else if url.starts_with("http://") || url.starts_with("https://") {
            // Keys are relative to the URL's path: it must end in '/'.
            let base = if url.ends_with('/') {
                url.to_string()
            } else {
                format!("{url}/")
            };
            let store = object_store::http::HttpBuilder::new()
                .with_url(base.clone())
                .with_client_options(options)
                .with_http_connector(client::NoRedirects)
                .with_retry(retry)
                .build()
                .map_err(|e| format!("--origin {url}: {e}"))?;
            Ok(Origin {
                store: Arc::new(store),
                prefix: String::new(),
                label: base,
                chunk: s.chunk,
                timeout: s.timeout,
            })
        } else {
            Err(format!(
                "--origin {url}: expected s3://BUCKET[/PREFIX] or http(s)://HOST/PREFIX/"
            ))
        }
    }

    /// The object key a request's path names.
    pub fn key(&self, path: &[u8]) -> Result<String, Refusal> {
        object_key(&self.prefix, path)
    }

    fn path(key: &str) -> Result<ObjectPath, Fault> {
        ObjectPath::parse(key).map_err(|e| Fault::Failed(format!("key {key}: {e}")))
    }

    /// One GET of `key` with `options`.
    async fn get(&self, key: &str, options: GetOptions) -> Result<object_store::GetResult, Fault> {
        let path = Self::path(key)?;
        self.store
            .get_opts(&path, options)
            .await
            .map_err(Fault::from_store)
    }

    /// The object's identity and its first `first` bytes (fewer for a
    /// shorter object): one request.
    pub async fn open(&self, key: &str, first: u64) -> Result<(Object, Bytes), Fault> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..first.max(1))),
            ..GetOptions::default()
        };
        let got = self.get(key, options).await?;
        let object = Object {
            key: key.to_string(),
            size: got.meta.size,
            etag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
            modified: got.meta.last_modified.into(),
        };
        // The range the store promised, checked against the one asked.
        let range = got.range.clone();
        let bytes = body(key, got, range).await?;
        Ok((object, bytes))
    }

    /// Whether `known` is still what the store holds: `None` if so (a
    /// conditional request answered 304), else the object as it is now.
    pub async fn check(&self, known: &Object) -> Result<Option<Object>, Fault> {
        let path = Self::path(&known.key)?;
        let options = GetOptions {
            if_none_match: known.etag.clone(),
            head: true,
            ..GetOptions::default()
        };
        match self.store.get_opts(&path, options).await {
            Err(object_store::Error::NotModified { .. }) => Ok(None),
            Err(e) => Err(Fault::from_store(e)),
            Ok(got) => {
                let now = Object {
                    key: known.key.clone(),
                    size: got.meta.size,
                    etag: got.meta.e_tag,
                    version: got.meta.version,
                    modified: got.meta.last_modified.into(),
                };
                Ok((now != *known).then_some(now))
            }
        }
    }

    /// Bytes `range` of the object as it was opened: a changed object is a
    /// [`Fault::Changed`], never a mix of two versions.
    pub async fn read(&self, object: &Object, range: Range<u64>) -> Result<Bytes, Fault> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: object.etag.clone(),
            version: object.version.clone(),
            ..GetOptions::default()
        };
        let got = self.get(&object.key, options).await?;
        if got.meta.size != object.size {
            return Err(Fault::Changed(format!(
                "{}: size {} where it was {}",
                object.key, got.meta.size, object.size
            )));
        }
        body(&object.key, got, range).await
    }
}

/// The body of `got`, which must be bytes `range` of `key`: exactly
/// `range`'s length. Read as it arrives, and refused as soon as more than
/// that arrives, so that an origin that sends more than asked (a
/// `Content-Length` far beyond its `Content-Range`) costs at most the
/// range and one network chunk.
async fn body(key: &str, got: GetResult, range: Range<u64>) -> Result<Bytes, Fault> {
    let want = range.end.saturating_sub(range.start);
    let mut stream = got.into_stream();
    // A body in one piece is kept as it came, without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut n: u64 = 0;
    while let Some(piece) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let piece = piece.map_err(Fault::from_store)?;
        n = n.saturating_add(piece.len() as u64);
        if n > want {
            return Err(Fault::Failed(format!(
                "{key}: the media store sent more than the {want} bytes asked at {}",
                range.start
            )));
        }
        match first.take() {
            None if joined.is_empty() => first = Some(piece),
            None => joined.extend_from_slice(&piece),
            Some(held) => {
                // Within `want`, which was asked: it fits in memory.
                joined.reserve_exact(usize::try_from(want).unwrap_or(usize::MAX));
                joined.extend_from_slice(&held);
                joined.extend_from_slice(&piece);
            }
        }
    }
    if n != want {
        return Err(Fault::Failed(format!(
            "{key}: {n} bytes at {} where {want} were asked",
            range.start
        )));
    }
    Ok(first.unwrap_or_else(|| joined.into()))
}

/// Index builds a worker runs at once (each on a blocking thread of the
/// origin runtime, for at most its time budget); later ones wait for one
/// to end.
pub const BUILDS: usize = 16;

/// A small runtime for origin requests, started in each worker after fork
/// (a runtime's threads do not survive `fork`). Its blocking threads are
/// the index builds' ([`BUILDS`]) and 4 more for what the client itself
/// runs there (name lookups), which builds waiting on the origin must not
/// hold up.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(BUILDS + 4)
        .thread_name("mp4-fcgi-origin")
        .enable_all()
        .build()
}

/// Splits a URL naming one object into the origin and the key, for `cut`
/// and `info`: `s3://bucket/a/b.mp4` -> (`s3://bucket`, `a/b.mp4`),
/// `http://host/a/b.mp4` -> (`http://host/a/`, `b.mp4`).
pub fn split_object_url(url: &str) -> Option<(String, String)> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/')?;
        return (!key.is_empty()).then(|| (format!("s3://{bucket}"), key.to_string()));
    }
    let scheme_end = url.find("://")? + 3;
    if !matches!(&url[..scheme_end], "http://" | "https://") {
        return None;
    }
    let slash = url[scheme_end..].rfind('/')? + scheme_end;
    let key = &url[slash + 1..];
    (!key.is_empty() && slash > scheme_end).then(|| (url[..=slash].to_string(), key.to_string()))
}

#[cfg(test)]
mod hostile_tests;

#[cfg(test)]
pub(crate) mod budget_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_urls_split_into_origin_and_key() {
        assert_eq!(
            split_object_url("s3://films/a/b.mp4"),
            Some(("s3://films".into(), "a/b.mp4".into()))
        );
        assert_eq!(
            split_object_url("http://h:8080/media/b.mp4"),
            Some(("http://h:8080/media/".into(), "b.mp4".into()))
        );
        assert_eq!(split_object_url("s3://films/"), None);
        assert_eq!(split_object_url("http://h/"), None);
        assert_eq!(split_object_url("ftp://h/a.mp4"), None);
        assert_eq!(split_object_url("/local/a.mp4"), None);
    }

    #[test]
    fn identity_follows_content_not_node() {
        let o = Object {
            key: "a.mp4".into(),
            size: 10,
            etag: Some("\"x\"".into()),
            version: None,
            modified: SystemTime::UNIX_EPOCH,
        };
        let same = o.clone();
        assert_eq!(o.identity(), same.identity());
        let changed = Object {
            etag: Some("\"y\"".into()),
            ..o.clone()
        };
        assert_ne!(o.identity(), changed.identity());
        let other = Object {
            key: "b.mp4".into(),
            ..o.clone()
        };
        assert_ne!(o.identity(), other.identity());
    }

    #[test]
    fn settings_are_checked_before_any_request() {
        let s = |url: &str| Settings {
            url: url.into(),
            ..Settings::default()
        };
        assert!(Origin::new(&s("ftp://x/")).is_err());
        assert!(Origin::new(&s("s3://")).is_err());
        let o = Origin::new(&s("http://127.0.0.1:1/media")).unwrap();
        assert_eq!(o.label, "http://127.0.0.1:1/media/");
        assert_eq!(o.key(b"/a.mp4").unwrap(), "a.mp4");
        let o = Origin::new(&Settings {
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("us-east-1".into()),
            ..s("s3://bucket/films/")
        })
        .unwrap();
        assert_eq!(o.key(b"/a.mp4").unwrap(), "films/a.mp4");
    }
}
