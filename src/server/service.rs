//! The request side of a worker: the handler with its caches, limits and
//! counters, the jobs that run off the event loop and the requests waiting
//! for them, and what is logged when an answer ends.

use super::answer::{Ctx, Prepared};
use super::cache::Caches;
use super::config::Config;
use super::connection::{Answer, Ended, Handler};
use super::flow::{self, Outcome};
use super::jobs::{Cancel, Done, Job, JobKey, Jobs};
use super::stats::Stats;
use super::walk::Walk;
use crate::fcgi::Request;
use crate::mp4;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Indexes larger than this are freed on the helper thread.
const LARGE_INDEX: usize = 4 << 20;

/// Most jobs a worker keeps started or queued at once: a request that
/// would start one more is answered 503, so a flood of requests for new
/// films cannot queue work without end.
const MAX_JOBS: usize = 64;
/// Most thumbnails and sprites started and waited for at once.
const MAX_PICTURE_JOBS: usize = 56;

/// Per-peer refusals (`--max-per-peer`) are logged at most this often.
const PEER_LOG: Duration = Duration::from_secs(1);

/// A request waiting for a job.
struct Waiter {
    slot: usize,
    pub serial: u64,
    fcgi: bool,
    /// The peer whose share it holds.
    peer: Option<Box<str>>,
    walk: Box<Walk>,
    /// When it began to wait, for the deadline.
    since: Instant,
}

/// A job started, and who waits for it.
struct Pending {
    waiters: Vec<Waiter>,
    cancel: Cancel,
}

/// The request side of a worker: caches, limits, counters, jobs.
pub struct Service<'a> {
    pub config: &'a Config,
    pub stats: Stats,
    pub pool_start: u64,
    pub limits: mp4::Limits,
    pub caches: Caches,
    pub offload: Option<super::offload::Offload>,
    /// Responses ended, for `--max-requests`.
    pub served: u64,
    /// Bytes charged to responses in flight (`--max-inflight`).
    pub inflight: usize,
    pub jobs: Jobs,
    /// `--origin`: the store, and where its body reads arrive.
    pub link: Option<(
        Arc<super::remote::Link>,
        std::sync::mpsc::Receiver<super::remote::Fetched>,
    )>,
    /// Requests waiting, by the job they wait for.
    waiters: HashMap<JobKey, Pending>,
    /// The job each waiting request (by serial) waits for.
    waiting: HashMap<u64, JobKey>,
    serial: u64,
    /// Requests in flight by peer (`--max-per-peer`), from their arrival to
    /// the end of their answer. Only peers with one: a connection holds at
    /// most one request, so a flood of addresses costs at most `--max-conns`
    /// entries, each with a key of at most 64 bytes.
    peers: HashMap<Box<str>, usize>,
    /// Per-peer refusals not yet logged, and when the last line was.
    peer_note: (u64, Option<Instant>),
}

impl<'a> Service<'a> {
    pub fn new(config: &'a Config, stats: Stats, pool_start: u64, jobs: Jobs) -> Self {
        Service {
            config,
            stats,
            pool_start,
            limits: mp4::Limits {
                max_moov: config.max_moov,
                ..Default::default()
            },
            caches: Caches::new(config.cache_size),
            offload: config.offload_dir.clone().map(|d| {
                super::offload::Offload::new(d, config.offload_size, stats, jobs.chores())
            }),
            served: 0,
            inflight: 0,
            jobs,
            link: None,
            waiters: HashMap::new(),
            waiting: HashMap::new(),
            serial: 0,
            peers: HashMap::new(),
            peer_note: (0, None),
        }
    }

    /// Counts a request against its peer's share (`--max-per-peer`): the
    /// peer it holds a share of, if any; a 503 if the share is taken.
    /// Requests without `REMOTE_ADDR` and the status page are not counted.
    fn take_share(
        &mut self,
        params: &crate::fcgi::Params,
    ) -> Result<Option<Box<str>>, Box<Prepared>> {
        let share = self.config.max_per_peer;
        if share == 0 {
            return Ok(None);
        }
        let Some(peer) = super::note::peer(params) else {
            return Ok(None);
        };
        if let (Some(sp), Some(name)) = (
            self.config.status_path.as_deref(),
            params.get(b"SCRIPT_NAME"),
        ) && sp.as_bytes() == name
        {
            return Ok(None);
        }
        let held = self.peers.get(&peer).copied().unwrap_or(0);
        if held < share {
            *self.peers.entry(peer.clone()).or_insert(0) += 1;
            return Ok(Some(peer));
        }
        self.stats.get().per_peer_refused.fetch_add(1, Relaxed);
        self.peer_note.0 += 1;
        let now = Instant::now();
        if (self.peer_note.1).is_none_or(|t| now.duration_since(t) >= PEER_LOG) {
            log::warn!(
                "worker {}: peer {peer} has {held} requests in flight, its share \
                 (--max-per-peer {share}): {} refused with 503 (many clients behind \
                 one address, or one that does not read its answers)",
                std::process::id(),
                self.peer_note.0
            );
            self.peer_note = (0, Some(now));
        }
        let mut p =
            Prepared::busy("too many requests from your address at once; try again in a moment");
        p.note.quiet = true;
        Err(Box::new(p))
    }

