//! The master: binds, forks the workers, then only supervises (signals,
//! waitpid, respawn, sd_notify). It starts no threads before fork.

use super::config::Config;
use super::listen::Listener;
use super::stats::Stats;
use super::worker::Worker;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use sd_notify::NotifyState;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A worker that dies sooner than this after its start counts as a crash loop.
const QUICK_DEATH: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

struct Child {
    generation: u64,
    started: Instant,
    /// Its slot on the status page.
    slot: Option<usize>,
    /// Told to stop: killed if still alive then.
    stop_by: Option<Instant>,
    /// The master killed it: its death is no failure.
    killed: bool,
}

/// Beyond a worker's own `--shutdown-timeout`, how long the master waits
/// before it kills a worker told to stop.
const KILL_MARGIN: Duration = Duration::from_secs(2);

enum State {
    Running,
    Stopping { deadline: Instant },
}

pub struct Master<'a> {
    config: &'a Config,
    /// Closed when the pool stops, so that new connections are refused at
    /// once rather than wait in a backlog nobody accepts from.
    listeners: Vec<Listener>,
    /// Listeners from this index on speak HTTP (`--http`).
    first_http: usize,
    stats: Stats,
    pool_start: u64,
    children: HashMap<Pid, Child>,
    generation: u64,
    /// Respawns waiting for their backoff to end.
    pending: Vec<Instant>,
    quick_deaths: u32,
    state: State,
    /// Who the workers become (`--user`, `--group`); the master stays.
    ids: Option<super::privileges::Ids>,
}

