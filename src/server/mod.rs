//! The I/O shell: listeners, the pre-forked pool, workers' event loops, caches.
//! The only room that touches sockets, files and processes.

mod answer;
mod ask;
mod body;
mod cache;
mod check;
mod config;
mod connection;
mod demo;
mod dev_http;
mod fetch;
mod find;
mod flow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod jobs;
mod listen;
mod local;
pub mod logging;
mod master;
mod note;
mod offload;
mod pictures;
mod plan;
mod privileges;
mod remote;
mod respond;
mod seal;
mod service;
mod set;
mod sidecars;
mod source;
mod stats;
mod status;
mod stream;
mod transport;
mod walk;
mod worker;

pub use check::check;
pub use config::{Config, DEFAULT_LISTEN, KeyFile, ListenAddr};

use nix::sys::signal::Signal;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most worker processes a pool may have.
pub const MAX_WORKERS: usize = 256;

/// Signals every process of the pool reads from a signalfd (blocked before
/// fork, so none of them is fatal): the master adds SIGCHLD.
pub(crate) const HANDLED_SIGNALS: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs the pool until it is told to stop.
pub fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let ids = privileges::resolve(config.user.as_deref(), config.group.as_deref())?;
    let mut listeners = listen::open(&config)?;
    let first_http = listeners.len();
    if let Some(addr) = config.http {
        let l = std::net::TcpListener::bind(addr).map_err(|e| format!("--http {addr}: {e}"))?;
        listeners.push(listen::Listener::Tcp(l));
    }
    for l in &listeners {
        match l {
            listen::Listener::Tcp(t) => t.set_nonblocking(true)?,
            listen::Listener::Unix { listener, .. } => listener.set_nonblocking(true)?,
        }
    }
    if let Some(d) = &config.offload_dir {
        privileges::probe(ids, || {
            offload::check_writable(d).map_err(|e| e.to_string())
        })
        .map_err(|e| {
            format!(
                "--offload-dir {}: the workers cannot write there: {e}",
                d.display()
            )
        })?;
    }
    if let Some(p) = &config.pid_file {
        // Written aside and renamed: a reader sees the whole number or no
        // file, never an empty one.
        let mut aside = p.clone().into_os_string();
        aside.push(format!(".{}.tmp", std::process::id()));
        std::fs::write(&aside, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&aside, p))
            .map_err(|e| {
                let _ = std::fs::remove_file(&aside);
                format!("--pid-file {}: {e}", p.display())
            })?;
    }
    let stats = stats::Stats::new()?;
    let mut names: Vec<String> = listeners.iter().map(listen::Listener::describe).collect();
    if let Some(http) = names.get_mut(first_http) {
        *http = format!("http://{http} (development)");
    }
    log::info!(
        "mp4-fcgi {} listening on {} with {} worker{} (pid {})",
        env!("CARGO_PKG_VERSION"),
        names.join(", "),
        config.workers,
        if config.workers == 1 { "" } else { "s" },
        std::process::id()
    );
    let pool_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The master removes its socket files as it stops (those still its
    // own: a pool started on the same path during the drain keeps its).
    let result = master::Master::new(&config, listeners, first_http, stats, pool_start, ids).run();
    if let Some(p) = &config.pid_file {
        // Only our own: a pool started since owns the file now.
        let ours = format!("{}\n", std::process::id());
        if std::fs::read_to_string(p).is_ok_and(|t| t == ours) {
            let _ = std::fs::remove_file(p);
        }
    }
    log::info!("stopped");
    Ok(result?)
}