    /// A request's share of its peer is free again.
    fn give_back(&mut self, peer: Option<Box<str>>) {
        if let Some(peer) = peer
            && let Some(n) = self.peers.get_mut(&peer)
        {
            *n -= 1;
            if *n == 0 {
                self.peers.remove(&peer);
            }
        }
    }

    fn ctx(&mut self, fcgi: bool) -> Ctx<'_> {
        Ctx {
            config: self.config,
            caches: &mut self.caches,
            stats: self.stats,
            pool_start: self.pool_start,
            limits: &self.limits,
            offload: if fcgi { self.offload.as_mut() } else { None },
            inflight: self.inflight,
            link: self.link.as_ref().map(|(l, _)| l),
        }
    }

    /// A response begins: counted in flight (after it was prepared, so the
    /// status page does not count its own request).
    pub fn begins(&mut self, charge: usize) {
        self.stats.get().in_flight.fetch_add(1, Relaxed);
        self.inflight += charge;
    }

    /// Drops a layout (and maybe its index): one that frees a large index
    /// on the helper thread. A layout or index held elsewhere (the caches,
    /// other streams) costs a count here, not a message to the helper.
    fn let_go(&self, layout: Arc<crate::mp4::Layout>) {
        let frees_large = Arc::strong_count(&layout) == 1
            && layout
                .index()
                .is_some_and(|i| Arc::strong_count(i) == 1 && i.heap_bytes() > LARGE_INDEX);
        if frees_large {
            self.jobs.discard(layout);
        }
    }

    /// Files a request under its job, starting the job if it is new; with
    /// [`MAX_JOBS`] already started, gives the request back.
    fn wait(&mut self, key: JobKey, job: Job, w: Waiter) -> Result<(), Waiter> {
        if !self.waiters.contains_key(&key) {
            // Pictures have their own, smaller share: a page of thumbnails
            // leaves room for index builds.
            let full = match key {
                JobKey::Picture(_) => {
                    let pictures = (self.waiters.keys())
                        .filter(|k| matches!(k, JobKey::Picture(_)))
                        .count();
                    pictures >= MAX_PICTURE_JOBS
                }
                _ => false,
            };
            if full || self.waiters.len() >= MAX_JOBS {
                return Err(w);
            }
        }
        self.waiting.insert(w.serial, key.clone());
        let pending = self.waiters.entry(key.clone()).or_insert_with(|| {
            let cancel = Cancel::default();
            self.jobs.submit(key, job, cancel.clone());
            Pending {
                waiters: Vec::new(),
                cancel,
            }
        });
        pending.waiters.push(w);
        Ok(())
    }

    /// A waiting request whose client has gone: forgotten, and its job
    /// cancelled if nobody else waits for it.
    fn forget(&mut self, serial: u64) {
        let Some(key) = self.waiting.remove(&serial) else {
            return;
        };
        let mut peer = None;
        if let Some(p) = self.waiters.get_mut(&key) {
            if let Some(i) = p.waiters.iter().position(|w| w.serial == serial) {
                peer = p.waiters.remove(i).peer;
            }
            if p.waiters.is_empty() {
                p.cancel.store(true, Relaxed);
                self.waiters.remove(&key);
            }
        }
        self.give_back(peer);
    }

    /// Requests that waited longer than `deadline` for their job: answered
    /// 503 (the job goes on, and its result is remembered for the next).
    pub fn expired(&mut self, now: Instant, deadline: Duration) -> Vec<(usize, u64, Prepared)> {
        let late: Vec<u64> = (self.waiters.values())
            .flat_map(|p| &p.waiters)
            .filter(|w| now.saturating_duration_since(w.since) >= deadline)
            .map(|w| w.serial)
            .collect();
        let mut answers = Vec::new();
        for serial in late {
            let Some(key) = self.waiting.get(&serial).cloned() else {
                continue;
            };
            // The job runs on for the requests that come after.
            let mut late = None;
            if let Some(p) = self.waiters.get_mut(&key) {
                if let Some(i) = p.waiters.iter().position(|w| w.serial == serial) {
                    late = Some(p.waiters.remove(i));
                }
                if p.waiters.is_empty() {
                    self.waiters.remove(&key);
                }
            }
            self.waiting.remove(&serial);
            if let Some(w) = late {
                let mut p =
                    Prepared::busy("the film is still being prepared; try again in a moment");
                p.note.detail = format!("waited {deadline:?} for its job");
                // Its share is held until this answer ends.
                p.note.peer = w.peer;
                answers.push((w.slot, serial, p));
            }
        }
        answers
    }

    /// Body reads from the origin that finished.
    pub fn chunks(&self) -> Vec<super::remote::Fetched> {
        if let Some((link, _)) = &self.link {
            let (requests, bytes) = link.take_counts();
            let c = self.stats.get();
            c.origin_requests.fetch_add(requests, Relaxed);
            c.origin_bytes.fetch_add(bytes, Relaxed);
        }
        self.link
            .as_ref()
            .map(|(_, rx)| rx.try_iter().collect())
            .unwrap_or_default()
    }

    /// Takes finished jobs: remembers their results and goes on with the
    /// requests that waited. Returns the answers to deliver.
    pub fn finished(&mut self) -> Vec<(usize, u64, Prepared)> {
        let done: Vec<(JobKey, Done)> = self.jobs.finished().collect();
        let mut answers = Vec::new();
        for (key, done) in done {
            for gone in flow::remember(key.clone(), &done, self.config, &mut self.caches) {
                self.jobs.discard(gone);
            }
            let waiters = self.waiters.remove(&key).map(|p| p.waiters);
            for w in waiters.unwrap_or_default() {
                self.waiting.remove(&w.serial);
                let mut ctx = self.ctx(w.fcgi);
                match flow::resume(w.walk, &done, &mut ctx) {
                    Outcome::Ready(mut p) => {
                        p.note.peer = w.peer;
                        answers.push((w.slot, w.serial, p));
                    }
                    Outcome::Wait { key, job, walk } => {
                        let w = Waiter { walk, ..w };
                        if let Err(w) = self.wait(key, job, w) {
                            let mut p = Prepared::overloaded();
                            p.note.peer = w.peer;
                            answers.push((w.slot, w.serial, p));
                        }
                    }
                }
            }
        }
        answers
    }
}

