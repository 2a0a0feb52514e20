//! Where log lines go: stderr, or `--log-file`, which SIGUSR1 reopens (as
//! logrotate expects). Every process of the pool appends to the same file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static FILE: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes each record to the log file if there is one, else to stderr.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = FILE.lock().unwrap_or_else(|e| e.into_inner());
        match file.as_mut() {
            Some((_, f)) => f.write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts logging at `level` (or `RUST_LOG`, else info) to `file` or stderr.
pub fn init(level: Option<log::LevelFilter>, file: Option<&Path>) -> io::Result<()> {
    if let Some(p) = file {
        let f = open(p)
            .map_err(|e| io::Error::new(e.kind(), format!("--log-file {}: {e}", p.display())))?;
        *FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some((p.to_path_buf(), f));
    }
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(level) = level {
        b.filter_level(level);
    }
    b.target(env_logger::Target::Pipe(Box::new(Sink)));
    // A second init (tests, `cut` after `serve`) keeps the first logger.
    let _ = b.try_init();
    Ok(())
}

/// Reopens `--log-file` (SIGUSR1): after logrotate moved it, lines go to a
/// new file of that name. The master (root) passes the workers' `--user`:
/// the file, new or made by logrotate's `create`, becomes theirs, so that
/// they can reopen it too (as nginx does).
pub fn reopen(owner: Option<nix::unistd::Uid>) {
    let mut file = FILE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((path, f)) = file.as_mut() {
        match open(path) {
            Ok(new) => {
                if let Some(uid) = owner
                    && let Err(e) = nix::unistd::fchown(&new, Some(uid), None)
                {
                    let _ = writeln!(f, "mp4-fcgi: cannot give {} to --user: {e}", path.display());
                }
                *f = new;
            }
            Err(e) => {
                let _ = writeln!(f, "mp4-fcgi: cannot reopen {}: {e}", path.display());
            }
        }
    }
}
