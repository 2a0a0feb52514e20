//! Listening sockets: `--listen` addresses, a socket on fd 0 (lighttpd
//! `bin-path`, spawn-fcgi), or systemd's `LISTEN_FDS`.

use super::config::{Config, DEFAULT_LISTEN, ListenAddr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix {
        listener: std::os::unix::net::UnixListener,
        /// Set when we created the socket file and must remove it on exit.
        path: Option<PathBuf>,
        /// That file's (device, inode): the file removed is the one we made.
        file: Option<(u64, u64)>,
    },
}

impl Listener {
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map_or("tcp:?".into(), |a| a.to_string()),
            Listener::Unix { path: Some(p), .. } => format!("unix:{}", p.display()),
            Listener::Unix { listener, .. } => match listener.local_addr() {
                Ok(a) => a
                    .as_pathname()
                    .map_or("unix:(unnamed)".into(), |p| format!("unix:{}", p.display())),
                Err(_) => "unix:?".into(),
            },
        }
    }

    /// The socket file we created (and remove when the pool stops).
    pub fn socket_file(&self) -> Option<PathBuf> {
        match self {
            Listener::Unix { path: Some(p), .. } => Some(p.clone()),
            _ => None,
        }
    }

    /// Removes the socket file we created, if its path still names it (not
    /// one a later pool put there); the path removed, if any. Sockets handed
    /// to us (fd 0, LISTEN_FDS) are not ours to remove.
    pub fn remove_socket_file(&self) -> io::Result<Option<&std::path::Path>> {
        use std::os::unix::fs::MetadataExt;
        let Listener::Unix {
            path: Some(path),
            file,
            ..
        } = self
        else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
            Ok(m) if file.is_some_and(|id| id != (m.dev(), m.ino())) => return Ok(None),
            Ok(_) => {}
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            r => r.map(|()| Some(path.as_path())),
        }
    }
}

/// Whether `fd` is a listening stream socket, and if so whether it is a unix one.
fn listening_socket(fd: BorrowedFd<'_>) -> Option<bool> {
    use nix::sys::socket::{
        AddressFamily, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt,
    };
    if !getsockopt(&fd, sockopt::AcceptConn).ok()? {
        return None;
    }
    let addr: SockaddrStorage = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).ok()?;
    Some(addr.family() == Some(AddressFamily::Unix))
}

fn adopt(fd: RawFd) -> Option<Listener> {
    // SAFETY: we only borrow the fd to ask what it is.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let is_unix = listening_socket(borrowed)?;
    // SAFETY: the fd is a listening socket handed to us (fd 0 or LISTEN_FDS);
    // from here on we own it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Some(if is_unix {
        Listener::Unix {
            listener: owned.into(),
            path: None,
            file: None,
        }
    } else {
        Listener::Tcp(owned.into())
    })
}

fn bind(addr: &ListenAddr, config: &Config) -> io::Result<Listener> {
    match addr {
        ListenAddr::Tcp(a) => std::net::TcpListener::bind(a).map(Listener::Tcp),
        ListenAddr::Unix(path) => bind_unix(path, config).map_err(|e| explain(path, e)),
    }
}

/// Binds a unix socket with its mode and owner set before it has its name,
/// so no one connects while it is still open to all.
fn bind_unix(path: &std::path::Path, config: &Config) -> io::Result<Listener> {
    // A stale socket file from a crashed run would make bind fail.
    if std::os::unix::net::UnixStream::connect(path).is_err()
        && std::fs::symlink_metadata(path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
    {
        let _ = std::fs::remove_file(path);
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
    let named = (|| {
        // Nothing but the owner until the mode asked for is set.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        if config.socket_owner.is_some() || config.socket_group.is_some() {
            let uid = config
                .socket_owner
                .as_deref()
                .map(super::privileges::uid)
                .transpose()?;
            let gid = config
                .socket_group
                .as_deref()
                .map(super::privileges::gid)
                .transpose()?;
            nix::unistd::chown(&tmp, uid, gid).map_err(io::Error::from)?;
        }
        let mode = config.socket_mode.unwrap_or(0o666 & !umask());
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "Address already in use",
            ));
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = named {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let file = std::fs::symlink_metadata(path).ok().map(|m| {
        (
            std::os::unix::fs::MetadataExt::dev(&m),
            std::os::unix::fs::MetadataExt::ino(&m),
        )
    });
    Ok(Listener::Unix {
        listener,
        path: Some(path.to_path_buf()),
        file,
    })
}

/// The process's umask (read by setting it and back).
fn umask() -> u32 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits()
}

/// What to do about a socket path that cannot be bound.
fn explain(path: &std::path::Path, e: io::Error) -> io::Error {
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    let advice = match e.kind() {
        io::ErrorKind::NotFound => format!(
            "; the folder {} does not exist: create it first, e.g. \
             install -d -o root -g www-data -m 750 {}",
            dir.display(),
            dir.display()
        ),
        io::ErrorKind::PermissionDenied => format!(
            "; this user may not create files in {}: start the pool as root (with \
             --user to drop privileges) or choose a folder it owns",
            dir.display()
        ),
        _ => String::new(),
    };
    io::Error::new(e.kind(), format!("{e}{advice}"))
}

/// Opens the listeners: explicit `--listen`s, else LISTEN_FDS, else fd 0,
/// else the default address.
pub fn open(config: &Config) -> io::Result<Vec<Listener>> {
    let ctx = |a: &ListenAddr, e: io::Error| io::Error::new(e.kind(), format!("--listen {a}: {e}"));
    if !config.listen.is_empty() {
        return config
            .listen
            .iter()
            .map(|a| bind(a, config).map_err(|e| ctx(a, e)))
            .collect();
    }
    let fds: Vec<RawFd> = sd_notify::listen_fds()?.collect();
    if !fds.is_empty() {
        return fds
            .into_iter()
            .map(|fd| {
                adopt(fd).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("LISTEN_FDS: fd {fd} is not a listening socket"),
                    )
                })
            })
            .collect();
    }
    if let Some(l) = adopt(0) {
        return Ok(vec![l]);
    }
    if config.http.is_some() {
        // The development listener alone binds only what was asked.
        return Ok(Vec::new());
    }
    let default: ListenAddr = DEFAULT_LISTEN
        .parse()
        .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok(vec![bind(&default, config).map_err(|e| ctx(&default, e))?])
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}
