//! Where a local film comes from: the path a request names, and the file
//! opened safely (never blocking, never outside `--root`, never anything
//! but a regular file).

use crate::fcgi::Params;
use crate::http;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use crate::http::Refusal;

/// Why a file cannot be served, from the error opening or reading it.
/// Reasons never name server paths: the log line does.
pub fn io_refusal(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Refusal::new(404, "no such file"),
        io::ErrorKind::PermissionDenied => Refusal::new(403, "permission denied"),
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            Refusal::new(403, "a symbolic link where none may be")
        }
        _ if e.raw_os_error() == Some(libc::ENAMETOOLONG) => {
            Refusal::new(414, "the file name is too long")
        }
        // A socket (ENXIO), a device without its driver (ENODEV), a
        // folder opened for writing (EISDIR): nothing a film is in.
        _ if matches!(
            e.raw_os_error(),
            Some(libc::ENXIO | libc::ENODEV | libc::EISDIR | libc::EOPNOTSUPP)
        ) =>
        {
            Refusal::new(403, "not a regular file")
        }
        _ => Refusal::owned(500, format!("cannot read the file: {e}")),
    }
}

/// The file a request names: SCRIPT_FILENAME (also Apache's
/// `proxy:fcgi://host/path` form), else DOCUMENT_ROOT + SCRIPT_NAME.
pub fn script_path(params: &Params) -> Result<PathBuf, Refusal> {
    let raw: Vec<u8> = match params.get(b"SCRIPT_FILENAME") {
        Some(sf) if sf.starts_with(b"proxy:fcgi://") => {
            let rest = &sf[b"proxy:fcgi://".len()..];
            let path = rest
                .iter()
                .position(|&b| b == b'/')
                .map_or(&b""[..], |p| &rest[p..]);
            http::percent_decode_path(path)
                .ok_or_else(|| Refusal::new(400, "SCRIPT_FILENAME: bad percent-encoding"))?
        }
        Some(sf) => sf.to_vec(),
        None => match (params.get(b"DOCUMENT_ROOT"), params.get(b"SCRIPT_NAME")) {
            (Some(root), Some(name)) => [root, name].concat(),
            _ => {
                return Err(Refusal::new(
                    400,
                    "the front server sent no SCRIPT_FILENAME",
                ));
            }
        },
    };
    if raw.is_empty() || raw.contains(&0) {
        return Err(Refusal::new(
            400,
            "SCRIPT_FILENAME is empty or holds a NUL byte",
        ));
    }
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&raw)))
}

/// Opens the file, refusing what lies outside `--root` or is not a regular
/// file. The open never blocks (a FIFO would wait for a writer) and the
/// type is checked on the open file. Also returns the path opened.
pub fn open(
    path: &Path,
    root: Option<&Path>,
) -> Result<(File, std::fs::Metadata, PathBuf), Refusal> {
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    // Resolving costs a readlink per path component: only --root needs it.
    let real = match root {
        Some(root) => {
            let real = path.canonicalize().map_err(|e| io_refusal(&e))?;
            if !real.starts_with(root) {
                return Err(Refusal::new(403, "outside the served folder (--root)"));
            }
            // Resolved: a link planted since is not followed out of --root.
            flags |= libc::O_NOFOLLOW;
            real
        }
        None => path.to_path_buf(),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&real)
        .map_err(|e| io_refusal(&e))?;
    let meta = file.metadata().map_err(|e| io_refusal(&e))?;
    if !meta.is_file() {
        return Err(Refusal::new(403, "not a regular file"));
    }
    Ok((file, meta, real))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &Path, root: Option<&Path>) -> (u16, String) {
        match open(path, root) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(r) => (r.status, r.reason.into_owned()),
        }
    }

    #[test]
    fn a_name_too_long_is_414() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let long = root.join(format!("{}.mp4", "a".repeat(300)));
        for r in [None, Some(root.as_path())] {
            let (status, why) = refused(&long, r);
            assert_eq!(status, 414, "{why}");
            assert!(!why.contains("os error"), "{why}");
        }
        let e = io::Error::from_raw_os_error(libc::ENAMETOOLONG);
        assert_eq!(io_refusal(&e).status, 414);
    }

    #[test]
    fn sockets_fifos_devices_and_folders_are_refused_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let socket = root.join("socket.mp4");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let fifo = root.join("fifo.mp4");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let folder = root.join("folder.mp4");
        std::fs::create_dir(&folder).unwrap();
        for (path, r) in [
            (&socket, None),
            (&socket, Some(root.as_path())),
            (&fifo, None),
            (&fifo, Some(root.as_path())),
            (&folder, None),
            (&folder, Some(root.as_path())),
            (&PathBuf::from("/dev/null"), None),
        ] {
            let (status, why) = refused(path, r);
            assert!(
                status == 403 || status == 404,
                "{}: {status} {why}",
                path.display()
            );
            assert!(!why.contains("os error"), "{}: {why}", path.display());
        }
        let e = io::Error::from_raw_os_error(libc::ENXIO);
        assert_eq!(io_refusal(&e).status, 403);
    }
}