impl Handler for Service<'_> {
    fn request(&mut self, r: &Request, fcgi: bool, slot: usize) -> Answer {
        if let Some(s) = self.stats.mine() {
            s.requests.fetch_add(1, Relaxed);
        }
        // Before any work: one address holds at most its share of the worker.
        let peer = match self.take_share(&r.params) {
            Ok(peer) => peer,
            Err(p) => {
                self.begins(p.charge);
                return Answer::Now(*p);
            }
        };
        let mut ctx = self.ctx(fcgi);
        match flow::handle(&r.params, r.params_overflow, &mut ctx) {
            Outcome::Ready(mut p) => {
                p.note.peer = peer;
                self.begins(p.charge);
                Answer::Now(p)
            }
            Outcome::Wait { key, job, walk } => {
                self.serial += 1;
                let serial = self.serial;
                let w = Waiter {
                    slot,
                    serial,
                    fcgi,
                    peer,
                    walk,
                    since: Instant::now(),
                };
                match self.wait(key, job, w) {
                    Ok(()) => Answer::Later(serial),
                    Err(w) => {
                        let mut p = Prepared::overloaded();
                        p.note.peer = w.peer;
                        self.begins(p.charge);
                        Answer::Now(p)
                    }
                }
            }
        }
    }

    fn abandoned(&mut self, serial: u64) {
        self.forget(serial);
    }

    fn overloaded(&mut self) -> Prepared {
        let mut p = Prepared::overloaded();
        p.note.quiet = true;
        self.begins(p.charge);
        p
    }

    fn ended(&mut self, mut e: Ended) {
        if let Some(layout) = e.layout.take() {
            self.let_go(layout);
        }
        self.give_back(e.note.peer.take());
        self.stats.get().in_flight.fetch_sub(1, Relaxed);
        self.inflight -= e.charge.min(self.inflight);
        self.served += 1;
        self.stats.ended(e.status, e.took.as_secs_f64());
        let slow = self.config.slow_request_time;
        if !slow.is_zero() && e.waited >= slow {
            self.stats.get().slow_requests.fetch_add(1, Relaxed);
            log::warn!(
                "slow request: {} {} waited {:.3} s for its answer (--slow-request-time {:?}); {}",
                e.request.method,
                e.request.target,
                e.waited.as_secs_f64(),
                slow,
                e.note.detail
            );
        }
        log_ended(&e);
    }
}

/// One line per failed request (method, target, status, reason, time), and
/// with `--log-level debug` one per request.
fn log_ended(e: &Ended) {
    let ms = e.took.as_secs_f64() * 1e3;
    let (method, target) = (&e.request.method, &e.request.target);
    let detail = if e.note.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.note.detail)
    };
    let cut = if e.complete { "" } else { ", cut" };
    match (&e.note.reason, e.status) {
        // Refused for want of room: the worker logs those together.
        _ if e.status == 503 && e.note.quiet => {}
        (Some(reason), 500..) => {
            log::error!(
                "{method} {target} {} {reason}{detail} {ms:.1} ms{cut}",
                e.status
            )
        }
        (Some(reason), _) => {
            log::warn!(
                "{method} {target} {} {reason}{detail} {ms:.1} ms{cut}",
                e.status
            )
        }
        (None, _) => log::debug!(
            "{method} {target} {}{detail}, {} bytes, {ms:.1} ms{cut}",
            e.status,
            e.bytes
        ),
    }
}
