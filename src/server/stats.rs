//! Counters shared by the master and every worker: one anonymous shared
//! mapping made before fork, updated with atomics. The pool's totals, and a
//! slot per worker process for the status page's `?full` view.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Statuses counted one by one; anything else counts as "other".
pub const STATUSES: [u16; 15] = [
    200, 206, 304, 400, 403, 404, 405, 412, 413, 415, 416, 431, 500, 503, 504,
];

/// Upper bounds (seconds) of the request-duration histogram's buckets.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Worker slots: old and new workers overlap during a reload.
pub const SLOTS: usize = 2 * crate::server::MAX_WORKERS;

#[derive(Default)]
#[repr(C)]
pub struct Counters {
    /// Accepted connections.
    pub started: AtomicU64,
    pub workers: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight: AtomicI64,
    pub connections: AtomicI64,
    pub errors: AtomicU64,
    pub index_hits: AtomicU64,
    pub index_misses: AtomicU64,
    pub layout_hits: AtomicU64,
    pub layout_misses: AtomicU64,
    pub worker_deaths: AtomicU64,
    pub respawns: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub request_timeouts: AtomicU64,
    /// Requests refused with 503 because a worker was at `--max-conns`.
    pub overloaded: AtomicU64,
    /// Times a worker was at `--max-conns` with no idle connection to close.
    pub max_conns_reached: AtomicU64,
    /// Requests refused with 503 because their peer had its share in
    /// flight (`--max-per-peer`).
    pub per_peer_refused: AtomicU64,
    /// SIGHUPs the master handled.
    pub reloads: AtomicU64,
    /// Bytes in `--offload-dir`, as the workers count them together.
    pub offload_bytes: AtomicU64,
    /// Requests whose answer took longer than `--slow-request-time` to begin.
    pub slow_requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Requests sent to `--origin`, and the body bytes they brought.
    pub origin_requests: AtomicU64,
    pub origin_bytes: AtomicU64,
    /// Responses by status, in [`STATUSES`] order, then "other".
    pub statuses: [AtomicU64; STATUSES.len() + 1],
    /// Responses by duration: one count per bucket of [`BUCKETS`], then +Inf.
    pub durations: [AtomicU64; BUCKETS.len() + 1],
    pub duration_micros: AtomicU64,
}

/// One worker process's own figures.
#[derive(Default)]
#[repr(C)]
pub struct Slot {
    /// 0 when the slot is free.
    pub pid: AtomicI64,
    pub started: AtomicU64,
    pub generation: AtomicU64,
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    pub idle: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub cache_bytes: AtomicU64,
    /// 1 once it drains (reload, stop, --max-requests).
    pub draining: AtomicU64,
}

#[repr(C)]
struct Shared {
    counters: Counters,
    slots: [Slot; SLOTS],
}

/// A handle on the shared counters; copies point at the same mapping.
#[derive(Clone, Copy)]
pub struct Stats {
    ptr: NonNull<Shared>,
    /// This process's slot (workers).
    slot: Option<usize>,
}

// SAFETY: the mapping is never unmapped and holds only atomics, so a copy
// may be used from, and shared with, another thread (the helper thread's
// chores count the offload folder's bytes through it).
unsafe impl Send for Stats {}
// SAFETY: as above: every access goes through an atomic.
unsafe impl Sync for Stats {}

impl Stats {
    /// Maps the counters. Call before fork so every process shares them.
    pub fn new() -> std::io::Result<Stats> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        let len = NonZeroUsize::new(std::mem::size_of::<Shared>())
            .ok_or(std::io::ErrorKind::InvalidInput)?;
        // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel,
        // which is a valid `Shared` (all atomics at 0). It is never unmapped.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(Stats {
            ptr: ptr.cast(),
            slot: None,
        })
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the mapping lives for the whole process and holds only atomics.
        unsafe { self.ptr.as_ref() }
    }

    pub fn get(&self) -> &Counters {
        &self.shared().counters
    }

    pub fn slots(&self) -> &[Slot] {
        &self.shared().slots
    }

    /// This worker's slot, if it has one.
    pub fn mine(&self) -> Option<&Slot> {
        self.slot.and_then(|i| self.slots().get(i))
    }

    /// The same counters, for the worker in slot `i`.
    pub fn for_slot(self, i: usize) -> Stats {
        Stats {
            slot: Some(i),
            ..self
        }
    }

    /// Takes a free slot for a new worker (the master, before fork).
    pub fn claim_slot(&self, generation: u64, now: u64) -> Option<usize> {
        let i = self
            .slots()
            .iter()
            .position(|s| s.pid.compare_exchange(0, -1, Relaxed, Relaxed).is_ok())?;
        let s = &self.slots()[i];
        for c in [
            &s.requests,
            &s.connections,
            &s.idle,
            &s.bytes_sent,
            &s.cache_bytes,
            &s.draining,
        ] {
            c.store(0, Relaxed);
        }
        s.generation.store(generation, Relaxed);
        s.started.store(now, Relaxed);
        Some(i)
    }

    pub fn set_slot_pid(&self, i: usize, pid: i32) {
        if let Some(s) = self.slots().get(i) {
            s.pid.store(i64::from(pid), Relaxed);
        }
    }

    pub fn free_slot(&self, i: usize) {
        if let Some(s) = self.slots().get(i) {
            s.pid.store(0, Relaxed);
        }
    }

    /// A response ended: its status, how long it took, and its bytes.
    pub fn ended(&self, status: u16, seconds: f64) {
        let c = self.get();
        let i = STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(STATUSES.len());
        c.statuses[i].fetch_add(1, Relaxed);
        let b = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        c.durations[b].fetch_add(1, Relaxed);
        c.duration_micros.fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    pub fn sent(&self, bytes: u64) {
        self.get().bytes_sent.fetch_add(bytes, Relaxed);
        if let Some(s) = self.mine() {
            s.bytes_sent.fetch_add(bytes, Relaxed);
        }
    }
}
