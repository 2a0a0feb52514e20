//! A worker's door to the origin (`--origin`): the runtime its requests run
//! on, the objects it knows and since when, and the jobs that open an
//! object and build its index. Results come back to the event loop through
//! channels and the worker's `mio::Waker`, like the helper thread's.

use super::cache::FileKey;
use super::jobs::Done;
use crate::mp4::{self, Index};
use crate::origin::{self, Budget, Fault, Object, Origin, Reader};
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender};

/// A body read that finished, for the stream that asked.
pub struct Fetched {
    pub slot: usize,
    pub stream: u64,
    pub range: Range<u64>,
    pub result: Result<Bytes, Fault>,
}

/// What opening an object gave: the object as it is now, and its index if
/// one was built (none when a check found the cached one still good).
pub type Opened = (Object, Option<Result<Arc<Index>, mp4::Error>>);

type Wake = Arc<dyn Fn() + Send + Sync>;

/// The origin, the runtime that talks to it, and where results go.
pub struct Link {
    runtime: Option<tokio::runtime::Runtime>,
    pub origin: Arc<Origin>,
    chunks: Sender<Fetched>,
    wake: Wake,
    streams: AtomicU64,
    /// Index builds that may run at once: the rest wait, not the
    /// runtime's other blocking work.
    builds: Arc<tokio::sync::Semaphore>,
    /// Origin requests and bytes, for the status page.
    pub requests: Arc<AtomicU64>,
    pub bytes: Arc<AtomicU64>,
}

