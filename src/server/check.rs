//! `--check`: what would stop the pool from starting, found by trying
//! what start-up does without starting (like `nginx -t`): addresses bound
//! and let go, socket folders, users and groups, the log file, and the
//! folders the workers use, tried as the `--user` they run as.

use super::config::{Config, ListenAddr};
use super::privileges::{self, Ids};
use crate::fcgi;
use nix::unistd::{AccessFlags, access};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

fn writable_dir(dir: &Path, what: &str) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "{what}: the folder {} does not exist",
            dir.display()
        ));
    }
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| format!("{what}: cannot create files in {}: {e}", dir.display()))
}

/// Whether a FastCGI responder answers `FCGI_GET_VALUES` at `addr`.
fn fastcgi_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut q = Vec::new();
    fcgi::encode_record(fcgi::FCGI_GET_VALUES, 0, &[], &mut q);
    let mut head = [0u8; 8];
    s.write_all(&q).is_ok()
        && s.read_exact(&mut head).is_ok()
        && head[0] == 1
        && head[1] == fcgi::FCGI_GET_VALUES_RESULT
}

/// Binds `addr` and lets it go, as start-up would bind it; in use is
/// fine only where a FastCGI pool answers (a reload keeps its sockets).
fn try_bind(addr: SocketAddr, what: &str, fastcgi: bool) -> Result<Option<&'static str>, String> {
    match TcpListener::bind(addr) {
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && fastcgi && fastcgi_answers(addr) => {
            Ok(Some(" (a pool answers there now)"))
        }
        Err(e) => Err(format!("{what} {addr}: {e}")),
    }
}

/// The log file opens for appending, as start-up opens it (nothing is
/// created here: a missing file needs a folder where it can be made).
fn log_file_opens(path: &Path) -> Result<(), String> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("--log-file {}: {e}", path.display()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    writable_dir(dir, &format!("--log-file {}", path.display()))
}

/// What the workers need, tried as the user they run as.
fn workers_can(config: &Config, ids: Option<Ids>) -> Result<(), String> {
    let user = config.user.as_deref().unwrap_or("the pool's user");
    if let Some(d) = &config.offload_dir {
        privileges::probe(ids, || writable_dir(d, "--offload-dir"))
            .map_err(|e| format!("{e} (as {user})"))?;
    }
    if let Some(r) = &config.root {
        privileges::probe(ids, || {
            access(r.as_path(), AccessFlags::R_OK | AccessFlags::X_OK)
                .map_err(|e| format!("--root {}: cannot read files there: {e}", r.display()))
        })
        .map_err(|e| format!("{e} (as {user})"))?;
    }
    Ok(())
}

/// Checks `config` (and the `--log-file` start-up opens); a summary of what
/// the pool would do, or the first reason it would not start.
pub fn check(config: &Config, log_file: Option<&Path>) -> Result<String, String> {
    let mut listens = Vec::new();
    for addr in &config.listen {
        match addr {
            ListenAddr::Unix(path) => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                writable_dir(dir, &format!("--listen {addr}"))?;
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    // A pool runs there now: a reload or a restart replaces it.
                    listens.push(format!("{addr} (a pool answers there now)"));
                    continue;
                }
            }
            ListenAddr::Tcp(a) => {
                if let Some(note) = try_bind(*a, "--listen", true)? {
                    listens.push(format!("{addr}{note}"));
                    continue;
                }
            }
        }
        listens.push(addr.to_string());
    }
    if let Some(http) = config.http {
        try_bind(http, "--http", false)?;
    }
    if let Some(p) = log_file {
        log_file_opens(p)?;
    }
    if config.listen.is_empty() {
        listens.push(match config.http {
            Some(_) => "no FastCGI listener".to_string(),
            None => format!(
                "{} (or a socket on fd 0, or LISTEN_FDS)",
                super::DEFAULT_LISTEN
            ),
        });
    }
    if let Some(http) = config.http {
        listens.push(format!("http://{http} (development)"));
    }
    for name in config.socket_owner.iter().chain(&config.user) {
        super::privileges::uid(name).map_err(|e| format!("user: {e}"))?;
    }
    for name in config.socket_group.iter().chain(&config.group) {
        super::privileges::gid(name).map_err(|e| format!("group: {e}"))?;
    }
    let ids = privileges::resolve(config.user.as_deref(), config.group.as_deref())
        .map_err(|e| e.to_string())?;
    workers_can(config, ids)?;
    if let Some(p) = &config.pid_file {
        writable_dir(p.parent().unwrap_or(Path::new("/")), "--pid-file")?;
    }
    Ok(format!(
        "listen {}; {} worker{}; root {}",
        listens.join(", "),
        config.workers,
        if config.workers == 1 { "" } else { "s" },
        config.root.as_ref().map_or_else(
            || "any file the front server names".into(),
            |r| r.display().to_string()
        )
    ))
}
