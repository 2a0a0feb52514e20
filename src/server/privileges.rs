//! `--user`, `--group`: the workers run as that user; the master, which
//! binds, reopens logs and removes its socket file, stays root.

use nix::unistd::{Gid, Group, Uid, User, setgid, setgroups, setuid};
use std::io;

fn not_found(kind: &str, name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such {kind}: '{name}'"))
}

pub fn uid(name: &str) -> io::Result<Uid> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Uid::from_raw(n));
    }
    User::from_name(name)?
        .map(|u| u.uid)
        .ok_or_else(|| not_found("user", name))
}

pub fn gid(name: &str) -> io::Result<Gid> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    Group::from_name(name)?
        .map(|g| g.gid)
        .ok_or_else(|| not_found("group", name))
}

/// Who the workers run as (`--user`, `--group`): resolved once, at start.
#[derive(Clone, Copy, Debug)]
pub struct Ids {
    pub uid: Option<Uid>,
    pub gid: Gid,
}

/// The ids `--user` and `--group` name; `None` without them. Only root
/// may switch.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> io::Result<Option<Ids>> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    if !Uid::effective().is_root() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "--user/--group need the pool to be started as root",
        ));
    }
    let u = user
        .map(|n| {
            User::from_name(n)
                .ok()
                .flatten()
                .ok_or_else(|| not_found("user", n))
        })
        .transpose()?;
    let gid = match group {
        Some(g) => gid(g)?,
        None => u.as_ref().map_or(Gid::current(), |u| u.gid),
    };
    Ok(Some(Ids {
        uid: u.map(|u| u.uid),
        gid,
    }))
}

/// Becomes `ids` for good (a worker, after fork). The master stays root,
/// as nginx's and php-fpm's do: it reopens the log for logrotate and
/// removes its socket file, and never reads a request.
pub fn become_user(ids: &Ids) -> io::Result<()> {
    setgroups(&[ids.gid]).map_err(io::Error::from)?;
    setgid(ids.gid).map_err(io::Error::from)?;
    if let Some(uid) = ids.uid {
        setuid(uid).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Runs `check` as the workers will run: in a child process that became
/// `ids` (or here, without them). Only for a process with one thread.
pub fn probe(ids: Option<Ids>, check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    use nix::sys::wait::waitpid;
    use nix::unistd::{ForkResult, fork, pipe};
    use std::io::{Read, Write};
    let Some(ids) = ids else {
        return check();
    };
    let (r, w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: called before the pool starts any thread (start-up, --check),
    // so the child may run any code; it leaves with _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            let verdict = become_user(&ids)
                .map_err(|e| format!("cannot become the --user: {e}"))
                .and_then(|()| check());
            let code = match verdict {
                Ok(()) => 0,
                Err(why) => {
                    let _ = std::fs::File::from(w).write_all(why.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child without running the parent's exit
            // handlers or flushing its copies of buffers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            let mut why = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut why);
            match waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) if why.is_empty() => Ok(()),
                _ if why.is_empty() => Err("the check as --user ended abnormally".into()),
                _ => Err(why),
            }
        }
        Err(e) => Err(format!("fork: {e}")),
    }
}