fn notify(states: &[NotifyState<'_>]) {
    // Not under systemd: NOTIFY_SOCKET is unset and this does nothing.
    let _ = sd_notify::notify(states);
}

impl<'a> Master<'a> {
    pub fn new(
        config: &'a Config,
        listeners: Vec<Listener>,
        first_http: usize,
        stats: Stats,
        pool_start: u64,
        ids: Option<super::privileges::Ids>,
    ) -> Self {
        Master {
            config,
            listeners,
            first_http,
            stats,
            pool_start,
            children: HashMap::new(),
            generation: 0,
            pending: Vec::new(),
            quick_deaths: 0,
            state: State::Running,
            ids,
        }
    }

    fn spawn(&mut self, sfd: &SignalFd) {
        let master = nix::unistd::getpid();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let slot = self.stats.claim_slot(self.generation, now);
        let stats = slot.map_or(self.stats, |i| self.stats.for_slot(i));
        // SAFETY: the master is single-threaded, so the child may run any code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // A master killed outright must not leave workers behind:
                // they drain and exit when it dies.
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
                if nix::unistd::getppid() != master {
                    std::process::exit(0);
                }
                // The master's signalfd is not ours to read.
                let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(sfd));
                if let Some(ids) = &self.ids
                    && let Err(e) = super::privileges::become_user(ids)
                {
                    log::error!("worker {}: cannot become --user: {e}", std::process::id());
                    std::process::exit(1);
                }
                // The worker takes the listeners it inherited, so that when
                // it closes them no copy stays open in this process.
                let code = match Worker::new(
                    self.config,
                    std::mem::take(&mut self.listeners),
                    self.first_http,
                    stats,
                    self.pool_start,
                ) {
                    Ok(w) => w.run(),
                    Err(e) => {
                        log::error!("worker {}: {e}", std::process::id());
                        1
                    }
                };
                std::process::exit(code);
            }
            Ok(ForkResult::Parent { child }) => {
                if let Some(i) = slot {
                    self.stats.set_slot_pid(i, child.as_raw());
                }
                self.children.insert(
                    child,
                    Child {
                        generation: self.generation,
                        started: Instant::now(),
                        slot,
                        stop_by: None,
                        killed: false,
                    },
                );
                self.stats
                    .get()
                    .workers
                    .store(self.current_workers() as u64, Relaxed);
            }
            Err(e) => {
                if let Some(i) = slot {
                    self.stats.free_slot(i);
                }
                log::error!("fork failed: {e}; retrying in 1 s");
                self.pending.push(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    fn current_workers(&self) -> usize {
        self.children
            .values()
            .filter(|c| c.generation == self.generation)
            .count()
    }

    /// Tells workers (all, or those of older generations) to drain and exit.
    fn stop(&mut self, only_old: bool) {
        let by = Instant::now() + self.config.shutdown_timeout + KILL_MARGIN;
        for (pid, c) in &mut self.children {
            if !only_old || c.generation != self.generation {
                let _ = kill(*pid, Signal::SIGTERM);
                c.stop_by.get_or_insert(by);
            }
        }
    }

    fn kill_all(&mut self) {
        for (pid, c) in &mut self.children {
            let _ = kill(*pid, Signal::SIGKILL);
            c.killed = true;
        }
    }

    /// Kills workers that outlived their stop deadline.
    fn kill_late(&mut self, now: Instant) {
        for (pid, c) in &mut self.children {
            if !c.killed && c.stop_by.is_some_and(|t| now >= t) {
                log::warn!("worker {pid} still runs after --shutdown-timeout; killing it");
                let _ = kill(*pid, Signal::SIGKILL);
                c.killed = true;
            }
        }
    }

    /// Removes the socket files the pool created (not those handed to it),
    /// when it stops: a stopped pool leaves no socket behind. A pool that
    /// dropped to a --user that may not remove files in the socket's folder
    /// cannot; then the next start replaces the file.
    fn remove_socket_files(&self) {
        for l in &self.listeners {
            match l.remove_socket_file() {
                Ok(Some(path)) => log::debug!("removed the socket file {}", path.display()),
                Ok(None) => {}
                Err(e) => {
                    let path = l.socket_file().unwrap_or_default();
                    let folder = path.parent().unwrap_or(std::path::Path::new("/"));
                    log::info!(
                        "the socket file {} stays ({e}): this user ({}) may not remove files \
                         in {}; the next start replaces it",
                        path.display(),
                        nix::unistd::User::from_uid(nix::unistd::geteuid())
                            .ok()
                            .flatten()
                            .map_or_else(|| nix::unistd::geteuid().to_string(), |u| u.name),
                        folder.display()
                    );
                }
            }
        }
    }

    fn forward(&self, sig: Signal) {
        for pid in self.children.keys() {
            let _ = kill(*pid, sig);
        }
    }

    fn status_line(&self) -> String {
        let c = self.stats.get();
        format!(
            "{} workers, {} requests, {} in flight, {} connections",
            self.current_workers(),
            c.requests.load(Relaxed),
            c.in_flight.load(Relaxed),
            c.connections.load(Relaxed)
        )
    }

    fn reap(&mut self) {
        loop {
            let (pid, how) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    (pid, (code != 0).then(|| format!("exit status {code}")))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Some(format!("signal {sig}"))),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            let Some(child) = self.children.remove(&pid) else {
                continue;
            };
            if let Some(i) = child.slot {
                self.stats.free_slot(i);
            }
            let how = how.filter(|how| {
                if child.killed {
                    log::info!("worker {pid} stopped ({how})");
                }
                !child.killed
            });
            if let Some(how) = &how {
                self.stats.get().worker_deaths.fetch_add(1, Relaxed);
                log::error!("worker {pid} died ({how})");
            }
            let current = child.generation == self.generation;
            if matches!(self.state, State::Running) && current {
                let quick = how.is_some() && child.started.elapsed() < QUICK_DEATH;
                self.quick_deaths = if quick { self.quick_deaths + 1 } else { 0 };
                let backoff = match self.quick_deaths {
                    0..=2 => Duration::ZERO,
                    n => (Duration::from_millis(100) * 2u32.saturating_pow(n - 2)).min(MAX_BACKOFF),
                };
                if !backoff.is_zero() {
                    log::warn!("workers keep dying; next respawn in {backoff:?}");
                }
                self.pending.push(Instant::now() + backoff);
                self.stats.get().respawns.fetch_add(1, Relaxed);
            }
            self.stats
                .get()
                .workers
                .store(self.current_workers() as u64, Relaxed);
        }
    }

    /// Supervises until the pool stops.
    pub fn run(mut self) -> std::io::Result<()> {
        let mut mask = SigSet::empty();
        for s in super::HANDLED_SIGNALS {
            mask.add(s);
        }
        mask.add(Signal::SIGCHLD);
        // Blocked before fork: workers inherit the mask and read their own signalfd.
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        for _ in 0..self.config.workers {
            self.spawn(&sfd);
        }
        notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
        let mut last_status = Instant::now();
        loop {
            let now = Instant::now();
            let mut due = 0;
            self.pending.retain(|t| {
                let ready = *t <= now;
                due += usize::from(ready);
                !ready
            });
            for _ in 0..due {
                if matches!(self.state, State::Running)
                    && self.current_workers() < self.config.workers
                {
                    self.spawn(&sfd);
                }
            }
            if let State::Stopping { deadline } = self.state {
                if self.children.is_empty() {
                    return Ok(());
                }
                if now >= deadline {
                    log::warn!("shutdown timeout: killing {} workers", self.children.len());
                    self.kill_all();
                    self.state = State::Stopping {
                        deadline: now + Duration::from_secs(3600),
                    };
                }
            }
            self.kill_late(now);
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, 200u16);
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => self.reap(),
                    Ok(Signal::SIGTERM | Signal::SIGINT)
                        if matches!(self.state, State::Running) =>
                    {
                        let n = self.children.len();
                        log::info!(
                            "stopping: letting {n} worker{} finish (up to {:?})",
                            if n == 1 { "" } else { "s" },
                            self.config.shutdown_timeout
                        );
                        notify(&[NotifyState::Stopping]);
                        self.state = State::Stopping {
                            deadline: Instant::now() + self.config.shutdown_timeout + KILL_MARGIN,
                        };
                        self.remove_socket_files();
                        self.listeners.clear();
                        self.stop(false);
                    }
                    Ok(Signal::SIGQUIT) => {
                        log::info!("stopping now (SIGQUIT)");
                        notify(&[NotifyState::Stopping]);
                        self.remove_socket_files();
                        self.kill_all();
                        while !self.children.is_empty() {
                            std::thread::sleep(Duration::from_millis(10));
                            self.reap();
                        }
                        return Ok(());
                    }
                    Ok(Signal::SIGUSR1) => {
                        log::info!("SIGUSR1: reopening the log file");
                        super::logging::reopen(self.ids.and_then(|i| i.uid));
                        self.forward(Signal::SIGUSR1);
                    }
                    Ok(Signal::SIGUSR2) => log::info!("SIGUSR2 ignored"),
                    Ok(Signal::SIGHUP) if matches!(self.state, State::Running) => {
                        log::info!(
                            "SIGHUP: recycling {} workers gracefully",
                            self.current_workers()
                        );
                        self.stats.get().reloads.fetch_add(1, Relaxed);
                        match self.config.keys.reload() {
                            Ok(()) if self.config.keys.path.is_some() => {
                                log::info!("SIGHUP: the key file is read again")
                            }
                            Ok(()) => {}
                            Err(e) => log::error!("SIGHUP: {e}; the keys stay as they were"),
                        }
                        self.generation += 1;
                        self.pending.clear();
                        for _ in 0..self.config.workers {
                            self.spawn(&sfd);
                        }
                        self.stop(true);
                    }
                    _ => {}
                }
            }
            self.reap();
            if last_status.elapsed() >= Duration::from_secs(5) {
                notify(&[NotifyState::Status(&self.status_line())]);
                last_status = Instant::now();
            }
        }
    }
}
