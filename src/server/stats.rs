//! Counters shared by the master and every worker: one anonymous shared
//! mapping made before fork, updated with atomics.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Default)]
#[repr(C)]
pub struct Counters {
    pub started: AtomicU64,
    pub workers: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight: AtomicI64,
    pub connections: AtomicI64,
    pub errors: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub worker_deaths: AtomicU64,
    pub respawns: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub request_timeouts: AtomicU64,
    /// Requests refused with 503 because a worker was at `--max-conns`.
    pub overloaded: AtomicU64,
    /// Times a worker was at `--max-conns` with no idle connection to close.
    pub max_conns_reached: AtomicU64,
    /// SIGHUPs the master handled.
    pub reloads: AtomicU64,
    /// Bytes in `--offload-dir`, as the workers count them together.
    pub offload_bytes: AtomicU64,
}

/// A handle on the shared counters; copies point at the same mapping.
#[derive(Clone, Copy)]
pub struct Stats {
    ptr: NonNull<Counters>,
}

impl Stats {
    /// Maps the counters. Call before fork so every process shares them.
    pub fn new() -> std::io::Result<Stats> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        let len = NonZeroUsize::new(std::mem::size_of::<Counters>())
            .ok_or(std::io::ErrorKind::InvalidInput)?;
        // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel,
        // which is a valid `Counters` (all atomics at 0). It is never unmapped.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(Stats { ptr: ptr.cast() })
    }

    pub fn get(&self) -> &Counters {
        // SAFETY: the mapping lives for the whole process and holds only atomics.
        unsafe { self.ptr.as_ref() }
    }

    /// The counters as (label, JSON key, value), for both renderings.
    fn fields(&self, pool_start: u64, now: u64) -> [(&'static str, &'static str, i64); 16] {
        let c = self.get();
        let u = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            (
                "uptime seconds",
                "uptime",
                u(now.saturating_sub(pool_start)),
            ),
            ("workers", "workers", u(c.workers.load(Relaxed))),
            (
                "accepted connections",
                "accepted_connections",
                u(c.started.load(Relaxed)),
            ),
            (
                "active connections",
                "active_connections",
                c.connections.load(Relaxed),
            ),
            ("requests", "requests", u(c.requests.load(Relaxed))),
            ("in flight", "in_flight", c.in_flight.load(Relaxed)),
            ("errors", "errors", u(c.errors.load(Relaxed))),
            ("cache hits", "cache_hits", u(c.cache_hits.load(Relaxed))),
            (
                "cache misses",
                "cache_misses",
                u(c.cache_misses.load(Relaxed)),
            ),
            (
                "worker deaths",
                "worker_deaths",
                u(c.worker_deaths.load(Relaxed)),
            ),
            ("respawns", "respawns", u(c.respawns.load(Relaxed))),
            ("reloads", "reloads", u(c.reloads.load(Relaxed))),
            (
                "idle timeouts",
                "idle_timeouts",
                u(c.idle_timeouts.load(Relaxed)),
            ),
            (
                "request timeouts",
                "request_timeouts",
                u(c.request_timeouts.load(Relaxed)),
            ),
            ("overloaded", "overloaded", u(c.overloaded.load(Relaxed))),
            (
                "max conns reached",
                "max_conns_reached",
                u(c.max_conns_reached.load(Relaxed)),
            ),
        ]
    }

    pub fn text(&self, pool_start: u64, now: u64) -> String {
        let mut out = format!("{:<22}mp4-fcgi\n", "pool:");
        for (label, _, v) in self.fields(pool_start, now) {
            out.push_str(&format!("{:<22}{v}\n", format!("{label}:")));
        }
        out
    }

    pub fn json(&self, pool_start: u64, now: u64) -> String {
        let fields: Vec<String> = self
            .fields(pool_start, now)
            .iter()
            .map(|(_, key, v)| format!("\"{key}\":{v}"))
            .collect();
        format!("{{\"pool\":\"mp4-fcgi\",{}}}\n", fields.join(","))
    }
}
