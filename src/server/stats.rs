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

    pub fn text(&self, pool_start: u64, now: u64) -> String {
        let c = self.get();
        format!(
            "pool:                 mp4-fcgi\n\
             uptime seconds:       {}\n\
             workers:              {}\n\
             accepted connections: {}\n\
             active connections:   {}\n\
             requests:             {}\n\
             in flight:            {}\n\
             errors:               {}\n\
             cache hits:           {}\n\
             cache misses:         {}\n\
             worker deaths:        {}\n\
             respawns:             {}\n",
            now.saturating_sub(pool_start),
            c.workers.load(Relaxed),
            c.started.load(Relaxed),
            c.connections.load(Relaxed),
            c.requests.load(Relaxed),
            c.in_flight.load(Relaxed),
            c.errors.load(Relaxed),
            c.cache_hits.load(Relaxed),
            c.cache_misses.load(Relaxed),
            c.worker_deaths.load(Relaxed),
            c.respawns.load(Relaxed),
        )
    }

    pub fn json(&self, pool_start: u64, now: u64) -> String {
        let c = self.get();
        format!(
            "{{\"pool\":\"mp4-fcgi\",\"uptime\":{},\"workers\":{},\"accepted_connections\":{},\
             \"active_connections\":{},\"requests\":{},\"in_flight\":{},\"errors\":{},\
             \"cache_hits\":{},\"cache_misses\":{},\"worker_deaths\":{},\"respawns\":{}}}\n",
            now.saturating_sub(pool_start),
            c.workers.load(Relaxed),
            c.started.load(Relaxed),
            c.connections.load(Relaxed),
            c.requests.load(Relaxed),
            c.in_flight.load(Relaxed),
            c.errors.load(Relaxed),
            c.cache_hits.load(Relaxed),
            c.cache_misses.load(Relaxed),
            c.worker_deaths.load(Relaxed),
            c.respawns.load(Relaxed),
        )
    }
}
