//! The I/O shell: listeners, the pre-forked pool, workers' event loops, caches.
//! The only room that touches sockets, files and processes.

mod config;
pub use config::{Config, DEFAULT_LISTEN, ListenAddr, Offload};

/// Runs the pool until it is told to stop. Returns the process exit code.
pub fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let _ = config;
    Err("the pool is under construction".into())
}