impl Drop for Link {
    fn drop(&mut self) {
        // A worker that exits does not wait on origin requests in flight.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Link {
    /// Starts the runtime (after fork) and returns the link with the end
    /// where finished body reads arrive.
    pub fn start(
        settings: &origin::Settings,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<(Arc<Link>, Receiver<Fetched>), String> {
        let origin = Origin::new(settings)?;
        let runtime = origin::runtime().map_err(|e| format!("origin runtime: {e}"))?;
        let (tx, rx) = mpsc::channel();
        Ok((
            Arc::new(Link {
                runtime: Some(runtime),
                origin: Arc::new(origin),
                chunks: tx,
                wake: Arc::new(wake),
                streams: AtomicU64::new(0),
                builds: Arc::new(tokio::sync::Semaphore::new(origin::BUILDS)),
                requests: Arc::new(AtomicU64::new(0)),
                bytes: Arc::new(AtomicU64::new(0)),
            }),
            rx,
        ))
    }

    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    /// Requests and bytes since the last call.
    pub fn take_counts(&self) -> (u64, u64) {
        (self.requests.swap(0, Relaxed), self.bytes.swap(0, Relaxed))
    }

    /// A number no other stream of this worker has.
    pub fn new_stream(&self) -> u64 {
        self.streams.fetch_add(1, Relaxed) + 1
    }

    /// Reads `range` of `object` for the stream `(slot, stream)`; the
    /// handle aborts the read, before it starts or while it runs (the
    /// stream's [`Fetcher`](super::fetch::Fetcher) does when it is dropped).
    pub fn fetch(
        &self,
        slot: usize,
        stream: u64,
        object: Arc<Object>,
        range: Range<u64>,
    ) -> Option<tokio::task::AbortHandle> {
        let handle = self.handle()?;
        let (origin, tx, wake) = (self.origin.clone(), self.chunks.clone(), self.wake.clone());
        let (requests, bytes) = (self.requests.clone(), self.bytes.clone());
        let task = handle.spawn(async move {
            requests.fetch_add(1, Relaxed);
            let result = origin.read(&object, range.clone()).await;
            if let Ok(b) = &result {
                bytes.fetch_add(b.len() as u64, Relaxed);
            }
            if tx
                .send(Fetched {
                    slot,
                    stream,
                    range,
                    result,
                })
                .is_ok()
            {
                wake();
            }
        });
        Some(task.abort_handle())
    }

    /// Opens `key` (or checks `known`, whose index the worker holds) and
    /// builds its index; `done` gets the result.
    pub fn open(
        &self,
        key: Arc<str>,
        known: Option<Object>,
        limits: mp4::Limits,
        cancel: Arc<AtomicBool>,
        done: impl FnOnce(Result<Opened, Fault>) + Send + 'static,
    ) {
        let Some(handle) = self.handle() else { return };
        let (origin, builds) = (self.origin.clone(), self.builds.clone());
        let counts = (self.requests.clone(), self.bytes.clone());
        let inner = handle.clone();
        handle.spawn(async move {
            // Nobody waits any more: no request to the origin for nobody.
            if cancel.load(Relaxed) {
                return;
            }
            let job = inner.spawn({
                let inner = inner.clone();
                async move { open(origin, inner, builds, counts, &key, known, limits, cancel).await }
            });
            // A panic in the job is an answer too, else its waiters hang.
            done(job.await.unwrap_or_else(|e| {
                log::error!("opening an object failed ({e}); the worker goes on");
                Err(Fault::Failed(format!("the job failed ({e})")))
            }));
        });
    }
}

impl Link {
    /// Runs `work` over `object` read through the origin, off the runtime's
    /// threads (it blocks on its reads); `done` gets what it returns.
    pub fn read_with(
        &self,
        object: Arc<Object>,
        cancel: Arc<AtomicBool>,
        work: impl FnOnce(&dyn mp4::ReadAt) -> Done + Send + 'static,
        done: impl FnOnce(Done) + Send + 'static,
    ) {
        let Some(handle) = self.handle() else { return };
        let origin = self.origin.clone();
        let (requests, bytes) = (self.requests.clone(), self.bytes.clone());
        let inner = handle.clone();
        handle.spawn(async move {
            if cancel.load(Relaxed) {
                return;
            }
            let job = tokio::task::spawn_blocking(move || {
                let reader = Reader::new(inner, origin, (*object).clone(), Bytes::new());
                let r = work(&reader);
                requests.fetch_add(reader.requests.load(Relaxed), Relaxed);
                bytes.fetch_add(reader.fetched.load(Relaxed), Relaxed);
                r
            });
            done(job.await.unwrap_or_else(|e| {
                log::error!("reading an object failed ({e}); the worker goes on");
                Done::Failed(format!("the job failed ({e})"))
            }));
        });
    }
}

/// Opens `key` (checks `known` first) and builds its index within its
/// [`Budget`], once one of the worker's [`origin::BUILDS`] is free.
#[allow(clippy::too_many_arguments)]
async fn open(
    origin: Arc<Origin>,
    handle: tokio::runtime::Handle,
    builds: Arc<tokio::sync::Semaphore>,
    (requests, bytes): (Arc<AtomicU64>, Arc<AtomicU64>),
    key: &str,
    known: Option<Object>,
    limits: mp4::Limits,
    cancel: Arc<AtomicBool>,
) -> Result<Opened, Fault> {
    let gone = || Fault::Failed(format!("{key}: every request for it has gone"));
    if let Some(k) = known {
        requests.fetch_add(1, Relaxed);
        if origin.check(&k).await?.is_none() {
            return Ok((k, None));
        }
    }
    requests.fetch_add(1, Relaxed);
    let (object, first) = origin.open(key, origin.chunk).await?;
    bytes.fetch_add(first.len() as u64, Relaxed);
    if cancel.load(Relaxed) {
        return Err(gone());
    }
    // Held by the build until it ends, even if nobody awaits it then.
    let permit = builds
        .acquire_owned()
        .await
        .map_err(|e| Fault::Failed(format!("index build: {e}")))?;
    if cancel.load(Relaxed) {
        return Err(gone());
    }
    let budget = Budget {
        cancel: Some(cancel),
        ..Budget::build(&origin, limits.max_moov)
    };
    let opened = first.len() as u64;
    let reader = Reader::with_budget(handle, origin, object.clone(), first, budget);
    // Subtitle samples lie all over the object: a request each. Not read.
    let limits = mp4::Limits {
        max_cue_bytes: 0,
        ..limits
    };
    let built = tokio::task::spawn_blocking(move || {
        let r = Index::build(&reader, &limits);
        drop(permit);
        // The opening request and chunk were counted above.
        requests.fetch_add(reader.requests.load(Relaxed) - 1, Relaxed);
        bytes.fetch_add(reader.fetched.load(Relaxed) - opened, Relaxed);
        r
    })
    .await
    .map_err(|e| Fault::Failed(format!("index build: {e}")))?;
    match built {
        Err(mp4::Error::Io(e)) => match (origin::fault_of(&e), origin::over_budget(&e)) {
            (Some(f), _) => Err(f.clone()),
            // The object asks more of the origin than a film may: refused
            // (415) and remembered as such, like a moov over --max-moov.
            (None, Some(why)) => Ok((object, Some(Err(mp4::Error::Unsupported(why.into()))))),
            (None, None) => Err(Fault::Failed(e.to_string())),
        },
        r => Ok((object, Some(r.map(Arc::new)))),
    }
}

/// The identity an object's index and layouts are cached under.
pub fn file_key(o: &Object) -> FileKey {
    let (a, b) = o.identity();
    FileKey {
        // No device has this number: local files never collide with it.
        dev: u64::MAX,
        ino: a,
        size: o.size,
        mtime: i64::from_ne_bytes(b.to_ne_bytes()),
        mtime_nsec: 0,
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
