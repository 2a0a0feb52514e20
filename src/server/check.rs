//! `--check`: what would stop the pool from starting, found without
//! starting it (like `nginx -t`): socket folders, users and groups, the
//! offload folder, the pid file's folder.

use super::config::{Config, ListenAddr};
use nix::unistd::{AccessFlags, access};
use std::path::Path;

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

/// Checks `config`; a summary of what the pool would do, or the first reason
/// it would not start.
pub fn check(config: &Config) -> Result<String, String> {
    let mut listens = Vec::new();
    for addr in &config.listen {
        if let ListenAddr::Unix(path) = addr {
            let dir = path.parent().unwrap_or(Path::new("/"));
            writable_dir(dir, &format!("--listen {addr}"))?;
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                // A pool runs there now: a reload or a restart replaces it.
                listens.push(format!("{addr} (a pool answers there now)"));
                continue;
            }
        }
        listens.push(addr.to_string());
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
    if (config.user.is_some() || config.group.is_some()) && !nix::unistd::Uid::effective().is_root()
    {
        return Err("--user/--group need the pool to be started as root".into());
    }
    if let Some(d) = &config.offload_dir {
        writable_dir(d, "--offload-dir")?;
    }
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
